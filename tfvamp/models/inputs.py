"""Checks of a model's inputs: their shape ``[batch, *input_shape]``, no NaN
or infinity, and values within the likelihood's ``value_range`` ([0, 1] for
the Bernoulli and the discretised logistic).

``LatentVariableModel`` runs them (``check_input_shape``,
``check_input_values``, in ``fit`` on every batch of a ``tf.data.Dataset``
as it is yielded, and in ``fit`` and ``evaluate`` on every batch of a Python
generator or a ``keras.utils.PyDataset`` as Keras takes it), so a wrong
input fails with an error naming the first bad row or batch before anything
is trained on it.
"""
import contextlib
import math
import re
import types

import keras
import numpy as np
import tensorflow as tf

from tfvamp.errors import NonFiniteInputError

_NON_FINITE_BATCH = "tfvamp: a NaN or infinity in the training data, batch"
_OUT_OF_RANGE_BATCH = "tfvamp: training data outside the values of the likelihood, batch"


def images(data):
    """The images of a batch: ``data``, or the first of an ``(images, labels)`` pair."""
    return data[0] if isinstance(data, (tuple, list)) else data


def check_shape(x, input_shape, model_name):
    """Raises a ``ValueError`` unless ``x`` has shape ``[batch, *input_shape]``
    (read from the static shape: nothing runs in a traced step)."""
    shape = tf.TensorShape(x.shape if hasattr(x, "shape") else np.shape(x))
    expected = (None,) + tuple(input_shape)
    if not shape.is_compatible_with(expected):
        got = tuple(shape.as_list()) if shape.rank is not None else shape
        raise ValueError(f"{model_name} takes inputs of shape [batch, *input_shape] = "
                         f"{expected}; got shape {got}")


def check_values(x, likelihood, batch_size=None):
    """Raises a ``NonFiniteInputError`` for a NaN or infinity in ``x``, and a
    ``ValueError`` for values outside ``likelihood.value_range``, naming the
    first bad row (and with ``batch_size``, as ``fit`` gives it, its batch).
    Only values at hand are checked (an array, an eager tensor): in a traced
    step it does nothing."""
    if isinstance(x, tf.Tensor) and not tf.executing_eagerly():
        return
    start = "The training data has" if batch_size else "x has"
    end = "; nothing was trained" if batch_size else ""

    def where(bad, what, rows):
        batch = (f"batch {bad[0] // batch_size + 1} of {math.ceil(len(rows) / batch_size)} "
                 f"at batch_size={batch_size}, before shuffling; " if batch_size else "")
        return (f"{start} {what} in row {bad[0]} of x ({batch}{bad.size} bad "
                f"row{'s' if bad.size > 1 else ''} in all){end}", " (x spans")

    _check_rows(np.asarray(x), likelihood, where)


def _check_rows(values, likelihood, where):
    """The checks of ``check_values`` on the array ``values``; ``where(bad,
    what, rows)`` gives the message naming the bad rows ``bad`` (indices) and
    the words before the range of the values, ``(... spans [low, high])``."""
    if not values.size:
        return
    rows = values.reshape(len(values), -1)
    if np.issubdtype(values.dtype, np.floating):
        bad = np.flatnonzero(~np.isfinite(rows).all(axis=1))
        if bad.size:
            raise NonFiniteInputError(where(bad, "a NaN or infinity", rows)[0])
    if likelihood.value_range is not None:
        low, high = likelihood.value_range
        bad = np.flatnonzero(((rows < low) | (rows > high)).any(axis=1))
        if bad.size:
            message, spans = where(bad, f"values outside {_range_text(likelihood)}", rows)
            raise ValueError(f"{message}{spans} [{rows.min():g}, {rows.max():g}])"
                             + _range_hint(float(rows.max())))


