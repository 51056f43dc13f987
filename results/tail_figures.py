"""Supplementary 8.4.3's figure: for each configuration with per-image test log-likelihoods of
both priors, their histograms overlaid, all seeds' images pooled, with the standard prior's 5%
quantile (the "hard examples" threshold of RESULTS.md's table) marked.

    python results/tail_figures.py     # writes results/figures/log_likelihood_tails_*.png

One figure per dataset and model (and initialiser when not He-normal); the lower tail is drawn
on a log count scale, where the claim lives.
"""
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import make_table  # noqa: E402

FIGURES = os.path.join(make_table.HERE, "figures")


def draw(label, standard, vamp, path):
    """One configuration's histograms (``standard`` and ``vamp``: lists of per-image arrays)."""
    pooled = {"standard": np.concatenate(standard), "VampPrior": np.concatenate(vamp)}
    threshold = np.mean([np.quantile(v, 0.05) for v in standard])
    bins = np.linspace(min(v.min() for v in pooled.values()), max(v.max() for v in pooled.values()), 80)
    figure, axes = plt.subplots(figsize=(6, 3.6))
    for (name, values), runs in zip(pooled.items(), (standard, vamp)):
        below = 100 * np.mean(values < threshold)
        axes.hist(values, bins=bins, histtype="step", linewidth=1.4,
                  label=f"{name}: {len(runs)} run(s), {values.size} images, {below:.1f}% below")
    axes.axvline(threshold, color="grey", linestyle="--", linewidth=1,
                 label=f"standard prior's 5% quantile, {threshold:.1f}")
    axes.set_yscale("log")
    axes.set_xlabel("test log-likelihood per image (nats, IS, S = 5000)")
    axes.set_ylabel("images")
    axes.set_title(f"Lower tail, {label}", fontsize=10)
    axes.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main():
    groups = make_table.group(make_table.load_runs())
    loaded = {}

    def has_values(run):
        loaded[run["file"]] = make_table.per_image_log_likelihoods(run)
        return loaded[run["file"]] is not None

    os.makedirs(FIGURES, exist_ok=True)
    for label, standard, vamp in make_table.prior_pairs(groups, has_values):
        model, dataset, init = label.split(", ")
        name = f"{dataset}_{model}" + ("" if init == "He" else f"_{init.lower()}")
        path = os.path.join(FIGURES, f"log_likelihood_tails_{name}.png")
        draw(label, [loaded[r["file"]] for r in standard], [loaded[r["file"]] for r in vamp], path)
        print(path)


if __name__ == "__main__":
    main()
