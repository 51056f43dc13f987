"""The figures show what they say: a random sample of the test set, and the
VampPrior's pseudo-inputs ranked by how much of the data's posterior mass they attract."""
import os

import keras
import numpy as np
import pytest

from conftest import SHARED_DATA
from tfvamp import figures, models
from tfvamp.datasets import load_dataset

K = 20


@pytest.fixture(scope="module")
def mnist():
    """Static MNIST: its test file is sorted by class."""
    return load_dataset("static_mnist", SHARED_DATA)


@pytest.fixture(scope="module")
def model(mnist):
    """A tiny VampPrior VAE whose K pseudo-inputs are distinct test images, and
    whose encoder weights are tripled to spread the posteriors apart, so that
    the pseudo-inputs are used unevenly."""
    keras.utils.set_random_seed(0)  # the same weights whatever ran before
    model = models.build_model("vae", input_shape=(28, 28, 1), likelihood="bernoulli", prior="vamp",
                               latent_dim=4, hidden_units=8, num_components=K, seed=0)
    for weight in model.encoder.weights:
        weight.assign(3.0 * weight)
    rows = np.random.default_rng(1).choice(len(mnist.test), K, replace=False)
    model.prior.pseudo_inputs_raw.assign(mnist.test[rows].reshape(K, -1))
    return model


def test_random_indices_spread_over_a_sorted_test_set(mnist):
    n = len(mnist.test)
    indices = figures.random_indices(n, 100, seed=0)
    assert len(np.unique(indices)) == 100
    assert not np.array_equal(indices, np.arange(100))
    assert indices.max() - indices.min() > 0.8 * n
    assert np.ptp(indices[:10]) > 0.5 * n  # even the first row of a grid mixes the classes
    assert np.array_equal(indices, figures.random_indices(n, 100, seed=0))
    assert not np.array_equal(indices, figures.random_indices(n, 100, seed=1))
    assert np.array_equal(np.sort(figures.random_indices(12, 100, seed=0)), np.arange(12))


def _posterior_means(model, images):
    return np.asarray(model.encode(images)[0], np.float64)


def test_pseudo_input_usage_is_shares_of_the_responsibilities(model, mnist):
    images = mnist.train[:600]
    usage = figures.pseudo_input_usage(model, images)
    assert usage.shape == (K,) and np.all(usage >= 0)
    assert usage.sum() == pytest.approx(1.0, abs=1e-5)
    assert usage.max() > 2 / K and usage.min() < 0.2 / K  # used unevenly
    np.testing.assert_allclose(figures.pseudo_input_usage(model, images, batch_size=7), usage, atol=1e-6)

    # Direct float64 responsibilities of a few images under (1/K) sum_k N(z | m_k, diag(v_k)):
    # for one image, its usage is its responsibilities.
    few = images[:4]
    z = _posterior_means(model, few)  # [N, d]
    loc, log_variance = (np.asarray(t, np.float64) for t in model.encode(model.prior.pseudo_inputs()))
    log_density = -0.5 * np.sum((z[:, None] - loc) ** 2 / np.exp(log_variance) + log_variance
                                + np.log(2 * np.pi), axis=-1)  # [N, K]
    log_joint = log_density - np.log(K)
    responsibilities = np.exp(log_joint - log_joint.max(axis=1, keepdims=True))
    responsibilities /= responsibilities.sum(axis=1, keepdims=True)
    for image, expected in zip(few, responsibilities):
        np.testing.assert_allclose(figures.pseudo_input_usage(model, image[None]), expected, atol=1e-5)
    np.testing.assert_allclose(figures.pseudo_input_usage(model, few), responsibilities.mean(axis=0),
                               atol=1e-5)


def test_write_figures_shows_a_random_test_sample_and_the_most_used_pseudo_inputs_first(
        model, mnist, tmp_path, monkeypatch):
    grids, headings, titles, xlabels, shares_shown = [], [], [], [], []
    image_grid, close = figures.image_grid, figures.plt.close

    def spy_grid(images, *args, **kwargs):
        grids.append(np.asarray(images))
        return image_grid(images, *args, **kwargs)

    def spy_close(figure):
        headings.append(figure.get_suptitle())
        titles.append([axis.get_title() for axis in figure.axes])
        xlabels.append([axis.get_xlabel() for axis in figure.axes])
        shares_shown.append([float(text.get_text().rstrip("%")) / 100 for axis in figure.axes
                             for text in axis.texts])
        close(figure)

    monkeypatch.setattr(figures, "image_grid", spy_grid)
    monkeypatch.setattr(figures.plt, "close", spy_close)
    log_likelihoods = np.linspace(-120.0, -80.0, len(mnist.test))
    paths = figures.write_figures(model, mnist.test, log_likelihoods, str(tmp_path), seed=0,
                                  title="vae + vamp", train_images=mnist.train, num_samples=250)

    names = ["log_likelihood_histogram", "pseudo_inputs", "reconstructions", "samples"]
    assert sorted(paths) == names
    assert sorted(os.listdir(tmp_path)) == [f"{name}.png" for name in names]
    for path in paths.values():
        with open(path, "rb") as file:
            assert file.read(8) == b"\x89PNG\r\n\x1a\n"

    # samples and reconstructions: the same 100 random test images, said so.
    real = mnist.test[figures.random_indices(len(mnist.test), 100, seed=0)]
    np.testing.assert_array_equal(grids[0], real)
    np.testing.assert_array_equal(grids[2], real)
    assert titles[0][0] == titles[1][0] == "100 random test images"
    assert titles[0][1] == "samples from the prior" and titles[1][1] == "reconstructions"
    # the run's title heads every figure: over both panels, or as the first line.
    assert headings[:2] == ["vae + vamp"] * 2
    assert titles[2] == ["vae + vamp\ntest log-likelihood"]
    assert titles[3][0].startswith("vae + vamp\n")
    assert xlabels[2] == ["log p(x) (nats, importance sampling with S=250)"]

    # pseudo-inputs: by decreasing usage on 2000 random training images.
    usage = figures.pseudo_input_usage(
        model, mnist.train[figures.random_indices(len(mnist.train), 2000, seed=0)])
    order = np.argsort(-usage, kind="stable")
    np.testing.assert_array_equal(grids[-1], np.asarray(model.prior.pseudo_inputs())[order])
    shown = np.array(shares_shown[-1])
    assert len(shown) == K and np.all(np.diff(shown) <= 0)
    np.testing.assert_allclose(shown, usage[order], atol=5e-5)
    assert f"the {K} most used of {K} pseudo-inputs, most used first" in titles[-1][0]
    assert "2000 random training images" in titles[-1][0]


def test_pseudo_input_caption_tells_the_share_of_those_left_out(tmp_path, monkeypatch):
    usage = np.array([0.1, 0.4, 0.05, 0.3, 0.15])
    pseudo_inputs = np.linspace(0.1, 0.9, 5)[:, None, None, None] * np.ones((5, 28, 28, 1))
    titles = []
    close = figures.plt.close
    monkeypatch.setattr(figures.plt, "close", lambda f: (titles.append(f.axes[0].get_title()), close(f)))
    figures.plot_pseudo_inputs(pseudo_inputs, usage, str(tmp_path / "p.png"), max_images=3,
                               usage_of="5 random test images")
    assert "the 3 most used of 5 pseudo-inputs, most used first" in titles[0]
    assert "of 5 random test images" in titles[0]
    assert "together 85.0%; the 2 others 15.0%" in titles[0]
