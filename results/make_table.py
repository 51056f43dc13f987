"""Regenerates the tables of RESULTS.md from results/*.json.

    python results/make_table.py           # rewrites RESULTS.md's tables
    python results/make_table.py --check   # exits 1 if RESULTS.md is not the script's output

Each JSON file is one run's ``results.json`` (written by ``trainers.train``, its
per-epoch history dropped). Runs are grouped by what they trained (dataset,
model, prior, initialiser and every other setting that differs from the paper's
protocol); each group's test log-likelihoods give a mean, a standard deviation
and, between two groups, a Welch confidence interval of the difference.
Each table goes between its ``<!-- NAME -->`` and ``<!-- /NAME -->`` markers.
"""
import glob
import json
import math
import os
import sys

import numpy as np
from scipy import stats

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS_MD = os.path.join(os.path.dirname(HERE), "RESULTS.md")
PER_IMAGE = os.path.join(HERE, "per_image")
VAMP_COST = os.path.join(HERE, "vamp_cost")

# Published test log-likelihoods (nats) to set beside ours, each with its source as
# ../shared/paper/published-results.md gives it. The paper's main text is not among this
# project's sources: every figure here was read in another paper's table or a summary of
# it (a secondary source), and a row without a source we could read is left empty.
SOURCES = {
    "exemplar-cites": "the VampPrior paper's Table 2 as cited in Exemplar VAE's comparisons "
                      "(Norouzi et al. 2020, arXiv:2004.04795; secondary source)",
    "summaries": "the VampPrior paper's Table 2 as quoted by summaries of the VAE literature "
                 "(secondary source)",
    "xu": "the VampPrior paper's figure as quoted by Xu et al., arXiv:1905.13452, Table 1 "
          "(secondary source)",
    "exemplar-runs": "Exemplar VAE's own re-run of this architecture (Norouzi et al. 2020, "
                     "arXiv:2004.04795): independent code, not the paper's figure",
}
PUBLISHED = {
    ("static_mnist", "vae", "vamp"): (-85.57, "exemplar-cites"),
    ("static_mnist", "hvae", "vamp"): (-83.19, "summaries"),
    ("static_mnist", "convhvae", "vamp"): (-81.09, "xu"),
    ("static_mnist", "pixelhvae", "vamp"): (-79.78, "xu"),
    ("dynamic_mnist", "hvae", "vamp"): (-81.24, "summaries"),
    ("dynamic_mnist", "vae", "standard"): (-84.45, "exemplar-runs"),
    ("dynamic_mnist", "vae", "vamp"): (-82.43, "exemplar-runs"),
}
INITIALIZERS = {"glorot_uniform": "Glorot", "he_normal": "He"}
# Settings of the paper's protocol: a run that differs in one names it in its group.
PROTOCOL = {"num_components": 500, "optimizer": "adam_normgrad", "pseudo_inputs_init": "random",
            "clamp_bernoulli": False, "precision": "float32", "epochs": 2000, "warmup_epochs": 100,
            "eval_samples": 5000, "likelihood": None}
# The settings whose change is an ablation of the protocol (a shorter run is not). A run under
# another likelihood (--likelihood, e.g. the authors' discretised logistic; None: the dataset's)
# is on another scale, so it is never grouped with the protocol's runs.
ABLATIONS = ("num_components", "optimizer", "pseudo_inputs_init", "clamp_bernoulli", "precision",
             "likelihood")
CONFIDENCE = 0.95


def load_runs(directory=HERE):
    """Every finished run's results (``results/*.json``)."""
    runs = []
    for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        with open(path) as f:
            runs.append(dict(json.load(f), file=os.path.basename(path)))
    return runs


def load_unfinished(directory=os.path.join(HERE, "unfinished")):
    """How far each unfinished run got (``results/unfinished/*.json``, written by
    ``results/record_progress.py``)."""
    entries = []
    for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        with open(path) as f:
            entries.append(json.load(f))
    return entries


