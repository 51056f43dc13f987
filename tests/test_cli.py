import json
import math
import os
import subprocess
import sys

from conftest import REPO_ROOT


def run_trainer(*args):
    return subprocess.run([sys.executable, "-m", "trainers.train", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=900)


def test_train_cli_on_caltech_writes_finite_results(tmp_path):
    result = run_trainer("--dataset=caltech", "--prior=vamp", "--epochs=3", "--eval_samples=100",
                         f"--output_dir={tmp_path}", "--verbose=2")
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    for key in ("test_log_likelihood", "test_elbo", "test_reconstruction", "test_kl", "train_seconds"):
        assert math.isfinite(results[key]), key
    assert results["epochs_trained"] == 3 and results["eval_samples"] == 100
    assert results["test_log_likelihood"] >= results["test_elbo"]
    assert results["flags"]["prior"] == "vamp"


def test_train_cli_rejects_unknown_prior_listing_valid_ones(tmp_path):
    result = run_trainer("--prior=foo", f"--output_dir={tmp_path}")
    assert result.returncode != 0
    assert "mog" in result.stderr and "vamp" in result.stderr and "standard" in result.stderr
    assert not os.path.exists(tmp_path / "results.json")
