"""The two-level models (HVAE, convHVAE, PixelHVAE) with every prior, on real data."""
import json
import math

import keras
import numpy as np
import pytest
import scipy.stats
import tensorflow as tf
import tensorflow_probability as tfp

from conftest import SHARED_DATA
from test_cli import run_trainer
from tfvamp.datasets import load_dataset
from tfvamp.gaussians import diagonal_gaussian
from tfvamp.models import MODELS, build_model
from tfvamp.objectives import negative_elbo
from tfvamp.priors import VampPrior

TWO_LEVEL = ("hvae", "convhvae", "pixelhvae")


@pytest.fixture(scope="module")
def datasets():
    return {"caltech": load_dataset("caltech"), "freyfaces": load_dataset("freyfaces", SHARED_DATA)}


def small_model(name, dataset, prior, **kwargs):
    """The model with narrow networks, so that a few steps run fast on a CPU."""
    init_mean, init_std = dataset.pseudo_inputs_init
    return build_model(name, input_shape=dataset.input_shape, likelihood=dataset.likelihood,
                       prior=prior, latent_dim=16, hidden_units=64,
                       **({} if name == "hvae" else {"conv_filters": 8}), num_components=20, pseudo_inputs_init_mean=init_mean,
                       pseudo_inputs_init_std=init_std, seed=0, **kwargs)


def _in_default_suite(model_name, prior, dataset_name):
    """The HVAE with the standard prior on Caltech (Bernoulli) and the
    VampPrior on Frey Faces (discretised logistic), the PixelHVAE
    (convolutional encoder, PixelCNN decoder) with the VampPrior on Frey
    Faces; the rest of the matrix (~10-20 s a case) runs with ``-m slow``."""
    return (model_name, prior, dataset_name) in {("hvae", "standard", "caltech"), ("hvae", "vamp", "freyfaces"),
                                                 ("pixelhvae", "vamp", "freyfaces")}


@pytest.mark.parametrize("model_name,prior,dataset_name", [
    pytest.param(m, p, d, marks=[] if _in_default_suite(m, p, d) else [pytest.mark.slow])
    for m in TWO_LEVEL for p in ("standard", "mog", "vamp") for d in ("caltech", "freyfaces")])
def test_every_model_and_prior_trains_on_real_data(datasets, model_name, prior, dataset_name):
    dataset = datasets[dataset_name]
    keras.utils.set_random_seed(0)
    model = small_model(model_name, dataset, prior)
    # Eager: a few steps cost less than tracing (the CLI test runs the compiled step).
    model.compile(optimizer=keras.optimizers.Adam(5e-3), run_eagerly=True)
    x = dataset.train[:40]

    def mean_loss():
        return float(tf.reduce_mean(model.elbo_terms(x, num_samples=2).loss))

    before = mean_loss()
    model.fit(dataset.pipeline("train", 25, shuffle=True, seed=0).repeat(), steps_per_epoch=15,
              epochs=1, verbose=0, shuffle=False)
    after = mean_loss()
    assert math.isfinite(after) and after < 0.98 * before, (before, after)

    test = dataset.test[:10]
    prior_distribution = model.prior_distribution()
    elbo = -negative_elbo(model.log_terms(test, prior_distribution, num_samples=20)).loss
    log_likelihood = model.log_likelihood(test, num_samples=20, prior=prior_distribution)
    assert np.all(np.isfinite(log_likelihood))
    assert float(tf.reduce_mean(log_likelihood)) >= float(tf.reduce_mean(elbo))

    height, width, channels = dataset.input_shape
    images = model.sample(3).numpy()
    assert images.shape == (3, height, width, channels)
    assert images.min() >= 0.0 and images.max() <= 1.0
    mean, log_variance = model.encode(test[:2])
    assert mean.shape == log_variance.shape == (2, 16)
    assert model.reconstruct(test[:2]).shape == (2, height, width, channels)


def test_models_are_registered_for_the_trainer():
    assert set(TWO_LEVEL) | {"vae"} == set(MODELS)


