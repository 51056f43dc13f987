"""Keras' own VAE example, with its N(0, I) prior swapped for the VampPrior.

The model below is the VAE of Keras' code examples ("Variational AutoEncoder",
keras.io/examples/generative/vae) as people already have it: an encoder
returning ``[z_mean, z_log_var, z]``, a decoder ending in a sigmoid, its own
``train_step`` with ``binary_crossentropy``, and ``get_config``/``from_config``
written as Keras' serialization guide writes them. The VampPrior changes four
lines, marked ``# VampPrior``: the prior is built on the encoder itself, and
the closed-form KL to N(0, I) becomes the one-sample estimate
``log q(z|x) - log p(z)`` (the VampPrior has no closed-form KL).

It trains on Caltech 101 Silhouettes (28x28 binary, embedded in tfvamp), then
saves the model as a ``.keras`` file and reloads it: the prior's density is
the same and the reloaded prior shares the reloaded model's encoder.

    python examples/keras_vae_to_vampprior.py
"""
import os
import sys
import tempfile

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

import tfvamp

LATENT_DIM = 2


@keras.saving.register_keras_serializable(package="example")
class Sampling(layers.Layer):
    """Uses (z_mean, z_log_var) to sample z, the vector encoding a digit."""

    def call(self, inputs):
        z_mean, z_log_var = inputs
        epsilon = keras.random.normal(shape=ops.shape(z_mean))
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


def make_encoder():
    encoder_inputs = keras.Input(shape=(28, 28, 1))
    x = layers.Conv2D(32, 3, activation="relu", strides=2, padding="same")(encoder_inputs)
    x = layers.Conv2D(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(16, activation="relu")(x)
    z_mean = layers.Dense(LATENT_DIM, name="z_mean")(x)
    z_log_var = layers.Dense(LATENT_DIM, name="z_log_var")(x)
    z = Sampling()([z_mean, z_log_var])
    return keras.Model(encoder_inputs, [z_mean, z_log_var, z], name="encoder")


def make_decoder():
    latent_inputs = keras.Input(shape=(LATENT_DIM,))
    x = layers.Dense(7 * 7 * 64, activation="relu")(latent_inputs)
    x = layers.Reshape((7, 7, 64))(x)
    x = layers.Conv2DTranspose(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Conv2DTranspose(32, 3, activation="relu", strides=2, padding="same")(x)
    decoder_outputs = layers.Conv2DTranspose(1, 3, activation="sigmoid", padding="same")(x)
    return keras.Model(latent_inputs, decoder_outputs, name="decoder")


@keras.saving.register_keras_serializable(package="example")
class VAE(keras.Model):
    def __init__(self, encoder, decoder, prior=None, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.prior = prior or tfvamp.VampPrior(encoder, (28, 28, 1), num_components=50,  # VampPrior
                                               init_mean=0.5, init_std=0.02)
        self.total_loss_tracker = keras.metrics.Mean(name="total_loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def train_step(self, data):
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data)
            reconstruction = self.decoder(z)
            reconstruction_loss = ops.mean(ops.sum(
                keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2)))
            posterior = tfvamp.diagonal_gaussian(z_mean, z_log_var)  # VampPrior
            kl_loss = ops.mean(posterior.log_prob(z) - self.prior.distribution().log_prob(z))  # VampPrior
            total_loss = reconstruction_loss + kl_loss
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.total_loss_tracker.update_state(total_loss)
        self.reconstruction_loss_tracker.update_state(reconstruction_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        return {m.name: m.result() for m in self.metrics}

    def call(self, data):
        return self.decoder(self.encoder(data)[2])

    def get_config(self):
        return {**super().get_config(),
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "decoder": keras.saving.serialize_keras_object(self.decoder),
                "prior": keras.saving.serialize_keras_object(self.prior)}  # VampPrior

    @classmethod
    def from_config(cls, config):
        encoder = keras.saving.deserialize_keras_object(config.pop("encoder"))
        decoder = keras.saving.deserialize_keras_object(config.pop("decoder"))
        prior = keras.saving.deserialize_keras_object(config.pop("prior"))  # VampPrior
        return cls(encoder, decoder, prior, **config)


def main(epochs=5, batch_size=128, directory=None):
    """Trains, saves and reloads; returns the last epoch's total loss."""
    images = tfvamp.datasets.load_dataset("caltech").train
    vae = VAE(make_encoder(), make_decoder())
    vae.compile(optimizer=keras.optimizers.Adam())
    history = vae.fit(images, epochs=epochs, batch_size=batch_size, verbose=2)
    path = os.path.join(directory or tempfile.mkdtemp(), "keras_vae_vampprior.keras")
    vae.save(path)
    restored = keras.models.load_model(path)
    z = np.random.default_rng(0).normal(size=(100, LATENT_DIM)).astype("float32")
    same = np.allclose(restored.prior.distribution().log_prob(z),
                       vae.prior.distribution().log_prob(z), rtol=1e-6)
    print(f"saved to {path} and reloaded: same log p(z) {same}, "
          f"encoder shared {restored.prior.encoder is restored.encoder}")
    return history.history["total_loss"][-1]


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
