import keras
import numpy as np

from tfvamp.layers import DiagonalGaussianHead, GatedDense


def test_gated_dense_computes_value_times_sigmoid_gate():
    layer = GatedDense(3, activation="tanh")
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    out = layer(x).numpy()
    kernel, bias = [w.numpy() for w in layer.dense.weights]
    value, gate = np.split(x @ kernel + bias, 2, axis=-1)
    np.testing.assert_allclose(out, np.tanh(value) / (1 + np.exp(-gate)), rtol=1e-5, atol=1e-6)


def test_gated_dense_config_round_trip():
    layer = GatedDense(7, activation="relu", name="g")
    clone = GatedDense.from_config(layer.get_config())
    assert clone.units == 7 and clone.activation is keras.activations.relu


def test_gaussian_head_bounds_log_variance():
    head = DiagonalGaussianHead(2)
    _, log_variance = head(100.0 * np.random.default_rng(1).normal(size=(50, 8)).astype("float32"))
    assert log_variance.numpy().min() >= -6.0 and log_variance.numpy().max() <= 2.0
    assert log_variance.numpy().min() == -6.0 and log_variance.numpy().max() == 2.0
