"""RESULTS.md's tables are exactly what results/make_table.py makes of results/*.json."""
import importlib.util
import os

import numpy as np
from scipy import stats

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("make_table", os.path.join(ROOT, "results", "make_table.py"))
make_table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_table)


def test_results_md_is_the_scripts_output():
    with open(make_table.RESULTS_MD) as f:
        text = f.read()
    assert make_table.render(text, make_table.load_runs()) == text, (
        "RESULTS.md is out of date: run python results/make_table.py")


def test_welch_interval_agrees_with_scipy():
    a, b = [-121.1, -121.2, -123.0], [-125.0, -123.7, -125.2, -125.6]
    difference, low, high = make_table.welch(a, b)
    result = stats.ttest_ind(a, b, equal_var=False)
    interval = result.confidence_interval(0.95)
    np.testing.assert_allclose([difference, low, high],
                               [np.mean(a) - np.mean(b), interval.low, interval.high], rtol=1e-9)


def test_runs_are_grouped_by_what_they_trained():
    def run(seed, **flags):
        base = {"dataset": "caltech", "model": "vae", "prior": "vamp", "seed": seed, "epochs": 2000}
        return {"flags": {**base, **flags}, "file": f"{seed}.json", "test_log_likelihood": -seed}

    groups = make_table.group([run(0), run(1, kernel_initializer="glorot_uniform"),
                               run(2, kernel_initializer="he_normal"), run(3, num_components=50),
                               run(4, epochs=20, warmup_epochs=10, eval_samples=200)])
    assert [len(g) for g in groups.values()] == [2, 1, 1, 1]
    assert ("caltech", "vae", "vamp", "glorot_uniform", ("num_components=50",)) in groups
    assert ("caltech", "vae", "vamp", "glorot_uniform",
            ("epochs=20", "warmup_epochs=10", "eval_samples=200")) in groups


def test_protocol_ablations_are_compared_with_the_protocols_runs():
    def run(seed, value, **flags):
        base = {"dataset": "caltech", "model": "vae", "prior": "standard", "seed": seed, "epochs": 2000,
                "kernel_initializer": "he_normal"}
        return {"flags": {**base, **flags}, "file": f"{seed}-{flags}.json", "test_log_likelihood": value}

    runs = [run(0, -128.0), run(1, -128.5), run(2, -127.5),
            run(0, -126.0, clamp_bernoulli=True), run(1, -126.2, clamp_bernoulli=True),
            run(0, -120.0, epochs=40), run(0, -127.9, prior="vamp", num_components=50)]
    rows = make_table.protocol_ablation_table(make_table.group(runs)).splitlines()[2:]
    assert len(rows) == 2  # a shorter run is not an ablation
    clamp = next(row for row in rows if row.startswith("| clamp_bernoulli=True, vae, standard, caltech, He"))
    assert "2 vs 3 runs: change better" in clamp
    k50 = next(row for row in rows if row.startswith("| num_components=50, vae, vamp"))
    assert "| no runs |" in k50 and "too few to test" in k50


def test_a_run_under_another_likelihood_is_not_grouped_with_the_protocols():
    def run(seed, **flags):
        base = {"dataset": "freyfaces", "model": "vae", "prior": "vamp", "seed": seed, "epochs": 2000,
                "kernel_initializer": "he_normal"}
        return {"flags": {**base, **flags}, "file": f"{seed}-{flags}.json", "test_log_likelihood": -seed}

    groups = make_table.group([run(0), run(1, likelihood=None),
                               run(2, likelihood="authors_discretized_logistic")])
    assert [len(g) for g in groups.values()] == [2, 1]
    rows = make_table.protocol_ablation_table(groups).splitlines()[2:]
    assert len(rows) == 1 and rows[0].startswith("| likelihood=authors_discretized_logistic, vae, vamp")


def _load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "results", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_unfinished_runs_are_listed_with_the_command_that_resumes_them():
    record_progress = _load("record_progress")
    flags = {"config": "static_mnist_vae_standard", "seed": 1, "kernel_initializer": "glorot_uniform",
             "epochs": 2000, "early_stopping_patience": 50, "warmup_epochs": 100}
    entry = {"run": "static_mnist_vae_standard_glorot_seed1", "recorded": "2026-12-01", "flags": flags,
             "epochs_completed": 312, "best_epoch": 290, "best_validation_loss": 88.5,
             "epochs_since_improvement": 22, "last_validation_loss": 88.9,
             "resume": record_progress.resume_command("static_mnist_vae_standard_glorot_seed1", flags)}
    (row,) = make_table.unfinished_table([entry]).splitlines()[2:]
    assert "| static_mnist_vae_standard_glorot_seed1 | 312 (2000) | 88.500 (290) | 22 (50," in row
    assert ("`INIT=glorot_uniform RUNS=static_mnist_vae_standard SEEDS=1 bash results/reproduce.sh "
            "../shared/data RUNS_DIR`") in row
    assert make_table.unfinished_table([]).splitlines()[2] == "| none | | | | | |"


def test_a_finished_run_leaves_the_unfinished_list(tmp_path, monkeypatch):
    record_progress = _load("record_progress")
    monkeypatch.setattr(record_progress, "UNFINISHED", str(tmp_path / "unfinished"))
    (tmp_path / "unfinished").mkdir()
    stale = tmp_path / "unfinished" / "run.json"
    stale.write_text("{}")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.json").write_text("{}")
    assert record_progress.record(str(tmp_path / "run"), "run") is None
    assert not stale.exists()


def test_projection_reads_the_second_epoch_and_scales_to_400_and_2000_epochs():
    timing = {"file": "t.json", "cpu_short": "cpu", "runs": {
        "static_mnist_hvae_vamp": {"epoch_seconds": [30.0, 18.0], "load_average": "~2"}}}
    row = make_table.projection_table([timing]).splitlines()[2]
    assert row.startswith("| static_mnist_hvae_vamp | 18.0 | 2.0 | 10.0 | cpu | ~2 |")


def test_a_runs_per_image_values_are_kept_compressed(tmp_path):
    spec = importlib.util.spec_from_file_location("keep_per_image", os.path.join(ROOT, "results", "keep_per_image.py"))
    keep_per_image = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(keep_per_image)
    values = {name: np.random.default_rng(0).normal(size=50).astype(np.float64)
              for name in ("log_likelihood", "log_likelihood_se", "effective_sample_size", "elbo", "kl")}
    np.savez(tmp_path / "test_evaluation.npz", **values)
    keep_per_image.keep(str(tmp_path), str(tmp_path / "kept" / "run.npz"))
    with np.load(tmp_path / "kept" / "run.npz") as kept:
        assert sorted(kept.files) == sorted(keep_per_image.KEPT)
        np.testing.assert_array_equal(kept["log_likelihood"], values["log_likelihood"].astype(np.float32))
