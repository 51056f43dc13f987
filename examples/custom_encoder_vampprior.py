"""A VampPrior in your own Keras model.

The VampPrior only needs an encoder that maps images to the mean and
log-variance of a diagonal Gaussian. Here a small user-written convolutional
encoder and decoder are trained on Caltech 101 Silhouettes with the ELBO
``E_q[log p(x|z)] - KL``, the prior term given by ``VampPrior.distribution()``.

    python examples/custom_encoder_vampprior.py
"""
import keras
import tensorflow as tf
import tensorflow_probability as tfp

import tfvamp

tfd = tfp.distributions
LATENT_DIM = 8


def my_encoder():
    images = keras.Input((28, 28, 1))
    h = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(images)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(64, activation="relu")(h)
    mean = keras.layers.Dense(LATENT_DIM)(h)
    log_variance = keras.layers.Dense(LATENT_DIM)(h)
    return keras.Model(images, [mean, log_variance])


def my_decoder():
    latents = keras.Input((LATENT_DIM,))
    h = keras.layers.Dense(64, activation="relu")(latents)
    logits = keras.layers.Reshape((28, 28, 1))(keras.layers.Dense(784)(h))
    return keras.Model(latents, logits)


class MyVAE(keras.Model):
    def __init__(self, num_pseudo_inputs=50):
        super().__init__()
        self.encoder, self.decoder = my_encoder(), my_decoder()
        self.prior = tfvamp.VampPrior(self.encoder, (28, 28, 1), LATENT_DIM,
                                      num_components=num_pseudo_inputs, init_mean=0.5, init_std=0.02)

    def call(self, x):
        mean, log_variance = self.encoder(x)
        posterior = tfd.MultivariateNormalDiag(mean, tf.exp(0.5 * log_variance))
        z = posterior.sample()
        likelihood = tfd.Independent(tfd.Bernoulli(logits=self.decoder(z)), 3)
        # one-sample ELBO; the VampPrior is a tfd.MixtureSameFamily
        elbo = likelihood.log_prob(x) + self.prior.distribution().log_prob(z) - posterior.log_prob(z)
        self.add_loss(-tf.reduce_mean(elbo))
        return z


def main(steps=300, batch_size=100):
    """Trains for ``steps`` steps; returns the validation loss before and after."""
    data = tfvamp.datasets.load_dataset("caltech")
    model = MyVAE()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    train = data.pipeline("train", batch_size, shuffle=True, seed=0).repeat()
    validation = data.pipeline("validation", 500)
    before = model.evaluate(validation, verbose=0)
    model.fit(train, steps_per_epoch=steps, epochs=1, verbose=2, shuffle=False)  # the pipeline shuffles
    after = model.evaluate(validation, verbose=0)
    print(f"validation -ELBO: {before:.1f} -> {after:.1f}")
    return before, after


if __name__ == "__main__":
    main()
