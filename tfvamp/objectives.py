"""The paper's two objectives, written once for every model.

A model hands out, for a batch of images and S samples ``z_s ~ q(z|x)`` (all
latent levels together), three ``[S, B]`` tensors (``LogTerms``):
``log p(x|z_s)``, ``log p(z_s)`` and ``log q(z_s|x)``. From these:

* the ELBO with KL warm-up (paper, Eq. 2-3):
  ``E_q[log p(x|z)] - beta * E_q[log q(z|x) - log p(z)]``;
* the importance-sampled log-likelihood (paper, Sec. 4):
  ``log p(x) ~= logsumexp_s[log p(x|z_s) + log p(z_s) - log q(z_s|x)] - log S``,
  with its Monte Carlo standard error and effective sample size
  (``importance_sampling_statistics``) and its estimated bias
  (``importance_sampling_bias``).
"""
from typing import NamedTuple

import tensorflow as tf


class LogTerms(NamedTuple):
    """Per-sample log-densities, each of shape ``[S, B]``."""

    log_likelihood: tf.Tensor  # log p(x | z_s)
    log_prior: tf.Tensor  # log p(z_s), every latent level
    log_posterior: tf.Tensor  # log q(z_s | x), every latent level


class ElboTerms(NamedTuple):
    """Per-image parts of the negative ELBO, each of shape ``[B]``."""

    loss: tf.Tensor  # reconstruction + beta * kl
    reconstruction: tf.Tensor  # -E_q[log p(x|z)]
    kl: tf.Tensor  # E_q[log q(z|x) - log p(z)], a single-sample KL estimate


def negative_elbo(terms: LogTerms, beta=1.0) -> ElboTerms:
    """The negative ELBO per image, averaged over the S samples (Eq. 2-3)."""
    reconstruction = -tf.reduce_mean(terms.log_likelihood, axis=0)
    kl = tf.reduce_mean(terms.log_posterior - terms.log_prior, axis=0)
    return ElboTerms(reconstruction + beta * kl, reconstruction, kl)


def log_importance_weights(terms: LogTerms) -> tf.Tensor:
    """``log p(x, z_s) - log q(z_s | x)``, shape ``[S, B]``."""
    return terms.log_likelihood + terms.log_prior - terms.log_posterior


class ISEstimate(NamedTuple):
    """The importance-sampled estimate per image, each of shape ``[B]``."""

    log_likelihood: tf.Tensor  # log of the mean importance weight, log p(x) estimated
    standard_error: tf.Tensor  # its Monte Carlo standard error (delta method)
    effective_sample_size: tf.Tensor  # (sum_s w_s)^2 / sum_s w_s^2, between 1 and S
    elbo: ElboTerms  # the negative ELBO averaged over the same S samples


def importance_sampling_statistics(log_weights):
    """``log mean_s w_s``, its standard error and the effective sample size,
    from ``log w_s`` of shape ``[S, B]``, all in log space.

    With normalised weights ``v_s = w_s / sum_t w_t`` (``sum_s v_s = 1``),
    the effective sample size is ``ESS = 1 / sum_s v_s^2``. The estimate
    ``log(mean w)`` has, by the delta method, the variance
    ``Var(mean w) / (mean w)^2 = var(w) / (S (mean w)^2)``; with the
    unbiased sample variance ``var(w) = (sum_s w_s^2 - S (mean w)^2) / (S - 1)``
    and ``sum_s w_s^2 / (S (mean w)^2) = S sum_s v_s^2`` this is

        se^2 = (S sum_s v_s^2 - 1) / (S - 1) = (S / ESS - 1) / (S - 1),

    computed from ``logsumexp(2 log w) - 2 logsumexp(log w) = log sum_s v_s^2``
    without forming any ``w_s``. It describes the spread of the estimate over
    repeated draws of the S samples (and its bias, ``importance_sampling_bias``); like
    the estimate, it is itself noisy when a few weights dominate (small ESS).
    With ``S = 1`` the standard error is undefined: NaN.
    """
    log_weights = tf.convert_to_tensor(log_weights, tf.float32)
    num_samples = tf.cast(tf.shape(log_weights)[0], tf.float32)
    log_sum = tf.reduce_logsumexp(log_weights, axis=0)
    log_sum_of_squares = tf.reduce_logsumexp(2.0 * log_weights, axis=0) - 2.0 * log_sum  # log sum v^2
    effective_sample_size = tf.exp(-log_sum_of_squares)
    variance = tf.maximum(num_samples * tf.exp(log_sum_of_squares) - 1.0, 0.0) / (num_samples - 1.0)
    return log_sum - tf.math.log(num_samples), tf.sqrt(variance), effective_sample_size