def checked_training_data(x, batch_size, input_shape, likelihood, model_name):
    """``x`` (``fit``'s) checked: a ``tf.data.Dataset``'s element shape now and
    each batch's values as it is yielded (the check runs in the input
    pipeline, its failure read by ``training_data_errors``); an array's shape
    and values now; a Python generator's or a ``keras.utils.PyDataset``'s
    batches as ``checked_batches`` does. Other inputs are returned as they are."""
    value_range = likelihood.value_range
    if gives_python_batches(x):
        return checked_batches(x, input_shape, likelihood, model_name, training=True)
    if isinstance(x, tf.data.Dataset):
        spec = x.element_spec
        if isinstance(spec, dict):
            raise ValueError(
                f"{model_name} takes batches of images (or (images, labels) pairs); the "
                f"dataset yields dicts with keys {sorted(spec)}: map it to the images, "
                "e.g. dataset.map(lambda example: example['image'])")
        spec = images(spec)
        if not isinstance(spec, tf.TensorSpec):
            return x
        check_shape(spec, input_shape, model_name)
        if not (spec.dtype.is_floating or value_range is not None):
            return x
        return x.enumerate().map(lambda index, data: _assert_valid_batch(index, data, value_range))
    if x is None or isinstance(x, dict) or not hasattr(x, "shape"):
        return x
    check_shape(x, input_shape, model_name)
    check_values(x, likelihood, batch_size=batch_size or 32)
    return x


def gives_python_batches(x):
    """Whether ``x`` is a Python generator or a ``keras.utils.PyDataset``."""
    return isinstance(x, (types.GeneratorType, keras.utils.PyDataset))


def checked_batches(x, input_shape, likelihood, model_name, training):
    """The Python generator or ``keras.utils.PyDataset`` ``x`` with each batch
    it gives checked as Keras takes it, before it is trained on (``training``)
    or evaluated: its images' shape, no NaN or infinity, values within the
    likelihood's ``value_range``; one ``ValueError`` (``NonFiniteInputError``
    for a NaN) names the batch and its first bad row. A pass-through: every
    batch reaches Keras as ``x`` gives it, none is taken beforehand. Keras
    runs a generator inside its input pipeline, so the error may reach
    ``fit`` wrapped: ``training_data_errors`` and ``data_errors`` unwrap it."""
    check = _BatchCheck(input_shape, likelihood, model_name, training)
    if isinstance(x, keras.utils.PyDataset):
        return _CheckedPyDataset(x, check)

    def generator():
        counted = " (counted from 1 over all epochs)" if training else ""
        for number, batch in enumerate(x, 1):
            yield check(batch, f"batch {number} of the generator{counted}")

    return generator()


class _BatchCheck:
    """``check(batch, which)``: ``batch`` after checking its images, or the
    error naming ``which`` batch (``checked_batches``); a class, not a
    closure, so a PyDataset's worker processes can be given it."""

    def __init__(self, input_shape, likelihood, model_name, training):
        self.input_shape, self.likelihood, self.model_name = input_shape, likelihood, model_name
        self.data, self.stopped = ("The training data", "training") if training else ("The data", "evaluation")

    def __call__(self, batch, which):
        x = images(batch)
        if not hasattr(x, "shape"):
            return batch
        data, stopped = self.data, self.stopped
        try:
            check_shape(x, self.input_shape, self.model_name)
        except ValueError as error:
            raise ValueError(f"{data} has the wrong shape in {which}: {error}; {stopped} stopped "
                             "before that batch") from None

        def where(bad, what, rows):
            return (f"{data} has {what} in {which}, row {bad[0]} of it ({bad.size} bad "
                    f"row{'s' if bad.size > 1 else ''} in it); {stopped} stopped before that batch",
                    " (the batch spans")

        _check_rows(np.asarray(x), self.likelihood, where)
        return batch


class _CheckedPyDataset(keras.utils.PyDataset):
    """``dataset`` (a ``keras.utils.PyDataset``) with ``check`` (a
    ``_BatchCheck``) run on every batch it gives; its workers, epochs and
    length are its own."""

    def __init__(self, dataset, check):
        super().__init__(workers=dataset.workers, use_multiprocessing=dataset.use_multiprocessing,
                         max_queue_size=dataset.max_queue_size)
        self.dataset, self.check = dataset, check

    def __getitem__(self, index):
        return self.check(self.dataset[index], f"the PyDataset's batch at index {index}")

    @property
    def num_batches(self):
        return self.dataset.num_batches

    def on_epoch_begin(self):
        self.dataset.on_epoch_begin()

    def on_epoch_end(self):
        self.dataset.on_epoch_end()


