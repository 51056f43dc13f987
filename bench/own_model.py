"""Train-step times of issue 24, each pair measured in one run, taking turns
epoch by epoch so that both share the machine's load:

* the paper's VAE + VampPrior (K=500, Caltech 101 Silhouettes, batch 100,
  Adam, XLA, the ``tf.data`` pipeline of ``trainers``) with the library's
  input checks on (``check_inputs = True``, the default: static shape checks,
  the finiteness check in the input pipeline, the non-finite-loss stop)
  against off;
* a VampPrior over full-covariance posteriors (an encoder returning
  ``tfd.MultivariateNormalTriL``) against the same model with diagonal ones
  (``tfd.MultivariateNormalDiag``, the ``DiagonalGaussianMixture`` path):
  Dense(300) encoder and decoder, latent_dim 40, K=500.

A step's time is the wall time between consecutive ends of training batches
(data fetch included), median over every epoch after the first of each
configuration.

    PYTHONPATH=. python bench/own_model.py [--rounds=4]
"""
import argparse
import json
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_probability as tfp  # noqa: E402

import tfvamp  # noqa: E402

tfd = tfp.distributions


class StepTimes(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append([])
        self.last = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        self.epochs[-1].append(now - self.last)
        self.last = now


@keras.saving.register_keras_serializable(package="bench")
class GaussianEncoder(keras.Model):
    def __init__(self, latent_dim, full_covariance, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim, self.full_covariance = latent_dim, full_covariance
        self.flatten = keras.layers.Flatten()
        self.hidden = keras.layers.Dense(300, activation="relu")
        self.loc = keras.layers.Dense(latent_dim)
        self.scale = keras.layers.Dense(latent_dim * (latent_dim + 1) // 2 if full_covariance
                                        else latent_dim)

    def call(self, x):
        h = self.hidden(self.flatten(x))
        if self.full_covariance:
            tril = tfp.bijectors.FillScaleTriL(diag_shift=1e-4).forward(self.scale(h))
            return tfd.MultivariateNormalTriL(self.loc(h), tril)
        return tfd.MultivariateNormalDiag(self.loc(h), tf.nn.softplus(self.scale(h)) + 1e-4)


def posterior_model(full_covariance, latent_dim=40, num_components=500):
    encoder = GaussianEncoder(latent_dim, full_covariance)
    latents = keras.Input((latent_dim,))
    h = keras.layers.Dense(300, activation="relu")(latents)
    decoder = keras.Model(latents, keras.layers.Reshape((28, 28, 1))(keras.layers.Dense(784)(h)))
    return tfvamp.VAE((28, 28, 1), encoder=encoder, decoder=decoder, num_components=num_components,
                      prior=tfvamp.VampPrior(encoder, (28, 28, 1), num_components=num_components),
                      seed=0)


def compare(configurations, data, rounds):
    """``{name: median step seconds}``: every configuration trains one epoch
    per round, in turn; ``configurations``: name -> (model, before_epoch)."""
    timers = {name: StepTimes() for name in configurations}
    for _ in range(rounds + 1):
        for name, (model, before_epoch) in configurations.items():
            before_epoch(model)
            model.fit(data.pipeline("train", 100, shuffle=True, seed=0), epochs=1, verbose=0,
                      shuffle=False, callbacks=[timers[name]])
    return {name: float(np.median(np.concatenate(t.epochs[1:]))) for name, t in timers.items()}


def set_checks(on):
    def before_epoch(model):
        model.check_inputs = on
    return before_epoch


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    data = tfvamp.datasets.load_dataset("caltech")
    models = {}
    for name in ("checks_on", "checks_off"):
        keras.utils.set_random_seed(0)
        model = tfvamp.VAE((28, 28, 1), prior="vamp", num_components=500, seed=0)
        model.compile(optimizer=keras.optimizers.Adam(5e-4), jit_compile=True)
        models[name] = (model, set_checks(name == "checks_on"))
    checks = compare(models, data, args.rounds)
    families = {}
    for name in ("full_covariance", "diagonal"):
        keras.utils.set_random_seed(0)
        model = posterior_model(name == "full_covariance")
        model.compile(optimizer=keras.optimizers.Adam(5e-4))
        families[name] = (model, set_checks(True))
    posterior = compare(families, data, args.rounds)
    result = {
        "cpu": platform.processor() or platform.machine(),
        "load_average": os.getloadavg(),
        "step_ms": {k: 1e3 * v for k, v in {**checks, **posterior}.items()},
        "checks_on/off": checks["checks_on"] / checks["checks_off"],
        "full_covariance/diagonal": posterior["full_covariance"] / posterior["diagonal"],
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