def importance_sampling_bias(standard_error):
    """The estimated bias of ``log(mean_s w_s)`` as an estimate of ``log p(x)``,
    from its standard error ``se`` (``importance_sampling_statistics``), per image.

    The log of an unbiased mean is biased low (Jensen); to second order (delta
    method) ``E[log mean w] - log E[w] ~= -Var(w) / (2 S (E w)^2) = -se^2 / 2``,
    here with the sample variance of the same S weights that gave ``se``, so
    nothing more is stored. Like ``se``, it is an estimate from those weights:
    at a small effective sample size (a few weights dominate, the variance is
    underestimated and the higher-order terms are not small) the true bias is
    larger, and ``-se^2 / 2`` is a lower bound on its size. NaN where ``se`` is
    (S = 1). Works on NumPy arrays and tensors alike.
    """
    return -0.5 * standard_error ** 2


def importance_sampled_estimate(log_terms_fn, num_samples, chunk_size) -> ISEstimate:
    """``log p(x) ~= logsumexp_s log w_s - log S`` per image, with its Monte
    Carlo standard error, effective sample size and the S-sample ELBO.

    ``log_terms_fn(n, chunk)`` returns the ``LogTerms`` of ``n`` fresh samples
    for the same batch of images; ``chunk`` (an int32 scalar tensor, 0, 1, ...)
    says which chunk they are, for a caller that seeds each chunk. Samples are
    drawn in equal chunks of at most ``chunk_size`` (the few surplus samples of
    the last chunk are dropped), so memory does not grow with ``num_samples``.
    Whatever ``log_terms_fn`` closes over (the prior's distribution, with its
    encoded pseudo-inputs) is computed once, not once per chunk.
    ``num_samples`` and ``chunk_size`` may be Python ints or int32 scalar
    tensors (a serving signature's inputs).
    """
    if isinstance(num_samples, int) and num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    num_samples = tf.convert_to_tensor(num_samples, tf.int32)
    tf.debugging.assert_positive(num_samples, message="num_samples must be >= 1")
    chunk_size = tf.minimum(tf.convert_to_tensor(chunk_size, tf.int32), num_samples)
    num_chunks = (num_samples + chunk_size - 1) // chunk_size
    chunk_size = (num_samples + num_chunks - 1) // num_chunks
    def chunk_terms(chunk):  # each [chunk_size, B]
        terms = log_terms_fn(chunk_size, chunk)
        shape = tf.shape(log_importance_weights(terms))
        return LogTerms(*(tf.broadcast_to(t, shape) for t in terms))

    spec = tf.TensorSpec(None, tf.float32)
    chunks = tf.map_fn(
        chunk_terms,
        tf.range(num_chunks),
        fn_output_signature=LogTerms(spec, spec, spec),
        parallel_iterations=1,
    )  # each [num_chunks, chunk_size, B]
    terms = LogTerms(*(tf.reshape(t, [num_chunks * chunk_size, -1])[:num_samples] for t in chunks))
    statistics = importance_sampling_statistics(log_importance_weights(terms))  # from [S, B]
    return ISEstimate(*statistics, elbo=negative_elbo(terms))


def importance_sampled_log_likelihood(log_terms_fn, num_samples, chunk_size):
    """The estimate of ``importance_sampled_estimate`` alone (``[B]``), for a
    ``log_terms_fn(n)`` of the sample count only."""
    return importance_sampled_estimate(
        lambda n, chunk: log_terms_fn(n), num_samples, chunk_size).log_likelihood
