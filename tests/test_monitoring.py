"""The prior's component statistics and the posterior's active units (tfvamp.monitoring),
against NumPy; the callback in a user's own fit, its TensorBoard logs, and its collapse warning."""
import glob
import os
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfvamp
from tfvamp import monitoring

SHAPE = (6, 6, 1)


def networks(latent_dim=3, ignore_z=False):
    images = keras.Input(SHAPE)
    h = keras.layers.Dense(16, activation="tanh")(keras.layers.Flatten()(images))
    encoder = keras.Model(images, [keras.layers.Dense(latent_dim)(h), keras.layers.Dense(latent_dim)(h)])
    latents = keras.Input((latent_dim,))
    source = keras.layers.Lambda(lambda z: 0.0 * z)(latents) if ignore_z else latents
    decoder = keras.Model(latents, keras.layers.Reshape(SHAPE)(keras.layers.Dense(36)(source)))
    return encoder, decoder


def binary_images(count, seed=0):
    return (np.random.default_rng(seed).uniform(size=(count, *SHAPE)) < 0.4).astype(np.float32)


def vamp_model(num_components=5):
    encoder, decoder = networks()
    prior = tfvamp.VampPrior(encoder, SHAPE, num_components=num_components, init_mean=0.4, init_std=0.3)
    return tfvamp.VAE(SHAPE, encoder=encoder, decoder=decoder, likelihood="bernoulli", prior=prior)


def test_usage_effective_k_unused_and_active_units_against_numpy():
    model = vamp_model()
    images = binary_images(40)
    z = model.encode(tf.constant(images))[0].numpy().astype(np.float64)
    mean_k, log_var_k = (t.numpy().astype(np.float64) for t in model.encode(model.prior.pseudo_inputs()))
    log_density = -0.5 * np.sum(np.log(2 * np.pi) + log_var_k[None] + (z[:, None] - mean_k[None]) ** 2
                                / np.exp(log_var_k[None]), axis=-1)  # [N, K], equal weights 1/K
    responsibilities = np.exp(log_density - log_density.max(axis=1, keepdims=True))
    responsibilities /= responsibilities.sum(axis=1, keepdims=True)
    usage = responsibilities.mean(axis=0)

    np.testing.assert_allclose(monitoring.component_usage(model, images, batch_size=7), usage, atol=1e-5)
    np.testing.assert_allclose(monitoring.effective_components(usage), np.exp(-np.sum(usage * np.log(usage))),
                               rtol=1e-6)
    assert monitoring.effective_components([0.25] * 4) == pytest.approx(4.0)
    assert monitoring.effective_components([1.0, 0.0, 0.0]) == pytest.approx(1.0)
    assert monitoring.unused_components([0.5, 0.499, 0.001, 0.0]) == 2  # below 1% of 1/4
    assert monitoring.active_units(z) == int(np.sum(np.var(z, axis=0) > 0.01))
    assert monitoring.active_units(np.ones((10, 3))) == 0


def events(log_dir):
    found = {}
    for path in glob.glob(os.path.join(log_dir, "**", "events.out.tfevents.*"), recursive=True):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                found.setdefault(value.tag, []).append(event.step)
    return found


def test_the_callback_in_a_users_own_fit_logs_and_writes_tensorboard(tmp_path):
    model = vamp_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    images = binary_images(60)
    monitor = monitoring.PriorMonitor(images[:30], every=2, log_dir=str(tmp_path))
    history = model.fit(images, batch_size=20, epochs=4, callbacks=[monitor], verbose=0)
    assert [entry["epoch"] for entry in monitor.history] == [2, 4]
    assert 1.0 <= monitor.history[-1]["effective_components"] <= 5.0
    assert "pseudo_input_drift" in monitor.history[-1] and "pseudo_input_drift" not in monitor.history[0]
    assert len(history.history["effective_components"]) == 2  # logged on the monitored epochs
    assert monitor.snapshots[-1]["pseudo_inputs"].shape == (5, *SHAPE)
    tags = events(str(tmp_path))
    for tag in ("pseudo_inputs_most_used_first", "component_usage", "effective_components",
                "unused_components", "active_units", "pseudo_input_drift"):
        assert tag in tags, tag
    assert tags["effective_components"] == [2, 4]


def test_a_decoder_that_ignores_z_collapses_and_is_warned_once():
    encoder, decoder = networks(ignore_z=True)
    model = tfvamp.VAE(SHAPE, encoder=encoder, decoder=decoder, likelihood="bernoulli", prior="standard")
    model.compile(optimizer=keras.optimizers.Adam(3e-2))
    monitor = monitoring.PriorMonitor(binary_images(50, seed=1), every=1, warmup_epochs=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(binary_images(200), batch_size=50, epochs=15, callbacks=[monitor], verbose=0)
    collapse = [w for w in caught if "collapsed onto the prior" in str(w.message)]
    assert len(collapse) == 1 and monitor.collapsed_at_epoch >= 3
    assert f"Epoch {monitor.collapsed_at_epoch}:" in str(collapse[0].message)


def test_a_healthy_model_is_not_warned():
    model = vamp_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    monitor = monitoring.PriorMonitor(binary_images(50), every=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(binary_images(200), batch_size=50, epochs=3, callbacks=[monitor], verbose=0)
    assert monitor.collapsed_at_epoch is None
    assert not [w for w in caught if "collapsed" in str(w.message)]


def test_the_vampprior_methods_are_the_monitoring_statistics():
    model = vamp_model()
    z = model.encode(tf.constant(binary_images(30)))[0]
    usage = model.prior.usage(z).numpy()
    np.testing.assert_allclose(usage, monitoring.component_usage(model, binary_images(30)), atol=1e-6)
    assert model.prior.responsibilities(z).shape == (30, 5)
    assert model.prior.effective_components(z) == pytest.approx(monitoring.effective_components(usage))
    assert tfvamp.PriorMonitor is monitoring.PriorMonitor
