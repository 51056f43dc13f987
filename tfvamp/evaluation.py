"""Test-set evaluation: importance-sampled log-likelihood and ELBO per image."""
import numpy as np
import tensorflow as tf

from tfvamp.objectives import negative_elbo


def evaluate(model, images, num_samples=5000, batch_size=100, chunk_size=None, progress=None):
    """Evaluates ``model`` on ``images`` (``[N, H, W, C]``).

    The prior (for the VampPrior: the encoded pseudo-inputs) is computed once
    for the whole evaluation. Returns a dict with the per-image
    ``log_likelihood`` (IS estimate with ``num_samples`` samples, nats) and
    ``elbo``, ``reconstruction`` and ``kl`` per image (single-sample, beta = 1),
    and their means ``mean_*``. ``chunk_size`` samples per image are drawn at
    a time (default: the model's ``rows_per_chunk / batch_size``).
    ``progress(done, total)``, if given, is called with the number of images
    evaluated after every batch.
    """
    evaluate_batch = make_batch_evaluator(model, num_samples, chunk_size)
    prior = model.prior_distribution()
    outputs = [[], [], [], []]
    for start in range(0, len(images), batch_size):
        x = tf.constant(images[start:start + batch_size], tf.float32)
        for output, value in zip(outputs, evaluate_batch(x, prior)):
            output.append(value.numpy())
        if progress is not None:
            progress(min(start + batch_size, len(images)), len(images))
    names = ("log_likelihood", "elbo", "reconstruction", "kl")
    results = {name: np.concatenate(values) for name, values in zip(names, outputs)}
    results.update({f"mean_{name}": float(np.mean(results[name])) for name in names})
    return results


def log_likelihood_and_elbo(model, x, prior, num_samples, chunk_size=None):
    """For a batch ``x``: the IS log-likelihood and the one-sample ELBO,
    reconstruction and KL (beta = 1) per image; ``prior`` is
    ``model.prior_distribution()``, computed once by the caller and reused."""
    log_likelihood = model.log_likelihood(x, num_samples, chunk_size, prior=prior)
    elbo = negative_elbo(model.log_terms(x, prior))
    return log_likelihood, -elbo.loss, elbo.reconstruction, elbo.kl


def make_batch_evaluator(model, num_samples, chunk_size=None):
    """``log_likelihood_and_elbo`` as a ``tf.function`` ``f(x, prior)``.

    Not XLA-compiled: on CPU the XLA version measured 2-3x slower (bench/).
    """

    @tf.function
    def evaluate_batch(x, prior):
        return log_likelihood_and_elbo(model, x, prior, num_samples, chunk_size)

    return evaluate_batch
