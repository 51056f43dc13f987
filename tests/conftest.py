import json
import os
import socket
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data")
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import keras  # after TF_CPP_MIN_LOG_LEVEL is set
import pytest


@pytest.fixture(autouse=True)
def seeded_random_state():
    """Every test starts from the same Python, NumPy, TensorFlow and Keras seeds, so
    a network's unseeded initial weights (Keras' initialisers draw from the global
    seed) are the same whichever tests ran before: an outcome cannot move with the
    test order or from one CI run to the next."""
    keras.utils.set_random_seed(0)


def subprocess_env(**extra):
    """The environment of a child process that runs this checkout (``PYTHONPATH``),
    without a ``TF_CONFIG`` or ``TFVAMP_TRACEBACK`` of ours, with ``extra`` on top."""
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    for name in ("TF_CONFIG", "TFVAMP_TRACEBACK"):
        env.pop(name, None)
    env.update(extra)
    return env


def free_ports(count):
    """``count`` loopback ports free at the time of the call."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_cluster(command, num_workers=2, timeout=900):
    """Runs ``command`` (an argument list) as each worker of a loopback
    ``MultiWorkerMirroredStrategy`` cluster, ``TF_CONFIG`` set for each;
    returns every worker's ``(return code, output)``, the chief (worker 0) first."""
    workers = [f"127.0.0.1:{port}" for port in free_ports(num_workers)]
    processes = []
    for index in range(num_workers):
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        processes.append(subprocess.Popen(
            command, cwd=REPO_ROOT, env=subprocess_env(TF_CONFIG=tf_config),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = []
    for process in processes:
        try:
            outputs.append(process.communicate(timeout=timeout)[0])
        finally:
            process.kill()
    return [(process.returncode, output) for process, output in zip(processes, outputs)]