def initializer(run):
    """Runs from before the flag used Keras' default, Glorot-uniform."""
    return run["flags"].get("kernel_initializer", "glorot_uniform")


def group_key(run):
    flags = run["flags"]
    variant = tuple(f"{name}={flags.get(name, default)}" for name, default in PROTOCOL.items()
                    if flags.get(name, default) != default)
    return flags["dataset"], flags["model"], flags["prior"], initializer(run), variant


def group(runs):
    groups = {}
    for run in runs:
        groups.setdefault(group_key(run), []).append(run)
    return {key: sorted(members, key=lambda r: (r["flags"]["seed"], r["file"]))
            for key, members in sorted(groups.items())}


def mean_sd(values):
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, float("nan")
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def welch(a, b):
    """Mean of ``a`` minus mean of ``b`` and its Welch confidence interval (of no width
    when neither side varies, as active units can)."""
    (mean_a, sd_a), (mean_b, sd_b) = mean_sd(a), mean_sd(b)
    difference = mean_a - mean_b
    var_a, var_b = sd_a ** 2 / len(a), sd_b ** 2 / len(b)
    if var_a + var_b == 0:
        return difference, difference, difference
    se = math.sqrt(var_a + var_b)
    dof = (var_a + var_b) ** 2 / (var_a ** 2 / (len(a) - 1) + var_b ** 2 / (len(b) - 1))
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, dof) * se
    return difference, difference - half, difference + half


def log_likelihoods(members):
    return [r["test_log_likelihood"] for r in members]


def fmt_mean_sd(values, digits=2):
    mean, sd = mean_sd(values)
    return f"{mean:.{digits}f}" if math.isnan(sd) else f"{mean:.{digits}f} ± {sd:.{digits}f}"


def name_of(key):
    dataset, model, prior, init, variant = key
    return " ".join([dataset, model, prior, INITIALIZERS.get(init, init), *variant])


def results_table(groups):
    columns = ("configuration", "runs", "test LL (IS, S=5000 unless named) mean ± sd", "test ELBO mean ± sd",
               "each run's test LL ± MC error, IS bias (seed)", "published LL (source)", "epochs (best)")
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    cited = []
    for key, members in groups.items():
        each = ", ".join(f"{fmt_run(r)} ({r['flags']['seed']})" for r in members)
        epochs = ", ".join(f"{r['epochs_trained']} ({r['best_epoch']})" for r in members)
        published = ""
        if key[:3] in PUBLISHED and not key[4]:  # beside the protocol's runs only
            value, source = PUBLISHED[key[:3]]
            cited += [source] if source not in cited else []
            published = f"{value:.2f} ({chr(ord('a') + cited.index(source))})"
        lines.append("| " + " | ".join([
            name_of(key), str(len(members)), fmt_mean_sd(log_likelihoods(members)),
            fmt_mean_sd([r["test_elbo"] for r in members]), each, published, epochs]) + " |")
    lines.append("")
    lines += [f"({chr(ord('a') + i)}) {SOURCES[source]}." for i, source in enumerate(cited)]
    return "\n".join(lines)


def fmt_run(run, directory=PER_IMAGE):
    """A run's test log-likelihood, with its Monte Carlo standard error and the estimate's
    bias (the delta method, ``-se_i^2 / 2`` per image, averaged) where the run's evaluation
    recorded them: the bias from ``test_log_likelihood_bias``, or else from the per-image
    standard errors kept in ``results/per_image/`` (evaluations before issue 26 recorded
    neither)."""
    se = run.get("test_log_likelihood_se")
    if se is None:
        return f"{run['test_log_likelihood']:.2f}"
    bias = run.get("test_log_likelihood_bias")
    path = os.path.join(directory, os.path.splitext(run["file"])[0] + ".npz")
    if bias is None and os.path.exists(path):
        with np.load(path) as values:
            if "log_likelihood_se" in values.files:
                bias = float(np.mean(-values["log_likelihood_se"].astype(np.float64) ** 2 / 2))
    text = f"{run['test_log_likelihood']:.3f} ± {se:.3f}"
    return text if bias is None else f"{text}, bias {bias:.3f}"


