"""What the benchmarks measure: a training step's FLOPs, counted from the
traced graph's ops, and its time, from a Keras callback."""
import time

import keras
import numpy as np
import tensorflow as tf


def _op_flops(op):
    """Multiply-add FLOPs (2 per MAC) of one matmul or convolution op."""
    if op.type in ("MatMul", "BatchMatMulV2", "BatchMatMulV3", "BatchMatMul"):
        a, b = (t.shape for t in op.inputs[:2])
        out = op.outputs[0].shape
        if not (a.is_fully_defined() and out.is_fully_defined()):
            raise ValueError(f"unknown shape in {op.name}: {a} x {b}")
        adj_a = op.get_attr("transpose_a" if op.type == "MatMul" else "adj_x")
        inner = a[-2] if adj_a else a[-1]
        return 2 * int(np.prod(out)) * int(inner)
    if op.type in ("Conv2D", "Conv2DBackpropInput"):
        kernel = op.inputs[1].shape
        out = op.outputs[0].shape
        return 2 * int(np.prod(out)) * int(np.prod(kernel[:3]))
    return 0


def _graph_flops(graph):
    total = 0
    for op in graph.get_operations():
        total += _op_flops(op)
    for function in graph._functions.values():  # bodies of nested tf.functions
        total += _graph_flops(function.graph)
    return total


def median_seconds(function, calls):
    """Median wall time of ``calls`` calls of ``function()``."""
    seconds = []
    for _ in range(calls):
        start = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds))


def matmul_rate(n=1024, repeats=10):
    """FLOP/s of a float32 n x n x n matmul in this process: the faster of
    XLA's and TensorFlow's kernel, the machine's limit the targets are set against."""
    a, b = tf.random.normal([n, n]), tf.random.normal([n, n])
    rates = []
    for jit_compile in (True, False):
        matmul = tf.function(tf.matmul, jit_compile=jit_compile)
        matmul(a, b).numpy()
        rates.append(2 * n ** 3 / median_seconds(lambda: matmul(a, b).numpy(), repeats))
    return max(rates)


def step_flops(model, batch_size=100):
    """3x the matmul/conv FLOPs of the traced forward negative ELBO of one batch
    (forward + backward), the VampPrior's pseudo-input encoder pass included."""
    spec = tf.TensorSpec([batch_size, *model.image_shape], tf.float32)
    forward = tf.function(lambda x: tf.reduce_mean(model.elbo_terms(x).loss))
    return 3 * _graph_flops(forward.get_concrete_function(spec).graph)


class EpochTimer(keras.callbacks.Callback):
    """Seconds of every epoch of ``fit`` (``seconds``), from its start to the end of the
    callbacks before this one in the list (validation included)."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


class StepTimer(keras.callbacks.Callback):
    """Seconds of every training step of ``fit`` (``times``)."""

    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):  # once per execution of steps_per_execution steps
        self.times.append((time.perf_counter() - self._start) / self.model.steps_per_execution)
