import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.special import logsumexp

from tfvamp.models.networks import gated_mlp_encoder
from tfvamp.priors import MixtureOfGaussiansPrior, StandardNormalPrior, VampPrior, make_prior

LATENT, K = 4, 7


def numpy_log_mixture(z, means, log_variances):
    """log (1/K) sum_k N(z | m_k, diag(exp(lv_k))), directly in NumPy."""
    z = z[:, None, :]
    log_normal = -0.5 * (np.log(2 * np.pi) + log_variances + (z - means) ** 2 / np.exp(log_variances))
    return logsumexp(log_normal.sum(-1), axis=1) - np.log(means.shape[0])


def make_vamp_prior(init_mean=0.5, init_std=0.3):
    encoder = gated_mlp_encoder((5, 3, 1), LATENT, hidden_units=8)
    return VampPrior(encoder, (5, 3, 1), LATENT, num_components=K,
                     init_mean=init_mean, init_std=init_std, seed=0), encoder


def test_vamp_prior_is_mixture_of_encoder_posteriors_at_pseudo_inputs():
    prior, encoder = make_vamp_prior()
    z = np.random.default_rng(0).normal(size=(11, LATENT)).astype("float32")
    means, log_variances = [t.numpy().astype("float64") for t in encoder(prior.pseudo_inputs())]
    expected = numpy_log_mixture(z.astype("float64"), means, log_variances)
    np.testing.assert_allclose(prior.distribution().log_prob(z).numpy(), expected, rtol=1e-5)


def test_vamp_prior_pseudo_inputs_are_hardtanh_squashed():
    prior, _ = make_vamp_prior(init_mean=0.5, init_std=2.0)
    raw = prior.pseudo_inputs_raw.numpy()
    u = prior.pseudo_inputs().numpy()
    assert u.shape == (K, 5, 3, 1)
    np.testing.assert_allclose(u.reshape(K, -1), np.clip(raw, 0.0, 1.0))
    assert (raw < 0).any() and (raw > 1).any()


def test_vamp_prior_is_a_tfp_distribution_with_shapes():
    prior, _ = make_vamp_prior()
    dist = prior.distribution()
    assert dist.batch_shape == [] and dist.event_shape == [LATENT]
    assert dist.sample(6, seed=1).shape == (6, LATENT)
    assert dist.log_prob(tf.zeros([2, 3, LATENT])).shape == (2, 3)


def test_vamp_prior_gradient_reaches_pseudo_inputs_and_encoder():
    prior, encoder = make_vamp_prior()
    z = tf.random.stateless_normal([9, LATENT], seed=[1, 2])
    with tf.GradientTape() as tape:
        log_p = tf.reduce_sum(prior.distribution().log_prob(z))
    grads = tape.gradient(log_p, [prior.pseudo_inputs_raw] + encoder.trainable_variables)
    assert all(g is not None for g in grads)
    assert np.abs(grads[0].numpy()).sum() > 0
    assert all(np.abs(g.numpy()).sum() > 0 for g in grads[1:])


def test_vamp_prior_data_initialisation_uses_training_images():
    data = np.random.default_rng(3).uniform(size=(20, 5, 3, 1)).astype("float32")
    encoder = gated_mlp_encoder((5, 3, 1), LATENT, hidden_units=8)
    prior = VampPrior(encoder, (5, 3, 1), LATENT, num_components=K, init_data=data, seed=0)
    rows = prior.pseudo_inputs_raw.numpy()
    flat = data.reshape(20, -1)
    assert all(np.any(np.all(np.isclose(flat, row), axis=1)) for row in rows)


def test_mog_prior_log_prob_and_gradients():
    prior = MixtureOfGaussiansPrior(LATENT, num_components=K)
    prior.log_variances.assign(np.random.default_rng(2).normal(size=(K, LATENT)).astype("float32"))
    z = np.random.default_rng(1).normal(size=(10, LATENT)).astype("float32")
    expected = numpy_log_mixture(z.astype("float64"), prior.means.numpy().astype("float64"),
                                 prior.log_variances.numpy().astype("float64"))
    np.testing.assert_allclose(prior.distribution().log_prob(z).numpy(), expected, rtol=1e-5)
    with tf.GradientTape() as tape:
        log_p = tf.reduce_sum(prior(z))
    grads = tape.gradient(log_p, prior.trainable_variables)
    assert len(grads) == 2 and all(np.abs(g.numpy()).sum() > 0 for g in grads)


def test_standard_prior_log_prob():
    prior = StandardNormalPrior(LATENT)
    z = np.random.default_rng(1).normal(size=(10, LATENT)).astype("float32")
    expected = -0.5 * (LATENT * np.log(2 * np.pi) + (z ** 2).sum(-1))
    np.testing.assert_allclose(prior.distribution().log_prob(z).numpy(), expected, rtol=1e-5)
    assert prior.trainable_variables == []


def test_unknown_prior_lists_valid_names():
    with pytest.raises(ValueError, match="standard.*mog.*vamp"):
        make_prior("foo", LATENT)


def test_prior_configs():
    assert MixtureOfGaussiansPrior.from_config(
        MixtureOfGaussiansPrior(3, 5).get_config()).num_components == 5
    prior, _ = make_vamp_prior()
    config = prior.get_config()
    assert config["num_components"] == K and tuple(config["input_shape"]) == (5, 3, 1)
    assert isinstance(prior, keras.layers.Layer)
