"""The hard cases of the mixture log-density and its float64 reference, for
``tests/test_mixture_density.py`` (accuracy, asserted) and
``bench/mixture_density.py`` (accuracy and speed, measured).

A float32 expansion of the quadratic form cancels next to a component far
from the origin relative to its width: d=40, K=500 components with
log-variances down to -6 and means of scale up to 100, and points ``z``
sitting on (or between) those far, narrow components.
"""
import numpy as np
import tensorflow as tf
from scipy.special import logsumexp

LATENT, K = 40, 500


def reference_log_prob(z, loc, log_variance, log_weights=None):
    """``log sum_k w_k N(z | loc_k, diag(exp(log_variance_k)))`` in float64,
    from the differences ``z - loc_k`` ([N, K, d], no expansion); uniform
    weights unless ``log_weights`` (normalised) are given. ``z`` is [N, d]."""
    z, loc, log_variance = (np.asarray(a, np.float64) for a in (z, loc, log_variance))
    if log_weights is None:
        log_weights = np.full(loc.shape[0], -np.log(loc.shape[0]))
    rows = []
    for start in range(0, len(z), 100):
        diff = z[start:start + 100, None, :] - loc
        log_normal = -0.5 * np.sum(np.log(2 * np.pi) + log_variance + diff ** 2 * np.exp(-log_variance),
                                   axis=-1)
        rows.append(logsumexp(log_normal + log_weights, axis=-1))
    return np.concatenate(rows)


def reference_log_prob_tf(z, loc, log_variance):
    """The same reference (uniform weights) in TensorFlow, run in float64 for
    its gradients."""
    diff = z[:, None, :] - loc
    log_normal = -0.5 * tf.reduce_sum(
        np.log(2 * np.pi) + log_variance + tf.square(diff) * tf.exp(-log_variance), axis=-1)
    return tf.reduce_logsumexp(log_normal, axis=-1) - np.log(float(loc.shape[0]))


def mixture_parameters(scale, log_variances, seed=0):
    """``loc`` of scale ``scale`` and log-variances ``"uniform"`` in [-6, 2]
    or ``"all-6"`` (float32, ``[K, LATENT]``)."""
    rng = np.random.default_rng(seed)
    loc = rng.normal(scale=scale, size=(K, LATENT)).astype("float32")
    if log_variances == "all-6":
        log_variance = np.full((K, LATENT), -6.0, "float32")
    else:
        log_variance = rng.uniform(-6.0, 2.0, size=(K, LATENT)).astype("float32")
    return loc, log_variance


def points(kind, loc, log_variance, num=200, seed=1):
    """``num`` points ``z`` [num, d] (float32): drawn from the components
    themselves ("components", the hard case: each z next to one far, narrow
    component), halfway between two components plus a component's noise
    ("between": two components can share the mass), or from N(0, scale^2)
    ("elsewhere": far from every component)."""
    rng = np.random.default_rng(seed)
    first, second = rng.integers(0, K, size=(2, num))
    noise = np.exp(0.5 * log_variance[first]) * rng.normal(size=(num, LATENT))
    if kind == "components":
        z = loc[first] + noise
    elif kind == "between":
        z = 0.5 * (loc[first] + loc[second]) + noise
    else:
        z = rng.normal(scale=np.abs(loc).mean() * np.sqrt(np.pi / 2), size=(num, LATENT))
    return z.astype("float32")
