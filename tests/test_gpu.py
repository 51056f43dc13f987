"""On a GPU (``python -m pytest -m gpu``; skipped without one): the models
train with XLA and bfloat16 on the GPU and evaluate as on the CPU."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvamp.models import build_model

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not tf.config.list_physical_devices("GPU"), reason="no GPU visible"),
]


@pytest.fixture
def images():
    return (np.random.default_rng(0).uniform(size=(20, 28, 28, 1)) < 0.3).astype("float32")


@pytest.mark.parametrize("model_name", ["vae", "convhvae", "pixelhvae"])
def test_train_step_runs_on_the_gpu_with_xla_and_bfloat16(model_name, images):
    keras.utils.set_random_seed(0)
    model = build_model(model_name, input_shape=(28, 28, 1), prior="vamp", num_components=50,
                        seed=0, precision="bfloat16")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=True)
    assert "GPU" in model.trainable_variables[0].device
    losses = [model.train_on_batch(images, return_dict=True)["loss"] for _ in range(3)]
    assert np.all(np.isfinite(losses))


def test_importance_sampled_log_likelihood_on_gpu_equals_cpu(images):
    with tf.device("/CPU:0"):
        model = build_model("vae", input_shape=(28, 28, 1), prior="vamp", num_components=50, seed=0)
        prior = model.prior_distribution()
        z = prior.sample(1000, seed=(1, 2))
        on_cpu = model.prior.distribution().log_prob(z).numpy()
    with tf.device("/GPU:0"):
        on_gpu = model.prior.distribution().log_prob(z).numpy()
        estimate = model.log_likelihood(images[:4], num_samples=5000).numpy()
    np.testing.assert_allclose(on_gpu, on_cpu, rtol=1e-4, atol=1e-3)
    assert np.all(np.isfinite(estimate))
