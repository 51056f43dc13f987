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


def _diagnosed(seed, prior, z_variance, units):
    return {"flags": {"dataset": "caltech", "model": "vae", "prior": prior, "seed": seed, "epochs": 2000,
                      "kernel_initializer": "he_normal"},
            "file": f"caltech_vae_{prior}_he_seed{seed}.json", "test_log_likelihood": -100.0,
            "diagnostics": {"layers": {"z": {"mean_posterior_variance": z_variance,
                                             "active_units": units}}}}


def test_posterior_variances_and_active_units_are_compared_per_layer():
    runs = [_diagnosed(0, "vamp", 0.30, 40), _diagnosed(1, "vamp", 0.32, 40), _diagnosed(2, "vamp", 0.31, 40),
            _diagnosed(0, "standard", 0.10, 40), _diagnosed(1, "standard", 0.12, 40),
            _diagnosed(2, "standard", 0.11, 40)]
    rows = make_table.posterior_variance_table(make_table.group(runs)).splitlines()[2:]
    variance, units = rows
    assert variance.startswith("| vae, caltech, He, z | mean posterior variance | 0.310 ± 0.010 | 0.110 ± 0.010")
    assert "+0.200 [" in variance and "3 vs 3 runs: VampPrior larger" in variance
    assert "+0.0 [+0.0, +0.0]" in units and "no difference shown" in units  # nothing varies: no width
    one = make_table.posterior_variance_table(make_table.group(runs[:1] + runs[3:]))
    assert "+0.190 (not tested)" in one and "1 vs 3 runs: too few to test" in one


def test_the_lower_tails_are_read_from_the_per_image_files(tmp_path):
    rng = np.random.default_rng(0)
    values = {}
    for seed in (0, 1):
        values["standard", seed] = rng.normal(-100, 10, 2000)
        values["vamp", seed] = rng.normal(-100, 5, 2000)  # a thinner tail: fewer hard examples
    runs = []
    for (prior, seed), v in values.items():
        run = _diagnosed(seed, prior, 0.1, 40)
        runs.append(run)
        np.savez_compressed(tmp_path / run["file"].replace(".json", ".npz"), log_likelihood=v.astype(np.float32))
    runs.append(dict(_diagnosed(2, "vamp", 0.1, 40)))  # no per-image file: left out
    rows = make_table.tails_table(make_table.group(runs), directory=str(tmp_path)).splitlines()[2:]
    q1, q5, share, pooled = rows
    stored = {key: v.astype(np.float32).astype(np.float64) for key, v in values.items()}
    vamp_q5 = [np.quantile(stored["vamp", s], 0.05) for s in (0, 1)]
    assert f"| {np.mean(vamp_q5):.2f} ± {np.std(vamp_q5, ddof=1):.2f} |" in q5
    assert "2 vs 2 runs" in q1 and "VampPrior higher" in q5
    threshold = np.mean([np.quantile(stored["standard", s], 0.05) for s in (0, 1)])
    assert f"below {threshold:.2f}" in share and "fewer with VampPrior" in share
    below = sum(int(np.sum(stored["vamp", s] < threshold)) for s in (0, 1))
    assert pooled.split(" | ")[2].startswith(f"{100 * below / 4000:.2f} [")


def test_the_wilson_interval_agrees_with_scipy():
    low, high = make_table.wilson(30, 200)
    interval = stats.binomtest(30, 200).proportion_ci(0.95, method="wilson")
    np.testing.assert_allclose([low, high], [interval.low, interval.high], rtol=1e-9)


def test_the_vamp_cost_table_shows_each_measured_row():
    measured = [{"model": "hvae", "cpu": "Xeon (avx512: avx512f)", "cores": 2, "load_average": [1.2, 1.9],
                 "date": "2026-12-06",
                 "rows": [{"prior": "standard", "num_components": None, "epoch_seconds": 1.0,
                           "epoch_seconds_p10_p90": [0.9, 1.1], "time_ratio": 1.0, "paper_ratio": None,
                           "gflop_per_step": 1.454, "pseudo_input_gflop_per_step": 0.0, "flop_ratio": 1.0},
                          {"prior": "vamp K=500", "num_components": 500, "epoch_seconds": 1.9,
                           "epoch_seconds_p10_p90": [1.8, 2.0], "time_ratio": 1.9, "paper_ratio": 1.4,
                           "gflop_per_step": 3.502, "pseudo_input_gflop_per_step": 2.023, "flop_ratio": 2.41}]}]
    rows = make_table.vamp_cost_table(measured).splitlines()[2:]
    assert rows[1] == "| hvae | vamp K=500 | 1.90 (1.80-2.00) | 1.90 | 1.4 | 3.5 | 2.0 | 2.41 | 1.2-1.9, 2026-12-06 |"
    assert "| - |" in rows[0] and rows[-1] == "CPU: Xeon (avx512: avx512f), 2 cores."
    assert make_table.vamp_cost_table([]).splitlines()[-1] == "| none measured | | | | | | | | |"