def welch_cells(a, b, better_a, better_b, digits=2):
    """Cells comparing two lists of values (one a run): ``A − B`` with its Welch interval,
    and a verdict (fewer than 2 values on a side cannot be tested)."""
    if len(a) < 2 or len(b) < 2:
        return "", f"{len(a)} vs {len(b)} runs: too few to test"
    difference, low, high = welch(a, b)
    verdict = better_a if low > 0 else better_b if high < 0 else "no difference shown"
    return (f"{difference:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]",
            f"{len(a)} vs {len(b)} runs: {verdict}")


def comparison(a, b, better_a, better_b):
    """``welch_cells`` of two groups of runs' test log-likelihoods (a group may be None)."""
    return welch_cells(log_likelihoods(a or []), log_likelihoods(b or []), better_a, better_b)


def cells(members):
    return fmt_mean_sd(log_likelihoods(members)) if members else "no runs"


def claims_table(groups):
    lines = ["| claim (A beats B), dataset, initialiser | test LL A | test LL B "
             "| A − B, 95% Welch CI (nats) | verdict |", "| --- | --- | --- | --- | --- |"]
    claims = []
    for dataset in sorted({key[0] for key in groups}):
        for init, init_name in INITIALIZERS.items():
            for model in ("vae", "hvae"):
                claims.append((f"{model.upper()}: VampPrior beats standard, {dataset}, {init_name}",
                               (dataset, model, "vamp", init, ()),
                               (dataset, model, "standard", init, ()),
                               "VampPrior better", "standard better"))
            claims.append((f"VampPrior: HVAE beats VAE, {dataset}, {init_name}",
                           (dataset, "hvae", "vamp", init, ()), (dataset, "vae", "vamp", init, ()),
                           "HVAE better", "VAE better"))
    for label, a_key, b_key, better_a, better_b in claims:
        a, b = groups.get(a_key), groups.get(b_key)
        if a and b and min(len(a), len(b)) < 2:
            difference = mean_sd(log_likelihoods(a))[0] - mean_sd(log_likelihoods(b))[0]
            lines.append(f"| {label} | {cells(a)} | {cells(b)} | {difference:+.2f} (not tested) | "
                         f"{len(a)} vs {len(b)} runs: too few to test; "
                         f"{seed_spread(groups, a_key[0])} |")
        elif a and b:
            lines.append(f"| {label} | {cells(a)} | {cells(b)} | "
                         + " | ".join(comparison(a, b, better_a, better_b)) + " |")
    return "\n".join(lines)


def seed_spread(groups, dataset):
    """The seed-to-seed spread seen elsewhere on ``dataset``, against which a one-run
    difference can be read: the largest standard deviation of a protocol configuration
    with 2 runs or more."""
    sds = [mean_sd(log_likelihoods(members))[1] for (d, _, _, _, variant), members in groups.items()
           if d == dataset and not variant and len(members) >= 2]
    if not sds:
        return f"no {dataset} configuration has 2 runs yet"
    return f"seed-to-seed sd of the {dataset} configurations with 2+ runs: up to {max(sds):.2f}"


def ablation_table(groups):
    lines = ["| model, prior, dataset | He-normal (A) | Glorot-uniform (B) "
             "| A − B, 95% Welch CI (nats) | verdict |", "| --- | --- | --- | --- | --- |"]
    for dataset, model, prior, init, variant in groups:
        if init != "he_normal" or variant:
            continue
        he = groups[dataset, model, prior, "he_normal", ()]
        glorot = groups.get((dataset, model, prior, "glorot_uniform", ()))
        lines.append(f"| {model}, {prior}, {dataset} | {cells(he)} | {cells(glorot)} | "
                     + " | ".join(comparison(he, glorot, "He better", "Glorot better")) + " |")
    return "\n".join(lines)


