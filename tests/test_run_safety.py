"""Run safety as a user meets it: one program per --output_dir, every failure
one line on stderr, Ctrl-C/SIGTERM with a resume line, failed writes that lose nothing."""
import errno
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from conftest import REPO_ROOT, subprocess_env, tiny_model
from trainers import cli, run_lock
from trainers.atomic_files import write_file_atomic, write_json_atomic

TINY_FLAGS = ("--dataset=caltech", "--prior=vamp", "--num_components=10", "--hidden_units=16",
              "--latent_dim=4", "--eval_samples=10", "--warmup_epochs=2", "--epochs=3",
              "--batch_size=20", "--strategy=default", "--sample_every=0", "--verbose=2")
RESULT_FIGURES = ("test_log_likelihood", "test_elbo", "test_reconstruction", "test_kl",
                  "best_validation_loss")


def _default_sigint():
    # A background job inherits SIGINT ignored (then the trainers leave it so): a terminal's Ctrl-C.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(program, *args, preexec_fn=_default_sigint):
    return subprocess.Popen([sys.executable, "-m", program, *args], cwd=REPO_ROOT, env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=preexec_fn)


def run(program, *args, preexec_fn=_default_sigint, timeout=300):
    return subprocess.run([sys.executable, "-m", program, *args], cwd=REPO_ROOT, env=subprocess_env(),
                          capture_output=True, text=True, timeout=timeout, preexec_fn=preexec_fn)


def assert_one_line_error(completed, *expected):
    assert completed.returncode == 1, (completed.returncode, completed.stderr[-3000:])
    assert "Traceback" not in completed.stderr, completed.stderr[-3000:]
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), completed.stderr[-3000:]
    for text in expected:
        assert text in lines[0], (text, lines[0])
    return lines[0]


def _wait_for_lock(output_dir, process, timeout=60):
    path = os.path.join(output_dir, run_lock.LOCK_FILE)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError):
            time.sleep(0.05)
    raise AssertionError(f"no lock at {path}")


@pytest.fixture(scope="module")
def contested_run(tmp_path_factory):
    """A tiny uninterrupted run, and a second trainers.train on its directory
    started while the first holds the lock: the directory, the first's PID,
    the holder its lock file recorded, the second's completed process and the
    first's stdout."""
    output_dir = tmp_path_factory.mktemp("contested") / "run"
    first = start("trainers.train", *TINY_FLAGS, f"--output_dir={output_dir}")
    try:
        holder = _wait_for_lock(output_dir, first)
        second = run("trainers.train", *TINY_FLAGS, f"--output_dir={output_dir}", timeout=60)
        out, err = first.communicate(timeout=600)
    finally:
        first.kill()
    assert first.returncode == 0, err[-3000:]
    return output_dir, first.pid, holder, second, out


def test_a_second_train_on_the_same_directory_is_refused_naming_the_holder(contested_run):
    output_dir, pid, holder, second, _ = contested_run
    assert holder["pid"] == pid and holder["program"] == "trainers.train"
    line = assert_one_line_error(second, f"{output_dir} is in use by trainers.train (PID {pid} on ",
                                 "--output_dir", "nothing was changed")
    assert "python -m trainers.train " in line  # the holder's command
    # The first run alone wrote the directory: one export, no replaced results, no lock left.
    assert os.listdir(output_dir / "export" / "vae") == ["1"]
    assert not list(output_dir.glob("results.replaced-*"))
    assert json.loads((output_dir / "results.json").read_text())["epochs_trained"] == 3
    assert not (output_dir / run_lock.LOCK_FILE).exists()


def test_a_sigkilled_holder_leaves_no_lock_behind(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom trainers import run_lock\n"
        "with run_lock.hold(sys.argv[1], 'trainers.train', create=True):\n"
        "    print('locked', flush=True)\n    time.sleep(600)\n"), str(tmp_path / "run")],
        cwd=REPO_ROOT, env=subprocess_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(run_lock.RunLockedError, match=f"PID {holder.pid} on "):
            with run_lock.hold(str(tmp_path / "run"), "trainers.evaluate"):
                pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
    finally:
        holder.kill()
    assert (tmp_path / "run" / run_lock.LOCK_FILE).exists()  # its record stays, its lock does not
    with run_lock.hold(str(tmp_path / "run"), "trainers.evaluate"):
        recorded = json.loads((tmp_path / "run" / run_lock.LOCK_FILE).read_text())
        assert recorded["pid"] == os.getpid() and recorded["program"] == "trainers.evaluate"
    assert not (tmp_path / "run" / run_lock.LOCK_FILE).exists()


