"""Regenerates the results table of RESULTS.md from results/*.json.

    python results/make_table.py

Each JSON file is a run's ``results.json`` (written by ``trainers.train``). The
table goes between the ``<!-- results-table -->`` markers of RESULTS.md.
"""
import glob
import json
import math
import os

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS_MD = os.path.join(os.path.dirname(HERE), "RESULTS.md")
BEGIN, END = "<!-- results-table -->", "<!-- /results-table -->"

# Test log-likelihoods of Table 2 of the paper (nats), as recalled from the published
# paper: its main text is not among this project's sources, so they are unverified here.
PAPER = {
    ("static_mnist", "vae", "standard"): -88.56,
    ("static_mnist", "vae", "vamp"): -85.57,
    ("static_mnist", "hvae", "standard"): -86.05,
    ("static_mnist", "hvae", "vamp"): -83.19,
}
PIXELS = {"freyfaces": 28 * 20}  # every other dataset: 28 x 28
COLUMNS = ("run", "command", "test LL (IS)", "bits/dim", "test ELBO", "paper LL (unverified)",
           "epochs (best)", "train", "eval")


def row(name, results):
    flags = results["flags"]
    key = (flags["dataset"], flags["model"], flags["prior"])
    command = f"`python -m trainers.train --flagfile=configs/{name}.cfg --data_dir=../shared/data"
    if flags["epochs"] != 2000:
        command += f" --epochs={flags['epochs']}"
    command += "`"
    stopped = "early stop" if results["epochs_trained"] < flags["epochs"] else "max epochs"
    if flags["epochs"] < 2000:
        stopped = f"partial: {flags['epochs']} of 2000"
    paper = PAPER.get(key)
    return (
        name, command,
        f"{results['test_log_likelihood']:.2f} (S={results['eval_samples']})",
        f"{-results['test_log_likelihood'] / (PIXELS.get(flags['dataset'], 784) * math.log(2)):.3f}",
        f"{results['test_elbo']:.2f}",
        "" if paper is None else f"{paper:.2f}",
        f"{results['epochs_trained']} ({results['best_epoch']}), {stopped}",
        train_time(results),
        f"{results['eval_seconds'] / 60:.1f} min",
    )


def train_time(results):
    """Minutes of training; a run resumed by a trainer that did not yet add up
    the epochs of every session (no ``session_train_seconds``) has none to show."""
    if results.get("resumed_after_epoch") and "session_train_seconds" not in results:
        return "n/a (resumed)"
    return f"{results['train_seconds'] / 60:.1f} min"


def table():
    rows = []
    for path in sorted(glob.glob(os.path.join(HERE, "*.json"))):
        with open(path) as f:
            rows.append(row(os.path.basename(path)[:-len(".json")], json.load(f)))
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main():
    with open(RESULTS_MD) as f:
        text = f.read()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{RESULTS_MD} lacks the {BEGIN} ... {END} markers")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    with open(RESULTS_MD, "w") as f:
        f.write(f"{head}{BEGIN}\n{table()}\n{END}{tail}")
    print(table())


if __name__ == "__main__":
    main()
