"""A VampPrior over full-covariance posteriors.

The encoder returns q(z|x) as a ``tfd.MultivariateNormalTriL`` (TFP's way of
writing a Gaussian with a full covariance); the VampPrior is then the
``tfd.MixtureSameFamily`` of the encoder's K full-covariance Gaussians at the
pseudo-inputs (``FullCovarianceGaussianMixture``, its density one float64
matmul), and ``tfvamp.VAE`` trains it on the ELBO and evaluates the
importance-sampled log-likelihood with the encoder's own ``log_prob``. The
same model with a diagonal ``tfd.MultivariateNormalDiag`` encoder is trained
next to it on Caltech 101 Silhouettes (embedded in tfvamp), and both are
saved and reloaded.

    python examples/full_covariance_vampprior.py
"""
import os
import sys
import tempfile

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

import tfvamp

tfd = tfp.distributions
LATENT_DIM = 8


@keras.saving.register_keras_serializable(package="example")
class GaussianEncoder(keras.Model):
    """x -> Dense(300) -> q(z|x): full covariance (``MultivariateNormalTriL``,
    the Cholesky factor through ``FillScaleTriL``) or diagonal."""

    def __init__(self, full_covariance=True, **kwargs):
        super().__init__(**kwargs)
        self.full_covariance = full_covariance
        self.flatten = keras.layers.Flatten()
        self.hidden = keras.layers.Dense(300, activation="relu")
        self.loc = keras.layers.Dense(LATENT_DIM)
        num_scale = LATENT_DIM * (LATENT_DIM + 1) // 2 if full_covariance else LATENT_DIM
        self.scale = keras.layers.Dense(num_scale)

    def call(self, images):
        h = self.hidden(self.flatten(images))
        if self.full_covariance:
            scale_tril = tfp.bijectors.FillScaleTriL(diag_shift=1e-4).forward(self.scale(h))
            return tfd.MultivariateNormalTriL(self.loc(h), scale_tril)
        return tfd.MultivariateNormalDiag(self.loc(h), tf.nn.softplus(self.scale(h)) + 1e-4)

    def get_config(self):
        return {**super().get_config(), "full_covariance": self.full_covariance}


def make_decoder():
    latents = keras.Input((LATENT_DIM,))
    h = keras.layers.Dense(300, activation="relu")(latents)
    return keras.Model(latents, keras.layers.Reshape((28, 28, 1))(keras.layers.Dense(784)(h)))


def train(full_covariance, data, epochs, num_samples, directory):
    encoder = GaussianEncoder(full_covariance)
    prior = tfvamp.VampPrior(encoder, (28, 28, 1), num_components=100, init_mean=0.5,
                             init_std=0.02, seed=0)
    model = tfvamp.VAE((28, 28, 1), encoder=encoder, decoder=make_decoder(), prior=prior, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(data.train, batch_size=100, epochs=epochs, verbose=0,
              callbacks=[tfvamp.KLWarmUp(warmup_epochs=max(1, epochs // 2))])
    log_px = float(model.log_likelihood(data.test[:100], num_samples=num_samples).numpy().mean())
    path = os.path.join(directory, f"{'full' if full_covariance else 'diagonal'}.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    z = prior.distribution().sample(50, seed=(1, 2))
    same = np.allclose(restored.prior.distribution().log_prob(z),
                       prior.distribution().log_prob(z), rtol=1e-5)
    kind = type(prior.distribution()).__name__
    print(f"{'full-covariance' if full_covariance else 'diagonal'} posteriors ({kind}): "
          f"test log-likelihood {log_px:.1f} nats (IS, S={num_samples}, 100 images); "
          f"reloaded: same log p(z) {same}, encoder shared {restored.prior.encoder is restored.encoder}")
    return log_px


def main(epochs=10, num_samples=1000, directory=None):
    """Trains both models; returns their test log-likelihoods."""
    data = tfvamp.datasets.load_dataset("caltech")
    directory = directory or tempfile.mkdtemp()
    return {kind: train(kind == "full", data, epochs, num_samples, directory)
            for kind in ("full", "diagonal")}


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
