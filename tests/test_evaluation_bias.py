"""The importance-sampled estimate's bias, as ``tfvamp.evaluate`` estimates it
(delta method, ``-se^2 / 2`` per image), against the bias measured: the mean
of many small-S estimates of one image minus a large-S reference."""
import numpy as np
import pytest

from tfvamp import evaluation, models, objectives

REPEATS = 20000  # small-S estimates of the same image
SMALL_S, LARGE_S = 10, 400_000


def _model_where_s_matters():
    """A tiny VAE with random weights: its posterior is far enough from the true
    one that the log-weights' spread gives a bias of a few hundredths of a nat at
    S = 10 (effective sample size about 7 of 10)."""
    model = models.build_model("vae", input_shape=(4, 4, 1), prior="standard", latent_dim=2,
                               hidden_units=8, seed=0)
    rng = np.random.default_rng(0)
    for variable in model.trainable_variables:
        variable.assign(rng.normal(0.0, 0.4, variable.shape).astype(np.float32))
    image = (rng.random((1, 4, 4, 1)) < 0.5).astype(np.float32)
    return model, image


def test_the_estimated_bias_matches_the_bias_measured_against_a_large_s_reference():
    model, image = _model_where_s_matters()
    reference = evaluation.evaluate(model, image, num_samples=LARGE_S, seed=1)
    # Each copy of the image has its own index, so its own samples: REPEATS independent estimates.
    small = evaluation.evaluate(model, np.repeat(image, REPEATS, axis=0), num_samples=SMALL_S,
                                batch_size=1000, seed=2)
    measured = small["mean_log_likelihood"] - reference["mean_log_likelihood"]
    noise = np.hypot(np.std(small["log_likelihood"]) / np.sqrt(REPEATS),
                     reference["mean_log_likelihood_se"])
    assert measured < -6 * noise  # S matters here: the small-S estimate is clearly biased low
    estimated = small["mean_log_likelihood_bias"]
    assert abs(estimated - measured) < 3 * noise + 0.1 * abs(measured), (estimated, measured, noise)
    # The reference's own bias is negligible beside the one measured.
    assert abs(reference["mean_log_likelihood_bias"]) < 0.05 * abs(measured)


def test_the_bias_of_the_mean_is_the_mean_of_the_images_minus_half_their_squared_errors():
    per_image = {name: np.zeros(3, np.float32) for name in evaluation.PER_IMAGE}
    per_image["log_likelihood_se"] = np.array([0.1, 0.2, 0.4], np.float32)
    results = evaluation.summarise(per_image)
    np.testing.assert_allclose(results["log_likelihood_bias"], [-0.005, -0.02, -0.08], rtol=1e-6)
    assert results["mean_log_likelihood_bias"] == pytest.approx(-0.035, rel=1e-6)
    assert np.isnan(objectives.importance_sampling_bias(np.float32(np.nan)))  # S = 1