def test_an_output_dir_that_is_a_file_is_one_line_in_every_command(tmp_path):
    path = tmp_path / "file"
    path.write_text("not a directory")
    assert_one_line_error(run("trainers.train", f"--output_dir={path}"), str(path), "choose another --output_dir")
    assert_one_line_error(run("trainers.evaluate", f"--output_dir={path}"), str(path))
    assert_one_line_error(run("trainers.export", f"--output_dir={path}"), str(path))
    assert path.read_text() == "not a directory"


def test_an_output_dir_without_write_permission_is_one_line(tmp_path):
    locked = tmp_path / "read_only"
    locked.mkdir()
    locked.chmod(0o555)
    args = ["trainers.train", f"--output_dir={locked / 'run'}"]
    if os.geteuid() == 0:  # root may write anywhere: the OS refuses as it would refuse a user
        code = ("import errno, os, runpy, sys\n"
                "def refused(path, *args, **kwargs):\n"
                "    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)\n"
                "os.makedirs = refused\n"
                f"sys.argv = {args!r}\n"
                "runpy.run_module('trainers.train', run_name='__main__')\n")
        completed = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=subprocess_env(),
                                   capture_output=True, text=True, timeout=60)
    else:
        completed = run(*args)
    assert_one_line_error(completed, f"{locked / 'run'}: Permission denied", "--output_dir")
    assert os.listdir(locked) == []


@pytest.mark.slow
def test_a_full_disk_during_training_is_one_line_keeps_what_was_written_and_is_cleaned_up(tmp_path):
    def small_files():  # every file beyond 64 KiB is refused, as by a full disk
        _default_sigint()
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, resource.RLIM_INFINITY))

    completed = run("trainers.train", *TINY_FLAGS, "--epochs=1", f"--output_dir={tmp_path / 'run'}",
                    preexec_fn=small_files)
    line = assert_one_line_error(completed, "free some space", "run the same command again")
    assert "File too large" in line
    assert json.loads((tmp_path / "run" / "config.json").read_text())["epochs"] == 1
    assert not list((tmp_path / "run").rglob("*.tmp-*"))
    assert list((tmp_path / "run" / "checkpoints" / "state").glob("epoch-1_temp"))  # TensorFlow's
    completed = run("trainers.train", *TINY_FLAGS, "--epochs=1", f"--output_dir={tmp_path / 'run'}")
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert not list((tmp_path / "run" / "checkpoints").rglob("*_temp"))


def test_evaluate_on_truncated_data_another_models_run_or_a_truncated_checkpoint_is_one_line(
        contested_run, tmp_path):
    output_dir = contested_run[0]
    data = tmp_path / "data" / "caltech101_silhouettes"
    data.mkdir(parents=True)
    source = os.path.join(REPO_ROOT, "tfvamp", "datasets", "data", "caltech101_silhouettes_28_split1.mat")
    with open(source, "rb") as f:
        (data / os.path.basename(source)).write_bytes(f.read()[:100_000])
    before = sorted(os.listdir(output_dir))
    completed = run("trainers.evaluate", f"--output_dir={output_dir}", f"--data_dir={tmp_path / 'data'}")
    assert_one_line_error(completed, "caltech101_silhouettes_28_split1.mat")
    assert sorted(os.listdir(output_dir)) == before  # no evaluations/ written

    # A run directory whose checkpoints are of another model than its config.json says.
    other = tmp_path / "other"
    shutil.copytree(output_dir, other, ignore=shutil.ignore_patterns("export", "figures", "tensorboard"))
    config = json.loads((other / "config.json").read_text())
    write_json_atomic(str(other / "config.json"), {**config, "hidden_units": 32})
    completed = run("trainers.evaluate", f"--output_dir={other}")
    assert_one_line_error(completed, f"the checkpoints in {other} do not fit the model its config.json")

    # Truncated checkpoint files (the best weights evaluate reads).
    write_json_atomic(str(other / "config.json"), config)
    for data_file in (other / "checkpoints" / "best").glob("*.data-*"):
        data_file.write_bytes(data_file.read_bytes()[:1000])
    completed = run("trainers.evaluate", f"--output_dir={other}")
    assert_one_line_error(completed, "checkpoints are truncated or corrupt", "restore them from a copy")


