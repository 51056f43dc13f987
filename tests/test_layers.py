import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvamp.layers import DiagonalGaussianHead, GatedConv2D, GatedDense, MaskedConv2D


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


def test_gated_conv_is_value_times_sigmoid_gate_and_keeps_odd_shapes():
    layer = GatedConv2D(4, 3, strides=2, activation="tanh")
    x = np.random.default_rng(2).normal(size=(2, 28, 20, 3)).astype("float32")
    out = layer(x).numpy()
    assert out.shape == (2, 14, 10, 4)
    value, gate = np.split(layer.conv(x).numpy(), 2, axis=-1)
    np.testing.assert_allclose(out, np.tanh(value) / (1 + np.exp(-gate)), rtol=1e-5, atol=1e-6)
    clone = GatedConv2D.from_config(layer.get_config())
    assert (clone.filters, clone.kernel_size, clone.strides) == (4, 3, 2)


def test_masked_conv_config_round_trip_and_bad_mask():
    layer = MaskedConv2D(5, 3, "B", use_bias=False, name="m")
    clone = MaskedConv2D.from_config(layer.get_config())
    assert (clone.filters, clone.kernel_size, clone.mask_type, clone.use_bias) == (5, 3, "B", False)
    with pytest.raises(ValueError, match="'A' or 'B'"):
        MaskedConv2D(5, 3, "C")
    with pytest.raises(ValueError, match="odd"):
        MaskedConv2D(5, 4, "A")


def _outputs_at_each_pixel_after_changing(mask_types, change_future):
    """For every pixel i (raster order) of a 5x4 image: the stack's output at i
    on the image, and on a copy whose pixels >= i (``change_future``) or < i
    are replaced by fresh noise."""
    height, width, channels = 5, 4, 2
    rng = np.random.default_rng(3)
    layers = [MaskedConv2D(6, 3, t) for t in mask_types]

    def stack(x):
        for layer in layers:
            x = tf.tanh(layer(x))
        return x.numpy()

    x = rng.normal(size=(1, height, width, channels)).astype("float32")
    num_pixels = height * width
    order = np.arange(num_pixels).reshape(height, width)
    future = (order[None] >= np.arange(num_pixels)[:, None, None])[..., None]  # [i, H, W, 1]
    changed = future if change_future else ~future
    fresh = rng.normal(size=(num_pixels, height, width, channels)).astype("float32")
    perturbed = stack(np.where(changed, fresh, x))
    original = stack(x)[0]
    rows, cols = np.divmod(np.arange(num_pixels), width)
    return original[rows, cols], perturbed[np.arange(num_pixels), rows, cols]


@pytest.mark.parametrize("mask_types", [("A",), ("A", "B", "B")])
def test_masked_convolutions_are_causal(mask_types):
    """Output at pixel i ignores input pixels >= i, and depends on pixels < i."""
    original, perturbed = _outputs_at_each_pixel_after_changing(mask_types, change_future=True)
    np.testing.assert_allclose(perturbed, original, atol=1e-6)
    original, perturbed = _outputs_at_each_pixel_after_changing(mask_types, change_future=False)
    differs = np.abs(perturbed - original).max(axis=-1) > 1e-4
    assert differs[1:].all()  # pixel 0 has no past


def test_mask_b_alone_sees_the_current_pixel():
    original, perturbed = _outputs_at_each_pixel_after_changing(("B",), change_future=True)
    assert (np.abs(perturbed - original).max(axis=-1) > 1e-4).all()


def test_kernel_initializer_scope_sets_the_dense_kernels_and_is_saved():
    from tfvamp.layers import DiagonalGaussianHead, GatedDense, kernel_initializer_scope

    with kernel_initializer_scope("he_normal"):
        gated = GatedDense(300)
        head = DiagonalGaussianHead(40)
    default = GatedDense(300)
    gated.build((None, 784))
    head.build((None, 784))
    default.build((None, 784))
    he_std = np.sqrt(2.0 / 784)  # the authors' he_init: N(0, 2 / fan_in)
    assert abs(np.std(gated.dense.kernel.numpy()) - he_std) < 0.05 * he_std
    assert abs(np.std(head.mean.kernel.numpy()) - he_std) < 0.1 * he_std
    glorot_std = np.sqrt(2.0 / (784 + 600))
    assert abs(np.std(default.dense.kernel.numpy()) - glorot_std) < 0.05 * glorot_std
    rebuilt = GatedDense.from_config(gated.get_config())
    rebuilt.build((None, 784))
    assert abs(np.std(rebuilt.dense.kernel.numpy()) - he_std) < 0.05 * he_std
    with pytest.raises(ValueError):
        with kernel_initializer_scope("no_such_initializer"):
            pass


def test_models_initialise_their_dense_kernels_as_asked():
    from tfvamp.models import VAE

    he = VAE((28, 28, 1), prior="standard", kernel_initializer="he_normal", seed=0)
    glorot = VAE((28, 28, 1), prior="standard", seed=0)
    first = lambda model: model.encoder.get_layer("gated_dense_1").dense.kernel.numpy()
    assert abs(np.std(first(he)) - np.sqrt(2.0 / 784)) < 0.05 * np.sqrt(2.0 / 784)
    assert abs(np.std(first(glorot)) - np.sqrt(2.0 / 1384)) < 0.05 * np.sqrt(2.0 / 1384)
    assert VAE.from_config(he.get_config()).kernel_initializer == "he_normal"
