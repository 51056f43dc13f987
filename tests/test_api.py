"""The library as a user meets it: ``import tfvamp``, a VampPrior on any
encoder and data, the VAE with the user's own networks, saving and export."""
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfvamp
from conftest import REPO_ROOT, subprocess_env

LATENT = 3
FEATURES = 6


def vector_encoder(latent_dim=LATENT, dropout=0.0, name="encoder"):
    x = keras.Input((FEATURES,))
    h = keras.layers.Dense(8, activation="tanh")(x)
    if dropout:
        h = keras.layers.Dropout(dropout)(h)
    return keras.Model(x, [keras.layers.Dense(latent_dim)(h), keras.layers.Dense(latent_dim)(h)],
                       name=name)


def vector_decoder(num_params=2):
    z = keras.Input((LATENT,))
    h = keras.layers.Dense(8, activation="tanh")(z)
    params = keras.layers.Dense(FEATURES * num_params)(h)
    return keras.Model(z, keras.layers.Reshape((FEATURES, num_params))(params), name="decoder")


def data(n=64, seed=0):
    return np.random.default_rng(seed).normal(size=(n, FEATURES)).astype("float32")


def test_the_public_api_is_importable():
    for name in tfvamp.__all__:
        assert getattr(tfvamp, name) is not None
    assert tfvamp.__version__
    assert tfvamp.VampPrior is tfvamp.priors.VampPrior