def test_an_export_directory_that_is_not_a_saved_model_is_one_line(tmp_path):
    write_json_atomic(str(tmp_path / "results.json"), {"flags": {"model": "vae"}})
    (tmp_path / "export" / "vae" / "1").mkdir(parents=True)
    completed = run("trainers.export", f"--output_dir={tmp_path}")
    assert_one_line_error(completed, "is not an export of tfvamp.export")
    assert os.listdir(tmp_path / "export" / "vae") == ["1"]


def test_the_traceback_is_shown_on_request(tmp_path):
    path = tmp_path / "file"
    path.write_text("")
    completed = subprocess.run([sys.executable, "-m", "trainers.train", f"--output_dir={path}"],
                               cwd=REPO_ROOT, env={**subprocess_env(), "TFVAMP_TRACEBACK": "1"},
                               capture_output=True, text=True, timeout=60)
    assert completed.returncode == 1
    assert "Traceback" in completed.stderr and "FileExistsError" in completed.stderr


def test_errors_of_the_os_and_of_tensorflow_are_one_sentence():
    full = cli.error_line(OSError(errno.ENOSPC, "No space left on device", "/runs/a/results.json"))
    assert full == ("Error: no space to write /runs/a/results.json (No space left on device): free some "
                    f"space and {cli.RETRY}.")

    class OpError(Exception):  # as tf.errors.OpError: a message of several lines
        __module__ = "tensorflow.python.framework.errors_impl"
        message = "/runs/a/checkpoints/state/epoch-3_temp; No space left on device\n\tdetails"

    assert "\n" not in cli.error_line(OpError()) and "free some space" in cli.error_line(OpError())
    assert cli.error_line(KeyError("x")).startswith("Error: unexpected KeyError: 'x' -- rerun with "
                                                    "TFVAMP_TRACEBACK=1")


def _read_until(process, pattern, timeout):
    """Reads ``process.stdout`` until a line contains ``pattern``; returns the lines read."""
    lines, found = [], threading.Event()

    def reader():
        for line in process.stdout:
            lines.append(line)
            if pattern in line:
                found.set()
        found.set()

    threading.Thread(target=reader, daemon=True).start()
    found.wait(timeout)
    return lines


def _interrupt_after(output_dir, line, signum):
    """Starts the tiny run in ``output_dir`` and sends ``signum`` a moment
    after ``line`` is printed (in the next epoch); returns the exit code and stderr."""
    process = start("trainers.train", *TINY_FLAGS, f"--output_dir={output_dir}")
    try:
        lines = _read_until(process, line, timeout=300)
        assert any(line in text for text in lines), "".join(lines)[-3000:]
        time.sleep(0.3)
        process.send_signal(signum)
        err = process.stderr.read()
        process.wait(120)
    finally:
        process.kill()
    return process.returncode, err


def _interrupt_resume_and_compare(contested_run, output_dir, signum):
    returncode, err = _interrupt_after(output_dir, "epoch 1/3:", signum)
    assert returncode == {signal.SIGINT: 130, signal.SIGTERM: 143}[signum], err[-3000:]
    assert "Traceback" not in err
    (line,) = err.strip().splitlines()
    # Mid-epoch (the usual case) it stops after the step, and says the epoch is trained again;
    # if the signal came while epoch 2 was being validated or saved, it stops once it is saved.
    name = signal.Signals(signum).name
    stopped = re.fullmatch(rf"Interrupted by {name} (in epoch 2 after step \d+ of 205 \(epoch 2 will be "
                           rf"trained again from its start\)|after epoch 2); the checkpoint after epoch "
                           rf"(\d) is kept\. To resume after it: (.*)", line)
    assert stopped, line
    kept = int(stopped.group(2))
    assert kept == (1 if stopped.group(1).startswith("in") else 2)
    assert stopped.group(3) == f"python -m trainers.train {' '.join(TINY_FLAGS)} --output_dir={output_dir}"
    assert not (output_dir / "results.json").exists()
    assert not (output_dir / run_lock.LOCK_FILE).exists()

    resumed = run("trainers.train", *TINY_FLAGS, f"--output_dir={output_dir}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Resuming {output_dir} after epoch {kept}" in resumed.stdout
    results = json.loads((output_dir / "results.json").read_text())
    uninterrupted = json.loads((contested_run[0] / "results.json").read_text())
    assert results["resumed_after_epoch"] == kept
    assert [h["epoch"] for h in results["history"]] == [h["epoch"] for h in uninterrupted["history"]]
    for key in RESULT_FIGURES:
        assert results[key] == pytest.approx(uninterrupted[key], rel=1e-4, abs=1e-3), key
    for ours, theirs in zip(results["history"], uninterrupted["history"]):
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-4)
        assert ours["val_loss"] == pytest.approx(theirs["val_loss"], rel=1e-4)


