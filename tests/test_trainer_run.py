"""The trainer's outputs, kill-and-resume, non-finite losses and trainers.evaluate."""
import importlib.util
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO_ROOT, SHARED_DATA, subprocess_env, tiny_model
from tfvamp import datasets, figures, models
from tfvamp.callbacks import PaperEarlyStopping, TrainingCheckpoint
from tfvamp.checkpoints import restore_best_weights, saved_best_epoch
from tfvamp.errors import NonFiniteLossError
from trainers import cli, train
from trainers.errors import FlagError, RunMismatchError
from trainers.run_config import RunConfig

TINY = dict(dataset="caltech", prior="vamp", num_components=10, hidden_units=16, latent_dim=4,
            eval_samples=10, warmup_epochs=2, verbose="0", strategy="default", sample_every=2,
            monitor_every=1)


def config_for(output_dir, **overrides):
    return RunConfig.from_flags({**train.flag_values(), **TINY, "output_dir": str(output_dir), **overrides})


def _event_steps(folder):
    """``{tag: [steps]}`` of the TensorBoard events in ``folder``."""
    steps = {}
    for name in os.listdir(folder):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(folder, name)):
            for value in event.summary.value:
                steps.setdefault(value.tag, []).append(event.step)
    return steps


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A 2-epoch run: its output directory and results."""
    output_dir = tmp_path_factory.mktemp("run")
    return output_dir, train.train_and_evaluate(config_for(output_dir, epochs=2))


def test_run_logs_the_prior_monitor_and_writes_its_statistics_and_drift_figure(finished_run):
    tmp_path, results = finished_run
    prior_steps = _event_steps(tmp_path / "tensorboard" / "prior")
    for tag in ("pseudo_inputs_most_used_first", "component_usage", "effective_components",
                "unused_components", "active_units"):
        assert sorted(prior_steps[tag]) == [1, 2], tag
    assert prior_steps["pseudo_input_drift"] == [2]
    assert [round(h["effective_components"], 6) for h in results["history"]] == [
        round(h["effective_components"], 6) for h in json.loads((tmp_path / "results.json").read_text())["history"]]
    monitor = results["monitor"]
    assert monitor["num_components"] == 10 and 1 <= monitor["effective_components"] <= 10
    assert 0 <= monitor["unused_components"] <= 10 and monitor["images"] == 1000
    assert (tmp_path / "figures" / "pseudo_input_drift.png").read_bytes()[:4] == b"\x89PNG"


def test_run_writes_results_figures_tensorboard_checkpoints_and_evaluate_reproduces_it(finished_run):
    tmp_path, results = finished_run
    assert results["epochs_trained"] == 2 and [h["epoch"] for h in results["history"]] == [1, 2]
    assert [h["beta"] for h in results["history"]] == [0.5, 1.0]  # the trainer's KL warm-up (2 epochs)
    # Per-run diagnostics (tfvamp.diagnostics): the latent layer, and the tail of the test LLs.
    written_diagnostics = json.loads((tmp_path / "results.json").read_text())["diagnostics"]
    assert written_diagnostics["layers"]["z"]["latent_dim"] == 4
    assert 0 <= written_diagnostics["layers"]["z"]["active_units"] <= 4
    assert written_diagnostics["log_likelihood_quantiles"]["q0.05"] == pytest.approx(
        np.quantile(np.load(tmp_path / "test_log_likelihoods.npy").astype(np.float64), 0.05))
    assert math.isfinite(results["test_log_likelihood"])
    assert json.loads((tmp_path / "results.json").read_text())["best_epoch"] == results["best_epoch"]
    figures = sorted(os.listdir(tmp_path / "figures"))
    assert figures == ["log_likelihood_histogram.png", "pseudo_input_drift.png", "pseudo_inputs.png",
                       "reconstructions.png", "samples.png"]
    for name in figures:
        assert (tmp_path / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Every scalar and the samples (every sample_every=2 epochs) at 1-based epochs, as the history.
    train_steps = _event_steps(tmp_path / "tensorboard" / "train")
    for tag in ("loss", "reconstruction", "kl", "beta", "learning_rate", "epoch_seconds"):
        assert sorted(train_steps[tag]) == [1, 2], tag
    validation_steps = _event_steps(tmp_path / "tensorboard" / "validation")
    assert sorted(validation_steps["loss"]) == sorted(validation_steps["kl"]) == [1, 2]
    assert _event_steps(tmp_path / "tensorboard" / "samples") == {"samples": [2]}
    assert saved_best_epoch(tmp_path / "checkpoints") == results["best_epoch"]

    results_bytes = (tmp_path / "results.json").read_bytes()
    completed = subprocess.run([sys.executable, "-m", "trainers.evaluate", f"--output_dir={tmp_path}"],
                               cwd=REPO_ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    printed, error = re.search(r"test log-likelihood \(IS\)\s+(-?[\d.]+) ± ([\d.]+) \(MC\) nats \(S=10\)",
                               completed.stdout).groups()
    assert float(printed) == pytest.approx(results["test_log_likelihood"], abs=0.01)
    assert float(error) == pytest.approx(results["test_log_likelihood_se"], abs=0.01)
    assert 0 < results["test_log_likelihood_se"] < 1
    # The estimated bias beside the MC error: -se_i^2 / 2 averaged over the test images.
    standard_errors = np.load(tmp_path / "test_evaluation.npz")["log_likelihood_se"].astype(np.float64)
    assert results["test_log_likelihood_bias"] == pytest.approx(-np.mean(standard_errors ** 2) / 2, rel=1e-6)
    bias = re.search(r"estimated IS bias\s+(-[\d.]+) nats \(delta method", completed.stdout).group(1)
    assert float(bias) == pytest.approx(results["test_log_likelihood_bias"], abs=1e-4)
    assert "Test log-likelihood by importance sampling: 2307/2307 images" in completed.stdout
    # The re-evaluation goes to a file of its own; results.json is untouched.
    (written,) = (tmp_path / "evaluations").glob("*-S10.json")
    assert json.loads(written.read_text())["test_log_likelihood"] == pytest.approx(float(printed), abs=0.01)
    assert json.loads(written.read_text())["test_log_likelihood_bias"] == pytest.approx(float(bias), abs=1e-4)
    # The same weights and seed: the same diagnostics, up to float rounding (oneDNN is on in evaluate).
    evaluated = json.loads(written.read_text())["diagnostics"]
    assert evaluated["layers"]["z"] == pytest.approx(written_diagnostics["layers"]["z"], rel=1e-5)
    assert evaluated["log_likelihood_quantiles"] == pytest.approx(
        written_diagnostics["log_likelihood_quantiles"], abs=0.01)
    # The same seed and S: the trainer's per-image values, image by image (per-image seeds).
    np.testing.assert_allclose(np.load(str(written)[:-5] + ".npy"),
                               np.load(tmp_path / "test_log_likelihoods.npy"), rtol=1e-6)
    per_image = np.load(str(written)[:-5] + ".npz")
    np.testing.assert_array_equal(per_image["log_likelihood"], np.load(str(written)[:-5] + ".npy"))
    assert not list((tmp_path / "evaluations").glob("in-progress-*"))  # removed once written
    assert not (tmp_path / "test_evaluation.in-progress.npz").exists()
    assert str(written) in completed.stdout
    assert (tmp_path / "results.json").read_bytes() == results_bytes


@pytest.mark.slow
def test_bfloat16_run_says_and_records_its_precision_and_is_rebuilt_in_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "cpu_emulates_bfloat16", lambda: True)  # a CPU without AVX-512
    results = train.train_and_evaluate(config_for(tmp_path, epochs=1, precision="bfloat16",
                                                  eval_samples=2))
    first_line, second_line = capsys.readouterr().out.splitlines()[:2]
    assert "; bernoulli likelihood; " in first_line and "XLA on, bfloat16;" in first_line
    assert second_line.startswith("Warning: this CPU has no AVX-512, so TensorFlow emulates bfloat16")
    assert math.isfinite(results["test_log_likelihood"])
    config = RunConfig.read(str(tmp_path))
    assert config.precision == "bfloat16"
    dataset = datasets.load_dataset("caltech")
    assert config.build_model(dataset).precision == "bfloat16"  # as trainers.evaluate


def test_a_run_with_tfds_data_dir_reads_its_dataset_through_the_builder(tmp_path):
    """--tfds_data_dir prepares the builder there once; the run gets load_dataset's arrays."""
    config = config_for(tmp_path / "run", tfds_data_dir=str(tmp_path / "tfds"))
    through_tfds = config.load_dataset()
    assert (tmp_path / "tfds" / "caltech101_silhouettes" / "1.0.0").is_dir()
    from_files = datasets.load_dataset("caltech")
    for split in ("train", "validation", "test"):
        np.testing.assert_array_equal(getattr(through_tfds, split), getattr(from_files, split))


