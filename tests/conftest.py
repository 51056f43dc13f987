import json
import os
import socket
import subprocess
import sys
import threading
import time

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


class Cluster:
    """The worker processes of a loopback ``MultiWorkerMirroredStrategy`` cluster
    (``start_cluster``), their merged stdout and stderr read as they come."""

    def __init__(self, command, num_workers=2):
        self.addresses = [f"127.0.0.1:{port}" for port in free_ports(num_workers)]
        self.processes, self.outputs = [], [[] for _ in range(num_workers)]
        for index in range(num_workers):
            tf_config = json.dumps({"cluster": {"worker": self.addresses},
                                    "task": {"type": "worker", "index": index}})
            self.processes.append(subprocess.Popen(
                command, cwd=REPO_ROOT, env=subprocess_env(TF_CONFIG=tf_config),
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        self.readers = [threading.Thread(target=self._read, args=(index,), daemon=True)
                        for index in range(num_workers)]
        for reader in self.readers:
            reader.start()

    def _read(self, index):
        for line in self.processes[index].stdout:
            self.outputs[index].append(line)

    def output(self, index):
        """What worker ``index`` printed so far."""
        return "".join(self.outputs[index])

    def wait_for(self, index, text, timeout):
        """Waits until worker ``index`` prints ``text``; False if it ends or
        ``timeout`` seconds pass first."""
        deadline = time.monotonic() + timeout
        while text not in self.output(index):
            if self.processes[index].poll() is not None or time.monotonic() > deadline:
                return text in self.output(index)
            time.sleep(0.05)
        return True

    def wait(self, index, timeout):
        """Worker ``index``'s exit status once it ends (killed after ``timeout``
        seconds: ``subprocess.TimeoutExpired``), and all it printed."""
        try:
            self.processes[index].wait(timeout)
        finally:
            self.processes[index].kill()
            self.readers[index].join()
        return self.processes[index].returncode, self.output(index)

    def kill(self):
        """Kills every worker still running (the processes this cluster started)."""
        for process in self.processes:
            process.kill()
            process.wait()


def start_cluster(command, num_workers=2):
    """Starts ``command`` (an argument list) as each worker of a loopback
    ``MultiWorkerMirroredStrategy`` cluster, ``TF_CONFIG`` set for each (the
    chief is worker 0); returns the ``Cluster``."""
    return Cluster(command, num_workers)


def run_cluster(command, num_workers=2, timeout=900):
    """Runs ``command`` (an argument list) on a loopback cluster (``start_cluster``);
    returns every worker's ``(return code, output)``, the chief (worker 0) first."""
    cluster = start_cluster(command, num_workers)
    try:
        return [cluster.wait(index, timeout) for index in range(num_workers)]
    finally:
        cluster.kill()


def tiny_model():
    """A compiled VAE + VampPrior of a few weights (28x28 inputs, K = 3), its optimizer built:
    for checkpoint tests that need variables to save and restore, not training."""
    import keras

    from tfvamp import models

    model = models.build_model("vae", input_shape=(28, 28, 1), prior="vamp", latent_dim=2,
                               hidden_units=4, num_components=3, seed=0)
    model.compile(optimizer=keras.optimizers.Adam())
    model.optimizer.build(model.trainable_variables)
    return model