def test_sigterm_stops_with_a_resume_line_and_the_resumed_run_ends_as_an_uninterrupted_one(
        contested_run, tmp_path):
    _interrupt_resume_and_compare(contested_run, tmp_path / "run", signal.SIGTERM)


@pytest.mark.slow
def test_ctrl_c_stops_with_a_resume_line_and_the_resumed_run_ends_as_an_uninterrupted_one(
        contested_run, tmp_path):
    _interrupt_resume_and_compare(contested_run, tmp_path / "run", signal.SIGINT)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_an_evaluation_acts_within_seconds_keeping_the_images_done(contested_run, signum):
    output_dir = contested_run[0]
    args = ("trainers.evaluate", f"--output_dir={output_dir}", "--eval_samples=5000", f"--seed={signum}")
    process = start(*args)
    try:
        lines = _read_until(process, "Evaluating on", timeout=120)
        assert any("Evaluating on" in line for line in lines), "".join(lines)
        time.sleep(8)  # into the evaluation, past its first steps
        process.send_signal(signum)
        sent = time.monotonic()
        err = process.stderr.read()
        process.wait(60)
        seconds = time.monotonic() - sent
    finally:
        process.kill()
    assert process.returncode == {signal.SIGINT: 130, signal.SIGTERM: 143}[signum], err[-3000:]
    assert seconds < 8, seconds
    partial = output_dir / "evaluations" / f"in-progress-S5000-seed{int(signum)}.npz"
    (line,) = err.strip().splitlines()
    kept = len(np.load(partial)["log_likelihood"])
    assert 0 < kept < 2307
    name = signal.Signals(signum).name
    assert line == (f"Interrupted by {name} during the test evaluation; {kept} of 2307 images are kept "
                    f"in {partial}. To go on from there: python -m {' '.join(args)}")
    assert not (output_dir / run_lock.LOCK_FILE).exists()
    partial.unlink()


def test_a_failed_json_or_array_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    write_json_atomic(str(path), {"test_log_likelihood": -100.0})
    previous = path.read_bytes()

    def full_disk(value, f, **kwargs):
        f.write('{"test_log_lik')
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(json, "dump", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_json_atomic(str(path), {"test_log_likelihood": -90.0})
    assert path.read_bytes() == previous
    assert os.listdir(tmp_path) == ["results.json"]  # no temporary left behind
    monkeypatch.undo()

    array = tmp_path / "test_log_likelihoods.npy"
    write_file_atomic(str(array), lambda f: np.save(f, np.arange(3.0)))

    def half_written(f):
        f.write(b"\x93NUMPY")
        raise OSError(errno.ENOSPC, "No space left on device", str(array))

    with pytest.raises(OSError):
        write_file_atomic(str(array), half_written)
    np.testing.assert_array_equal(np.load(array), np.arange(3.0))


def _small_files(limit):
    """Context: every file write of this process beyond ``limit`` bytes fails (EFBIG), as on a full disk."""
    class Limit:
        def __enter__(self):
            self.saved = resource.getrlimit(resource.RLIMIT_FSIZE)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, self.saved[1]))

        def __exit__(self, *exc):
            resource.setrlimit(resource.RLIMIT_FSIZE, self.saved)
    return Limit()


