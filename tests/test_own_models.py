"""Your own Keras VAE as you already wrote it (issue 24): every common encoder
convention (two outputs, ``[z_mean, z_log_var, z]`` by name or position, a
dict, a ``tfd`` posterior of any family), decoders without the parameter axis,
returning a distribution or ending in a sigmoid, checked inputs, full
signatures, and ``.keras`` round trips of your own subclassed and functional
models with the prior and the model sharing one encoder."""
import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

import tfvamp
from tfvamp.posteriors import posterior_mixture

tfd = tfp.distributions
FEATURES, LATENT = 6, 3


@keras.saving.register_keras_serializable(package="test_own_models")
class Sampling(keras.layers.Layer):
    """The Keras VAE example's layer: ``z = z_mean + exp(z_log_var / 2) * eps``."""

    def call(self, inputs):
        z_mean, z_log_var = inputs
        return z_mean + tf.exp(0.5 * z_log_var) * tf.random.normal(tf.shape(z_mean))


@keras.saving.register_keras_serializable(package="test_own_models")
class GaussianEncoder(keras.Model):
    """A subclassed encoder returning ``q(z|x)`` as a ``tfd`` distribution:
    ``MultivariateNormalDiag`` or, with ``full_covariance``, ``MultivariateNormalTriL``."""

    def __init__(self, full_covariance=False, **kwargs):
        super().__init__(**kwargs)
        self.full_covariance = full_covariance
        self.hidden = keras.layers.Dense(8, activation="tanh")
        self.loc = keras.layers.Dense(LATENT)
        self.scale = keras.layers.Dense(LATENT * (LATENT + 1) // 2 if full_covariance else LATENT)

    def call(self, x):
        h = self.hidden(x)
        if self.full_covariance:
            scale_tril = tfp.bijectors.FillScaleTriL(diag_shift=1e-3).forward(self.scale(h))
            return tfd.MultivariateNormalTriL(self.loc(h), scale_tril)
        return tfd.MultivariateNormalDiag(self.loc(h), tf.nn.softplus(self.scale(h)) + 1e-3)

    def get_config(self):
        return {**super().get_config(), "full_covariance": self.full_covariance}


@keras.saving.register_keras_serializable(package="test_own_models")
class MixtureEncoder(keras.Model):
    """A subclassed encoder whose ``q(z|x)`` is a mixture: each latent a mixture
    of two normals (TFP's implicit reparameterization gradients)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = keras.layers.Dense(8, activation="tanh")
        self.params = keras.layers.Dense(3 * 2 * LATENT)

    def call(self, x):
        params = tf.reshape(self.params(self.hidden(x)), [-1, LATENT, 2, 3])
        per_latent = tfd.MixtureSameFamily(
            tfd.Categorical(logits=params[..., 0]),
            tfd.Normal(params[..., 1], tf.nn.softplus(params[..., 2]) + 1e-3), reparameterize=True)
        return tfd.Independent(per_latent, reinterpreted_batch_ndims=1)


def encoder_of(convention):
    """An encoder of ``convention`` and the ``posterior_outputs`` it needs."""
    if convention == "mixture_distribution":
        return MixtureEncoder(), None
    if convention in ("diagonal_distribution", "full_covariance"):
        return GaussianEncoder(full_covariance=convention == "full_covariance"), None
    x = keras.Input((FEATURES,))
    h = keras.layers.Dense(8, activation="tanh")(x)
    if convention == "three_outputs_by_index":  # unnamed layers, z first
        z_mean, z_log_var = keras.layers.Dense(LATENT)(h), keras.layers.Dense(LATENT)(h)
        return keras.Model(x, [Sampling()([z_mean, z_log_var]), z_mean, z_log_var]), (1, 2)
    z_mean = keras.layers.Dense(LATENT, name="z_mean")(h)
    z_log_var = keras.layers.Dense(LATENT, name="z_log_var")(h)
    if convention == "two_outputs":
        return keras.Model(x, [z_mean, z_log_var]), None
    if convention == "three_outputs_by_name":  # the Keras VAE example's encoder
        return keras.Model(x, [z_mean, z_log_var, Sampling()([z_mean, z_log_var])]), None
    if convention == "dict":
        return keras.Model(x, {"mean": z_mean, "log_var": z_log_var}), None
    raise ValueError(convention)


def own_posterior(convention, encoder, x):
    """q(z|x) read from the encoder's outputs by hand, as the convention says."""
    outputs = encoder(x)
    if isinstance(outputs, tfd.Distribution):
        return outputs
    mean, log_var = {"dict": ("mean", "log_var"), "three_outputs_by_index": (1, 2)}.get(
        convention, (0, 1))
    return tfd.MultivariateNormalDiag(outputs[mean], tf.exp(0.5 * outputs[log_var]))


CONVENTIONS = ["two_outputs", "three_outputs_by_name", "three_outputs_by_index", "dict",
               "diagonal_distribution", "full_covariance", "mixture_distribution"]
TENSOR_CONVENTIONS = CONVENTIONS[:4]


def vector_decoder(num_params=2):
    z = keras.Input((LATENT,))
    h = keras.layers.Dense(8, activation="tanh")(z)
    return keras.Model(z, keras.layers.Reshape((FEATURES, num_params))(
        keras.layers.Dense(FEATURES * num_params)(h)))


def data(n=64, seed=0):
    return np.random.default_rng(seed).normal(size=(n, FEATURES)).astype("float32")


def latents(n=10, seed=1):
    return np.random.default_rng(seed).normal(size=(n, LATENT)).astype("float32")


def vamp_prior(encoder, posterior_outputs):
    return tfvamp.VampPrior(encoder, (FEATURES,), num_components=5, pseudo_input_map="none",
                            init_std=1.0, seed=0, posterior_outputs=posterior_outputs)


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_every_encoder_convention_trains_with_the_vampprior_and_round_trips(convention, tmp_path):
    encoder, outputs = encoder_of(convention)
    prior = vamp_prior(encoder, outputs)
    model = tfvamp.VAE((FEATURES,), encoder=encoder, decoder=vector_decoder(),
                       likelihood="gaussian", prior=prior, seed=0)
    assert model.prior.encoder is encoder and model.latent_dim == LATENT
    expected = {"full_covariance": "FullCovarianceGaussianMixture",
                "mixture_distribution": "MixtureSameFamily"}.get(convention,
                                                                 "DiagonalGaussianMixture")
    assert type(prior.distribution()).__name__ == expected
    before = [np.asarray(v) for v in prior.trainable_variables + encoder.trainable_variables]
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(data(), epochs=3, batch_size=16, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    after = [np.asarray(v) for v in prior.trainable_variables + encoder.trainable_variables]
    assert all(not np.allclose(a, b) for a, b in zip(before, after))  # every part trained
    x = tf.constant(data(8, seed=5))
    log_likelihood = model.log_likelihood(x, num_samples=200).numpy()
    elbo = -model.elbo_terms(x, num_samples=200).loss.numpy()
    assert np.all(np.isfinite(log_likelihood)) and log_likelihood.mean() > elbo.mean()
    # the ELBO's terms at the z it draws: the encoder's own log_prob, the prior's log_prob
    state = np.asarray(model.seed_generator.state)
    terms = model.log_terms(x, model.prior_distribution(), num_samples=2)
    model.seed_generator.state.assign(state)
    z = model.posterior(x).sample(2, seed=model.next_seed())  # the draws of log_terms
    np.testing.assert_allclose(terms.log_posterior.numpy(),
                               own_posterior(convention, encoder, x).log_prob(z).numpy(),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(terms.log_prior.numpy(), prior.distribution().log_prob(z).numpy(),
                               rtol=1e-5, atol=1e-5)
    model.save(tmp_path / "model.keras")
    restored = keras.models.load_model(tmp_path / "model.keras")
    assert restored.prior.encoder is restored.encoder
    np.testing.assert_allclose(restored.prior.distribution().log_prob(latents()).numpy(),
                               model.prior.distribution().log_prob(latents()).numpy(), rtol=1e-6)


@keras.saving.register_keras_serializable(package="test_own_models")
class UserVAE(keras.Model):
    """A VAE subclass written the way Keras' serialization guide writes one."""

    def __init__(self, encoder, decoder, prior, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.decoder, self.prior = encoder, decoder, prior

    def call(self, z):
        return self.prior(z)

    def get_config(self):
        return {**super().get_config(),
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "decoder": keras.saving.serialize_keras_object(self.decoder),
                "prior": keras.saving.serialize_keras_object(self.prior)}

    @classmethod
    def from_config(cls, config):
        encoder = keras.saving.deserialize_keras_object(config.pop("encoder"))
        decoder = keras.saving.deserialize_keras_object(config.pop("decoder"))
        prior = keras.saving.deserialize_keras_object(config.pop("prior"))
        return cls(encoder, decoder, prior, **config)


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_your_subclassed_vae_round_trips_with_one_shared_encoder(convention, tmp_path):
    encoder, outputs = encoder_of(convention)
    model = UserVAE(encoder, vector_decoder(), vamp_prior(encoder, outputs))
    model.save(tmp_path / "user.keras")
    restored = keras.models.load_model(tmp_path / "user.keras")
    assert restored.prior.encoder is restored.encoder
    np.testing.assert_array_equal(restored(latents()).numpy(), model(latents()).numpy())
    encoder_weights = [w.path for w in restored.encoder.weights]
    assert len(set(encoder_weights)) == len(encoder_weights)


@pytest.mark.parametrize("convention", TENSOR_CONVENTIONS)
def test_your_functional_model_round_trips_with_one_shared_encoder(convention, tmp_path):
    encoder, outputs = encoder_of(convention)
    prior = vamp_prior(encoder, outputs)
    x = keras.Input((FEATURES,))
    encoded = encoder(x)
    mean = encoded["mean"] if convention == "dict" else encoded[1 if outputs else 0]
    model = keras.Model(x, prior(mean))
    model.save(tmp_path / "functional.keras")
    restored = keras.models.load_model(tmp_path / "functional.keras")
    restored_prior = next(l for l in restored.layers if isinstance(l, tfvamp.VampPrior))
    assert restored_prior.encoder is next(l for l in restored.layers if isinstance(l, keras.Model))
    np.testing.assert_array_equal(restored(data(5)).numpy(), model(data(5)).numpy())
    np.testing.assert_array_equal(restored_prior.distribution().log_prob(latents()).numpy(),
                                  prior.distribution().log_prob(latents()).numpy())


def _full_covariance_components(num_components=4, latent_dim=3, seed=0):
    rng = np.random.default_rng(seed)
    loc = rng.normal(scale=2.0, size=(num_components, latent_dim))
    tril = np.tril(rng.normal(scale=0.5, size=(num_components, latent_dim, latent_dim)))
    tril[:, np.arange(latent_dim), np.arange(latent_dim)] = rng.uniform(0.1, 1.5, (num_components,
                                                                                  latent_dim))
    return loc, tril


def _logistic_log_density(z, loc, scale):
    """log prod_j Logistic(z_j | loc_j, scale_j), in NumPy (float64)."""
    u = (z - loc) / scale
    return (-u - np.log(scale) - 2 * np.logaddexp(0, -u)).sum(-1)


@pytest.mark.parametrize("family", ["full_covariance", "logistic"])
def test_the_mixture_of_any_family_matches_a_float64_reference(family):
    """The full-covariance fast path and the generic ``tfd.MixtureSameFamily``
    (here of diagonal logistics): log-densities against NumPy in float64,
    gradients against TFP's plain mixture in float64."""
    loc, tril = _full_covariance_components()
    scale = np.random.default_rng(2).uniform(0.2, 1.5, size=loc.shape)
    logits = np.array([0.3, -0.2, 0.0, 1.0])
    weights = np.exp(logits) / np.exp(logits).sum()
    z = np.random.default_rng(1).normal(scale=2.0, size=(2, 5, 3))
    z[0, 0] = loc[1] + 0.01  # next to a component
    if family == "full_covariance":
        parameters = (loc, tril)
        expected = logsumexp([np.log(w) + multivariate_normal(m, t @ t.T).logpdf(z)
                              for w, m, t in zip(weights, loc, tril)], axis=0)

        def components(loc, tril):
            return tfd.MultivariateNormalTriL(loc, tril)
    else:
        parameters = (loc, scale)
        expected = logsumexp([np.log(w) + _logistic_log_density(z, m, s)
                              for w, m, s in zip(weights, loc, scale)], axis=0)

        def components(loc, scale):
            return tfd.Independent(tfd.Logistic(loc, scale), reinterpreted_batch_ndims=1)

    def log_prob_and_gradients(dtype, make_mixture):
        tensors = [tf.constant(a, dtype) for a in (*parameters, z)]
        with tf.GradientTape() as tape:
            tape.watch(tensors)
            mixture = make_mixture(components(*tensors[:2]), tf.constant(logits, dtype))
            log_p = mixture.log_prob(tensors[2])
            total = tf.reduce_sum(log_p)
        return mixture, log_p, tape.gradient(total, tensors)

    mixture, log_p, gradients = log_prob_and_gradients(tf.float32, posterior_mixture)
    expected_class = ("FullCovarianceGaussianMixture" if family == "full_covariance"
                      else "MixtureSameFamily")
    assert type(mixture).__name__ == expected_class and isinstance(mixture, tfd.MixtureSameFamily)
    assert log_p.shape == (2, 5) and log_p.dtype == tf.float32
    assert mixture.batch_shape == [] and mixture.event_shape == [3]
    np.testing.assert_allclose(log_p.numpy(), expected, rtol=1e-5, atol=1e-5)
    _, _, reference = log_prob_and_gradients(
        tf.float64, lambda c, l: tfd.MixtureSameFamily(tfd.Categorical(logits=l), c))
    for g32, g64 in zip(gradients, reference):
        np.testing.assert_allclose(g32.numpy(), g64.numpy(), rtol=1e-4, atol=1e-5)
    samples = mixture.sample(20000, seed=(7, 8)).numpy()
    assert samples.shape == (20000, 3)
    np.testing.assert_allclose(samples.mean(0), (weights[:, None] * loc).sum(0), atol=0.06)


def test_a_full_covariance_vampprior_is_the_mixture_of_the_encoders_posteriors():
    encoder = GaussianEncoder(full_covariance=True)
    prior = vamp_prior(encoder, None)
    posteriors = encoder(prior.pseudo_inputs())
    loc = posteriors.loc.numpy().astype("float64")
    tril = posteriors.scale.to_dense().numpy().astype("float64")
    assert np.abs(np.tril(tril, -1)).max() > 1e-3  # really full covariance
    z = latents(12)
    expected = logsumexp([multivariate_normal(m, t @ t.T).logpdf(z) for m, t in zip(loc, tril)],
                         axis=0) - np.log(5)
    distribution = prior.distribution()
    assert isinstance(distribution, tfvamp.gaussians.FullCovarianceGaussianMixture)
    assert distribution.batch_shape == [] and distribution.event_shape == [LATENT]
    np.testing.assert_allclose(distribution.log_prob(z).numpy(), expected, rtol=1e-5, atol=1e-5)
    samples = distribution.sample(20000, seed=(3, 4)).numpy()
    assert samples.shape == (20000, LATENT)
    np.testing.assert_allclose(samples.mean(0), loc.mean(0), atol=0.05 * np.abs(tril).max() + 0.03)
    from_second = prior.sample_components(np.full([2, 4000], 1), seed=(5, 6)).numpy()
    assert from_second.shape == (2, 4000, LATENT)
    np.testing.assert_allclose(np.cov(from_second.reshape(-1, LATENT).T), tril[1] @ tril[1].T,
                               atol=0.05 * np.abs(tril[1] @ tril[1].T).max() + 0.02)
    with tf.GradientTape() as tape:
        log_p = tf.reduce_sum(prior.distribution().log_prob(z))
    gradients = tape.gradient(log_p, [prior.pseudo_inputs_raw] + encoder.trainable_variables)
    assert all(g is not None and np.abs(g.numpy()).sum() > 0 for g in gradients)


# -- decoders ---------------------------------------------------------------------------------
IMAGE = (8, 8, 1)


def image_encoder():
    images = keras.Input(IMAGE)
    h = keras.layers.Flatten()(keras.layers.Conv2D(4, 3, strides=2, activation="relu")(images))
    return keras.Model(images, [keras.layers.Dense(LATENT)(h), keras.layers.Dense(LATENT)(h)])


def image_decoder(activation=None):
    """Latents to ``[B, 8, 8, 1]`` through ``Conv2DTranspose(1)``, no parameter axis."""
    z = keras.Input((LATENT,))
    h = keras.layers.Reshape((4, 4, 4))(keras.layers.Dense(64, activation="relu")(z))
    return keras.Model(z, keras.layers.Conv2DTranspose(1, 3, strides=2, padding="same",
                                                       activation=activation)(h))


def binary_images(n=20, seed=0):
    return (np.random.default_rng(seed).uniform(size=(n,) + IMAGE) < 0.3).astype("float32")


def test_a_decoder_without_the_parameter_axis_is_read_for_one_parameter_likelihoods():
    decoder = image_decoder()
    model = tfvamp.VAE(IMAGE, encoder=image_encoder(), decoder=decoder, num_components=4, seed=0)
    assert model.likelihood.name == "bernoulli"
    x = tf.constant(binary_images(4))
    z = tf.constant(latents(2 * 4).reshape(2, 4, LATENT))
    logits = decoder(tf.reshape(z, [-1, LATENT])).numpy().reshape(2, 4, *IMAGE)
    expected = (x.numpy() * logits - np.logaddexp(0, logits)).sum((2, 3, 4))
    np.testing.assert_allclose(model._log_likelihood(z, x).numpy(), expected, rtol=1e-5)
    assert model.decode(z[0]).shape == (4,) + IMAGE
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(binary_images(), epochs=1, batch_size=10, verbose=0)
    with pytest.raises(ValueError, match=r"\[batch, \*input_shape\] = \(None, 8, 8, 1\) or "
                                         r"\[batch, \*input_shape, 1\]"):
        tfvamp.VAE(IMAGE, encoder=image_encoder(), decoder=keras.Sequential(
            [keras.Input((LATENT,)), keras.layers.Dense(64), keras.layers.Reshape((8, 8))]))


def test_a_sigmoid_decoder_is_refused_with_logits_and_read_as_probabilities_when_asked():
    for sigmoid_decoder in (image_decoder("sigmoid"), keras.Sequential(
            [keras.Input((LATENT,)), keras.layers.Dense(64), keras.layers.Activation("sigmoid"),
             keras.layers.Reshape(IMAGE)])):
        with pytest.raises(ValueError, match='ends in a sigmoid.*bernoulli likelihood takes '
                                             'logits.*likelihood="bernoulli_probs"'):
            tfvamp.VAE(IMAGE, encoder=image_encoder(), decoder=sigmoid_decoder)
    decoder = image_decoder("sigmoid")
    model = tfvamp.VAE(IMAGE, encoder=image_encoder(), decoder=decoder,
                       likelihood="bernoulli_probs", num_components=4, seed=0)
    x = tf.constant(binary_images(4))
    z = tf.constant(latents(4))
    probs = decoder(z).numpy().astype("float64")
    expected = (x.numpy() * np.log(probs) + (1 - x.numpy()) * np.log1p(-probs)).sum((1, 2, 3))
    np.testing.assert_allclose(model._log_likelihood(z, x).numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(model.decode(z).numpy(), probs, rtol=1e-6)
    with pytest.raises(ValueError, match="reads the decoder's output as probabilities, but the "
                                         "decoder's last layer .* has no sigmoid"):
        tfvamp.VAE(IMAGE, encoder=image_encoder(), decoder=image_decoder(),
                   likelihood="bernoulli_probs")
    with pytest.raises(ValueError, match="paper's decoder returns logits"):
        tfvamp.VAE(IMAGE, likelihood="bernoulli_probs")
    with pytest.raises(ValueError, match="does not fit them"):
        tfvamp.HVAE(IMAGE, likelihood="bernoulli_probs")


@keras.saving.register_keras_serializable(package="test_own_models")
class BernoulliDecoder(keras.Model):
    """A decoder that returns p(x|z) itself."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.logits = keras.layers.Dense(int(np.prod(IMAGE)))

    def call(self, z):
        logits = tf.reshape(self.logits(z), [-1, *IMAGE])
        return tfd.Independent(tfd.Bernoulli(logits=logits, dtype=tf.float32), 3)


def test_a_decoder_returning_a_distribution_is_its_own_likelihood(tmp_path):
    decoder = BernoulliDecoder()
    model = tfvamp.VAE(IMAGE, encoder=image_encoder(), decoder=decoder, num_components=4, seed=0)
    assert model.likelihood.name == "decoder"
    x = tf.constant(binary_images(4))
    z = tf.constant(latents(8).reshape(2, 4, LATENT))
    expected = decoder(tf.reshape(z, [-1, LATENT])).log_prob(
        tf.tile(x, [2, 1, 1, 1])).numpy().reshape(2, 4)
    np.testing.assert_allclose(model._log_likelihood(z, x).numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(model.decode(z[0]).numpy(), decoder(z[0]).mean().numpy())
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(binary_images(), epochs=1, batch_size=10, verbose=0)
    assert np.isfinite(model.log_likelihood(x, num_samples=50).numpy()).all()
    model.save(tmp_path / "m.keras")
    restored = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(restored.decode(z[0]).numpy(), model.decode(z[0]).numpy())
    with pytest.raises(ValueError, match="its own likelihood: leave likelihood='gaussian' out"):
        tfvamp.VAE(IMAGE, encoder=image_encoder(), decoder=decoder, likelihood="gaussian")


# -- inputs ----------------------------------------------------------------------------------
def small_image_model():
    model = tfvamp.VAE(IMAGE, encoder=image_encoder(), decoder=image_decoder(), num_components=4,
                       seed=0, name="vae")
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    return model


def test_wrong_input_shapes_get_one_clear_error():
    model = small_image_model()
    wrong = np.zeros((20, 28, 28), "float32")
    message = r"vae takes inputs of shape \[batch, \*input_shape\] = \(None, 8, 8, 1\); got shape"
    with pytest.raises(ValueError, match=message + r" \(20, 28, 28\)"):
        model.fit(wrong, batch_size=10, verbose=0)
    with pytest.raises(ValueError, match=message + r" \(None, 28, 28\)"):
        model.fit(tf.data.Dataset.from_tensor_slices(wrong).batch(10), verbose=0)
    for method in (model.log_likelihood, model.reconstruct, model.elbo_terms):
        with pytest.raises(ValueError, match=message + r" \(20, 28, 28\)"):
            method(tf.constant(wrong))
    with pytest.raises(ValueError, match=message):
        model.evaluate(wrong, batch_size=10, verbose=0)


def test_nan_in_the_training_data_stops_training_naming_the_batch():
    model = small_image_model()
    images = binary_images(60)
    images[37, 2, 3, 0] = np.nan
    before = [np.asarray(v) for v in model.trainable_variables]
    with pytest.raises(tfvamp.NonFiniteInputError, match=r"row 37 of x \(batch 4 of 6 at "
                                                          r"batch_size=10.*nothing was trained"):
        model.fit(images, batch_size=10, verbose=0)
    for variable, old in zip(model.trainable_variables, before):
        np.testing.assert_array_equal(np.asarray(variable), old)
    # a dataset: checked as it yields; the weights are those after the 3 good batches
    keras.utils.set_random_seed(1)
    model = small_image_model()
    with pytest.raises(tfvamp.NonFiniteInputError, match="in batch 4 .*stopped before that batch"):
        model.fit(tf.data.Dataset.from_tensor_slices(images).batch(10), epochs=2, verbose=0)
    keras.utils.set_random_seed(1)
    good = small_image_model()
    good.fit(tf.data.Dataset.from_tensor_slices(images[:30]).batch(10), verbose=0)
    for variable, expected in zip(model.trainable_variables, good.trainable_variables):
        np.testing.assert_array_equal(np.asarray(variable), np.asarray(expected))


def test_values_outside_the_likelihoods_support_stop_training_naming_the_batch():
    """uint8 images of 0-255 (as TFDS yields them) given to a Bernoulli model: one clear
    error, nothing trained on the bad batch; a Gaussian model takes any real value."""
    model = small_image_model()
    images = binary_images(60)
    before = [np.asarray(v) for v in model.trainable_variables]
    with pytest.raises(ValueError, match=r"outside \[0, 1\] \(the bernoulli likelihood's values\) "
                                         r"in row 0 of x .*x spans \[0, 255\]\): images of 0-255\? "
                                         r"divide them by 255"):
        model.fit((images * 255).astype("uint8"), batch_size=10, verbose=0)
    for variable, old in zip(model.trainable_variables, before):
        np.testing.assert_array_equal(np.asarray(variable), old)
    scaled = images.copy()
    scaled[45] *= 3.0
    with pytest.raises(ValueError, match=r"in row 45 of x \(batch 5 of 6 at batch_size=10.*spans \[0, 3\]\)$"):
        model.fit(scaled, batch_size=10, verbose=0)
    labelled = tf.data.Dataset.from_tensor_slices((scaled, np.zeros(60))).batch(10)
    with pytest.raises(ValueError, match=r"values outside \[0, 1\] .* in batch 5 .*stopped before that batch$"):
        model.fit(labelled, verbose=0)
    standardised = (images - images.mean()) / images.std()
    z = keras.Input((LATENT,))
    mean_and_log_variance = keras.layers.Reshape(IMAGE + (2,))(keras.layers.Dense(128)(z))
    gaussian = tfvamp.VAE(IMAGE, encoder=image_encoder(), decoder=keras.Model(z, mean_and_log_variance),
                          likelihood="gaussian", num_components=4, seed=0)
    gaussian.compile(optimizer=keras.optimizers.Adam(1e-2))
    gaussian.fit(standardised, batch_size=10, verbose=0)
    assert np.all(np.isfinite(gaussian.log_likelihood(standardised[:4], num_samples=10)))
    # evaluation and reconstruction check the values they are given too
    message = r"^x has values outside \[0, 1\] .* in row 45 of x \(1 bad row in all\) \(x spans \[0, 3\]\)$"
    for method in (model.log_likelihood, model.reconstruct, model.evaluate):
        with pytest.raises(ValueError, match=message):
            method(scaled)
    with pytest.raises(ValueError, match=r"in row 0 of x.*divide them by 255$"):
        model.log_likelihood(tf.constant(images[:2] * 255))
    nan = images[:3].copy()
    nan[1, 0, 0, 0] = np.nan
    with pytest.raises(tfvamp.NonFiniteInputError, match=r"^x has a NaN or infinity in row 1 of x \(1 bad row"):
        model.log_likelihood(nan)


def _batches(images, batch_size=10):
    """A Python generator of ``(images,)`` batches, as Keras takes them."""
    for start in range(0, len(images), batch_size):
        yield (images[start:start + batch_size],)


class _Batches(keras.utils.PyDataset):
    def __init__(self, images, batch_size=10):
        super().__init__()
        self.images, self.batch_size = images, batch_size
        self.taken = []

    def __len__(self):
        return len(self.images) // self.batch_size

    def __getitem__(self, index):
        self.taken.append(index)
        return (self.images[index * self.batch_size:(index + 1) * self.batch_size],)


def test_a_generator_is_checked_batch_by_batch_and_trained_on_the_batches_before_a_bad_one():
    images = binary_images(60)
    bad = images.copy()
    bad[37, 2, 3, 0] = np.nan
    keras.utils.set_random_seed(1)
    model = small_image_model()
    with pytest.raises(tfvamp.NonFiniteInputError, match=r"^The training data has a NaN or infinity in "
                       r"batch 4 of the generator \(counted from 1 over all epochs\), row 7 of it "
                       r"\(1 bad row in it\); training stopped before that batch$"):
        model.fit(_batches(bad), verbose=0)
    # Trained on the 3 good batches, as a model given only them: none was taken beforehand.
    keras.utils.set_random_seed(1)
    good = small_image_model()
    good.fit(_batches(images[:30]), verbose=0)
    assert model.optimizer.iterations.numpy() == good.optimizer.iterations.numpy()
    for variable, expected in zip(model.trainable_variables, good.trainable_variables):
        np.testing.assert_array_equal(np.asarray(variable), np.asarray(expected))


def test_a_py_dataset_is_checked_batch_by_batch_in_fit_and_evaluate():
    scaled = binary_images(60)
    scaled[45] *= 255
    keras.utils.set_random_seed(1)
    model = small_image_model()
    with pytest.raises(ValueError, match=r"^The training data has values outside \[0, 1\] \(the bernoulli "
                       r"likelihood's values\) in the PyDataset's batch at index 4, row 5 of it \(1 bad row "
                       r"in it\); training stopped before that batch \(the batch spans \[0, 255\]\): "
                       r"images of 0-255\? divide them by 255$"):
        model.fit(_Batches(scaled), shuffle=False, verbose=0)
    keras.utils.set_random_seed(1)
    good = small_image_model()
    good.fit(_Batches(scaled[:40]), shuffle=False, verbose=0)
    for variable, expected in zip(model.trainable_variables, good.trainable_variables):
        np.testing.assert_array_equal(np.asarray(variable), np.asarray(expected))
    with pytest.raises(ValueError, match=r"^The data has values outside \[0, 1\] .* in the PyDataset's "
                       r"batch at index 4, .*evaluation stopped before that batch"):
        model.evaluate(_Batches(scaled), verbose=0)


def test_generators_of_the_wrong_shape_are_one_error_and_good_batches_are_all_trained_on():
    images = binary_images(60)
    model = small_image_model()
    message = (r"has the wrong shape in batch 1 of the generator.*: vae takes inputs of shape "
               r"\[batch, \*input_shape\] = \(None, 8, 8, 1\); got shape \(10, 8, 8\)")
    with pytest.raises(ValueError, match="^The training data " + message):
        model.fit(_batches(images[..., 0]), verbose=0)
    with pytest.raises(ValueError, match="^The data " + message):
        model.evaluate(_batches(images[..., 0]), verbose=0)

    dataset = _Batches(images)  # good data: every batch trained on once per epoch
    model.fit(dataset, epochs=2, verbose=0)
    assert model.optimizer.iterations.numpy() == 12
    assert sorted(set(dataset.taken)) == list(range(6))


def test_a_dataset_of_dicts_gets_one_clear_error():
    model = small_image_model()
    examples = tf.data.Dataset.from_tensor_slices({"image": binary_images(20), "label": np.zeros(20)})
    with pytest.raises(ValueError, match=r"yields dicts with keys \['image', 'label'\]: map it to the "
                                         r"images, e.g. dataset.map\(lambda example: example\['image'\]\)"):
        model.fit(examples.batch(10), verbose=0)


def test_a_non_finite_loss_stops_training():
    encoder, _ = encoder_of("two_outputs")
    model = tfvamp.VAE((FEATURES,), encoder=encoder, decoder=vector_decoder(),
                       likelihood="gaussian", prior="standard", seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    huge = np.full((40, FEATURES), 3e38, "float32")  # finite data, an infinite loss
    with pytest.raises(tfvamp.NonFiniteLossError, match="epoch 1, step 1: training stopped"):
        model.fit(huge, batch_size=10, epochs=3, verbose=0)
    assert model.optimizer.iterations.numpy() == 1
    guard = tfvamp.callbacks.StopOnNonFiniteLoss()  # your own guard: no error, its failure
    model.fit(huge, batch_size=10, epochs=3, verbose=0, callbacks=[guard])
    assert guard.failure.startswith("Non-finite training loss")


def test_every_model_signature_shows_every_argument():
    for model_class in (tfvamp.VAE, tfvamp.HVAE, tfvamp.ConvHVAE, tfvamp.PixelHVAE):
        parameters = inspect.signature(model_class).parameters
        for name in ("input_shape", "likelihood", "prior", "latent_dim", "hidden_units",
                     "num_components", "pseudo_inputs_init_mean", "pseudo_inputs_init_data",
                     "seed", "precision", "kernel_initializer"):
            assert name in parameters, (model_class.__name__, name)
    vae = inspect.signature(tfvamp.VAE).parameters
    assert {"encoder", "decoder", "posterior_outputs"} <= set(vae)
    assert "conv_filters" in inspect.signature(tfvamp.ConvHVAE).parameters
