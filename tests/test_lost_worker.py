"""A lost worker (issue 39): on a 2-worker loopback ``MultiWorkerMirroredStrategy``
cluster, SIGKILLing either worker in the middle of an epoch (of ``trainers.train``)
or of the test evaluation (of ``trainers.evaluate``) makes the other exit by
itself within ``--worker_timeout``, with exit status 1, no traceback, one line
naming the lost worker and the command that goes on, and nothing half-written;
restarting both resumes, to the weights fingerprint of an uninterrupted run (and
the per-image values of an uninterrupted evaluation).

The uninterrupted references take a minute or two each on 2 busy cores: only
the survivor's exit of a training run is in the default suite."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO_ROOT, run_cluster, start_cluster, subprocess_env

WORKER_TIMEOUT = 10  # seconds, --worker_timeout
# The survivor's exit may take the timeout, plus TensorFlow's shutdown of the cluster.
EXIT_WITHIN = WORKER_TIMEOUT + 30
TRAIN = [sys.executable, "-m", "trainers.train", "--dataset=caltech", "--prior=vamp", "--num_components=10",
         "--hidden_units=16", "--latent_dim=4", "--eval_samples=10", "--warmup_epochs=2", "--epochs=3",
         "--sample_every=0", "--monitor_every=0", "--verbose=2", "--strategy=multi_worker",
         f"--worker_timeout={WORKER_TIMEOUT}"]
FINGERPRINT = re.compile(r"fingerprint \(sha256\) (\w+)")
# What TensorFlow's collective ops print natively as a lost worker aborts them (held back).
ABORTED_COLLECTIVES = re.compile(r"ring_alg\.cc|base_collective_executor\.cc|Additional GRPC error|"
                                 r"Error received from peer")


def _kill_and_check_survivor(cluster, victim, ready_text, program):
    """SIGKILLs worker ``victim`` once the chief printed ``ready_text``; checks the
    survivor exits by itself in time, with one line naming the victim and the
    command that goes on, and no traceback. Returns the survivor's output."""
    assert cluster.wait_for(0, ready_text, timeout=300), cluster.output(0)[-3000:]
    cluster.processes[victim].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    survivor = 1 - victim
    returncode, output = cluster.wait(survivor, timeout=EXIT_WITHIN)
    assert time.monotonic() - killed < EXIT_WITHIN
    assert returncode == 1, output[-3000:]
    assert "Traceback" not in output and not ABORTED_COLLECTIVES.search(output), output[-3000:]
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, output[-3000:]
    assert errors[0].startswith(
        f"Error: lost worker {victim} of the cluster ({cluster.addresses[victim]}): it stopped answering")
    assert f"start every worker again, each with its own TF_CONFIG: python -m {program} " in errors[0]
    return output


HELD_BACK = r"""
import os, signal, sys
from trainers import cli

cli.hold_back_native_lines(cli.LOST_WORKER_NATIVE_LINES)
os.write(2, b"E0000 00:00:1796553992.653497    2738 ring_alg.cc:291] Aborting RingReduce with UNAVAILABLE: "
            b"recvmsg:Connection reset by peer\nAdditional GRPC error information from remote target\n"
            b"W0000 00:00:1796553992.700000    2738 other.cc:12] a warning of its own\n")
print("Error: lost worker 1 of the cluster", file=sys.stderr, flush=True)
print("the last line", file=sys.stderr, flush=True)
os.kill(os.getpid(), getattr(signal, sys.argv[1]))
"""


@pytest.mark.parametrize("end", ["SIGKILL", "SIGABRT"])
def test_native_lines_of_a_lost_worker_are_held_back_and_the_others_pass_even_as_it_dies(end):
    completed = subprocess.run([sys.executable, "-c", HELD_BACK, end], cwd=REPO_ROOT, env=subprocess_env(),
                               capture_output=True, text=True, timeout=60)
    assert completed.stderr.splitlines() == [
        "W0000 00:00:1796553992.700000    2738 other.cc:12] a warning of its own",
        "Error: lost worker 1 of the cluster", "the last line"]
    shown = subprocess.run([sys.executable, "-c", HELD_BACK, end], cwd=REPO_ROOT,
                           env=subprocess_env(TFVAMP_TRACEBACK="1"), capture_output=True, text=True,
                           timeout=60)
    # nothing held back for a bug report
    assert "ring_alg.cc:291] Aborting RingReduce" in shown.stderr


