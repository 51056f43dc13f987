"""The command line as a user meets it: a log file with one line per epoch,
quiet start-up, fast flag errors, configs from anywhere, finished runs left alone."""
import json
import math
import os
import re
import subprocess
import sys
import time

import pytest

from conftest import REPO_ROOT
from trainers import cli, train
from trainers.atomic_files import write_json_atomic
from trainers.run_config import RunConfig

NATIVE_NOISE = ("cuInit", "cudart_stub", "absl::InitializeLog", "oneDNN", "cpu_feature_guard")


def run_trainer(*args, cwd=REPO_ROOT):
    env = dict(os.environ)
    for name in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS"):  # as a user's shell has them
        env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "trainers.train", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """A 3-epoch run of the CLI, output to pipes as to a log file."""
    output_dir = tmp_path_factory.mktemp("cli_run")
    result = run_trainer("--dataset=caltech", "--prior=vamp", "--epochs=3", "--eval_samples=100",
                         f"--output_dir={output_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return output_dir, result


def test_train_cli_on_caltech_writes_finite_results(cli_run):
    output_dir, _ = cli_run
    results = json.loads((output_dir / "results.json").read_text())
    for key in ("test_log_likelihood", "test_elbo", "test_reconstruction", "test_kl", "train_seconds"):
        assert math.isfinite(results[key]), key
    assert results["epochs_trained"] == 3 and results["eval_samples"] == 100
    assert results["test_log_likelihood"] >= results["test_elbo"]
    assert results["flags"]["prior"] == "vamp"
    assert os.path.isabs(results["export"]) and os.path.isdir(results["export"])


def test_log_file_has_one_line_per_epoch_a_stop_reason_progress_and_no_noise(cli_run):
    _, result = cli_run
    log = result.stdout + result.stderr
    assert "\r" not in log and "\x1b" not in log
    epoch_lines = [line for line in result.stdout.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in epoch_lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    for line in epoch_lines:
        for part in ("loss", "reconstruction", "KL", "beta", "validation", " s,", "best"):
            assert part in line, (part, line)
    assert "Reached the epoch limit (--epochs=3) after 3 epochs" in result.stdout
    progress = [line for line in result.stdout.splitlines()
                if line.startswith("Test log-likelihood by importance sampling (S=100):")]
    assert len(progress) >= 3 and progress[-1].endswith("2307/2307 images, " + progress[-1].split(", ")[-1])
    assert "left" in progress[0]
    assert "Exported " in result.stdout and "Figures in " in result.stdout
    run = "vae + vamp prior (K=500) on caltech; glorot_uniform kernels, adam_normgrad, seed 0"
    assert result.stdout.startswith(f"{run}; bernoulli likelihood; ")
    assert re.search(rf"^run +{re.escape(run)}$", result.stdout, re.MULTILINE)  # the results table
    for noise in NATIVE_NOISE + ("Warning", "INFO"):
        assert noise not in log, noise
    assert result.stderr.strip() == ""


def test_rerunning_a_finished_run_changes_nothing_and_says_how_to_reevaluate(cli_run):
    output_dir, _ = cli_run
    before = {path: path.read_bytes() for path in output_dir.rglob("*") if path.is_file()}
    start = time.perf_counter()
    result = run_trainer("--dataset=caltech", "--prior=vamp", "--epochs=3", "--eval_samples=50",
                         f"--output_dir={output_dir}")
    assert result.returncode == 0, result.stderr
    assert time.perf_counter() - start < 20  # no TensorFlow needed to see it is finished
    assert "holds a finished run" in result.stdout and "trainers.evaluate" in result.stdout
    assert "--replace_results" in result.stdout
    assert {path: path.read_bytes() for path in output_dir.rglob("*") if path.is_file()} == before


def test_a_run_is_described_by_what_the_ablations_change(tmp_path):
    config = RunConfig.from_flags({
        **train.flag_values(), "model": "hvae", "prior": "vamp", "dataset": "caltech",
        "num_components": 50, "pseudo_inputs_init": "data", "kernel_initializer": "he_normal",
        "optimizer": "adam", "clamp_bernoulli": True, "seed": 2})
    assert config.describe() == (
        "hvae + vamp prior (K=50, pseudo-inputs from data) on caltech; "
        "he_normal kernels, adam, clamped Bernoulli, seed 2")
    # a run from before the ablation flags reads as their defaults; K only where a prior has one.
    (tmp_path / "config.json").write_text(json.dumps(
        {"model": "vae", "prior": "standard", "dataset": "freyfaces", "num_components": 500, "seed": 0}))
    old = RunConfig.read(str(tmp_path))
    assert old.describe(separator="\n") == (
        "vae + standard prior on freyfaces\nglorot_uniform kernels, adam_normgrad, seed 0")


def test_bad_flag_is_reported_without_importing_tensorflow(tmp_path):
    code = ("import sys, runpy\n"
            "sys.argv = ['train', '--prior=foo', '--output_dir=" + str(tmp_path) + "']\n"
            "try:\n    runpy.run_module('trainers.train', run_name='__main__')\n"
            "except SystemExit as e:\n    code = e.code\n"
            "print('tensorflow imported' if 'tensorflow' in sys.modules else 'no tensorflow', code)\n")
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=60)
    assert time.perf_counter() - start < 10
    assert "no tensorflow 1" in result.stdout, result.stdout + result.stderr
    assert "mog" in result.stderr and "vamp" in result.stderr and "standard" in result.stderr
    assert not os.listdir(tmp_path)


def test_the_flag_choices_are_the_library_registries():
    from tfvamp import datasets, distribute, models, priors
    from trainers import training

    assert sorted(cli.DATASETS) == sorted(datasets.DATASETS)
    assert sorted(cli.MODELS) == sorted(models.MODELS)
    assert tuple(cli.PRIORS) == tuple(priors.PRIORS)
    assert tuple(cli.STRATEGIES) == tuple(distribute.STRATEGIES)
    assert tuple(cli.OPTIMIZERS) == tuple(training.OPTIMIZERS)
    assert tuple(cli.PRECISIONS) == tuple(models.base.PRECISIONS)


def test_config_names_and_flagfiles_resolve_from_any_directory(tmp_path, monkeypatch):
    path = os.path.join(os.path.dirname(cli.configs.__file__), "caltech_vae_vamp.cfg")
    assert cli.resolve_config_args(["p", "--config=caltech_vae_vamp", "--epochs=3"]) == [
        "p", "--config=caltech_vae_vamp", f"--flagfile={path}", "--epochs=3"]
    monkeypatch.chdir(tmp_path)
    assert cli.resolve_config_args(["p", "--flagfile=configs/caltech_vae_vamp.cfg"]) == [
        "p", f"--flagfile={path}"]
    with pytest.raises(cli.app.UsageError, match="no such config.*caltech_vae_vamp"):
        cli.resolve_config_args(["p", "--config=caltech_vea_vamp"])

    # End to end from another directory: a finished run of that config is recognised.
    run = tmp_path / "run"
    run.mkdir()
    flags = {"dataset": "caltech", "model": "vae", "prior": "vamp", "num_components": 500,
             "latent_dim": 40, "hidden_units": 300}
    write_json_atomic(str(run / "config.json"), flags)
    write_json_atomic(str(run / "results.json"), {
        "test_log_likelihood": -1.0, "eval_samples": 5000, "epochs_trained": 1, "best_epoch": 1})
    for how in ("--config=caltech_vae_vamp", "--flagfile=configs/caltech_vae_vamp.cfg"):
        result = run_trainer(how, "--output_dir=run", cwd=tmp_path)
        assert result.returncode == 0 and "holds a finished run" in result.stdout, result.stderr
    result = run_trainer("--config=caltech_vae_vamp", "--hidden_units=32", "--output_dir=run", cwd=tmp_path)
    assert result.returncode != 0 and "--hidden_units=32 (saved run: 300)" in result.stderr


def test_the_wheel_ships_the_configs_and_a_license(tmp_path):
    import shutil
    import zipfile

    source = tmp_path / "source"  # pip builds in the source tree: a copy keeps the checkout clean
    shutil.copytree(REPO_ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "runs", "build", "*.egg-info", "__pycache__"))
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                             "-q", "-w", str(tmp_path), str(source)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = tmp_path.glob("tfvamp-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "configs/caltech_vae_vamp.cfg" in names
    assert sum(name.startswith("configs/") and name.endswith(".cfg") for name in names) == len(
        cli.configs.config_paths())
    assert any(name.endswith("LICENSE") for name in names)


@pytest.mark.parametrize("model, precision, expected", [
    ("vae", "float32", "0"), ("hvae", "float32", "0"), ("convhvae", "float32", "1"),
    ("pixelhvae", "float32", "1"), ("vae", "bfloat16", "1")])
def test_onednn_is_chosen_per_model_and_precision_unless_the_user_set_it(monkeypatch, model, precision,
                                                                        expected):
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    monkeypatch.delenv("XLA_FLAGS", raising=False)  # restored after the test
    cli.choose_cpu_switches(model, precision)
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == expected
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1" if expected == "0" else "0")
    cli.choose_cpu_switches(model, precision)
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] != expected  # the user's setting wins


