"""Gated layers of the paper (Dauphin et al., 2017), used by every model.

A gated layer computes ``h = act(x W + b) * sigmoid(x V + c)``. Both affine maps
are computed by one kernel of twice the width, so a gated layer costs one matmul
(or one convolution), not two.
"""
import keras
from keras import ops


def hardtanh(x, min_value, max_value):
    """The paper's hardtanh: clips ``x`` to ``[min_value, max_value]``."""
    return ops.clip(x, min_value, max_value)


@keras.saving.register_keras_serializable(package="tfvamp")
class GatedDense(keras.layers.Layer):
    """Gated dense layer: ``h = act(x W + b) * sigmoid(x V + c)``."""

    def __init__(self, units, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.activation = keras.activations.get(activation)
        self.dense = keras.layers.Dense(2 * self.units, name="dense")

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
        )
        return config


@keras.saving.register_keras_serializable(package="tfvamp")
class DiagonalGaussianHead(keras.layers.Layer):
    """Mean and log-variance of a diagonal Gaussian from features.

    The log-variance is bounded by hardtanh(-6, 2), as in the paper's models.
    """

    def __init__(self, latent_dim, min_log_variance=-6.0, max_log_variance=2.0, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = int(latent_dim)
        self.min_log_variance = float(min_log_variance)
        self.max_log_variance = float(max_log_variance)
        self.mean = keras.layers.Dense(self.latent_dim, name="mean")
        self.log_variance = keras.layers.Dense(self.latent_dim, name="log_variance")

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
        )
        return config
