"""``trainers.evaluate`` as a user runs it: SIGKILLed and resumed, it writes
what an uninterrupted run writes; on a 2-worker loopback
``MultiWorkerMirroredStrategy`` cluster, the per-image values of one device;
and the evaluation phase of ``trainers.train``, resumed after a crash. Each
takes 1-3 minutes on 2 busy cores: all are ``slow``."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO_ROOT, run_cluster, subprocess_env
from trainers import train
from trainers.run_config import RunConfig

TINY = dict(dataset="caltech", prior="vamp", num_components=10, hidden_units=16, latent_dim=4,
            eval_samples=2, warmup_epochs=2, verbose="0", strategy="default", sample_every=0)
SAMPLES = 300  # about 20 steps of 100 images: long enough to be killed in the middle


def _evaluate_command(output_dir, *flags):
    return [sys.executable, "-m", "trainers.evaluate", f"--output_dir={output_dir}",
            f"--eval_samples={SAMPLES}", *flags]


def _written(output_dir):
    """The JSON and per-image arrays of every evaluation written, oldest first."""
    paths = sorted((output_dir / "evaluations").glob(f"*-S{SAMPLES}.json"))
    return [(json.loads(p.read_text()), dict(np.load(str(p)[:-5] + ".npz"))) for p in paths]


@pytest.fixture(scope="module")
def run_and_reference(tmp_path_factory):
    """A 1-epoch run and its uninterrupted evaluation on one device."""
    output_dir = tmp_path_factory.mktemp("run")
    train.train_and_evaluate(RunConfig.from_flags(
        {**train.flag_values(), **TINY, "output_dir": str(output_dir), "epochs": 1}))
    completed = subprocess.run(_evaluate_command(output_dir, "--strategy=default"), cwd=REPO_ROOT,
                               env=subprocess_env(), capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    (reference,) = _written(output_dir)
    return output_dir, reference


@pytest.mark.slow
def test_sigkilled_evaluation_resumed_writes_what_an_uninterrupted_one_writes(run_and_reference):
    output_dir, (reference_json, reference_arrays) = run_and_reference
    partial = output_dir / "evaluations" / f"in-progress-S{SAMPLES}-seed0.npz"
    process = subprocess.Popen(_evaluate_command(output_dir), cwd=REPO_ROOT, env=subprocess_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not partial.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.communicate()
    assert process.returncode == -signal.SIGKILL
    assert len(_written(output_dir)) == 1  # the killed run wrote no results
    done = len(np.load(partial)["log_likelihood"])
    assert 0 < done < len(reference_arrays["log_likelihood"])

    completed = subprocess.run(_evaluate_command(output_dir), cwd=REPO_ROOT, env=subprocess_env(),
                               capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert f"Resuming the test evaluation after {done} of 2307 images" in completed.stdout
    assert f"Test log-likelihood by importance sampling: {done}/2307 images" in completed.stdout
    resumed_json, resumed_arrays = _written(output_dir)[-1]
    assert resumed_json == reference_json
    assert resumed_arrays.keys() == reference_arrays.keys()
    for name, values in reference_arrays.items():
        np.testing.assert_array_equal(resumed_arrays[name], values, err_msg=name)
    assert not partial.exists()


@pytest.mark.slow
def test_two_worker_cluster_gives_the_per_image_values_of_one_device(run_and_reference):
    output_dir, (reference_json, reference_arrays) = run_and_reference
    workers = run_cluster(
        _evaluate_command(output_dir, "--strategy=multi_worker", "--eval_batch_size=50"), timeout=600)
    outputs = [output for _, output in workers]
    for returncode, output in workers:
        assert returncode == 0, output[-3000:]
        assert "with 2 replica(s)" in output
    assert "Worker done" in outputs[1] and "written to" in outputs[0]
    cluster_json, cluster_arrays = _written(output_dir)[-1]
    assert cluster_json["test_log_likelihood"] == pytest.approx(reference_json["test_log_likelihood"],
                                                                abs=1e-4)
    for name, values in reference_arrays.items():
        np.testing.assert_allclose(cluster_arrays[name], values, rtol=1e-5, err_msg=name)


class _Killed(Exception):
    """Stands for the process dying between two steps of the evaluation."""


@pytest.mark.slow
def test_trainer_evaluation_phase_resumes_after_a_crash_with_the_values_of_one_run(tmp_path, monkeypatch,
                                                                                   capsys):
    from tfvamp import evaluation
    from tfvamp.checkpoints import best_checkpoint_path, restore_best_weights, saved_best_epoch
    from trainers import run_evaluation, training
    from trainers.run_files import checkpoint_dir

    config = RunConfig.from_flags({**train.flag_values(), **TINY, "output_dir": str(tmp_path), "epochs": 1,
                                   "eval_samples": 5, "eval_batch_size": 500})
    write = run_evaluation.write_npz_atomic
    saved = []

    def write_then_die_after_two_steps(path, **arrays):
        write(path, **arrays)
        saved.append(path)
        if len(saved) == 2:
            raise _Killed

    monkeypatch.setattr(run_evaluation, "write_npz_atomic", write_then_die_after_two_steps)
    with pytest.raises(_Killed):
        train.train_and_evaluate(config)
    monkeypatch.undo()
    partial = training.partial_evaluation_path(str(tmp_path))
    assert len(np.load(partial)["log_likelihood"]) == 1000 and not (tmp_path / "results.json").exists()
    capsys.readouterr()

    results = train.train_and_evaluate(config)
    printed = capsys.readouterr().out
    assert "Resuming the test evaluation after 1000 of 2307 images" in printed
    assert "Test log-likelihood by importance sampling (S=5): 1000/2307 images" in printed
    assert not os.path.exists(partial)
    # What one uninterrupted evaluation of the best weights gives, image by image.
    dataset = config.load_dataset()
    model = config.build_model(dataset)
    best_epoch = saved_best_epoch(checkpoint_dir(str(tmp_path)))
    restore_best_weights(model.variables, best_checkpoint_path(checkpoint_dir(str(tmp_path)), best_epoch))
    expected = evaluation.evaluate(model, dataset.test, 5, 500, seed=config.seed)
    per_image = np.load(tmp_path / "test_evaluation.npz")
    for name in evaluation.PER_IMAGE:
        np.testing.assert_allclose(per_image[name], expected[name], rtol=1e-5, err_msg=name)
    assert results["test_log_likelihood"] == pytest.approx(expected["mean_log_likelihood"], abs=1e-4)
    assert results["test_log_likelihood_se"] == pytest.approx(expected["mean_log_likelihood_se"], rel=1e-4)