def test_clamp_bernoulli_builds_the_authors_likelihood_and_is_refused_on_grey_data(tmp_path):
    config = config_for(tmp_path / "run", clamp_bernoulli=True)
    model = config.build_model(datasets.load_dataset("caltech"))
    assert model.likelihood.name == "clamped_bernoulli"
    grey = config_for(tmp_path / "grey", dataset="freyfaces", data_dir=SHARED_DATA, clamp_bernoulli=True)
    with pytest.raises(FlagError, match="--clamp_bernoulli applies to binary data; freyfaces"):
        train.train_and_evaluate(grey)
    assert not (tmp_path / "grey").exists()  # refused before anything was written


def test_figures_without_a_vampprior_have_no_pseudo_inputs(tmp_path):
    model = models.build_model("vae", input_shape=(28, 20, 1), likelihood="discretized_logistic",
                               prior="mog", latent_dim=4, hidden_units=8, num_components=3)
    images = np.random.default_rng(0).uniform(size=(12, 28, 20, 1)).astype(np.float32)
    paths = figures.write_figures(model, images, np.linspace(-900.0, -700.0, 12), str(tmp_path))
    assert sorted(paths) == ["log_likelihood_histogram", "reconstructions", "samples"]
    assert sorted(os.listdir(tmp_path)) == ["log_likelihood_histogram.png", "reconstructions.png",
                                            "samples.png"]


