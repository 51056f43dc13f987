"""The paper's two objectives, written once for every model.

A model hands out, for a batch of images and S samples ``z_s ~ q(z|x)`` (all
latent levels together), three ``[S, B]`` tensors (``LogTerms``):
``log p(x|z_s)``, ``log p(z_s)`` and ``log q(z_s|x)``. From these:

* the ELBO with KL warm-up (paper, Eq. 2-3):
  ``E_q[log p(x|z)] - beta * E_q[log q(z|x) - log p(z)]``;
* the importance-sampled log-likelihood (paper, Sec. 5):
  ``log p(x) ~= logsumexp_s[log p(x|z_s) + log p(z_s) - log q(z_s|x)] - log S``.
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


def importance_sampled_log_likelihood(log_terms_fn, num_samples, chunk_size):
    """``log p(x) ~= logsumexp_s log w_s - log S`` per image, shape ``[B]``.

    ``log_terms_fn(n)`` returns the ``LogTerms`` of ``n`` fresh samples for the
    same batch of images. Samples are drawn in equal chunks of at most
    ``chunk_size`` (the few surplus samples of the last chunk are dropped), so
    memory does not grow with ``num_samples``. Whatever ``log_terms_fn`` closes
    over (the prior's distribution, with its encoded pseudo-inputs) is computed
    once, not once per chunk. ``num_samples`` and ``chunk_size`` may be Python
    ints or int32 scalar tensors (a serving signature's inputs).
    """
    if isinstance(num_samples, int) and num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    num_samples = tf.convert_to_tensor(num_samples, tf.int32)
    tf.debugging.assert_positive(num_samples, message="num_samples must be >= 1")
    chunk_size = tf.minimum(tf.convert_to_tensor(chunk_size, tf.int32), num_samples)
    num_chunks = (num_samples + chunk_size - 1) // chunk_size
    chunk_size = (num_samples + num_chunks - 1) // num_chunks
    chunks = tf.map_fn(
        lambda _: log_importance_weights(log_terms_fn(chunk_size)),
        tf.range(num_chunks),
        fn_output_signature=tf.TensorSpec(None, tf.float32),
        parallel_iterations=1,
    )  # [num_chunks, chunk_size, B]
    log_weights = tf.reshape(chunks, [num_chunks * chunk_size, -1])[:num_samples]  # [S, B]
    return tf.reduce_logsumexp(log_weights, axis=0) - tf.math.log(tf.cast(num_samples, tf.float32))
