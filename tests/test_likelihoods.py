import numpy as np
import tensorflow as tf

from tfvamp.likelihoods import (BernoulliLikelihood, ClampedBernoulliLikelihood,
                                DiscretizedLogisticLikelihood, get_likelihood)


def test_discretized_logistic_sums_to_one_over_256_bins():
    likelihood = DiscretizedLogisticLikelihood()
    # one "image" of 4 pixels with different means and scales, evaluated at every bin
    params = np.array([[-3.0, -4.5], [0.0, -2.0], [2.0, 0.0], [5.0, -4.5]], "float32")
    params = np.broadcast_to(params.reshape(1, 1, 4, 1, 2), (256, 1, 4, 1, 2))
    pixel_values = ((np.arange(256) + 0.5) / 256).astype("float32")
    x = np.broadcast_to(pixel_values.reshape(256, 1, 1, 1), (256, 1, 4, 1))
    # Independent over pixels: evaluate each pixel's marginal by summing bins per pixel.
    per_pixel = likelihood.distribution(params).distribution.log_prob(likelihood.to_bins(x))
    totals = tf.reduce_sum(tf.exp(per_pixel), axis=0).numpy().ravel()
    np.testing.assert_allclose(totals, np.ones(4), rtol=1e-4)


def test_discretized_logistic_bin_mass_matches_logistic_cdf():
    likelihood = DiscretizedLogisticLikelihood()
    mean_logit, log_scale = 0.3, -2.0
    params = np.array([mean_logit, log_scale], "float32").reshape(1, 1, 1, 1, 2)
    k = 100
    x = np.full((1, 1, 1, 1), (k + 0.5) / 256, "float32")
    mu, s = 1 / (1 + np.exp(-mean_logit)), np.exp(log_scale)
    cdf = lambda v: 1 / (1 + np.exp(-(v - mu) / s))  # noqa: E731
    expected = np.log(cdf((k + 1) / 256) - cdf(k / 256))
    np.testing.assert_allclose(likelihood.log_prob(params, x).numpy(), [expected], rtol=1e-4)


def test_bernoulli_log_prob_sums_pixels():
    likelihood = BernoulliLikelihood()
    logits = np.random.default_rng(0).normal(size=(3, 2, 2, 1, 1)).astype("float32")
    x = (np.random.default_rng(1).uniform(size=(3, 2, 2, 1)) < 0.5).astype("float32")
    p = 1 / (1 + np.exp(-logits[..., 0]))
    expected = (x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(3, -1).sum(-1)
    np.testing.assert_allclose(likelihood.log_prob(logits, x).numpy(), expected, rtol=1e-5)
    assert likelihood.sample(logits, seed=(1, 2)).shape == (3, 2, 2, 1)


def test_bernoulli_fused_log_prob_equals_the_tfp_distribution_and_broadcasts():
    likelihood = BernoulliLikelihood()
    rng = np.random.default_rng(2)
    logits = (8 * rng.normal(size=(5, 3, 4, 4, 1, 1))).astype("float32")  # [S, B, H, W, C, 1]
    x = (rng.uniform(size=(3, 4, 4, 1)) < 0.5).astype("float32")  # [B, H, W, C]
    fused = likelihood.log_prob(logits, x).numpy()
    assert fused.shape == (5, 3)
    np.testing.assert_allclose(fused, likelihood.distribution(logits).log_prob(x).numpy(), rtol=1e-5)
    # bfloat16 parameters (a mixed_bfloat16 network) give a float32 density
    bf16 = likelihood.log_prob(tf.cast(logits, tf.bfloat16), x)
    assert bf16.dtype == tf.float32


def test_clamped_bernoulli_is_the_authors_clamp_of_the_probabilities():
    likelihood = get_likelihood("clamped_bernoulli")
    assert isinstance(likelihood, ClampedBernoulliLikelihood)
    # logits inside the clamp, at its edge and far beyond it (an over-confident decoder)
    logits = np.array([-30.0, -11.0, -0.5, 0.0, 2.0, 11.0, 30.0], "float32").reshape(1, 1, 7, 1, 1)
    x = np.array([1, 1, 0, 1, 0, 0, 0], "float32").reshape(1, 1, 7, 1)
    p = np.clip(1 / (1 + np.exp(-logits[..., 0].astype("float64"))), 1e-5, 1 - 1e-5)
    per_pixel = x * np.log(p) + (1 - x) * np.log(1 - p)
    np.testing.assert_allclose(likelihood.log_prob(logits, x).numpy(), [per_pixel.sum()], rtol=1e-5)
    np.testing.assert_allclose(likelihood.distribution(logits).log_prob(x).numpy(), [per_pixel.sum()],
                               rtol=1e-5)
    np.testing.assert_allclose(likelihood.mean(logits).numpy(), p, rtol=1e-5)
    # the exact Bernoulli differs only where the clamp acts: a pixel predicted wrongly
    # with certainty costs log(1e-5) nats at most
    exact = BernoulliLikelihood().log_prob(logits, x).numpy()[0]
    assert exact < per_pixel.sum() - 15
    # no gradient reaches a logit beyond the clamp
    logits = tf.constant(logits)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        value = likelihood.log_prob(logits, x)
    gradient = tape.gradient(value, logits).numpy().ravel()
    assert gradient[0] == gradient[-1] == 0.0 and np.all(gradient[2:5] != 0.0)
