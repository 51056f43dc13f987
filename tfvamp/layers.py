"""Layers of the paper's networks: gated dense and convolutional layers
(Dauphin et al., 2017) and PixelCNN's masked convolutions.

A gated layer computes ``h = act(x W + b) * sigmoid(x V + c)``. Both affine maps
are computed by one kernel of twice the width, so a gated layer costs one matmul
(or one convolution), not two.
"""
import contextlib

import keras
import numpy as np
from keras import ops

# Keras' default for Dense kernels; ``kernel_initializer_scope`` changes it.
_dense_kernel_initializer = ["glorot_uniform"]


@contextlib.contextmanager
def kernel_initializer_scope(initializer):
    """Inside the block, ``GatedDense``, ``DiagonalGaussianHead`` and
    ``dense_layer`` created without a ``kernel_initializer`` initialise their
    Dense kernels with ``initializer`` (a Keras initializer name, e.g.
    ``"he_normal"`` as the authors' ``he_init``; default ``"glorot_uniform"``,
    Keras' own)."""
    keras.initializers.get(initializer)  # a clear error for an unknown name
    previous = _dense_kernel_initializer[0]
    _dense_kernel_initializer[0] = initializer
    try:
        yield
    finally:
        _dense_kernel_initializer[0] = previous


def default_kernel_initializer(initializer=None):
    """``initializer``, or the one ``kernel_initializer_scope`` set."""
    return _dense_kernel_initializer[0] if initializer is None else initializer


def dense_layer(units, kernel_initializer=None, **kwargs):
    """``keras.layers.Dense`` with ``default_kernel_initializer``."""
    return keras.layers.Dense(
        units, kernel_initializer=default_kernel_initializer(kernel_initializer), **kwargs)


def hardtanh(x, min_value, max_value):
    """The paper's hardtanh: clips ``x`` to ``[min_value, max_value]``."""
    return ops.clip(x, min_value, max_value)


@keras.saving.register_keras_serializable(package="tfvamp")
class GatedDense(keras.layers.Layer):
    """Gated dense layer: ``h = act(x W + b) * sigmoid(x V + c)``."""

    def __init__(self, units, activation=None, kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = default_kernel_initializer(kernel_initializer)
        self.dense = dense_layer(2 * self.units, self.kernel_initializer, name="dense")

    def build(self, input_shape):
        self.dense.build(input_shape)

    def call(self, inputs):
        value, gate = ops.split(self.dense(inputs), 2, axis=-1)
        return self.activation(value) * ops.sigmoid(gate)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            activation=keras.activations.serialize(self.activation),
            kernel_initializer=keras.initializers.serialize(
                keras.initializers.get(self.kernel_initializer)),
        )
        return config


@keras.saving.register_keras_serializable(package="tfvamp")
class DiagonalGaussianHead(keras.layers.Layer):
    """Mean and log-variance of a diagonal Gaussian from features.

    The log-variance is bounded by hardtanh(-6, 2), as in the paper's models.
    """

    def __init__(self, latent_dim, min_log_variance=-6.0, max_log_variance=2.0,
                 kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = int(latent_dim)
        self.min_log_variance = float(min_log_variance)
        self.max_log_variance = float(max_log_variance)
        self.kernel_initializer = default_kernel_initializer(kernel_initializer)
        self.mean = dense_layer(self.latent_dim, self.kernel_initializer, name="mean")
        self.log_variance = dense_layer(self.latent_dim, self.kernel_initializer,
                                        name="log_variance")

    def build(self, input_shape):
        self.mean.build(input_shape)
        self.log_variance.build(input_shape)

    def call(self, features):
        log_variance = hardtanh(
            self.log_variance(features), self.min_log_variance, self.max_log_variance
        )
        return self.mean(features), log_variance

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape[:-1]) + (self.latent_dim,)
        return shape, shape

    def get_config(self):
        config = super().get_config()
        config.update(
            latent_dim=self.latent_dim,
            min_log_variance=self.min_log_variance,
            max_log_variance=self.max_log_variance,
            kernel_initializer=keras.initializers.serialize(
                keras.initializers.get(self.kernel_initializer)),
        )
        return config


@keras.saving.register_keras_serializable(package="tfvamp")
class GatedConv2D(keras.layers.Layer):
    """Gated convolution: ``h = act(x * W + b) * sigmoid(x * V + c)`` ('same' padding).

    The convHVAE's building block (paper, Sec. 4). Like ``GatedDense``, one
    convolution with ``2 * filters`` output channels computes both maps.
    """

    def __init__(self, filters, kernel_size, strides=1, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.strides = int(strides)
        self.activation = keras.activations.get(activation)
        self.conv = keras.layers.Conv2D(
            2 * self.filters, self.kernel_size, strides=self.strides, padding="same", name="conv"
        )

    def build(self, input_shape):
        self.conv.build(input_shape)

    def call(self, inputs):
        value, gate = ops.split(self.conv(inputs), 2, axis=-1)
        return self.activation(value) * ops.sigmoid(gate)

    def compute_output_shape(self, input_shape):
        shape = self.conv.compute_output_shape(input_shape)
        return tuple(shape[:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            activation=keras.activations.serialize(self.activation),
        )
        return config


def causal_mask(kernel_size, mask_type):
    """PixelCNN mask (van den Oord et al., 2016) of a ``k x k`` kernel, shape ``[k, k]``.

    Pixels are ordered in raster order (row by row, left to right). Mask ``"A"``
    keeps the kernel positions strictly before the centre, so a layer's output
    at pixel i sees only input pixels < i; mask ``"B"`` also keeps the centre,
    so a stack A, B, B, ... stays causal while passing each pixel's own features on.
    """
    if mask_type not in ("A", "B"):
        raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
    if kernel_size % 2 != 1:
        raise ValueError(f"A masked convolution needs an odd kernel size, got {kernel_size}")
    center = kernel_size // 2
    mask = np.zeros((kernel_size, kernel_size), np.float32)
    mask[:center, :] = 1.0
    mask[center, :center] = 1.0
    if mask_type == "B":
        mask[center, center] = 1.0
    return mask


@keras.saving.register_keras_serializable(package="tfvamp")
class MaskedConv2D(keras.layers.Layer):
    """Convolution with a causal PixelCNN mask (``"A"`` or ``"B"``), 'same' padding.

    The PixelHVAE's decoder stacks one mask-A layer and then mask-B layers
    (paper, Sec. 4). ``masked_kernel()`` is the kernel the layer applies, which
    the pixel-by-pixel sampler reuses.
    """

    def __init__(self, filters, kernel_size, mask_type, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.mask_type = mask_type
        self.use_bias = bool(use_bias)
        self.mask = causal_mask(self.kernel_size, mask_type)[:, :, None, None]

    def build(self, input_shape):
        shape = (self.kernel_size, self.kernel_size, int(input_shape[-1]), self.filters)
        self.kernel = self.add_weight(shape=shape, initializer="glorot_uniform", name="kernel")
        self.bias = (
            self.add_weight(shape=(self.filters,), initializer="zeros", name="bias")
            if self.use_bias else None
        )

    def masked_kernel(self):
        kernel = ops.convert_to_tensor(self.kernel)  # in the compute dtype inside call()
        return kernel * ops.cast(self.mask, kernel.dtype)

    def call(self, inputs):
        outputs = ops.conv(inputs, self.masked_kernel(), padding="same")
        return outputs if self.bias is None else outputs + self.bias

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            mask_type=self.mask_type,
            use_bias=self.use_bias,
        )
        return config
