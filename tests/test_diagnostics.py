"""Per-run diagnostics (tfvamp.diagnostics) against NumPy: active units, the
posterior variance and the KL per latent layer, and the lower-tail quantiles."""
import numpy as np
import pytest
import tensorflow as tf

from tfvamp import diagnostics, models


def _randomised(model, scale=0.6, seed=1):
    rng = np.random.default_rng(seed)
    for variable in model.trainable_variables:
        variable.assign(rng.normal(0.0, scale, variable.shape).astype(np.float32))
    return rng


def test_vae_layer_statistics_match_numpy_with_an_inactive_unit():
    model = models.build_model("vae", input_shape=(4, 4, 1), prior="standard", latent_dim=3,
                               hidden_units=8, seed=0)
    rng = _randomised(model)
    head = model.encoder.get_layer("gaussian").mean
    head.kernel.assign(tf.tensor_scatter_nd_update(head.kernel, [[i, 0] for i in range(8)],
                                                   tf.zeros(8)))  # unit 0's mean: its bias alone
    images = (rng.random((60, 4, 4, 1)) < 0.5).astype(np.float32)
    layers = diagnostics.per_image_layers(model, images, num_samples=400, batch_size=25, seed=3)
    mean, log_variance = (t.numpy().astype(np.float64) for t in model.encode(tf.constant(images)))
    np.testing.assert_allclose(layers["z"]["mean"], mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layers["z"]["variance"], np.exp(log_variance), rtol=1e-5)
    # The KL to N(0, I) in closed form; the diagnostics' is a 400-sample estimate per image.
    kl = 0.5 * np.sum(np.exp(log_variance) + mean ** 2 - 1.0 - log_variance, axis=1)
    draws = diagnostics.layer_samples(model, tf.constant(images), model.prior_distribution(), 400)
    standard_error = np.std(draws["z"][2].numpy()) / np.sqrt(draws["z"][2].numpy().size)
    assert abs(np.mean(layers["z"]["kl"]) - np.mean(kl)) < 4 * standard_error
    assert np.mean(kl) > 40 * standard_error  # so a KL of the wrong size would show

    summary = diagnostics.summarise_layers(layers)["z"]
    activity = np.var(mean, axis=0)
    assert activity[0] < 1e-10 and np.all(activity[1:] > 0.01)
    assert summary["active_units"] == int(np.sum(activity > 0.01)) == 2
    assert summary["latent_dim"] == 3
    assert summary["mean_posterior_variance"] == pytest.approx(np.mean(np.exp(log_variance)), rel=1e-5)


def test_hvae_layers_split_the_elbos_kl_and_z1_has_the_total_variance():
    model = models.build_model("hvae", input_shape=(4, 4, 1), prior="vamp", latent_dim=3,
                               hidden_units=8, num_components=5, seed=0)
    rng = _randomised(model)
    images = tf.constant((rng.random((6, 4, 4, 1)) < 0.5).astype(np.float32))
    prior = model.prior_distribution()
    seed = tf.constant([4, 5], tf.int32)
    with model.sampling_seed(seed):
        terms = model.log_terms(images, prior, num_samples=7)
    with model.sampling_seed(seed):  # the same draws of z2 and z1
        layers = diagnostics.layer_samples(model, images, prior, num_samples=7)
    assert sorted(layers) == ["z1", "z2"]
    np.testing.assert_allclose(layers["z2"][2].numpy() + layers["z1"][2].numpy(),
                               (terms.log_posterior - terms.log_prior).numpy(), rtol=1e-5, atol=1e-4)

    per_image = diagnostics.per_image_layers(model, images.numpy(), num_samples=7, batch_size=6, seed=9)
    with model.sampling_seed(tf.random.experimental.stateless_fold_in(tf.constant([0, 9]), 0)):
        z1_mean, z1_variance, z1_kl = (t.numpy().astype(np.float64) for t in
                                       diagnostics.layer_samples(model, images, prior, 7)["z1"])
    np.testing.assert_allclose(per_image["z1"]["mean"], z1_mean.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(per_image["z1"]["variance"], z1_variance.mean(0) + z1_mean.var(0),
                               rtol=1e-5)
    np.testing.assert_allclose(per_image["z1"]["kl"], z1_kl.mean(0), rtol=1e-5, atol=1e-5)
    assert np.all(z1_mean.var(0) > 0)  # z1's mean moves with z2: the total variance is larger
    np.testing.assert_allclose(per_image["z2"]["mean"], model.encode(images)[0].numpy(), rtol=1e-5,
                               atol=1e-6)


def test_lower_tail_quantiles_interpolate_linearly():
    quantiles = diagnostics.log_likelihood_quantiles(-np.arange(1.0, 101.0))  # -1 ... -100
    # The 1% quantile of 100 sorted values lies 0.99 of the way from the 1st to the 2nd.
    assert quantiles == pytest.approx({"q0.01": -99.01, "q0.05": -95.05})


def test_run_diagnostics_is_json_able():
    import json

    model = models.build_model("vae", input_shape=(4, 4, 1), prior="vamp", latent_dim=2,
                               hidden_units=8, num_components=3, seed=0)
    images = np.zeros((5, 4, 4, 1), np.float32)
    result = json.loads(json.dumps(diagnostics.run_diagnostics(model, images, np.zeros(5))))
    assert set(result) == {"layers", "log_likelihood_quantiles", "diagnostic_samples"}
    assert set(result["layers"]["z"]) == {"active_units", "latent_dim", "mean_posterior_variance", "kl"}
