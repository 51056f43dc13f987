import numpy as np
import pytest
import keras

from tfvamp.datasets import load_dataset
from tfvamp.models import VAE, build_model
from tfvamp.objectives import LogTerms, importance_sampled_log_likelihood, negative_elbo


@pytest.fixture(scope="module")
def caltech():
    return load_dataset("caltech")


@pytest.fixture(scope="module")
def trained_vae(caltech):
    """A VAE with a VampPrior trained for 2 epochs on real Caltech data."""
    keras.utils.set_random_seed(0)
    model = VAE(caltech.input_shape, prior="vamp", num_components=50,
                pseudo_inputs_init_mean=0.5, pseudo_inputs_init_std=0.02, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(caltech.pipeline("train", 100, shuffle=True, seed=0), epochs=2, verbose=0, shuffle=False)
    return model


def test_negative_elbo_with_warm_up():
    terms = LogTerms(np.array([[-10.0, -20.0]]), np.array([[-3.0, -1.0]]), np.array([[-1.0, -2.0]]))
    elbo = negative_elbo(terms, beta=0.5)
    np.testing.assert_allclose(elbo.reconstruction, [10.0, 20.0])
    np.testing.assert_allclose(elbo.kl, [2.0, -1.0])
    np.testing.assert_allclose(elbo.loss, [11.0, 19.5])


def test_importance_sampling_estimator_matches_logmeanexp():
    rng = np.random.default_rng(0)
    draws = [rng.normal(size=(4, 3)).astype("float32") for _ in range(3)]
    calls = iter(draws)
    zeros = np.zeros((1, 3), "float32")

    def log_terms(n):
        assert int(n) == 4  # 10 samples in 3 equal chunks of at most 4
        return LogTerms(next(calls), zeros, zeros)

    estimate = importance_sampled_log_likelihood(log_terms, num_samples=10, chunk_size=4)
    used_weights = np.concatenate(draws)[:10]
    expected = np.log(np.mean(np.exp(used_weights), axis=0))
    np.testing.assert_allclose(estimate.numpy(), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="num_samples"):
        importance_sampled_log_likelihood(log_terms, num_samples=0, chunk_size=4)


def test_importance_sampling_is_above_elbo_and_tightens(caltech, trained_vae):
    x = caltech.test[:200]
    prior = trained_vae.prior_distribution()
    elbo = -negative_elbo(trained_vae.log_terms(x, prior, num_samples=20)).loss.numpy()
    ll_small = trained_vae.log_likelihood(x, num_samples=5, prior=prior).numpy()
    ll_large = trained_vae.log_likelihood(x, num_samples=500, prior=prior).numpy()
    assert np.all(np.isfinite(ll_large))
    assert ll_large.mean() > elbo.mean() + 1.0
    assert ll_large.mean() > ll_small.mean()


def test_sample_and_reconstruct_shapes_and_ranges(caltech, trained_vae):
    images = trained_vae.sample(6).numpy()
    assert images.shape == (6, 28, 28, 1) and images.min() >= 0 and images.max() <= 1
    reconstructions = trained_vae.reconstruct(caltech.test[:5]).numpy()
    assert reconstructions.shape == (5, 28, 28, 1)


@pytest.mark.parametrize("prior", [pytest.param("standard", marks=pytest.mark.slow),
                                   pytest.param("mog", marks=pytest.mark.slow), "vamp"])
def test_training_on_caltech_lowers_validation_loss(caltech, prior):
    keras.utils.set_random_seed(1)
    model = build_model("vae", input_shape=caltech.input_shape, prior=prior, num_components=100,
                        pseudo_inputs_init_mean=0.5, pseudo_inputs_init_std=0.02, seed=1)
    model.compile(optimizer=keras.optimizers.Adam(5e-4), jit_compile=True)
    validation = caltech.pipeline("validation", 500)
    before = model.evaluate(validation, verbose=0, return_dict=True)["loss"]
    train = caltech.pipeline("train", 100, shuffle=True, seed=1).repeat()
    model.fit(train, steps_per_epoch=200, epochs=1, verbose=0, shuffle=False)
    after = model.evaluate(validation, verbose=0, return_dict=True)["loss"]
    assert np.isfinite(after) and after < before - 100, (before, after)


def test_unknown_model_lists_valid_names():
    with pytest.raises(ValueError, match="vae"):
        build_model("foo", input_shape=(28, 28, 1))


def test_custom_encoder_example_trains():
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(__file__), "..", "examples", "custom_encoder_vampprior.py")
    spec = importlib.util.spec_from_file_location("custom_encoder_vampprior", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    before, after = example.main(steps=100)
    assert after < before - 100


@pytest.mark.parametrize("jit_compile", [False, True])
def test_a_whole_validation_set_as_one_batch_is_evaluated_in_chunks_with_one_prior(
        trained_vae, caltech, jit_compile, monkeypatch):
    """The trainer's validation pass: one static batch of 2,264 images, in chunks of 500
    (4 and a remainder of 264), the pseudo-inputs encoded once; the same ELBO as batches of 100."""
    model = trained_vae
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=jit_compile)
    monkeypatch.setattr(model, "rows_per_chunk", 500)
    priors_built = []
    distribution = model.prior.distribution
    monkeypatch.setattr(model.prior, "distribution", lambda: priors_built.append(1) or distribution())

    whole = model.evaluate(caltech.pipeline("validation", None), verbose=0, return_dict=True)
    assert len(priors_built) == 1  # traced once, for the one batch: one encoder pass of the K pseudo-inputs
    assert int(model.loss_tracker.count) == len(caltech.validation)
    batched = model.evaluate(caltech.pipeline("validation", 100), verbose=0, return_dict=True)
    # One-sample ELBOs of 2,264 images: the two means agree within their Monte Carlo error.
    assert whole["loss"] == pytest.approx(batched["loss"], rel=0.01)
    assert whole["kl"] == pytest.approx(batched["kl"], rel=0.02)


def test_sampling_seed_takes_int32_and_int64_seeds_alike_and_refuses_others_in_one_line():
    import tensorflow as tf

    model = VAE((6, 6, 1), likelihood="bernoulli", prior="vamp", latent_dim=3, hidden_units=8, num_components=4)
    images = tf.constant(np.random.default_rng(0).uniform(size=(3, 6, 6, 1)) < 0.5, tf.float32)
    values = []
    for dtype in (tf.int32, tf.int64):
        with model.sampling_seed(tf.constant([7, 11], dtype)):
            values.append(model.log_likelihood(images, num_samples=4).numpy())
    np.testing.assert_array_equal(values[0], values[1])
    for bad in (tf.constant([1.0, 2.0]), tf.constant([1, 2, 3])):
        with pytest.raises(ValueError, match="2 integers"):
            with model.sampling_seed(bad):
                pass