# A ``checked_batches`` error as Keras' input pipeline wraps it (an InvalidArgumentError).
_WRAPPED_BATCH_ERROR = re.compile(
    r"(NonFiniteInputError|ValueError): ((?:The training data|The data)\b[^\n]* stopped before "
    r"that batch[^\n]*)")


@contextlib.contextmanager
def data_errors():
    """Inside the block (an ``evaluate``), a failed check of ``checked_batches``
    is raised as it was, instead of the ``InvalidArgumentError`` of Keras'
    input pipeline that carries it."""
    try:
        yield
    except tf.errors.InvalidArgumentError as error:
        _raise_wrapped_batch_error(error)
        raise


def _raise_wrapped_batch_error(error):
    found = _WRAPPED_BATCH_ERROR.search(str(error))
    if found is not None:
        kind = NonFiniteInputError if found.group(1) == "NonFiniteInputError" else ValueError
        raise kind(found.group(2)) from None


@contextlib.contextmanager
def training_data_errors(likelihood):
    """Inside the block (a ``fit``), a failed check of ``checked_training_data``'s
    pipeline, or of ``checked_batches``, becomes a ``NonFiniteInputError`` or a ``ValueError`` naming the
    batch, instead of TensorFlow's ``InvalidArgumentError``."""
    try:
        yield
    except tf.errors.InvalidArgumentError as error:
        _raise_wrapped_batch_error(error)
        non_finite, _ = _failed_batch(_NON_FINITE_BATCH, error)
        if non_finite is not None:
            raise NonFiniteInputError(
                f"The training data has a NaN or infinity in batch {non_finite} (counted "
                "from 1 over all epochs of this fit); training stopped before that batch") from None
        out_of_range, largest = _failed_batch(_OUT_OF_RANGE_BATCH, error)
        if out_of_range is not None:
            raise ValueError(
                f"The training data has values outside {_range_text(likelihood)} in batch "
                f"{out_of_range} (counted from 1 over all epochs of this fit); training "
                f"stopped before that batch{_range_hint(largest)}") from None
        raise


def _assert_valid_batch(index, data, value_range):
    """``data`` (one batch, the ``index``-th), after asserting that its inputs are
    finite and, unless ``value_range`` is None, within it."""
    batch = images(data)
    checks = []
    if batch.dtype.is_floating:
        finite = tf.reduce_all(tf.math.is_finite(batch))
        checks.append(tf.debugging.Assert(finite, [_NON_FINITE_BATCH, index + 1]))
    if value_range is not None:
        with tf.control_dependencies(checks):  # a NaN is named as such, not as out of range
            low, high = tf.reduce_min(batch), tf.reduce_max(batch)
            within = (tf.cast(low, tf.float32) >= value_range[0]) & (tf.cast(high, tf.float32) <= value_range[1])
            checks.append(tf.debugging.Assert(within, [_OUT_OF_RANGE_BATCH, index + 1,
                                                       tf.cast(high, tf.float32)]))
    with tf.control_dependencies(checks):
        return tf.nest.map_structure(tf.identity, data)


def _failed_batch(marker, error):
    """The 1-based batch an ``_assert_valid_batch`` assertion with ``marker`` names in
    ``error`` and the value it printed after it (or None), or ``(None, None)``."""
    found = re.search(re.escape(marker) + r"\]\s*\[(\d+)\](?:\s*\[([-+.\deE]+)\])?", str(error))
    if found is None:
        return None, None
    return int(found.group(1)), None if found.group(2) is None else float(found.group(2))


def _range_text(likelihood):
    low, high = likelihood.value_range
    return f"[{low:g}, {high:g}] (the {likelihood.name} likelihood's values)"


def _range_hint(largest):
    """A hint when the data's ``largest`` value (or None) looks like images of 0-255."""
    return ": images of 0-255? divide them by 255" if largest is not None and 128.0 <= largest <= 255.0 else ""
