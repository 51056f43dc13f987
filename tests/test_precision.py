"""bfloat16 networks with float32 densities (issue 12): a model's ``precision``,
Keras' global mixed-precision policy, and every model's terms in float32."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvamp.models import VAE, build_model


@pytest.fixture
def images():
    return (np.random.default_rng(0).uniform(size=(6, 28, 28, 1)) < 0.3).astype("float32")


def test_bfloat16_networks_give_float32_terms_close_to_float32(images):
    float32 = VAE((28, 28, 1), prior="vamp", num_components=20, seed=0)
    bfloat16 = VAE((28, 28, 1), prior="vamp", num_components=20, seed=0, precision="bfloat16")
    bfloat16.set_weights(float32.get_weights())
    assert bfloat16.encoder.layers[-1].compute_dtype == "bfloat16"
    assert all(v.dtype == "float32" for v in bfloat16.trainable_variables)
    terms = bfloat16.log_terms(images, bfloat16.prior_distribution(), num_samples=3)
    assert all(t.dtype == tf.float32 and t.shape == (3, 6) for t in terms)
    exact = float32.log_likelihood(images, num_samples=200).numpy()
    approximate = bfloat16.log_likelihood(images, num_samples=200).numpy()
    assert approximate.dtype == np.float32
    # bfloat16 keeps 8 bits of mantissa: the networks' outputs move by ~0.4%.
    np.testing.assert_allclose(approximate, exact, rtol=0.02)


def test_global_mixed_bfloat16_policy_is_the_default_precision_and_saved_in_the_config():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = VAE((28, 28, 1), prior="standard", hidden_units=8, latent_dim=2)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.precision == "bfloat16"
    rebuilt = VAE.from_config(model.get_config())  # now under the float32 policy
    assert rebuilt.precision == "bfloat16"
    assert rebuilt.decoder.layers[-2].compute_dtype == "bfloat16"
    assert keras.config.dtype_policy().name == "float32"  # building does not change the policy
    with pytest.raises(ValueError, match="precision must be one of"):
        VAE((28, 28, 1), precision="float16")


@pytest.mark.parametrize("model_name", ["convhvae"] + [pytest.param(m, marks=pytest.mark.slow)
                                                      for m in ("vae", "hvae", "pixelhvae")])
def test_every_model_trains_a_step_in_bfloat16(model_name, images):
    keras.utils.set_random_seed(0)
    model = build_model(model_name, input_shape=(28, 28, 1), prior="vamp", num_components=4,
                        seed=0, precision="bfloat16")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=model.xla_train_step)
    before = [v.numpy() for v in model.trainable_variables]
    logs = model.train_on_batch(images, return_dict=True)
    assert np.isfinite(logs["loss"])
    assert any(not np.array_equal(b, v.numpy()) for b, v in zip(before, model.trainable_variables))
    assert np.all(np.isfinite(model.log_likelihood(images[:2], num_samples=4).numpy()))
    generated = model.sample(2, seed=tf.constant([1, 2]))
    assert generated.dtype == tf.float32 and generated.shape == (2, 28, 28, 1)