def test_a_failed_checkpoint_or_figure_write_keeps_the_previous_one(tmp_path):
    import tensorflow as tf

    from tfvamp import figures
    from tfvamp.callbacks import PaperEarlyStopping, TrainingCheckpoint
    from tfvamp.checkpoints import restore_best_weights

    model = tiny_model()
    early_stopping = PaperEarlyStopping(patience=5)
    checkpoint = TrainingCheckpoint(str(tmp_path), model, early_stopping)
    for callback in (checkpoint, early_stopping):
        callback.set_model(model)
    early_stopping.on_epoch_end(0, {"val_loss": 3.0})
    checkpoint.on_epoch_end(0, {"loss": 1.0, "val_loss": 3.0})
    saved = [np.asarray(v).copy() for v in model.variables]
    files = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    for variable in model.trainable_variables:
        variable.assign(variable + 1.0)
    early_stopping.on_epoch_end(1, {"val_loss": 2.0})  # a new best: the state and the best weights
    with _small_files(1024), pytest.raises(tf.errors.OpError, match="File too large"):
        checkpoint.on_epoch_end(1, {"loss": 1.0, "val_loss": 2.0})
    for path, content in files.items():
        assert path.read_bytes() == content, path
    assert tf.train.latest_checkpoint(str(tmp_path / "state")).endswith("epoch-1")
    restored = tiny_model()
    resumed = TrainingCheckpoint(str(tmp_path), restored, PaperEarlyStopping(patience=5))
    assert resumed.restore() == 1
    best = tiny_model()
    restore_best_weights(best.variables, str(tmp_path / "best" / "epoch-1"))
    for ours, theirs, expected in zip(restored.variables, best.variables, saved):
        np.testing.assert_array_equal(np.asarray(ours), expected)
        np.testing.assert_array_equal(np.asarray(theirs), expected)

    figure = tmp_path / "figures" / "hist.png"
    figure.parent.mkdir()
    figures.plot_log_likelihood_histogram(np.linspace(-100, -90, 50), str(figure))
    png = figure.read_bytes()
    with _small_files(1024), pytest.raises(OSError):
        figures.plot_log_likelihood_histogram(np.linspace(-200, -90, 50), str(figure))
    assert figure.read_bytes() == png and os.listdir(figure.parent) == ["hist.png"]


def _tiny_trained_checkpoints(directory, val_losses):
    """A tiny model checkpointed by ``TrainingCheckpoint`` in ``directory``
    after one epoch per validation loss of ``val_losses`` (its weights moved
    each epoch); returns the model variables' values after every epoch."""
    from tfvamp.callbacks import PaperEarlyStopping, TrainingCheckpoint

    model = tiny_model()
    early_stopping = PaperEarlyStopping(patience=5)
    checkpoint = TrainingCheckpoint(str(directory), model, early_stopping)
    for callback in (checkpoint, early_stopping):
        callback.set_model(model)
    values = []
    for epoch, val_loss in enumerate(val_losses):
        for variable in model.trainable_variables:
            variable.assign(variable + 1.0)
        early_stopping.on_epoch_end(epoch, {"val_loss": val_loss})
        checkpoint.on_epoch_end(epoch, {"loss": 1.0, "val_loss": val_loss})
        values.append([np.asarray(v).copy() for v in model.variables])
    return values


