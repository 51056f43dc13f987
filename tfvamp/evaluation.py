"""Test-set evaluation: the importance-sampled log-likelihood per image, with
its Monte Carlo error and estimated bias, and the ELBO, sharded over a
``tf.distribute`` strategy.

Every image is evaluated on its own, with stateless seeds split from the
evaluation's ``seed`` and the image's index (``image_seed``): its estimate is a
function of the image, its index, ``seed``, S and the chunk size only, so it
does not depend on the batch size, on how many devices or workers computed
it, or on where an interrupted evaluation was resumed.

It runs in steps of a few seconds (``step_seconds``): a step evaluates a few
images, or, where one image takes longer (a PixelCNN decoder, a large S),
some of one image's chunks of samples; between steps a caller may stop it
(``between_steps``), keeping the images finished so far (``on_batch``).
"""
import time
import weakref

import numpy as np
import tensorflow as tf

from tfvamp import objectives

# What ``evaluate`` returns per image, in this order.
PER_IMAGE = ("log_likelihood", "log_likelihood_se", "effective_sample_size", "elbo",
             "reconstruction", "kl")


def evaluate(model, images, num_samples=5000, batch_size=100, chunk_size=None, progress=None,
             seed=None, strategy=None, resume=None, on_batch=None, between_steps=None,
             step_seconds=2.0):
    """Evaluates ``model`` on ``images`` (``[N, H, W, C]``).

    Returns a dict with, per image (arrays of ``[N]``): ``log_likelihood``
    (the IS estimate of log p(x) with S = ``num_samples``, nats),
    ``log_likelihood_se`` (its Monte Carlo standard error) and
    ``effective_sample_size`` (see
    ``tfvamp.objectives.importance_sampling_statistics``), and the ELBO,
    ``reconstruction`` and ``kl`` (beta = 1) averaged over the same S samples;
    and ``mean_<name>`` of each, with ``mean_log_likelihood_se`` the Monte
    Carlo standard error of ``mean_log_likelihood``,
    ``sqrt(sum_i se_i^2) / N`` (the images' estimates are independent); and
    ``log_likelihood_bias`` (``[N]``) and ``mean_log_likelihood_bias``, the
    estimate's bias by the delta method, ``-se_i^2 / 2`` per image
    (``tfvamp.objectives.importance_sampling_bias``; a lower bound on its size
    at a small effective sample size). The whole error of
    ``mean_log_likelihood`` is this bias beside the standard error: the
    standard error of a mean over N images shrinks as ``1 / sqrt(N)``, the
    bias does not, so over a test set the bias can be the larger.

    Args:
      num_samples: S, importance samples per image.
      batch_size: the most images per step, split over the strategy's
        replicas (fewer where a step would take longer than ``step_seconds``).
      chunk_size: samples decoded at once per image (default: the model's
        ``rows_per_chunk``); it bounds memory, and the estimates depend on it.
      progress: ``progress(done, total)``, called before the first step and
        whenever images are finished, with the number of images evaluated.
      seed: the evaluation's integer seed (default: the model's, else 0).
      strategy: a ``tf.distribute`` strategy (default: the current one); the
        images are split over its replicas (devices, workers), each replica
        encodes the prior's pseudo-inputs once per step, and every worker
        gets every result. Build the model under its ``scope()``.
      resume: per-image arrays (``PER_IMAGE``) of the first images, from an
        earlier ``on_batch`` of the same settings: evaluation continues after
        them (across a cluster's workers, after the fewest any worker has).
      on_batch: ``on_batch(per_image)``, called whenever images are
        finished, with the per-image arrays of every image evaluated so far.
      between_steps: ``between_steps()``, called before every step; an
        exception it raises (a stop request) ends the evaluation there, after
        the last ``on_batch``. A cluster's workers must all raise at the same
        step, or the others wait for it.
      step_seconds: about how long a step takes (the first ones are shorter):
        how soon ``between_steps`` is called again. The steps' sizes, timed as
        they run, change neither the values nor the order of the results.
    """
    strategy = strategy or tf.distribute.get_strategy()
    seed = (model.seed or 0) if seed is None else seed
    chunk_size = chunk_size or model.rows_per_chunk
    num_chunks, per_chunk = chunk_plan(num_samples, chunk_size)
    images = np.asarray(images, np.float32)
    total = len(images)
    done = {name: np.asarray((resume or {}).get(name, ()), np.float32)[:total] for name in PER_IMAGE}
    start = _agreed(strategy, min(len(values) for values in done.values()))
    done = {name: values[:start] for name, values in done.items()}
    replicas = strategy.num_replicas_in_sync
    # Images per replica and step: at most batch_size's share, and S x images bounded in memory.
    most_images = max(1, min(-(-min(batch_size, max(total, 1)) // replicas),
                             MAX_TERMS_PER_REPLICA // (num_chunks * per_chunk)))
    step = _cached_step(model, per_chunk, strategy)
    finish = _cached_finish(num_samples)
    seed = tf.constant([0, int(seed)], tf.int32)
    if progress is not None:
        progress(start, total)
    units = 1  # (image, chunk) pairs per replica in the next step: grown to step_seconds as timed
    begin = start
    while begin < total:
        per_replica = max(1, min(most_images, units // num_chunks))
        count = min(per_replica * replicas, total - begin)
        indices = np.arange(begin, begin + per_replica * replicas)
        indices[count:] = begin + count - 1  # padding: repeats of the last image, dropped below
        x, x_indices = _split_over_replicas(strategy, images[indices], indices, per_replica)
        parts, first = [], 0
        while first < num_chunks:
            last = min(num_chunks, first + max(1, units // per_replica))
            if between_steps is not None:
                between_steps()
            started = time.perf_counter()
            parts.append(np.asarray(step(x, x_indices, seed, tf.constant(first, tf.int32),
                                         tf.constant(last, tf.int32))))
            seconds = time.perf_counter() - started
            units = _agreed(strategy, max(1, int(step_seconds * per_replica * (last - first)
                                                 / max(seconds, 1e-6))))
            first = last
        values = np.asarray(finish(np.concatenate(parts, axis=1)))[:count]
        done = {name: np.concatenate([done[name], values[:, i]]) for i, name in enumerate(PER_IMAGE)}
        begin += count
        if on_batch is not None:
            on_batch(done)
        if progress is not None:
            progress(begin, total)
    return summarise(done)


# The most (sample, image) rows of log-densities a replica holds for the images of one step.
MAX_TERMS_PER_REPLICA = 2_000_000


def summarise(per_image):
    """``per_image`` (arrays named as ``PER_IMAGE``) with their means
    ``mean_<name>``, ``mean_log_likelihood_se``, the standard error of the
    mean log-likelihood, and the estimated bias per image
    ``log_likelihood_bias`` and of the mean, ``mean_log_likelihood_bias``.
    The bias is computed from the standard errors, so shards and resumed
    evaluations combine as the per-image arrays do."""
    results = {name: np.asarray(per_image[name]) for name in PER_IMAGE}
    results.update({f"mean_{name}": float(np.mean(values)) for name, values in results.items()})
    standard_errors = results["log_likelihood_se"].astype(np.float64)
    results["mean_log_likelihood_se"] = float(np.sqrt(np.sum(standard_errors ** 2)) / len(standard_errors))
    results["log_likelihood_bias"] = objectives.importance_sampling_bias(standard_errors)
    results["mean_log_likelihood_bias"] = float(np.mean(results["log_likelihood_bias"]))
    return results


def image_seed(seed, index):
    """The stateless seed of the image at ``index`` in an evaluation with
    ``seed`` (an int, or its stateless seed ``[0, seed]``)."""
    base = tf.constant([0, int(seed)], tf.int32) if isinstance(seed, int) else seed
    return tf.random.experimental.stateless_fold_in(base, tf.cast(index, tf.int32))


def chunk_plan(num_samples, chunk_size):
    """``(num_chunks, samples_per_chunk)``: S samples drawn in equal chunks of
    at most ``chunk_size``, the few surplus samples of the last one dropped,
    as ``tfvamp.objectives.importance_sampled_estimate`` draws them."""
    num_samples, chunk_size = int(num_samples), min(int(chunk_size), int(num_samples))
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    num_chunks = -(-num_samples // chunk_size)
    return num_chunks, -(-num_samples // num_chunks)


def image_terms(model, x, indices, prior, samples_per_chunk, first, last, seed):
    """``[B, (last - first) * samples_per_chunk, 3]``: the ``LogTerms`` of
    chunks ``first`` to ``last`` (int32 scalars) of every image of ``x``, each
    image on its own, its chunk ``c`` drawn with the stateless seed
    ``fold_in(image_seed(seed, index), c)``."""
    def one_image(image_and_index):
        image, index = image_and_index
        seed_of_image = image_seed(seed, index)

        def chunk_terms(chunk):
            with model.sampling_seed(tf.random.experimental.stateless_fold_in(seed_of_image, chunk)):
                terms = model.log_terms(image[None], prior, samples_per_chunk)
            shape = tf.shape(objectives.log_importance_weights(terms))
            return tf.stack([tf.broadcast_to(t, shape)[:, 0] for t in terms], axis=-1)

        chunks = tf.map_fn(chunk_terms, tf.range(first, last), parallel_iterations=1,
                           fn_output_signature=tf.TensorSpec([None, 3], tf.float32))
        return tf.reshape(chunks, [-1, 3])

    return tf.map_fn(one_image, (x, indices), parallel_iterations=1,
                     fn_output_signature=tf.TensorSpec([None, 3], tf.float32))


def finish_images(terms, num_samples):
    """``[B, len(PER_IMAGE)]`` from ``image_terms`` of all of every image's
    chunks (``[B, S', 3]``, S' >= S): the statistics of its first S samples."""
    def one_image(rows):
        rows = rows[:num_samples]
        terms = objectives.LogTerms(rows[:, 0:1], rows[:, 1:2], rows[:, 2:3])  # each [S, 1]
        statistics = objectives.importance_sampling_statistics(objectives.log_importance_weights(terms))
        elbo = objectives.negative_elbo(terms)
        return tf.concat([*statistics, -elbo.loss, elbo.reconstruction, elbo.kl], 0)

    return tf.map_fn(one_image, terms, parallel_iterations=1,
                     fn_output_signature=tf.TensorSpec([len(PER_IMAGE)], tf.float32))


def evaluate_images(model, x, indices, prior, num_samples, chunk_size, seed):
    """``[B, len(PER_IMAGE)]``: every image of ``x`` evaluated on its own
    (``image_terms`` of all its chunks, then ``finish_images``), as
    ``evaluate`` does in its steps."""
    num_chunks, per_chunk = chunk_plan(num_samples, chunk_size)
    terms = image_terms(model, x, indices, prior, per_chunk, 0, num_chunks, seed)
    return finish_images(terms, num_samples)


def make_step(model, num_samples, chunk_size, strategy=None):
    """A ``tf.function`` ``step(x, indices, seed)`` of per-replica images and
    their indices (``strategy``'s distributed values) and the evaluation's
    stateless seed (``[2]``) that evaluates them whole on every replica
    (``evaluate_images``) and returns ``[images, len(PER_IMAGE)]`` of all
    replicas, in replica order, on every worker. ``evaluate`` runs the same
    computation split into steps of a few seconds.

    Not XLA-compiled: on CPU the XLA version measured 2-3x slower (bench/).
    """
    strategy = strategy or tf.distribute.get_strategy()

    def replica_step(x, indices, seed):
        prior = model.prior_distribution()  # the VampPrior: K pseudo-inputs encoded once
        return evaluate_images(model, x, indices, prior, num_samples, chunk_size, seed)

    @tf.function
    def step(x, indices, seed):
        return _gathered(strategy, strategy.run(replica_step, args=(x, indices, seed)))

    return step


def make_chunk_step(model, samples_per_chunk, strategy=None):
    """A ``tf.function`` ``step(x, indices, seed, first, last)``: as
    ``make_step``'s, the ``image_terms`` of chunks ``first`` to ``last`` of
    every image, ``[images, (last - first) * samples_per_chunk, 3]`` of all
    replicas. ``first`` and ``last`` are int32 scalar tensors: it is traced
    again for a new number of images only."""
    strategy = strategy or tf.distribute.get_strategy()

    def replica_step(x, indices, seed, first, last):
        prior = model.prior_distribution()  # the VampPrior: K pseudo-inputs encoded once
        return image_terms(model, x, indices, prior, samples_per_chunk, first, last, seed)

    @tf.function(reduce_retracing=True)
    def step(x, indices, seed, first, last):
        return _gathered(strategy, strategy.run(replica_step, args=(x, indices, seed, first, last)))

    return step


def _gathered(strategy, values):
    if strategy.num_replicas_in_sync == 1:
        return strategy.experimental_local_results(values)[0]
    return strategy.gather(values, axis=0)


_steps = weakref.WeakKeyDictionary()  # model -> {(strategy, samples per chunk): step}
_finishes = {}  # S -> finish_images as a tf.function


def _cached_step(model, samples_per_chunk, strategy):
    """``make_chunk_step``'s function, traced once per model and settings."""
    steps = _steps.setdefault(model, {})
    key = (strategy, int(samples_per_chunk))
    if key not in steps:
        steps[key] = make_chunk_step(model, samples_per_chunk, strategy)
    return steps[key]


def _cached_finish(num_samples):
    if num_samples not in _finishes:
        _finishes[num_samples] = tf.function(lambda terms: finish_images(terms, num_samples),
                                             reduce_retracing=True)
    return _finishes[num_samples]


def _split_over_replicas(strategy, images, indices, per_replica):
    """``images`` and ``indices`` as distributed values: replica ``r`` (of
    all workers) gets rows ``r * per_replica`` to ``(r + 1) * per_replica``."""
    def rows(context):
        r = context.replica_id_in_sync_group
        part = slice(r * per_replica, (r + 1) * per_replica)
        return tf.constant(images[part]), tf.constant(indices[part], tf.int32)

    return strategy.experimental_distribute_values_from_function(rows)


def _agreed(strategy, count):
    """The fewest of ``count`` over a multi-worker cluster's workers (else ``count``)."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or \
            strategy.num_replicas_in_sync == 1:
        return count
    counts = strategy.gather(strategy.run(lambda: tf.constant([count], tf.int64)), axis=0)
    return int(np.min(counts.numpy()))


def log_likelihood_and_elbo(model, x, prior, num_samples, chunk_size=None):
    """For a batch ``x``: the IS log-likelihood and the one-sample ELBO,
    reconstruction and KL (beta = 1) per image; ``prior`` is
    ``model.prior_distribution()``, computed once by the caller and reused
    (the serving signature's computation)."""
    log_likelihood = model.log_likelihood(x, num_samples, chunk_size, prior=prior)
    elbo = objectives.negative_elbo(model.log_terms(x, prior))
    return log_likelihood, -elbo.loss, elbo.reconstruction, elbo.kl
