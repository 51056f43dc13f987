"""``DiagonalGaussianMixture.log_prob`` against a float64 reference (issue 10).

The cases are the ones where a float32 expansion of the quadratic form
cancels (``bench/mixture_cases.py``, which ``bench/mixture_density.py``
measures too): d=40, K=500 components with log-variances down to -6 and means
of scale up to 100, and points ``z`` sitting on (or between) those far,
narrow components.
"""
import numpy as np
import pytest
import tensorflow as tf
from scipy.special import logsumexp

from bench.mixture_cases import (K, LATENT, mixture_parameters, points, reference_log_prob,
                                 reference_log_prob_tf)
from tfvamp.gaussians import DiagonalGaussianMixture

TOLERANCE = 1e-3  # nats
SCALES = (1.0, 5.0, 10.0, 100.0)
LOG_VARIANCES = ("uniform", "all-6")


def assert_close_to_reference(actual, expected):
    """Within ``TOLERANCE`` nats, or within float32's resolution of the value
    where that is coarser (a log-density of -1e8 cannot be stored to 1e-3)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    allowed = TOLERANCE + 2.0 ** -22 * np.abs(expected)
    error = np.abs(actual - expected)
    worst = np.argmax(error - allowed)
    assert np.all(error <= allowed), (
        f"max error {error.max():.3g} nats (at log p = {expected.flat[worst]:.6g}, "
        f"error {error.flat[worst]:.3g}, allowed {allowed.flat[worst]:.3g})")


@pytest.mark.parametrize("kind", ("components", "between", "elsewhere"))
@pytest.mark.parametrize("log_variances", LOG_VARIANCES)
@pytest.mark.parametrize("scale", SCALES)
def test_log_prob_matches_float64_reference(scale, log_variances, kind):
    loc, log_variance = mixture_parameters(scale, log_variances)
    z = points(kind, loc, log_variance)
    actual = DiagonalGaussianMixture(loc, log_variance).log_prob(z)
    assert actual.dtype == tf.float32
    assert_close_to_reference(actual.numpy(), reference_log_prob(z, loc, log_variance))


@pytest.mark.parametrize("scale", (5.0, 100.0))
def test_log_prob_with_non_uniform_weights_matches_float64_reference(scale):
    loc, log_variance = mixture_parameters(scale, "uniform", seed=2)
    logits = np.random.default_rng(3).normal(scale=3.0, size=K).astype("float32")
    log_weights = logits.astype(np.float64) - logsumexp(logits.astype(np.float64))
    for kind in ("components", "between"):
        z = points(kind, loc, log_variance, seed=4)
        mixture = DiagonalGaussianMixture(loc, log_variance, mixture_logits=logits)
        actual = mixture.log_prob(z).numpy()
        assert_close_to_reference(actual, reference_log_prob(z, loc, log_variance, log_weights))
        uniform = reference_log_prob(z, loc, log_variance)
        assert np.abs(actual - uniform).max() > 0.1  # the weights are used


def test_log_prob_with_overlapping_far_components():
    """Clusters of near-duplicate narrow components far from the origin (as
    pseudo-inputs that encode alike): each z is shared by about ten of them."""
    rng = np.random.default_rng(6)
    centres = rng.normal(scale=10.0, size=(K // 10, 1, LATENT))
    loc = (centres + rng.normal(scale=0.03, size=(K // 10, 10, LATENT))).reshape(K, LATENT)
    loc = loc.astype("float32")
    log_variance = np.full((K, LATENT), -6.0, "float32")
    z = points("components", loc, log_variance, seed=7)
    actual = DiagonalGaussianMixture(loc, log_variance).log_prob(z).numpy()
    assert_close_to_reference(actual, reference_log_prob(z, loc, log_variance))


def test_log_prob_keeps_leading_sample_and_batch_shapes():
    loc, log_variance = mixture_parameters(10.0, "all-6")
    z = points("components", loc, log_variance, num=3 * 50).reshape(3, 50, LATENT)
    actual = DiagonalGaussianMixture(loc, log_variance).log_prob(z)
    assert actual.shape == (3, 50)
    expected = reference_log_prob(z.reshape(-1, LATENT), loc, log_variance).reshape(3, 50)
    assert_close_to_reference(actual.numpy(), expected)


def test_log_prob_under_xla_with_a_dynamic_batch_dimension():
    loc, log_variance = mixture_parameters(100.0, "uniform")

    @tf.function(jit_compile=True, input_signature=[tf.TensorSpec([None, LATENT], tf.float32)])
    def compiled_log_prob(z):
        return DiagonalGaussianMixture(loc, log_variance).log_prob(z)

    for num in (7, 130):
        z = points("components", loc, log_variance, num=num, seed=num)
        assert_close_to_reference(compiled_log_prob(z).numpy(),
                                  reference_log_prob(z, loc, log_variance))


@pytest.mark.parametrize("scale,log_variances", [(5.0, "all-6"), (10.0, "uniform"),
                                                 (100.0, "all-6")])
def test_gradients_match_float64_reference(scale, log_variances):
    """d log p / d(z, loc, log_variance) summed over points next to far components."""
    loc, log_variance = mixture_parameters(scale, log_variances)
    z = points("components", loc, log_variance, num=64, seed=5)

    def gradients(log_prob, dtype):
        tensors = [tf.constant(a, dtype) for a in (z, loc, log_variance)]
        with tf.GradientTape() as tape:
            tape.watch(tensors)
            total = tf.reduce_sum(log_prob(*tensors))
        return [g.numpy().astype(np.float64) for g in tape.gradient(total, tensors)]

    actual = gradients(lambda *a: DiagonalGaussianMixture(a[1], a[2]).log_prob(a[0]), tf.float32)
    expected = gradients(reference_log_prob_tf, tf.float64)
    for name, a, e in zip(("z", "loc", "log_variance"), actual, expected):
        np.testing.assert_allclose(a, e, rtol=1e-3, atol=1e-3 * np.abs(e).max(), err_msg=name)