def test_an_evaluation_only_run_uses_onednn_for_every_model(monkeypatch):
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    monkeypatch.delenv("XLA_FLAGS", raising=False)  # restored after the test
    cli.choose_cpu_switches("vae", "float32", evaluation_only=True)
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "1"


def test_xla_flags_are_added_to_the_users_and_never_override_them(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/dump")
    cli.choose_cpu_switches("vae", "float32")
    cli.choose_cpu_switches("vae", "float32")  # a second call adds nothing
    assert os.environ["XLA_FLAGS"] == "--xla_dump_to=/tmp/dump " + " ".join(cli.XLA_CPU_FLAGS)
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_copy_insertion_use_region_analysis=false")
    cli.choose_cpu_switches("vae", "float32")
    assert os.environ["XLA_FLAGS"] == "--xla_cpu_copy_insertion_use_region_analysis=false"


@pytest.mark.parametrize("flags, emulated", [
    ("fpu sse2 avx avx2 fma", True),                  # AVX2 only: TensorFlow emulates bfloat16
    ("fpu sse2 avx avx2 fma avx512f avx512_bf16", False),
    ("fpu sse2 avx avx2 avx_ne_convert", False),
])
def test_cpu_without_avx512_is_known_to_emulate_bfloat16(tmp_path, flags, emulated):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: x86\nflags\t\t: {flags}\n\n"
                       f"processor\t: 1\nflags\t\t: {flags}\n")
    assert cli.cpu_emulates_bfloat16(str(cpuinfo)) is emulated


def test_cpu_emulation_check_is_silent_without_x86_flags(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nFeatures\t: fp asimd bf16\n")  # an ARM CPU
    assert cli.cpu_emulates_bfloat16(str(cpuinfo)) is False
    assert cli.cpu_emulates_bfloat16(str(tmp_path / "missing")) is False


@pytest.mark.parametrize("flags, kind", [
    ("fpu sse2 avx avx2 fma", "avx2"),
    ("fpu sse2 avx avx2 fma avx512f avx512_bf16", "avx512"),
    ("fpu sse2 avx avx2 fma avx512f avx512_bf16 amx_bf16 amx_tile", "avx512-amx"),
    ("fpu sse2 avx", "other"),
])
def test_cpu_kind_names_the_vector_units_the_switches_are_decided_for(tmp_path, flags, kind):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: {flags}\n")
    assert cli.cpu_kind(str(cpuinfo)) == kind
    assert cli.describe_cpu(str(cpuinfo)).startswith(f"AMD EPYC ({kind}")
    assert cli.cpu_kind(str(tmp_path / "missing")) == "other"
