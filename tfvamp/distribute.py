"""Choosing a ``tf.distribute`` strategy for training, and who writes files.

``make_strategy(name)`` with ``name`` one of ``STRATEGIES``:

* ``auto``: ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` names a cluster
  of several tasks, ``MirroredStrategy`` over all GPUs when there are several,
  otherwise TensorFlow's default strategy (which places work on the GPU if
  there is one), which was faster than ``OneDeviceStrategy`` on a CPU
  (``bench/README.md``);
* ``default``: TensorFlow's default (no-op) strategy;
* ``one_device``: ``OneDeviceStrategy`` on the first GPU, else the CPU;
* ``mirrored``: ``MirroredStrategy`` over all GPUs, or over all logical CPU
  devices when there is no GPU (see ``configure_logical_cpus``);
* ``multi_worker``: ``MultiWorkerMirroredStrategy`` (needs ``TF_CONFIG``).
"""
import json
import os

import tensorflow as tf

from tfvamp.names import STRATEGIES


def configure_logical_cpus(num_devices):
    """Splits the CPU into ``num_devices`` logical devices (for trying
    ``mirrored`` on a machine without GPUs). Must run before TensorFlow
    creates any tensor."""
    num_devices = int(num_devices)
    if num_devices < 1:
        raise ValueError(f"num_devices must be >= 1, got {num_devices}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)])
    except RuntimeError as error:
        if len(tf.config.list_logical_devices("CPU")) == num_devices:
            return  # already configured so
        raise RuntimeError(
            f"Cannot split the CPU into {num_devices} logical devices: TensorFlow is already "
            f"initialised ({error}). Configure them before any TensorFlow computation.") from None


def cluster_size(tf_config=None):
    """Number of tasks (workers and chief) in ``TF_CONFIG``'s cluster; 0 without one."""
    tf_config = os.environ.get("TF_CONFIG", "") if tf_config is None else tf_config
    if not tf_config:
        return 0
    try:
        cluster = json.loads(tf_config).get("cluster", {})
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON: {error}") from None
    return sum(len(tasks) for name, tasks in cluster.items() if name in ("chief", "worker"))


def make_strategy(name="auto"):
    """The ``tf.distribute.Strategy`` called ``name`` (see the module docstring)."""
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy {name!r}; valid: {list(STRATEGIES)}")
    # Physical devices only: listing logical ones would initialise TensorFlow,
    # after which MultiWorkerMirroredStrategy can no longer be created.
    num_gpus = len(tf.config.list_physical_devices("GPU"))
    if name == "auto":
        if cluster_size() > 1:
            name = "multi_worker"
        elif num_gpus > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "multi_worker":
        if cluster_size() < 1:
            raise ValueError("--strategy=multi_worker needs TF_CONFIG naming the cluster, e.g. "
                             '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                             '"task": {"type": "worker", "index": 0}}')
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if num_gpus else "/cpu:0")
    devices = tf.config.list_logical_devices("GPU" if num_gpus else "CPU")
    return tf.distribute.MirroredStrategy([d.name for d in devices])


def supports_jit(strategy):
    """Whether the train step can be XLA-compiled under ``strategy``: only
    with a single replica (XLA cannot compile the cross-device reductions of
    ``MirroredStrategy`` on several CPU devices)."""
    return strategy.num_replicas_in_sync == 1


def is_chief(strategy):
    """Whether this process writes checkpoints, results and figures: always,
    except for the non-chief workers of a multi-worker cluster."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    resolver = strategy.cluster_resolver
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type is None:
        return True
    if task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief
