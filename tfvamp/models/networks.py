"""The paper's networks, as small Keras functional models.

Encoders map inputs to ``(mean, log_variance)`` of a diagonal Gaussian;
decoders map latents to the likelihood's parameters, ``[B, H, W, C, P]``.
"""
import keras
import numpy as np

from tfvamp.layers import DiagonalGaussianHead, GatedDense


def gated_mlp_encoder(input_shape, latent_dim, hidden_units=300, name="encoder"):
    """``q(z|x)``: x -> GatedDense(300) -> GatedDense(300) -> (mean, log-variance)."""
    images = keras.Input(shape=input_shape, name="images")
    h = keras.layers.Flatten()(images)
    h = GatedDense(hidden_units, name="gated_dense_1")(h)
    h = GatedDense(hidden_units, name="gated_dense_2")(h)
    mean, log_variance = DiagonalGaussianHead(latent_dim, name="gaussian")(h)
    return keras.Model(images, [mean, log_variance], name=name)


def gated_mlp_decoder(latent_dim, output_shape, num_params, hidden_units=300, name="decoder"):
    """``p(x|z)``: z -> GatedDense(300) -> GatedDense(300) -> likelihood parameters."""
    latents = keras.Input(shape=(latent_dim,), name="latents")
    h = GatedDense(hidden_units, name="gated_dense_1")(latents)
    h = GatedDense(hidden_units, name="gated_dense_2")(h)
    h = keras.layers.Dense(int(np.prod(output_shape)) * num_params, name="params")(h)
    params = keras.layers.Reshape(tuple(output_shape) + (num_params,))(h)
    return keras.Model(latents, params, name=name)
