"""The paper's figures for a trained model, as PNG files (matplotlib, Agg).

* ``samples.png``: real test images next to images generated from the prior (Fig. 5);
* ``reconstructions.png``: test images next to their reconstructions (Fig. 6);
* ``log_likelihood_histogram.png``: per-example test log-likelihoods (Fig. 7);
* ``pseudo_inputs.png``: the VampPrior's most used pseudo-inputs (VampPrior only).

The test images shown are a random sample (a fixed one for a given seed):
some test sets, static MNIST's for one, are sorted by class.
"""
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfvamp import monitoring  # noqa: E402
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


def _save(figure, path, **savefig_kwargs):
    """Saves ``figure`` as a PNG at ``path`` through a temporary file and a
    rename (a failed write, a full disk, leaves the previous figure), and closes it."""
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        figure.savefig(temporary, format="png", dpi=100, **savefig_kwargs)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    finally:
        plt.close(figure)


def _show(axis, images, title, columns):
    grid = image_grid(images, columns)
    axis.imshow(grid, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    axis.set_title(title)
    axis.axis("off")


def _side_by_side(left, right, titles, path, columns, title=""):
    figure, axes = plt.subplots(1, 2, figsize=(10, 5.4 + 0.3 * len(title.splitlines())))
    _show(axes[0], left, titles[0], columns)
    _show(axes[1], right, titles[1], columns)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    _save(figure, path)
    return path


def plot_samples(real, generated, path, real_title="real test images", title=""):
    """Fig. 5: real test images (left) and images generated from the prior
    (right), under ``title`` (e.g. the run's description) if given."""
    return _side_by_side(real, generated, (real_title, "samples from the prior"), path, 10, title)


def plot_reconstructions(real, reconstructions, path, real_title="real test images", title=""):
    """Fig. 6: test images (left) and their reconstructions (right), under ``title`` if given."""
    return _side_by_side(real, reconstructions, (real_title, "reconstructions"), path, 10, title)


def plot_log_likelihood_histogram(log_likelihoods, path, title="", num_samples=None):
    """Fig. 7: histogram of the per-example test log-likelihoods (nats), estimated
    by importance sampling with ``num_samples`` samples (named on the axis if
    given), under ``title`` if given."""
    log_likelihoods = np.asarray(log_likelihoods)
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.hist(log_likelihoods, bins=100, color="tab:blue")
    axis.axvline(log_likelihoods.mean(), color="black", linestyle="--",
                 label=f"mean {log_likelihoods.mean():.2f}")
    axis.set_xlabel("log p(x) (nats)" if num_samples is None
                    else f"log p(x) (nats, importance sampling with S={num_samples})")
    axis.set_ylabel("test examples")
    axis.set_title(f"{title}\ntest log-likelihood" if title else "test log-likelihood")
    axis.legend()
    figure.tight_layout()
    _save(figure, path)
    return path


def random_indices(num_items, size, seed):
    """``min(size, num_items)`` distinct indices below ``num_items``, drawn at
    random with ``seed``, in random order (so that each row of a grid is a
    mixed sample even of a test set sorted by class)."""
    rng = np.random.default_rng(seed)
    return rng.choice(num_items, size=min(size, num_items), replace=False)


def pseudo_input_usage(model, images, batch_size=500):
    """The share of the posterior mass of ``images`` that each of the K
    components of ``model.prior_distribution()`` (for a VampPrior, each
    pseudo-input) attracts, as a ``[K]`` array summing to 1: each image counted
    once, at its posterior mean, with its responsibilities q(k | z)
    (``tfvamp.monitoring.component_usage``)."""
    return monitoring.component_usage(model, images, batch_size)


def plot_pseudo_input_drift(snapshots, path, columns=10, max_rows=5):
    """The pseudo-inputs' drift while training: one row per logged epoch (at most
    ``max_rows``, spread over the snapshots, the first and last kept), each the ``columns``
    most used pseudo-inputs of that epoch, most used first, with their usage. ``snapshots``
    are ``tfvamp.monitoring.PriorMonitor.snapshots`` (``epoch``, ``pseudo_inputs``, ``usage``)."""
    chosen = sorted({round(i) for i in np.linspace(0, len(snapshots) - 1, min(max_rows, len(snapshots)))})
    rows = [snapshots[i] for i in chosen]
    figure, axes = plt.subplots(len(rows), 1, figsize=(columns * 0.8, len(rows) * 1.1 + 0.4), squeeze=False)
    for axis, snapshot in zip(axes[:, 0], rows):
        images = np.asarray(snapshot["pseudo_inputs"])[:columns]
        grid = image_grid(images, columns=len(images))
        axis.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=1)
        axis.set_title(f"epoch {snapshot['epoch']}: the {len(images)} most used "
                       f"({float(np.sum(snapshot['usage'][:columns])):.1%} of the mass)", fontsize=8)
        axis.axis("off")
    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    _save(figure, path)
    return path