class PoisonWeights(keras.callbacks.Callback):
    """Test hook: sets the decoder's weights to NaN before ``step`` (1-based) of ``epoch``."""

    def __init__(self, epoch, step):
        super().__init__()
        self.epoch, self.step, self.current = epoch, step, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch + 1

    def on_train_batch_begin(self, batch, logs=None):
        if (self.current, batch + 1) == (self.epoch, self.step):
            for variable in self.model.decoder.trainable_variables:
                variable.assign(tf.fill(variable.shape, float("nan")))


def test_nan_loss_stops_naming_epoch_and_step_and_keeps_the_last_good_checkpoint(tmp_path):
    with pytest.raises(NonFiniteLossError, match=r"epoch 2, step 3\b.*after epoch 1"):
        train.train_and_evaluate(config_for(tmp_path, epochs=3), callbacks=[PoisonWeights(2, 3)])
    assert not (tmp_path / "results.json").exists()
    state = tf.train.latest_checkpoint(str(tmp_path / "checkpoints" / "state"))
    assert state.endswith("epoch-1")
    for name, _ in tf.train.list_variables(state):
        if name.startswith("model/"):
            assert np.all(np.isfinite(tf.train.load_variable(state, name))), name


def test_resuming_with_other_model_flags_is_refused_and_loses_nothing(finished_run):
    tmp_path, _ = finished_run
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    with pytest.raises(RunMismatchError, match="--hidden_units=32 \\(saved run: 16\\)"):
        train.train_and_evaluate(config_for(tmp_path, epochs=3, hidden_units=32))
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before


