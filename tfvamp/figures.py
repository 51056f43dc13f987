"""The paper's figures for a trained model, as PNG files (matplotlib, Agg).

* ``samples.png``: real test images next to images generated from the prior (Fig. 5);
* ``reconstructions.png``: test images next to their reconstructions (Fig. 6);
* ``log_likelihood_histogram.png``: per-example test log-likelihoods (Fig. 7);
* ``pseudo_inputs.png``: the VampPrior's learned pseudo-inputs (VampPrior only).
"""
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfvamp.priors import VampPrior  # noqa: E402


def image_grid(images, columns=None, padding=1):
    """Tiles ``[N, H, W, C]`` images in [0, 1] into one ``[rows*H', cols*W']``
    image (C = 1) or ``[.., .., C]``, with a white line between images."""
    images = np.clip(np.asarray(images, dtype=np.float32), 0.0, 1.0)
    n, h, w, c = images.shape
    columns = columns or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / columns))
    grid = np.ones((rows * (h + padding) - padding, columns * (w + padding) - padding, c), np.float32)
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        grid[r * (h + padding):r * (h + padding) + h, col * (w + padding):col * (w + padding) + w] = image
    return grid[..., 0] if c == 1 else grid


def _show(axis, images, title, columns):
    grid = image_grid(images, columns)
    axis.imshow(grid, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    axis.set_title(title)
    axis.axis("off")


def _side_by_side(left, right, titles, path, columns):
    figure, axes = plt.subplots(1, 2, figsize=(10, 5.4))
    _show(axes[0], left, titles[0], columns)
    _show(axes[1], right, titles[1], columns)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def plot_samples(real, generated, path, title="generated"):
    """Fig. 5: real test images (left) and images generated from the prior (right)."""
    return _side_by_side(real, generated, ("real test images", title), path, 10)


def plot_reconstructions(real, reconstructions, path):
    """Fig. 6: test images (left) and their reconstructions (right)."""
    return _side_by_side(real, reconstructions, ("real test images", "reconstructions"), path, 10)


def plot_log_likelihood_histogram(log_likelihoods, path, title="test log-likelihood"):
    """Fig. 7: histogram of the per-example test log-likelihoods (nats)."""
    log_likelihoods = np.asarray(log_likelihoods)
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.hist(log_likelihoods, bins=100, color="tab:blue")
    axis.axvline(log_likelihoods.mean(), color="black", linestyle="--",
                 label=f"mean {log_likelihoods.mean():.2f}")
    axis.set_xlabel("log p(x) (nats)")
    axis.set_ylabel("test examples")
    axis.set_title(title)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def plot_pseudo_inputs(pseudo_inputs, path, max_images=100):
    """The first ``max_images`` learned pseudo-inputs ``u_k`` as images."""
    figure, axis = plt.subplots(figsize=(6, 6.4))
    shown = np.asarray(pseudo_inputs)[:max_images]
    _show(axis, shown, f"pseudo-inputs ({len(shown)} of {len(pseudo_inputs)})", 10)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def write_figures(model, test_images, log_likelihoods, directory, num_images=100, seed=0,
                  title=""):
    """Writes the paper's figures for ``model`` into ``directory``.

    Returns ``{name: path}``; ``pseudo_inputs`` only for a VampPrior.
    """
    os.makedirs(directory, exist_ok=True)
    real = np.asarray(test_images[:num_images])
    generated = np.asarray(model.sample(len(real), seed=tf.constant([seed, 1], tf.int32)))
    reconstructions = np.asarray(model.reconstruct(tf.constant(real)))
    prefix = f"{title}: " if title else ""
    paths = {
        "samples": plot_samples(real, generated, os.path.join(directory, "samples.png"),
                                f"{prefix}samples"),
        "reconstructions": plot_reconstructions(
            real, reconstructions, os.path.join(directory, "reconstructions.png")),
        "log_likelihood_histogram": plot_log_likelihood_histogram(
            log_likelihoods, os.path.join(directory, "log_likelihood_histogram.png"),
            f"{prefix}test log-likelihood"),
    }
    if isinstance(model.prior, VampPrior):
        paths["pseudo_inputs"] = plot_pseudo_inputs(
            np.asarray(model.prior.pseudo_inputs()), os.path.join(directory, "pseudo_inputs.png"))
    return paths