@pytest.mark.parametrize("dataset_name", ["caltech", "freyfaces"])
def test_pixel_sampler_draws_from_the_teacher_forced_conditionals(datasets, dataset_name):
    """The incremental sampler's per-pixel parameters equal the PixelCNN's
    teacher-forced parameters on the image it drew: it is the same model."""
    dataset = datasets[dataset_name]
    model = small_model("pixelhvae", dataset, "standard")
    rng = np.random.default_rng(0)
    for weight in model.pixelcnn.weights:  # weights of order one, so a mismatch shows
        weight.assign(rng.normal(scale=0.3, size=weight.shape).astype("float32"))
    z1, z2 = tf.random.normal([4, 16], seed=1), tf.random.normal([4, 16], seed=2)
    conditioning = model.p_x([z1, z2])
    images, params = model.pixelcnn._sample_compiled(conditioning, model.likelihood, [3, 4])
    assert images.shape == (4,) + dataset.input_shape
    teacher_forced = model.pixelcnn(images, conditioning).numpy()
    assert np.abs(teacher_forced).max() > 0.5
    np.testing.assert_allclose(params.numpy(), teacher_forced, rtol=1e-4, atol=1e-4)
    other_images = tf.random.shuffle(images, seed=5)
    assert not np.allclose(model.pixelcnn(other_images, conditioning).numpy(), teacher_forced,
                           atol=1e-3)


def _nearest_component_counts(distribution, means, num_samples):
    samples = distribution.sample(num_samples, seed=[7, 8]).numpy()
    nearest = np.argmin(((samples[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    return np.bincount(nearest, minlength=len(means))


def test_vampprior_samples_cover_components_uniformly():
    """Chi-square test on the component each VampPrior sample comes from.

    The components ``q(z|u_k)`` are made far apart (the encoder maps pseudo-input
    k to mean 20 e_k with a tiny variance), so the nearest mean names a sample's
    component. A mixture that favours some components, or only uses the first
    ones, fails the same test (checked below on a skewed mixture).
    """
    num_components, num_samples = 30, 30_000

    def encoder(images):
        flat = tf.reshape(images, [tf.shape(images)[0], -1])[:, :num_components]
        return 20.0 * flat, tf.fill(tf.shape(flat), -8.0)

    one_hot_images = np.eye(num_components, 28 * 28, dtype=np.float32).reshape(-1, 28, 28, 1)
    prior = VampPrior(encoder, (28, 28, 1), num_components, num_components,
                      init_data=one_hot_images, seed=0)
    means = prior.distribution().components_distribution.mean().numpy()
    # each one-hot image is one pseudo-input, so the components are 20 e_k, k = 0..K-1
    np.testing.assert_array_equal(np.sort(means.argmax(axis=1)), np.arange(num_components))
    np.testing.assert_allclose(means.sum(axis=1), 20.0, rtol=1e-6)
    counts = _nearest_component_counts(prior.distribution(), means, num_samples)
    assert scipy.stats.chisquare(counts).pvalue > 1e-3, counts

    skewed = tf.constant(np.r_[np.full(num_components - 1, 1.0), 1.3], tf.float32)
    skewed_mixture = tfp.distributions.MixtureSameFamily(
        tfp.distributions.Categorical(probs=skewed / tf.reduce_sum(skewed)),
        diagonal_gaussian(means, np.full_like(means, -8.0)))
    skewed_counts = _nearest_component_counts(skewed_mixture, means, num_samples)
    assert scipy.stats.chisquare(skewed_counts).pvalue < 1e-3, skewed_counts


def test_pseudo_inputs_initialised_from_training_images(datasets):
    caltech = datasets["caltech"]
    images = caltech.train[:20]
    model = small_model("hvae", caltech, "vamp", pseudo_inputs_init_data=images)
    pseudo_inputs = model.prior.pseudo_inputs().numpy().reshape(20, -1)
    flat = images.reshape(20, -1)
    matches = [np.flatnonzero((flat == row).all(axis=1)) for row in pseudo_inputs]
    assert all(len(m) for m in matches)  # every pseudo-input is a training image
    assert len({int(m[0]) for m in matches}) > 10  # and they are not all the same one


def _train_cli(model_name, tmp_path):
    result = run_trainer("--dataset=caltech", f"--model={model_name}", "--prior=vamp",
                         "--epochs=2", "--eval_samples=100", f"--output_dir={tmp_path}",
                         "--verbose=2")
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert math.isfinite(results["test_log_likelihood"]) and results["epochs_trained"] == 2
    assert results["test_log_likelihood"] >= results["test_elbo"]
    assert results["flags"]["model"] == model_name


@pytest.mark.slow  # ~90 s; tests/test_cli.py trains the VAE + VampPrior from the command line
def test_train_cli_hvae_vamp(tmp_path):
    _train_cli("hvae", tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("model_name", ["convhvae", "pixelhvae"])
def test_train_cli_convolutional_models_vamp(model_name, tmp_path):
    _train_cli(model_name, tmp_path)