def protocol_ablation_table(groups):
    """Each run that changes one setting of ``ABLATIONS`` against the protocol's runs
    of the same dataset, model, prior and initialiser."""
    lines = ["| change, model, prior, dataset, initialiser | with the change (A) | protocol (B) "
             "| A − B, 95% Welch CI (nats) | verdict |", "| --- | --- | --- | --- | --- |"]
    for (dataset, model, prior, init, variant), changed in groups.items():
        if len(variant) != 1 or variant[0].split("=")[0] not in ABLATIONS:
            continue
        protocol = groups.get((dataset, model, prior, init, ()))
        lines.append(f"| {variant[0]}, {model}, {prior}, {dataset}, {INITIALIZERS.get(init, init)} | "
                     f"{cells(changed)} | {cells(protocol)} | "
                     + " | ".join(comparison(changed, protocol, "change better", "protocol better"))
                     + " |")
    return "\n".join(lines)


def prior_pairs(groups, needs):
    """The protocol's configurations (dataset, model, initialiser) with runs of both priors
    that ``needs(run)``: ``(label, standard runs, VampPrior runs)``."""
    for (dataset, model, prior, init, variant), standard in groups.items():
        if prior != "standard" or variant:
            continue
        vamp = [r for r in groups.get((dataset, model, "vamp", init, ()), []) if needs(r)]
        standard = [r for r in standard if needs(r)]
        if standard and vamp:
            yield f"{model}, {dataset}, {INITIALIZERS.get(init, init)}", standard, vamp


def compare(a, b, better_a, better_b, digits=2):
    """``a`` against ``b`` (values, one a run): mean ± sd of each, A − B with its Welch
    interval and a verdict, or the one-run difference marked untested."""
    cells = [fmt_mean_sd(a, digits), fmt_mean_sd(b, digits)]
    if min(len(a), len(b)) < 2:
        difference = mean_sd(a)[0] - mean_sd(b)[0]
        return cells + [f"{difference:+.{digits}f} (not tested)",
                        f"{len(a)} vs {len(b)} runs: too few to test"]
    return cells + list(welch_cells(a, b, better_a, better_b, digits))


def posterior_variance_table(groups):
    """Supplementary 8.3: per latent layer, the mean posterior variance and the active units
    (``diagnostics`` of ``results.json``), VampPrior (A) against standard (B)."""
    lines = ["| model, dataset, initialiser, layer | statistic | VampPrior (A) | standard (B) "
             "| A − B, 95% Welch CI | verdict |", "| --- | --- | --- | --- | --- | --- |"]
    for label, standard, vamp in prior_pairs(groups, lambda r: "diagnostics" in r):
        for layer in vamp[0]["diagnostics"]["layers"]:
            for statistic, name, digits in (("mean_posterior_variance", "mean posterior variance", 3),
                                            ("active_units", "active units", 1)):
                a = [r["diagnostics"]["layers"][layer][statistic] for r in vamp]
                b = [r["diagnostics"]["layers"][layer][statistic] for r in standard]
                lines.append(f"| {label}, {layer} | {name} | " + " | ".join(
                    compare(a, b, "VampPrior larger", "standard larger", digits)) + " |")
    if len(lines) == 2:
        lines.append("| no configuration has runs of both priors with diagnostics yet | | | | | |")
    return "\n".join(lines)


def per_image_log_likelihoods(run, directory=PER_IMAGE):
    """A run's per-image test log-likelihoods (``results/per_image/NAME.npz``), or None."""
    path = os.path.join(directory, os.path.splitext(run["file"])[0] + ".npz")
    if not os.path.exists(path):
        return None
    with np.load(path) as values:
        return values["log_likelihood"].astype(np.float64)