def test_import_tfvamp_leaves_the_serving_client_and_grpc_unimported():
    """``tfvamp.serving`` (gRPC, TensorFlow Serving's protos) is imported on first use."""
    code = ("import sys, tfvamp\n"
            "print([m for m in ('grpc', 'tensorflow_serving', 'tfvamp.serving') if m in sys.modules])\n"
            "print(tfvamp.serving.ServingClient.__name__)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=subprocess_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["[]", "ServingClient"]


@pytest.mark.parametrize("outputs, message", [
    (lambda h: keras.layers.Dense(LATENT)(h), "returned one tensor of shape"),
    (lambda h: {"loc": keras.layers.Dense(LATENT)(h), "scale": keras.layers.Dense(LATENT)(h)},
     "returned a dict with keys ['loc', 'scale']"),
    (lambda h: [keras.layers.Dense(LATENT)(h)] * 3, "returned 3 outputs"),
    (lambda h: [keras.layers.Dense(LATENT)(h), keras.layers.Dense(LATENT + 1)(h)],
     "have shapes (1, 3) and (1, 4)"),
])
def test_a_wrong_encoder_gets_a_clear_error(outputs, message):
    x = keras.Input((FEATURES,))
    encoder = keras.Model(x, outputs(keras.layers.Dense(8)(x)))
    with pytest.raises(ValueError, match="must return \\(mean, log_variance\\)") as error:
        tfvamp.VampPrior(encoder, (FEATURES,), num_components=4)
    assert message in str(error.value)


def test_a_latent_size_or_input_shape_the_encoder_disagrees_with_is_an_error():
    with pytest.raises(ValueError, match="latent_dim=4, but the encoder returns latents of size 3"):
        tfvamp.VampPrior(vector_encoder(), (FEATURES,), latent_dim=4, num_components=4)
    with pytest.raises(ValueError, match="failed on an input of shape \\(1, 28, 28, 1\\)"):
        tfvamp.VampPrior(vector_encoder(), (28, 28, 1), num_components=4)
    assert tfvamp.VampPrior(vector_encoder(), (FEATURES,), num_components=4).latent_dim == LATENT


def test_the_prior_owns_its_own_variables_only():
    encoder = vector_encoder()
    prior = tfvamp.VampPrior(encoder, (FEATURES,), num_components=4, learnable_weights=True)
    assert {v.name for v in prior.trainable_variables} == {"pseudo_inputs", "mixture_logits"}
    collected = encoder.trainable_variables + prior.trainable_variables
    assert len({id(v) for v in collected}) == len(collected)


def test_every_variable_is_updated_once_per_step():
    """With SGD(lr), one step moves each variable by exactly -lr * its gradient."""
    encoder = vector_encoder()
    model = tfvamp.VAE((FEATURES,), encoder=encoder, decoder=vector_decoder(),
                       likelihood="gaussian", seed=0,
                       prior=tfvamp.VampPrior(encoder, (FEATURES,), num_components=4,
                                              pseudo_input_map="none", learnable_weights=True))
    variables = model.trainable_variables
    assert len({id(v) for v in variables}) == len(variables) == 6 + 4 + 2
    x = tf.constant(data(32))
    seed_state = np.asarray(model.seed_generator.state)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(model.elbo_terms(x, training=True).loss)
    gradients = tape.gradient(loss, variables)
    model.seed_generator.state.assign(seed_state)  # the step draws the same samples
    before = [np.asarray(v) for v in variables]
    learning_rate = 0.1
    model.compile(optimizer=keras.optimizers.SGD(learning_rate))
    model.train_on_batch(x)
    for variable, old, gradient in zip(variables, before, gradients):
        np.testing.assert_allclose(np.asarray(variable), old - learning_rate * gradient.numpy(),
                                   rtol=1e-4, atol=1e-6, err_msg=variable.path)


def test_pseudo_input_maps_and_initialisations():
    rows = data(20, seed=3) * 5
    encoder = vector_encoder()
    hardtanh = tfvamp.VampPrior(encoder, (FEATURES,), num_components=4, init_mean=3.0, init_std=2.0)
    assert 0 <= hardtanh.pseudo_inputs().numpy().min() and hardtanh.pseudo_inputs().numpy().max() <= 1
    none = tfvamp.VampPrior(encoder, (FEATURES,), num_components=3, pseudo_input_map="none",
                            init_data=rows, init_indices=[4, 0, 7])
    np.testing.assert_array_equal(none.pseudo_inputs().numpy(), rows[[4, 0, 7]])
    random_rows = tfvamp.VampPrior(encoder, (FEATURES,), num_components=5, pseudo_input_map="none",
                                   init_data=rows, seed=1).pseudo_inputs().numpy()
    assert all(any(np.array_equal(r, row) for row in rows) for r in random_rows)
    counts = np.abs(rows).round()
    softplus = tfvamp.VampPrior(encoder, (FEATURES,), num_components=2, pseudo_input_map="softplus",
                                init_data=counts, init_indices=[1, 2]).pseudo_inputs().numpy()
    np.testing.assert_allclose(softplus, np.maximum(counts[[1, 2]], 1e-4), rtol=1e-3, atol=1e-4)
    squared = tfvamp.VampPrior(encoder, (FEATURES,), num_components=2, pseudo_input_map=tf.square,
                               init_mean=-2.0, init_std=0.1).pseudo_inputs().numpy()
    assert squared.min() > 2.5
    with pytest.raises(ValueError, match="pseudo_input_map must be one of"):
        tfvamp.VampPrior(encoder, (FEATURES,), pseudo_input_map="relu6")
    with pytest.raises(ValueError, match="init_indices must give 4 rows"):
        tfvamp.VampPrior(encoder, (FEATURES,), num_components=4, init_data=rows, init_indices=[1])
    with pytest.raises(ValueError, match="init_data has 3 values per input"):
        tfvamp.VampPrior(encoder, (FEATURES,), num_components=4, init_data=np.zeros((9, 3)))


def test_learnable_weights_stay_a_distribution_after_training():
    encoder = vector_encoder()
    prior = tfvamp.VampPrior(encoder, (FEATURES,), num_components=5, learnable_weights=True,
                             pseudo_input_map="none")
    model = tfvamp.VAE((FEATURES,), encoder=encoder, decoder=vector_decoder(),
                       likelihood="gaussian", prior=prior, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    model.fit(data(64), epochs=5, batch_size=16, verbose=0)
    weights = prior.mixture_weights().numpy()
    assert not np.allclose(weights, 0.2)  # they trained
    np.testing.assert_allclose(weights.sum(), 1.0, rtol=1e-6)
    distribution = prior.distribution()
    np.testing.assert_allclose(tf.exp(distribution.mixture_distribution.logits_parameter()
                                      - tf.reduce_logsumexp(
                                          distribution.mixture_distribution.logits_parameter())),
                               weights, rtol=1e-5)
    # the density integrates to one: a Monte Carlo check of E_p[1/p] over a box is
    # crude, so compare with the mixture written out by hand instead
    z = distribution.sample(7, seed=(1, 2)).numpy()
    mean, log_variance = (t.numpy() for t in prior.encode_pseudo_inputs())
    per_component = -0.5 * (((z[:, None] - mean) ** 2) / np.exp(log_variance) + log_variance
                            + np.log(2 * np.pi)).sum(-1)
    expected = np.log((weights * np.exp(per_component)).sum(-1))
    np.testing.assert_allclose(distribution.log_prob(z).numpy(), expected, rtol=1e-4)


def test_pseudo_inputs_are_encoded_in_inference_mode_unless_asked():
    encoder = vector_encoder(dropout=0.5)
    inference = tfvamp.VampPrior(encoder, (FEATURES,), num_components=50, init_std=1.0, seed=0)
    first, second = inference.encode_pseudo_inputs()[0], inference.encode_pseudo_inputs()[0]
    np.testing.assert_array_equal(first.numpy(), second.numpy())
    np.testing.assert_allclose(first.numpy(), encoder(inference.pseudo_inputs(), training=False)[0])
    training = tfvamp.VampPrior(encoder, (FEATURES,), num_components=50, init_std=1.0, seed=0,
                                encoder_training=True)
    assert not np.allclose(training.encode_pseudo_inputs()[0].numpy(), first.numpy())


def test_drawing_from_chosen_pseudo_inputs():
    encoder = vector_encoder()
    prior = tfvamp.VampPrior(encoder, (FEATURES,), num_components=4, init_std=1.0, seed=0)
    z = prior.sample_components(tf.fill([4000], 2), seed=(3, 4)).numpy()
    mean, log_variance = (t.numpy()[2] for t in prior.encode_pseudo_inputs())
    np.testing.assert_allclose(z.mean(0), mean, atol=4 * np.exp(0.5 * log_variance.max()) / 60)
    np.testing.assert_allclose(z.var(0), np.exp(log_variance), rtol=0.15)


def byo_vector_model(**prior_options):
    encoder = vector_encoder()
    prior = tfvamp.VampPrior(encoder, (FEATURES,), num_components=8, pseudo_input_map="none",
                             **prior_options)
    return tfvamp.VAE((FEATURES,), encoder=encoder, decoder=vector_decoder(),
                      likelihood="gaussian", prior=prior, seed=0)


def test_your_own_networks_on_vectors_train_evaluate_and_sample():
    model = byo_vector_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(data(256), epochs=8, batch_size=32, verbose=0,
                        callbacks=[tfvamp.KLWarmUp(warmup_epochs=4)])
    assert history.history["loss"][-1] < history.history["loss"][0]
    x = tf.constant(data(16, seed=9))
    log_likelihood = model.log_likelihood(x, num_samples=500).numpy()
    elbo = -model.elbo_terms(x, num_samples=500).loss.numpy()
    assert np.all(np.isfinite(log_likelihood))
    assert log_likelihood.mean() > elbo.mean()
    assert model.sample(5, seed=(1, 2)).shape == (5, FEATURES)
    assert model.reconstruct(x).shape == (16, FEATURES)
    # pseudo_input_map="none": the pseudo-inputs are U itself, not squashed into [0, 1]
    pseudo_inputs = model.prior.pseudo_inputs().numpy()
    np.testing.assert_array_equal(pseudo_inputs, model.prior.pseudo_inputs_raw.numpy())
    model.prior.pseudo_inputs_raw.assign(-2.0 * tf.ones_like(model.prior.pseudo_inputs_raw))
    np.testing.assert_array_equal(model.prior.pseudo_inputs().numpy(), -2.0)


def test_your_own_networks_on_images_with_a_distribution_function():
    images = keras.Input((8, 8, 1))
    h = keras.layers.Flatten()(keras.layers.Conv2D(4, 3, strides=2, activation="relu")(images))
    encoder = keras.Model(images, [keras.layers.Dense(LATENT)(h), keras.layers.Dense(LATENT)(h)])
    z = keras.Input((LATENT,))
    decoder = keras.Model(z, keras.layers.Reshape((8, 8, 1))(keras.layers.Dense(64)(z)))

    def bernoulli(logits):
        return tfp.distributions.Independent(
            tfp.distributions.Bernoulli(logits=logits, dtype=tf.float32), 3)

    model = tfvamp.VAE((8, 8, 1), encoder=encoder, decoder=decoder, likelihood=bernoulli,
                       prior="vamp", num_components=10, seed=0)
    x = tf.constant((np.random.default_rng(0).uniform(size=(20, 8, 8, 1)) < 0.3), tf.float32)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(x, epochs=3, batch_size=10, verbose=0)
    log_likelihood = model.log_likelihood(x, num_samples=300).numpy()
    elbo = -model.elbo_terms(x, num_samples=300).loss.numpy()
    assert log_likelihood.mean() > elbo.mean()
    assert model.decode(tf.zeros([2, LATENT])).shape == (2, 8, 8, 1)


def test_a_decoder_that_does_not_fit_the_likelihood_gets_a_clear_error():
    encoder = vector_encoder()
    with pytest.raises(ValueError, match=r"must return \[batch, \*input_shape, 2\] = \(None, 6, 2\); for one latent it returned shape \(1, 6, 1\)"):
        tfvamp.VAE((FEATURES,), encoder=encoder, decoder=vector_decoder(num_params=1),
                   likelihood="gaussian", prior="standard")
    with pytest.raises(ValueError, match="built on another encoder"):
        tfvamp.VAE((FEATURES,), encoder=encoder, decoder=vector_decoder(), likelihood="gaussian",
                   prior=tfvamp.VampPrior(vector_encoder(), (FEATURES,), num_components=4))


def test_subclassed_models_round_trip_through_keras_files(tmp_path):
    model = byo_vector_model(learnable_weights=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(data(64), epochs=1, batch_size=32, verbose=0)
    model.save(tmp_path / "model.keras")
    restored = keras.models.load_model(tmp_path / "model.keras")
    assert restored.prior.encoder is restored.encoder
    assert restored.prior.learnable_weights and restored.prior.pseudo_input_map == "none"
    z = np.random.default_rng(1).normal(size=(10, LATENT)).astype("float32")
    np.testing.assert_array_equal(restored.prior.distribution().log_prob(z).numpy(),
                                  model.prior.distribution().log_prob(z).numpy())
    x = tf.constant(data(4))
    np.testing.assert_array_equal(restored.encode(x)[0].numpy(), model.encode(x)[0].numpy())
    # weights alone, into a model built the same way
    model.save_weights(tmp_path / "model.weights.h5")
    again = byo_vector_model(learnable_weights=True)
    again.load_weights(tmp_path / "model.weights.h5")
    np.testing.assert_array_equal(again.prior.distribution().log_prob(z).numpy(),
                                  model.prior.distribution().log_prob(z).numpy())


def test_the_papers_models_round_trip_through_keras_files(tmp_path):
    model = tfvamp.VAE((8, 8, 1), prior="vamp", num_components=5, hidden_units=16, latent_dim=4,
                       seed=0)
    model.save(tmp_path / "vae.keras")
    restored = keras.models.load_model(tmp_path / "vae.keras")
    assert restored.prior.encoder is restored.encoder and not restored.own_networks["encoder"]
    z = np.random.default_rng(1).normal(size=(10, 4)).astype("float32")
    np.testing.assert_array_equal(restored.prior.distribution().log_prob(z).numpy(),
                                  model.prior.distribution().log_prob(z).numpy())


def test_functional_models_with_a_prior_layer_round_trip(tmp_path):
    encoder = vector_encoder(name="shared_encoder")
    prior = tfvamp.VampPrior(encoder, (FEATURES,), num_components=6, pseudo_input_map="none",
                             learnable_weights=True, init_std=1.0, seed=0)
    x = keras.Input((FEATURES,))
    mean, _ = encoder(x)
    model = keras.Model(x, [prior(mean), tfvamp.StandardNormalPrior(LATENT)(mean)])
    assert len({id(v) for v in model.trainable_variables}) == len(model.trainable_variables) == 8
    model.save(tmp_path / "functional.keras")
    restored = keras.models.load_model(tmp_path / "functional.keras")
    restored_prior = next(l for l in restored.layers if isinstance(l, tfvamp.VampPrior))
    assert restored_prior.encoder is restored.get_layer("shared_encoder")
    inputs = data(5)
    for a, b in zip(restored(inputs), model(inputs)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_model_export_writes_the_serving_signatures(tmp_path):
    model = byo_vector_model()
    path = str(tmp_path / "served")
    assert tfvamp.export.save_serving_model(model, path) == path
    loaded = tf.saved_model.load(path)
    assert {"serving_default", "encode", "decode", "sample", "log_prob", "reconstruct"} <= set(
        loaded.signatures)
    x = tf.constant(data(3))
    encoded = loaded.signatures["encode"](images=x)
    np.testing.assert_allclose(encoded["mean"].numpy(), model.encode(x)[0].numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(FileExistsError):
        tfvamp.export.save_serving_model(model, path)
    assert os.path.exists(os.path.join(path, "assets.extra", "tfvamp_model.json"))


def test_lower_layers_never_import_higher_ones():
    """The models, priors, likelihoods and objectives import neither the export, the serving
    client nor the trainers (read from the sources, imports inside functions too)."""
    import ast

    higher = ("tfvamp.export", "tfvamp.serving", "trainers")
    package = os.path.dirname(tfvamp.__file__)
    lower = [os.path.join(package, "models", name) for name in os.listdir(os.path.join(package, "models"))
             if name.endswith(".py")]
    lower += [os.path.join(package, f"{name}.py") for name in
              ("names", "gaussians", "posteriors", "priors", "likelihoods", "objectives", "layers",
               "callbacks", "checkpoints", "errors", "evaluation")]
    offending = []
    for path in lower:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offending += [f"{os.path.relpath(path, package)} imports {name}" for name in names
                          if name.startswith(higher)]
    assert not offending, offending