def _damage(prefix, how):
    data = f"{prefix}.data-00000-of-00001"
    if how == "truncated_data":
        os.truncate(data, os.path.getsize(data) // 2)
    elif how == "truncated_index":
        os.truncate(f"{prefix}.index", os.path.getsize(f"{prefix}.index") // 2)
    else:
        os.remove(data)


@pytest.mark.parametrize("how", ["truncated_data", "truncated_index", "missing_data"])
def test_a_corrupt_latest_checkpoint_falls_back_to_the_previous_whole_one(tmp_path, how):
    from tfvamp.callbacks import PaperEarlyStopping, TrainingCheckpoint
    from tfvamp.checkpoints import restore_best_weights, restore_newest_best_weights
    from trainers.errors import CheckpointError, checkpoint_error

    # Best epochs 1, 1, 3: the state of epoch 2 (kept beside 3's) records epoch 1 as its best.
    values = _tiny_trained_checkpoints(tmp_path, [3.0, 3.5, 2.0])
    assert sorted(os.listdir(tmp_path / "best")) == sorted(
        f"epoch-{n}.{ext}" for n in (1, 3) for ext in ("index", "data-00000-of-00001"))
    _damage(str(tmp_path / "state" / "epoch-3"), how)
    (tmp_path / "state" / "epoch-4_temp").mkdir()  # what a full disk leaves
    (tmp_path / "state" / "epoch-4_temp" / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"x")

    model = tiny_model()
    early_stopping = PaperEarlyStopping(patience=5)
    checkpoint = TrainingCheckpoint(str(tmp_path), model, early_stopping)
    assert checkpoint.restore() == 2
    assert [os.path.basename(path) for path, _ in checkpoint.skipped] == ["epoch-3"]
    assert early_stopping.best_epoch == 1 and [h["epoch"] for h in checkpoint.history] == [1, 2]
    for ours, expected in zip(model.variables, values[1]):
        np.testing.assert_array_equal(np.asarray(ours), expected)
    assert not (tmp_path / "state" / "epoch-4_temp").exists()
    best = tiny_model()
    restore_best_weights(best.variables, checkpoint.best_checkpoint_path())  # epoch 1's, kept
    for ours, expected in zip(best.variables, values[0]):
        np.testing.assert_array_equal(np.asarray(ours), expected)
    best = tiny_model()  # as trainers.evaluate reads them
    best_epoch, skipped = restore_newest_best_weights(best.variables, str(tmp_path))
    assert best_epoch == 1 and [os.path.basename(path) for path, _ in skipped] == ["epoch-3"]
    for ours, expected in zip(best.variables, values[0]):
        np.testing.assert_array_equal(np.asarray(ours), expected)

    # Epoch 3 trained again replaces the damaged files; then it is the one restored.
    for callback in (checkpoint, early_stopping):
        callback.set_model(model)
    early_stopping.on_epoch_end(2, {"val_loss": 2.5})
    checkpoint.on_epoch_end(2, {"loss": 1.0, "val_loss": 2.5})
    again = TrainingCheckpoint(str(tmp_path), tiny_model(), PaperEarlyStopping(patience=5))
    assert again.restore() == 3 and again.skipped == []

    # With every kept state damaged there is nothing to fall back to: one clear error.
    for epoch in (2, 3):
        _damage(str(tmp_path / "state" / f"epoch-{epoch}"), how)
    with pytest.raises(Exception) as raised:
        TrainingCheckpoint(str(tmp_path), tiny_model(), PaperEarlyStopping(patience=5)).restore()
    error = checkpoint_error(raised.value, str(tmp_path))
    assert isinstance(error, CheckpointError) and "truncated or corrupt" in str(error)


@pytest.mark.slow
def test_a_run_whose_latest_checkpoint_is_truncated_resumes_from_the_one_before(contested_run, tmp_path):
    output_dir = tmp_path / "run"
    first = run("trainers.train", *TINY_FLAGS, "--epochs=2", f"--output_dir={output_dir}")
    assert first.returncode == 0, first.stderr[-3000:]
    _damage(str(output_dir / "checkpoints" / "state" / "epoch-2"), "truncated_data")
    resumed = run("trainers.train", *TINY_FLAGS, "--replace_results", f"--output_dir={output_dir}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    (line,) = [line for line in resumed.stdout.splitlines() if "truncated or corrupt" in line]
    assert line.startswith(f"The latest checkpoint {output_dir}/checkpoints/state/epoch-2 is truncated")
    assert f"resuming {output_dir} after epoch 1, the newest whole checkpoint" in line
    results = json.loads((output_dir / "results.json").read_text())
    uninterrupted = json.loads((contested_run[0] / "results.json").read_text())
    assert results["resumed_after_epoch"] == 1
    assert results["last_weights_sha256"] == uninterrupted["last_weights_sha256"]


def test_a_failed_export_leaves_no_version_and_the_previous_one_intact(tmp_path, monkeypatch):
    import tensorflow as tf

    from tfvamp import export, models

    model = models.build_model("vae", input_shape=(28, 28, 1), prior="standard", latent_dim=2,
                               hidden_units=4, seed=0)
    first = export.export_model(model, str(tmp_path))
    files = {p: p.read_bytes() for p in (tmp_path / "vae").rglob("*") if p.is_file()}
    save = tf.saved_model.save

    def full_disk(module, path, signatures=None):
        save(module, path, signatures=signatures)  # written, then the disk fills
        raise OSError(errno.ENOSPC, "No space left on device", os.path.join(path, "assets.extra"))

    monkeypatch.setattr(tf.saved_model, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        export.export_model(model, str(tmp_path))
    assert os.listdir(tmp_path / "vae") == ["1"]  # neither a version 2 nor its staging folder
    assert {p: p.read_bytes() for p in (tmp_path / "vae").rglob("*") if p.is_file()} == files
    assert export.load_model(first) is not None