def wilson(successes, total, confidence=CONFIDENCE):
    """The Wilson score interval of a proportion."""
    z = stats.norm.ppf(0.5 + confidence / 2)
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return centre - half, centre + half


def tails_table(groups, directory=PER_IMAGE):
    """Supplementary 8.4.3: the lower tail of the per-image test log-likelihoods, VampPrior (A)
    against standard (B): the 1% and 5% quantiles (over seeds), and the share of test images
    below the standard prior's 5% quantile (the mean of its runs' 5% quantiles; a "hard
    example"), over seeds and, all runs' images pooled, with its Wilson interval over images."""
    lines = ["| model, dataset, initialiser | statistic | VampPrior (A) | standard (B) "
             "| A − B, 95% Welch CI | verdict |", "| --- | --- | --- | --- | --- | --- |"]
    loaded = {}

    def has_values(run):
        loaded[run["file"]] = per_image_log_likelihoods(run, directory)
        return loaded[run["file"]] is not None

    for label, standard, vamp in prior_pairs(groups, has_values):
        a_values = [loaded[r["file"]] for r in vamp]
        b_values = [loaded[r["file"]] for r in standard]
        for q in (1, 5):
            a = [float(np.quantile(v, q / 100)) for v in a_values]
            b = [float(np.quantile(v, q / 100)) for v in b_values]
            lines.append(f"| {label} | {q}% quantile (nats) | "
                         + " | ".join(compare(a, b, "VampPrior higher", "standard higher")) + " |")
        threshold = mean_sd([float(np.quantile(v, 0.05)) for v in b_values])[0]
        a = [100 * float(np.mean(v < threshold)) for v in a_values]
        b = [100 * float(np.mean(v < threshold)) for v in b_values]
        lines.append(f"| {label} | % of test images below {threshold:.2f} | "
                     + " | ".join(compare(a, b, "more with VampPrior", "fewer with VampPrior")) + " |")
        pooled = []
        for values in (a_values, b_values):
            below, total = sum(int(np.sum(v < threshold)) for v in values), sum(v.size for v in values)
            low, high = wilson(below, total)
            pooled.append(f"{100 * below / total:.2f} [{100 * low:.2f}, {100 * high:.2f}] of {total}")
        lines.append(f"| {label} | the same, images pooled (95% Wilson) | {pooled[0]} | {pooled[1]} | | |")
    if len(lines) == 2:
        lines.append("| no configuration has per-image values of both priors yet | | | | | |")
    return "\n".join(lines)


def load_vamp_cost(directory=VAMP_COST):
    """``bench/vamp_cost.py --json_out`` figures (``results/vamp_cost/*.json``), one a model."""
    measured = []
    for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        with open(path) as f:
            measured.append(dict(json.load(f), file=os.path.basename(path)))
    order = ("vae", "hvae", "convhvae", "pixelhvae")
    return sorted(measured, key=lambda m: order.index(m["model"]) if m["model"] in order else len(order))