def plot_pseudo_inputs(pseudo_inputs, usage, path, max_images=100, usage_of="the data",
                       title=""):
    """The ``max_images`` most used pseudo-inputs ``u_k`` (``usage`` from
    ``pseudo_input_usage``, computed on ``usage_of``), most used first, each
    with its share written under it."""
    usage = np.asarray(usage)
    order = np.argsort(-usage, kind="stable")[:max_images]
    images, shares = np.asarray(pseudo_inputs)[order], usage[order]
    rest = len(usage) - len(order)
    heading = (f"the {len(order)} most used of {len(usage)} pseudo-inputs, most used first;\n"
               f"under each, its share of the posterior mass of {usage_of}\n"
               f"(together {shares.sum():.1%}"
               + (f"; the {rest} others {1 - shares.sum():.1%})" if rest else ")"))
    columns, padding = 10, 9
    height, width = images.shape[1:3]
    figure, axis = plt.subplots(figsize=(7, 0.8 + 0.68 * np.ceil(len(order) / columns)))
    grid = image_grid(images, columns, padding)
    axis.imshow(grid, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    axis.set_ylim(grid.shape[0] - 0.5 + padding, -0.5)  # room for the last row's shares
    for i, share in enumerate(shares):
        row, column = divmod(i, columns)
        axis.text(column * (width + padding) + width / 2, row * (height + padding) + height + padding / 2,
                  f"{share:.2%}", ha="center", va="center", fontsize=6)
    axis.set_title(f"{title}\n{heading}" if title else heading, fontsize=9)
    axis.axis("off")
    _save(figure, path, bbox_inches="tight")
    return path


def write_figures(model, test_images, log_likelihoods, directory, num_images=100, seed=0,
                  title="", train_images=None, max_usage_images=2000, num_samples=None):
    """Writes the paper's figures for ``model`` into ``directory``.

    The test images shown are ``num_images`` drawn at random with ``seed``;
    for a VampPrior, the pseudo-inputs are ranked by ``pseudo_input_usage`` on
    at most ``max_usage_images`` of ``train_images`` (the test images if None),
    also drawn at random. ``num_samples``, the importance samples behind
    ``log_likelihoods``, is named in the histogram. ``title`` (e.g. the
    run's description) heads every figure.

    Returns ``{name: path}``; ``pseudo_inputs`` only for a VampPrior.
    """
    os.makedirs(directory, exist_ok=True)
    real = np.asarray(test_images)[random_indices(len(test_images), num_images, seed)]
    real_title = f"{len(real)} random test images"
    generated = np.asarray(model.sample(len(real), seed=tf.constant([seed, 1], tf.int32)))
    reconstructions = np.asarray(model.reconstruct(tf.constant(real)))
    paths = {
        "samples": plot_samples(real, generated, os.path.join(directory, "samples.png"), real_title, title),
        "reconstructions": plot_reconstructions(
            real, reconstructions, os.path.join(directory, "reconstructions.png"), real_title, title),
        "log_likelihood_histogram": plot_log_likelihood_histogram(
            log_likelihoods, os.path.join(directory, "log_likelihood_histogram.png"), title, num_samples),
    }
    if isinstance(model.prior, VampPrior):
        kind = "test" if train_images is None else "training"
        images = np.asarray(test_images if train_images is None else train_images)
        images = images[random_indices(len(images), max_usage_images, seed)]
        paths["pseudo_inputs"] = plot_pseudo_inputs(
            np.asarray(model.prior.pseudo_inputs()), pseudo_input_usage(model, images),
            os.path.join(directory, "pseudo_inputs.png"),
            usage_of=f"{len(images)} random {kind} images", title=title)
    return paths
