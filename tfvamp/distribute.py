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

A worker of a cluster that stops answering (killed, its machine or network
lost) is detected within ``worker_timeout`` seconds by TensorFlow's
coordination service, which aborts the collective ops of the others: their
next collective raises a ``tf.errors.OpError`` that ``lost_worker(error)``
recognises and names.
"""
import json
import os
import re

import tensorflow as tf

from tfvamp.names import STRATEGIES, WORKER_TIMEOUT_S


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


def make_strategy(name="auto", worker_timeout=WORKER_TIMEOUT_S):
    """The ``tf.distribute.Strategy`` called ``name`` (see the module docstring).

    ``worker_timeout`` (seconds, > 0; ``multi_worker`` only): a worker that
    sends no heartbeat for that long counts as lost, and the collective ops of
    the others fail (``lost_worker``) instead of waiting for it forever. Must
    be called before TensorFlow creates any tensor."""
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
        _configure_heartbeats(worker_timeout)
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if num_gpus else "/cpu:0")
    devices = tf.config.list_logical_devices("GPU" if num_gpus else "CPU")
    return tf.distribute.MirroredStrategy([d.name for d in devices])


def _configure_heartbeats(worker_timeout):
    """Configures TensorFlow's coordination service, as ``MultiWorkerMirroredStrategy``
    does when it is not configured (the same leader and jobs), with heartbeats that
    time out after ``worker_timeout`` seconds (TensorFlow's own default: 10)."""
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.eager import context

    if not worker_timeout > 0:
        raise ValueError(f"worker_timeout must be > 0 seconds, got {worker_timeout}")
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    spec = resolver.cluster_spec()
    jobs = [job for job in ("chief", "worker") if job in spec.jobs]
    if resolver.task_type not in jobs:
        return  # an evaluator, say: not coordinated (as TensorFlow does)
    context.context().configure_coordination_service(
        service_type="standalone",
        service_leader=f"/job:{jobs[0]}/replica:0/task:0",
        heartbeat_timeout_in_ms=int(worker_timeout * 1000),
        coordinated_jobs=[coordination_config_pb2.CoordinatedJob(name=job, num_tasks=spec.num_tasks(job))
                          for job in jobs])


# A task as TensorFlow's errors name it: /job:worker/replica:0/task:1 or /job:worker/task:1.
_TASK_NAME = re.compile(r"/job:(\w+)/(?:replica:\d+/)?task:(\d+)")
# What the collective ops and TensorFlow's coordination service say when a peer is gone: its
# connection reset, closed or refused, or its heartbeats stopped (in a collective op aborted).
_PEER_LOST = re.compile(r"Collective ops is aborted|stopped sending heartbeats|Connection reset by peer|"
                        r"Socket closed|Connection refused")


def lost_worker(error, strategy):
    """``(job, index)`` of the cluster task whose loss ``error`` reports (raised by an
    op under ``strategy``, a ``MultiWorkerMirroredStrategy``), ``(None, None)`` where
    the error says a peer was lost without naming it; ``None`` for any other error
    (another strategy, or not a lost peer)."""
    if not (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and isinstance(error, tf.errors.UnavailableError)
            and _PEER_LOST.search(str(error))):
        return None
    resolver = strategy.cluster_resolver
    own = (resolver.task_type, int(resolver.task_id))
    for job, index in _TASK_NAME.findall(str(error)):
        if (job, int(index)) != own:
            return job, int(index)
    tasks = [(job, index) for job in resolver.cluster_spec().jobs
             for index in range(resolver.cluster_spec().num_tasks(job)) if (job, index) != own]
    return tasks[0] if len(tasks) == 1 else (None, None)


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