def vamp_cost_table(measured):
    """Supplementary 8.4.2: each model's epoch time with the VampPrior over the standard
    prior's, measured in one run, beside the paper's ratio and the FLOP ratio; the CPUs
    measured on below the table."""
    lines = ["| model | prior | s/epoch (p10-p90) | time ratio | paper's ratio (GPU) | GFLOP/step "
             "| of it the pseudo-inputs | FLOP ratio | load average (start-end), date |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for m in measured:
        for row in m["rows"]:
            low, high = row["epoch_seconds_p10_p90"]
            paper = "-" if row["paper_ratio"] is None else f"{row['paper_ratio']:.1f}"
            lines.append(f"| {m['model']} | {row['prior']} | {row['epoch_seconds']:.2f} ({low:.2f}-{high:.2f}) "
                         f"| {row['time_ratio']:.2f} | {paper} | {row['gflop_per_step']:.1f} "
                         f"| {row['pseudo_input_gflop_per_step']:.1f} | {row['flop_ratio']:.2f} "
                         f"| {m['load_average'][0]}-{m['load_average'][1]}, {m['date']} |")
    if not measured:
        return "\n".join(lines + ["| none measured | | | | | | | | |"])
    cpus = dict.fromkeys(m["cpu"] for m in measured)  # each once, in order
    return "\n".join(lines + ["", f"CPU: {'; '.join(cpus)}, {measured[0]['cores']} cores."])


def unfinished_table(entries):
    """Each unfinished run: how far it got, and the command that resumes it."""
    lines = ["| run | epochs completed (limit) | best validation loss (epoch) "
             "| epochs since improvement (patience) | recorded | resume with |",
             "| --- | --- | --- | --- | --- | --- |"]
    for e in entries:
        flags = e["flags"]
        lines.append(f"| {e['run']} | {e['epochs_completed']} ({flags['epochs']}) | "
                     f"{e['best_validation_loss']:.3f} ({e['best_epoch']}) | "
                     f"{e['epochs_since_improvement']} ({flags['early_stopping_patience']}, counted "
                     f"from epoch {flags['warmup_epochs']}) | {e['recorded']} | "
                     f"`{e['resume'].split('  #')[0]}` |")
    if not entries:
        lines.append("| none | | | | | |")
    return "\n".join(lines)


def load_timings(directory=os.path.join(HERE, "timings")):
    """One-epoch timings of runs still to be made (``results/timings/*.json``), newest last."""
    timings = []
    for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        with open(path) as f:
            timings.append(dict(json.load(f), file=os.path.basename(path)))
    return timings


def projection_table(timings):
    """Each timed configuration's hours of training at 400 epochs (about where the static
    MNIST VAE runs stopped early) and at the protocol's limit of 2000, from its second
    epoch's seconds (the first includes tracing and compilation)."""
    lines = ["| configuration | seconds per epoch (2nd epoch) | hours at 400 epochs | hours at 2000 "
             "epochs | CPU | load average | file |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for timing in timings:
        for config, run in timing["runs"].items():
            seconds = run["epoch_seconds"][1]
            lines.append(f"| {config} | {seconds:.1f} | {400 * seconds / 3600:.1f} | "
                         f"{2000 * seconds / 3600:.1f} | {timing['cpu_short']} | {run['load_average']} "
                         f"| `results/timings/{timing['file']}` |")
    return "\n".join(lines)


TABLES = {"results-table": results_table, "claims-table": claims_table,
          "ablation-table": ablation_table, "protocol-ablation-table": protocol_ablation_table,
          "posterior-variance-table": posterior_variance_table, "tails-table": tails_table}


def render(text, runs, unfinished=None):
    """``text`` (RESULTS.md) with every table regenerated from ``runs`` and the
    ``unfinished`` runs' records (default: ``results/unfinished/``)."""
    groups = group(runs)
    tables = {marker: (lambda make=make: make(groups)) for marker, make in TABLES.items()}
    tables["projection-table"] = lambda: projection_table(load_timings())
    tables["vamp-cost-table"] = lambda: vamp_cost_table(load_vamp_cost())
    tables["unfinished-table"] = lambda: unfinished_table(
        load_unfinished() if unfinished is None else unfinished)
    for marker, make in tables.items():
        begin, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
        if begin not in text or end not in text:
            raise SystemExit(f"{RESULTS_MD} lacks the {begin} ... {end} markers")
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{begin}\n{make()}\n{end}{tail}"
    return text


def main(argv):
    with open(RESULTS_MD) as f:
        text = f.read()
    new = render(text, load_runs())
    if "--check" in argv:
        if new != text:
            raise SystemExit("RESULTS.md differs from python results/make_table.py's output")
        return
    with open(RESULTS_MD, "w") as f:
        f.write(new)


if __name__ == "__main__":
    main(sys.argv[1:])
