"""Per-run diagnostics of a trained model's latent space and of its test
log-likelihoods, for the supplementary material's claims: larger posterior
variances with the VampPrior (8.3) and fewer hard examples in the lower tail
of the test log-likelihoods (8.4.3).

Per latent layer (``z`` of a VAE; ``z2``, the top, and ``z1`` of an HVAE):

* **active units** (Burda et al., 2016; ``tfvamp.monitoring.active_units``):
  the dimensions ``u`` with ``Cov_x(E_q[z_u | x]) > 0.01``, the variance over
  the images of the posterior mean;
* the **mean posterior variance**: ``Var_q[z_u | x]`` averaged over the
  dimensions and the images;
* the **KL**: ``E_q[log q(z_l | x, z_above) - log p(z_l | z_above)]`` per image,
  averaged (the ELBO's KL split by layer; their sum is the ELBO's KL).

For ``z1`` of an HVAE, ``q(z1 | x) = E_{q(z2|x)} q(z1 | x, z2)`` is a mixture:
its mean and variance are estimated from ``num_samples`` draws of ``z2`` by the
law of total variance, ``Var[z1|x] = E[Var(z1|x,z2)] + Var(E[z1|x,z2])``.
"""
import numpy as np
import tensorflow as tf

from tfvamp import monitoring
from tfvamp.models import HVAE, VAE
from tfvamp.models.base import map_rows
from tfvamp.gaussians import diagonal_gaussian
from tfvamp.posteriors import posterior_moments

QUANTILES = (0.01, 0.05)


def layer_samples(model, x, prior, num_samples):
    """For a batch ``x`` and S draws from the model's posterior (drawn as its
    ``log_terms`` draws them, so under the same ``sampling_seed`` they are
    the same samples): ``{layer: (mean, variance, kl)}``, the posterior's
    mean and variance per dimension (``[S, B, d]``, given the layers above)
    and ``log q - log p`` of the layer (``[S, B]``). A VAE's layer is ``z``;
    an HVAE's (also the convHVAE and PixelHVAE) ``z2`` and ``z1``."""
    if isinstance(model, HVAE):
        q_z2 = diagonal_gaussian(*model.q_z2(x))
        z2 = q_z2.sample(num_samples, seed=model.next_seed())  # [S, B, d]
        features = model.q_z1_features(x)
        features = tf.broadcast_to(features, tf.concat([[num_samples], tf.shape(features)], 0))
        q_z1_mean, q_z1_log_variance = map_rows(lambda f, z2: model.q_z1([f, z2]), features, z2)
        q_z1 = diagonal_gaussian(q_z1_mean, q_z1_log_variance)
        z1 = q_z1.sample(seed=model.next_seed())
        p_z1 = diagonal_gaussian(*map_rows(model.p_z1, z2))
        z2_mean, z2_log_variance = posterior_moments(q_z2)
        shape = tf.shape(z2)
        return {
            "z2": (tf.broadcast_to(z2_mean, shape), tf.broadcast_to(tf.exp(z2_log_variance), shape),
                   q_z2.log_prob(z2) - prior.log_prob(z2)),
            "z1": (tf.cast(q_z1_mean, tf.float32), tf.exp(tf.cast(q_z1_log_variance, tf.float32)),
                   q_z1.log_prob(z1) - p_z1.log_prob(z1)),
        }
    if isinstance(model, VAE):
        posterior = model.posterior(x)
        z = posterior.sample(num_samples, seed=model.next_seed())
        mean, log_variance = posterior_moments(posterior)
        shape = tf.shape(z)
        return {"z": (tf.broadcast_to(mean, shape), tf.broadcast_to(tf.exp(log_variance), shape),
                      posterior.log_prob(z) - prior.log_prob(z))}
    raise TypeError(f"Latent diagnostics need a VAE or an HVAE, got {type(model).__name__}")


def per_image_layers(model, images, num_samples=10, batch_size=100, seed=0):
    """Per image and layer (``{layer: {name: array}}``): ``mean`` and
    ``variance`` (``[N, d]``), the posterior's mean ``E_q[z | x]`` and
    variance ``Var_q[z | x]`` per dimension, and ``kl`` (``[N]``), the
    layer's KL estimated from ``num_samples`` draws (batch ``i`` drawn with
    the stateless seed ``fold_in([0, seed], i)``)."""
    prior = model.prior_distribution()  # the VampPrior: K pseudo-inputs encoded once

    @tf.function
    def batch_moments(x, batch_seed):
        with model.sampling_seed(batch_seed):
            layers = layer_samples(model, x, prior, num_samples)
        moments = {}
        for name, (mean, variance, kl) in layers.items():
            mean, variance = tf.cast(mean, tf.float64), tf.cast(variance, tf.float64)
            moments[name] = {
                "mean": tf.reduce_mean(mean, 0),
                # total variance: E[Var(z|x, above)] + Var(E[z|x, above]) over the S draws
                "variance": tf.reduce_mean(variance, 0) + tf.math.reduce_variance(mean, 0),
                "kl": tf.reduce_mean(tf.cast(kl, tf.float64), 0),
            }
        return moments

    images = np.asarray(images, np.float32)
    base = tf.constant([0, int(seed)], tf.int32)
    batches = [batch_moments(tf.constant(images[begin:begin + batch_size]),
                             tf.random.experimental.stateless_fold_in(base, i))
               for i, begin in enumerate(range(0, len(images), batch_size))]
    return {name: {key: np.concatenate([batch[name][key].numpy() for batch in batches])
                   for key in batches[0][name]}
            for name in batches[0]}


def summarise_layers(layers, threshold=monitoring.ACTIVE_UNIT_THRESHOLD):
    """``per_image_layers``' arrays summarised per layer: ``active_units``
    (``tfvamp.monitoring.active_units`` of the posterior means),
    ``latent_dim``, ``mean_posterior_variance`` and ``kl`` (means over the
    images)."""
    summary = {}
    for name, values in layers.items():
        summary[name] = {
            "active_units": monitoring.active_units(values["mean"], threshold),
            "latent_dim": int(values["mean"].shape[1]),
            "mean_posterior_variance": float(np.mean(values["variance"])),
            "kl": float(np.mean(values["kl"])),
        }
    return summary


def log_likelihood_quantiles(log_likelihoods, quantiles=QUANTILES):
    """The lower-tail quantiles of per-image test log-likelihoods, as
    ``{"q0.01": ..., "q0.05": ...}`` (NumPy's linear interpolation)."""
    values = np.quantile(np.asarray(log_likelihoods, np.float64), quantiles)
    return {f"q{q:g}": float(v) for q, v in zip(quantiles, values)}


def run_diagnostics(model, images, log_likelihoods, num_samples=10, batch_size=100, seed=0):
    """A run's diagnostics as a JSON-able dict: ``layers`` (``summarise_layers``
    of ``per_image_layers`` of the test ``images``) and
    ``log_likelihood_quantiles`` of their per-image ``log_likelihoods``."""
    return {
        "layers": summarise_layers(per_image_layers(model, images, num_samples, batch_size, seed)),
        "log_likelihood_quantiles": log_likelihood_quantiles(log_likelihoods),
        "diagnostic_samples": int(num_samples),
    }