def _whole_files_only(output_dir):
    """Every file of ``output_dir`` is one a finished write leaves: no temporary ones."""
    for directory, folders, names in os.walk(output_dir):
        for name in folders + names:
            assert not re.search(r"(_temp|\.tmp)", name), os.path.join(directory, name)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The chief's fingerprint of an uninterrupted 2-worker run of ``TRAIN``."""
    output_dir = tmp_path_factory.mktemp("uninterrupted")
    workers = run_cluster([*TRAIN, f"--output_dir={output_dir}"], timeout=600)
    for returncode, output in workers:
        assert returncode == 0, output[-3000:]
    return FINGERPRINT.search(workers[0][1]).group(1)


def test_a_sigkilled_worker_makes_the_chief_exit_naming_it(tmp_path):
    cluster = start_cluster([*TRAIN, f"--output_dir={tmp_path}"])
    try:
        # The chief's line of epoch 1 comes after its checkpoint: epoch 2 is under way.
        _kill_and_check_survivor(cluster, 1, "epoch 1/3: ", "trainers.train")
    finally:
        cluster.kill()
    assert sorted(os.listdir(tmp_path / "checkpoints" / "state")) == [
        "checkpoint", "epoch-1.data-00000-of-00001", "epoch-1.index"]
    assert not (tmp_path / "results.json").exists()
    _whole_files_only(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("victim", [0, 1])
def test_restarted_cluster_resumes_to_the_weights_of_an_uninterrupted_run(victim, tmp_path, uninterrupted):
    cluster = start_cluster([*TRAIN, f"--output_dir={tmp_path}"])
    try:
        _kill_and_check_survivor(cluster, victim, "epoch 1/3: ", "trainers.train")
    finally:
        cluster.kill()
    _whole_files_only(tmp_path)
    assert not (tmp_path / "results.json").exists()

    workers = run_cluster([*TRAIN, f"--output_dir={tmp_path}"], timeout=600)
    for returncode, output in workers:
        assert returncode == 0, output[-3000:]
    chief = workers[0][1]
    assert f"Resuming {tmp_path} after epoch 1" in chief and "epoch 1/3:" not in chief
    assert FINGERPRINT.search(chief).group(1) == uninterrupted
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["resumed_after_epoch"] == 1 and results["last_weights_sha256"] == uninterrupted


@pytest.mark.slow
@pytest.mark.parametrize("victim", [0, 1])
def test_restarted_evaluation_resumes_to_the_values_of_an_uninterrupted_one(victim, tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    workers = run_cluster([*TRAIN, "--epochs=1", f"--output_dir={run}"], timeout=600)
    assert [returncode for returncode, _ in workers] == [0, 0], workers[0][1][-3000:]
    # 300 samples in steps of 50 images: 47 steps, long enough to be killed in the middle.
    evaluate = [sys.executable, "-m", "trainers.evaluate", f"--output_dir={run}", "--eval_samples=300",
                "--eval_batch_size=50", "--strategy=multi_worker", f"--worker_timeout={WORKER_TIMEOUT}"]
    partial = run / "evaluations" / "in-progress-S300-seed0.npz"
    cluster = start_cluster(evaluate)
    try:
        deadline = time.monotonic() + 300
        while not partial.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        _kill_and_check_survivor(cluster, victim, "Evaluating on", "trainers.evaluate")
    finally:
        cluster.kill()
    _whole_files_only(run)
    done = len(np.load(partial)["log_likelihood"])
    assert 0 < done < 2307 and not list((run / "evaluations").glob("*-S300.json"))

    workers = run_cluster(evaluate, timeout=600)
    for returncode, output in workers:
        assert returncode == 0, output[-3000:]
    assert f"Resuming the test evaluation after {done} of 2307 images" in workers[0][1]
    (resumed,) = (run / "evaluations").glob("*-S300.npz")
    os.rename(resumed, run / "resumed.npz")
    for path in (run / "evaluations").glob("*-S300.json"):
        path.unlink()
    workers = run_cluster(evaluate, timeout=600)  # uninterrupted, from the start
    assert [returncode for returncode, _ in workers] == [0, 0], workers[0][1][-3000:]
    (uninterrupted,) = (run / "evaluations").glob("*-S300.npz")
    resumed, uninterrupted = np.load(run / "resumed.npz"), np.load(uninterrupted)
    for name in uninterrupted.files:
        np.testing.assert_allclose(resumed[name], uninterrupted[name], rtol=1e-5, err_msg=name)