def test_checkpoint_repairs_a_crash_between_saving_the_state_and_the_best_weights(tmp_path):
    model = tiny_model()
    early_stopping = PaperEarlyStopping(patience=5)
    checkpoint = TrainingCheckpoint(str(tmp_path), model, early_stopping)
    checkpoint.set_model(model)
    early_stopping.set_model(model)
    for epoch, val_loss in enumerate([3.0, 2.0]):
        early_stopping.on_epoch_end(epoch, {"val_loss": val_loss})
        checkpoint.on_epoch_end(epoch, {"loss": 1.0, "val_loss": val_loss})
    assert os.listdir(tmp_path / "best") and sorted(os.listdir(tmp_path / "state"))
    for name in os.listdir(tmp_path / "best"):
        if name.startswith("epoch-2."):
            os.remove(tmp_path / "best" / name)  # as if killed before the best weights were saved

    restored = tiny_model()
    early_stopping = PaperEarlyStopping(patience=5)
    resumed = TrainingCheckpoint(str(tmp_path), restored, early_stopping)
    assert resumed.restore() == 2 and early_stopping.best_epoch == 2 and early_stopping.best == 2.0
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    assert saved_best_epoch(str(tmp_path)) == 2
    best = tiny_model()
    restore_best_weights(best.variables, os.path.join(tmp_path, "best", "epoch-2"))
    for a, b in zip(best.variables, model.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _read_until(process, pattern, timeout):
    """Reads the process's output until ``pattern`` matches; returns the text read."""
    text, found = [], threading.Event()

    def reader():
        while True:
            chunk = process.stdout.read1(256).decode(errors="replace")
            if not chunk:
                return
            text.append(chunk)
            if re.search(pattern, "".join(text)):
                found.set()

    threading.Thread(target=reader, daemon=True).start()
    found.wait(timeout)
    return "".join(text), found.is_set()


@pytest.mark.slow
def test_killed_run_resumes_after_the_last_completed_epoch(tmp_path):
    command = [sys.executable, "-m", "trainers.train", "--dataset=caltech", "--prior=vamp",
               "--num_components=10", "--hidden_units=64", "--latent_dim=4", "--eval_samples=10",
               "--warmup_epochs=2", "--epochs=4", "--strategy=default", f"--output_dir={tmp_path}"]
    process = subprocess.Popen([*command, "--verbose=2"], cwd=REPO_ROOT, env=subprocess_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        # The line of epoch 1 comes after its checkpoint: epoch 2 is under way.
        text, found = _read_until(process, r"epoch 1/4: ", timeout=240)
        assert found, text[-3000:]
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    finally:
        process.kill()
    completed_epoch = int(tf.train.latest_checkpoint(str(tmp_path / "checkpoints" / "state")).rsplit("-", 1)[1])
    assert 1 <= completed_epoch < 4
    assert not (tmp_path / "results.json").exists()
    # The killed run's record of the lock stays; its lock does not: the rerun starts at once.
    assert json.loads((tmp_path / "run.lock").read_text())["pid"] == process.pid

    rerun = subprocess.run([*command, "--verbose=2"], cwd=REPO_ROOT, env=subprocess_env(), capture_output=True,
                           text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"Resuming {tmp_path} after epoch {completed_epoch}" in rerun.stdout
    assert f"epoch {completed_epoch}/4:" not in rerun.stdout  # no completed epoch is trained again
    assert f"epoch {completed_epoch + 1}/4:" in rerun.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["resumed_after_epoch"] == completed_epoch
    assert results["epochs_trained"] == 4 and [h["epoch"] for h in results["history"]] == [1, 2, 3, 4]
    assert [h["beta"] for h in results["history"]] == [0.5, 1.0, 1.0, 1.0]
    # The training time counts the epochs of both sessions, not only the resumed one.
    assert all(h["epoch_seconds"] > 0 for h in results["history"])
    assert results["train_seconds"] > results["session_train_seconds"] > 0


def test_a_finished_run_is_refused_unless_replace_results_which_keeps_the_old_results(finished_run):
    # Runs last in this file: it trains the module's run on.
    from trainers import training

    tmp_path, results = finished_run
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    with pytest.raises(training.RunFinishedError, match="holds a finished run"):
        train.train_and_evaluate(config_for(tmp_path, epochs=3))
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before

    replaced = train.train_and_evaluate(config_for(tmp_path, epochs=3, replace_results=True))
    assert replaced["epochs_trained"] == 3 and replaced["resumed_after_epoch"] == 2
    (old,) = tmp_path.glob("results.replaced-*.json")
    assert old.read_bytes() == before[tmp_path / "results.json"]
    assert json.loads((tmp_path / "results.json").read_text())["epochs_trained"] == 3
    # A new export version beside the old one, which is never replaced.
    assert replaced["export"] != results["export"]
    assert sorted(os.listdir(os.path.dirname(replaced["export"]))) == ["1", "2"]


def test_early_stopping_says_why_it_stopped():
    early_stopping = PaperEarlyStopping(patience=2, warmup_epochs=3)
    early_stopping.set_model(keras.Model())
    assert early_stopping.stop_reason() is None
    # As the authors' code: epoch 3, the warm-up's last (beta = 1), counts; epochs 1-2 do not.
    for epoch, val_loss in enumerate([5.0, 4.0, 4.5, 4.6]):
        early_stopping.on_epoch_end(epoch, {"val_loss": val_loss})
        assert early_stopping.wait == [0, 0, 1, 2][epoch] and not early_stopping.stopped
    early_stopping.on_epoch_end(4, {"val_loss": 4.7})
    assert early_stopping.stopped and early_stopping.model.stop_training
    assert early_stopping.stop_reason() == (
        "Stopped early after epoch 5: the validation loss did not improve for 3 epochs (patience 2, "
        "counted from epoch 3, the warm-up's last); best 4.000 at epoch 2.")


def test_a_run_kept_in_the_repository_resumes_on_another_machine(finished_run, tmp_path, monkeypatch):
    """record_progress.py --with_checkpoints keeps what resuming needs; reproduce.sh copies it
    into an empty run directory, from which the trainer goes on after the kept epoch."""
    original, _ = finished_run
    spec = importlib.util.spec_from_file_location(
        "record_progress", os.path.join(REPO_ROOT, "results", "record_progress.py"))
    record_progress = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(record_progress)
    monkeypatch.setattr(record_progress, "UNFINISHED", str(tmp_path / "unfinished"))
    unfinished_run = tmp_path / "unfinished_run"
    shutil.copytree(original, unfinished_run)
    history = json.loads((unfinished_run / "results.json").read_text())["history"]  # other tests may extend the run
    (unfinished_run / "results.json").unlink()
    entry = record_progress.record(str(unfinished_run), "run", with_checkpoints=True)
    epochs = entry["epochs_completed"]
    assert epochs == len(history)
    kept = tmp_path / "unfinished" / "run"
    assert sorted(p.name for p in (kept / "checkpoints" / "state").iterdir())[0] == "checkpoint"
    assert any(p.name.startswith(f"epoch-{entry['best_epoch']}.") for p in (kept / "checkpoints" / "best").iterdir())

    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(kept, elsewhere)  # reproduce.sh: cp -r results/unfinished/NAME/. RUNS_DIR/NAME/
    resumed = train.train_and_evaluate(config_for(elsewhere, epochs=epochs + 1))
    assert [h["epoch"] for h in resumed["history"]] == list(range(1, epochs + 2))
    assert resumed["history"][:epochs] == history
    assert record_progress.record(str(elsewhere), "run") is None and not kept.exists()
