import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from scipy.special import logsumexp

from tfvamp.models.networks import gated_mlp_encoder
from tfvamp.gaussians import DiagonalGaussianMixture, diagonal_gaussian
from tfvamp.priors import MixtureOfGaussiansPrior, StandardNormalPrior, VampPrior, make_prior

tfd = tfp.distributions

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


def _mixture_parameters(num_components=6, latent_dim=5, seed=4):
    rng = np.random.default_rng(seed)
    loc = rng.normal(scale=2.0, size=(num_components, latent_dim)).astype("float32")
    log_variance = rng.uniform(-6.0, 2.0, size=(num_components, latent_dim)).astype("float32")
    return loc, log_variance


def test_diagonal_gaussian_mixture_log_prob_equals_numpy_and_plain_mixture():
    loc, log_variance = _mixture_parameters()
    z = np.random.default_rng(5).normal(scale=2.0, size=(2, 3, 5)).astype("float32")
    z[0, 0] = loc[1] + 0.01  # near a narrow component, where cancellation would show
    fast = DiagonalGaussianMixture(loc, log_variance)
    plain = tfd.MixtureSameFamily(tfd.Categorical(logits=tf.zeros([6])),
                                  diagonal_gaussian(loc, log_variance))
    expected = numpy_log_mixture(z.reshape(-1, 5).astype("float64"), loc.astype("float64"),
                                 log_variance.astype("float64")).reshape(2, 3)
    np.testing.assert_allclose(fast.log_prob(z).numpy(), expected, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(fast.log_prob(z).numpy(), plain.log_prob(z).numpy(),
                               rtol=1e-5, atol=1e-3)
    assert isinstance(fast, tfd.MixtureSameFamily)
    assert fast.batch_shape == [] and fast.event_shape == [5]


def test_diagonal_gaussian_mixture_gradients_equal_plain_mixture():
    loc, log_variance = (tf.constant(a) for a in _mixture_parameters())
    z = tf.constant(np.random.default_rng(6).normal(size=(7, 5)).astype("float32"))

    def gradients(make):
        with tf.GradientTape() as tape:
            tape.watch([z, loc, log_variance])
            total = tf.reduce_sum(make(loc, log_variance).log_prob(z))
        return tape.gradient(total, [z, loc, log_variance])

    fast = gradients(DiagonalGaussianMixture)
    plain = gradients(lambda m, v: tfd.MixtureSameFamily(
        tfd.Categorical(logits=tf.zeros([6])), diagonal_gaussian(m, v)))
    for f, p in zip(fast, plain):
        np.testing.assert_allclose(f.numpy(), p.numpy(), rtol=1e-4, atol=1e-3)


def test_diagonal_gaussian_mixture_samples_and_compiles():
    loc = np.array([[-3.0, 0.0], [3.0, 1.0]], "float32")
    log_variance = np.full((2, 2), -4.0, "float32")
    mixture = DiagonalGaussianMixture(loc, log_variance)
    samples = mixture.sample(4000, seed=3).numpy()
    assert samples.shape == (4000, 2)
    np.testing.assert_allclose(samples.mean(0), loc.mean(0), atol=0.15)
    assert np.all(np.min(np.abs(samples[:, :1] - loc[None, :, 0]), axis=1) < 1.0)

    @tf.function(jit_compile=True)
    def compiled_log_prob(distribution, z):  # the distribution is a CompositeTensor
        return distribution.log_prob(z)

    np.testing.assert_allclose(compiled_log_prob(mixture, samples[:10]).numpy(),
                               mixture.log_prob(samples[:10]).numpy(), rtol=1e-5, atol=1e-3)


def test_diagonal_gaussian_mixture_samples_have_the_mixture_moments_and_chosen_components():
    loc = np.array([[-3.0, 0.0], [3.0, 1.0], [0.0, 10.0]], "float32")
    log_variance = np.log(np.array([[0.25, 1.0], [1.0, 4.0], [0.01, 0.04]], "float32"))
    mixture = DiagonalGaussianMixture(loc, log_variance)
    samples = mixture.sample(60000, seed=(4, 5)).numpy()
    np.testing.assert_allclose(samples.mean(0), mixture.mean().numpy(), atol=0.06)
    np.testing.assert_allclose(samples.var(0), mixture.variance().numpy(), rtol=0.03)
    np.testing.assert_array_equal(mixture.sample(3, seed=(1, 2)), mixture.sample(3, seed=(1, 2)))
    from_third = mixture.sample_components(np.full([2, 20000], 2), seed=(6, 7)).numpy()
    assert from_third.shape == (2, 20000, 2)
    np.testing.assert_allclose(from_third.mean((0, 1)), loc[2], atol=0.01)
    np.testing.assert_allclose(from_third.std((0, 1)), [0.1, 0.2], rtol=0.03)


def test_diagonal_gaussian_mixture_rejects_bad_shapes():
    with pytest.raises(ValueError, match="num_components, latent_dim"):
        DiagonalGaussianMixture(np.zeros([3], "float32"), np.zeros([3], "float32"))


def test_diagonal_gaussian_draws_are_tfps_outside_xla_and_gaussian_inside():
    """The posterior's draws name Philox: the same numbers as ``tfd.Normal``'s in
    a ``tf.function``; inside XLA (the train step) a seeded, repeatable Gaussian."""
    mean = tf.random.stateless_normal([50, LATENT], [1, 2])
    log_variance = tf.random.stateless_uniform([50, LATENT], [3, 4], -2.0, 1.0)
    seed = tf.constant([5, 6])
    ours = diagonal_gaussian(mean, log_variance)
    tfps = tfd.Independent(tfd.Normal(mean, tf.exp(0.5 * log_variance)), 1)
    assert ours.batch_shape == [50] and ours.event_shape == [LATENT]
    np.testing.assert_array_equal(tf.function(lambda: ours.sample(3, seed=seed))(),
                                  tf.function(lambda: tfps.sample(3, seed=seed))())
    draw = tf.function(lambda s: diagonal_gaussian(mean, log_variance).sample(4000, seed=s), jit_compile=True)
    z = draw(seed).numpy()
    np.testing.assert_array_equal(z, draw(seed).numpy())
    assert not np.array_equal(z, draw(tf.constant([5, 7])).numpy())
    eps = (z - mean.numpy()) / np.exp(0.5 * log_variance.numpy())
    assert abs(eps.mean()) < 0.01 and abs(eps.std() - 1) < 0.01
