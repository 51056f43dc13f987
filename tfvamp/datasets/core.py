"""The dataset type every loader returns, and its ``tf.data`` pipelines."""
import dataclasses
import hashlib

import numpy as np
import tensorflow as tf

SPLITS = ("train", "validation", "test")


@dataclasses.dataclass
class ImageDataset:
    """Train/validation/test images in [0, 1], shape ``[N, H, W, C]``, float32.

    ``likelihood`` is ``"bernoulli"`` (binary data) or ``"discretized_logistic"``
    (grey data). With ``dynamic_binarization`` the training images hold pixel
    probabilities and are re-binarised at random every epoch (validation and
    test are binarised once, by the loader). ``pseudo_inputs_init`` is the
    paper's ``(mean, std)`` for the VampPrior's pseudo-inputs on this dataset.
    ``notes`` are lines saying what a loader decided from the data (``load_images``).
    """

    name: str
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    likelihood: str
    pseudo_inputs_init: tuple
    dynamic_binarization: bool = False
    notes: tuple = ()

    @property
    def input_shape(self):
        return tuple(self.train.shape[1:])

    def split(self, name):
        if name not in SPLITS:
            raise ValueError(f"Unknown split {name!r}; valid: {list(SPLITS)}")
        return getattr(self, name)

    def pipeline(self, split, batch_size, shuffle=False, seed=None, drop_remainder=False):
        """A batched, prefetched ``tf.data.Dataset`` of the images of ``split``.

        Every iteration (each epoch of ``fit``) shuffles anew and, for the
        training split of a dynamically binarised set, draws new binary images;
        ``seed`` (or else the global seed, ``keras.utils.set_random_seed``)
        makes the sequence repeat from one program run to the next.
        ``batch_size=None``: the whole split as one batch of static shape
        (a model's ``test_step`` then evaluates it in chunks, with its prior
        computed once).
        """
        images = self.split(split)
        if batch_size is None:
            if shuffle or (split == "train" and self.dynamic_binarization):
                raise ValueError("batch_size=None is for fixed evaluation sets: no shuffling "
                                 "or dynamic binarisation")
            return tf.data.Dataset.from_tensors(images)
        dataset = tf.data.Dataset.from_tensor_slices(images)
        if shuffle:
            dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
        if split == "train" and self.dynamic_binarization:
            # One stateless seed a batch, from a stream drawn anew each iteration: every
            # epoch is binarised afresh, also under keras.utils.set_random_seed (a
            # stateful draw in map would restart with each iterator, so every epoch would
            # see the same binary images), and ``seed`` (or the global seed) repeats a run.
            batch_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
            dataset = tf.data.Dataset.zip(dataset, batch_seeds).map(
                _binarize_at_random, num_parallel_calls=tf.data.AUTOTUNE)
        return dataset.prefetch(tf.data.AUTOTUNE)

    def training_epochs(self, batch_size, seed, first_epoch, epochs):
        """The training batches of epochs ``first_epoch + 1`` to ``epochs``,
        one epoch after the other (``fit`` with ``steps_per_epoch=
        steps_per_epoch(batch_size)``). Each epoch's shuffling, and with
        dynamic binarisation its draws, depends on ``seed`` and the epoch
        alone: a run resumed after epoch k trains on the batches an
        uninterrupted run trains on from epoch k + 1."""
        # A variable: gathering from a captured constant would copy the whole set every batch.
        with tf.device("/CPU:0"):
            images = tf.Variable(self.train, trainable=False, name=f"{self.name}_train_images")
        seed = tf.cast(seed, tf.int64)

        def epoch_order(epoch):  # stateless seeds (seed, -1 - epoch) for the order, (seed, step) the draws
            keys = tf.random.stateless_uniform([len(self.train)], seed=tf.stack([seed, -1 - epoch]))
            return tf.data.Dataset.from_tensor_slices(tf.argsort(keys)).batch(batch_size)

        batches = tf.data.Dataset.range(first_epoch, epochs).flat_map(epoch_order)
        batches = batches.enumerate(start=first_epoch * self.steps_per_epoch(batch_size))
        if self.dynamic_binarization:
            def batch(step, indices):
                probabilities = tf.gather(images, indices)
                draws = tf.random.stateless_uniform(tf.shape(probabilities), seed=tf.stack([seed, step]))
                return tf.cast(draws < probabilities, probabilities.dtype)
        else:
            def batch(step, indices):
                return tf.gather(images, indices)
        return batches.map(batch, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    def fixed_sample(self, split, size, seed):
        """``min(size, N)`` images of ``split`` drawn at random with ``seed``, the same at every
        call: as the model sees them (the training images of a dynamically binarised set
        binarised once, with ``seed``)."""
        images = self.split(split)
        rows = np.sort(np.random.default_rng(seed).permutation(len(images))[:size])
        sample = images[rows]
        if split == "train" and self.dynamic_binarization:
            sample = binarize_once(sample, seed)
        return sample

    def steps_per_epoch(self, batch_size):
        """Batches of ``batch_size`` in an epoch of the training set (the last one may be smaller)."""
        return -(-len(self.train) // batch_size)


def _binarize_at_random(probabilities, seed):
    draws = tf.random.stateless_uniform(tf.shape(probabilities), seed=tf.stack([seed, 0]),
                                        dtype=probabilities.dtype)
    return tf.cast(draws < probabilities, probabilities.dtype)


def binarize_once(probabilities, seed):
    """A fixed binarisation (for validation and test sets)."""
    draws = np.random.default_rng(seed).uniform(size=probabilities.shape)
    return (draws < probabilities).astype(np.float32)


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class DatasetError(Exception):
    """A dataset file is missing, corrupt or of the wrong format."""


def _mismatch(what, expected, actual):
    return DatasetError(
        f"Checksum mismatch for {what}: expected sha256 {expected}, got {actual}. "
        "The file is truncated, corrupt or not the expected one; delete it and get it again."
    )


def verify_checksum(path, expected_sha256):
    actual = sha256_of(path)
    if actual != expected_sha256:
        raise _mismatch(path, expected_sha256, actual)


def check_sha256(data, expected_sha256, what):
    """Checks the SHA-256 of the bytes ``data`` (described as ``what`` in the error)."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256:
        raise _mismatch(what, expected_sha256, actual)
