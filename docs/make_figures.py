"""Makes small copies of a trainers.train run's figures, for the documentation and results/.

    python docs/make_figures.py guide RUN_DIR     # the evaluation guide's four figures
    python docs/make_figures.py readme RUN_DIR    # README's figure
    python docs/make_figures.py results RUN_DIR   # results/figures/<run>/

``guide`` shrinks the run's four figures (samples, reconstructions, pseudo-inputs,
log-likelihood histogram) to small palette PNGs in docs/images/ (the guide's come from
``--config=caltech_vae_vamp --epochs=60 --warmup_epochs=20 --eval_samples=200``).
``results`` keeps the same four, small, in ``results/figures/<run>/`` (``<run>`` is the run
directory's name; a standard-prior run has no pseudo-inputs, so three). ``readme`` draws README's figure from a VampPrior run's export: 64 samples
from the prior beside the 64 pseudo-inputs that attract most of the posterior mass of 2000
random training images, titled with the run's name, protocol and test log-likelihood read from
its ``config.json`` and ``results.json``.
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGES = os.path.join(ROOT, "docs", "images")
WIDTHS = {"samples": 640, "reconstructions": 640, "pseudo_inputs": 420,
          "log_likelihood_histogram": 480}
DATASET_NAMES = {"caltech": "Caltech 101 Silhouettes", "static_mnist": "static MNIST",
                 "dynamic_mnist": "dynamic MNIST", "freyfaces": "Frey Faces",
                 "omniglot": "OMNIGLOT", "histopathology": "Histopathology"}


def save_small(image, path, width=None, colors=64):
    image = image.convert("RGB")
    if width is not None:
        image = image.resize((width, round(image.size[1] * width / image.size[0])), Image.LANCZOS)
    image.quantize(colors=colors).save(path, optimize=True)


def shrink_figures(run_dir, out_dir, prefix=""):
    """The run's four figures (three without pseudo-inputs), small, as ``out_dir/PREFIXNAME.png``."""
    os.makedirs(out_dir, exist_ok=True)
    for name, width in WIDTHS.items():
        path = os.path.join(run_dir, "figures", f"{name}.png")
        if name == "pseudo_inputs" and not os.path.exists(path):  # a prior without pseudo-inputs
            continue
        save_small(Image.open(path), os.path.join(out_dir, f"{prefix}{name}.png"), width)


def read_json(run_dir, name):
    with open(os.path.join(run_dir, name)) as f:
        return json.load(f)


def title(config, results):
    """The figure's title: what was trained, for how long, and its test log-likelihood."""
    protocol = (config["epochs"] == 2000 and config["warmup_epochs"] == 100
                and config["eval_samples"] == 5000)
    epochs = results["epochs_trained"]
    budget = (f"the paper's protocol ({epochs} epochs)" if protocol
              else f"{epochs} epochs, not the paper's protocol")
    error = results.get("test_log_likelihood_se")
    value = f"{results['test_log_likelihood']:.2f}" + ("" if error is None else f" ± {error:.3f}")
    return (f"{config['model'].upper()} + VampPrior, {DATASET_NAMES.get(config['dataset'], config['dataset'])}, "
            f"seed {config['seed']}: {budget}; "
            f"test LL {value} nats (S={results['eval_samples']})")


def readme_figure(run_dir, path):
    import tfvamp
    from tfvamp import figures
    from tfvamp.export import load_model, versions

    config, results = read_json(run_dir, "config.json"), read_json(run_dir, "results.json")
    if config["prior"] != "vamp":
        raise SystemExit(f"{run_dir} trained a {config['prior']} prior; README's figure needs a VampPrior run")
    model_dir = os.path.join(run_dir, "export", config["model"])
    model = load_model(os.path.join(model_dir, str(versions(model_dir)[-1])))
    data = tfvamp.datasets.load_dataset(config["dataset"], config.get("data_dir"))
    samples = model.sample(64, seed=3).numpy()
    rows = np.random.default_rng(0).permutation(len(data.train))[:2000]
    usage = figures.pseudo_input_usage(model, data.train[rows])
    pseudo_inputs = model.prior.pseudo_inputs().numpy()[np.argsort(-usage)[:64]]
    figure, axes = plt.subplots(1, 2, figsize=(6.4, 3.6), dpi=100)
    for axis, images, caption in [
            (axes[0], samples, "64 samples from the VampPrior"),
            (axes[1], pseudo_inputs, f"its 64 most used pseudo-inputs (of {len(usage)})")]:
        axis.imshow(figures.image_grid(images, 8), cmap="gray", vmin=0, vmax=1)
        axis.set_title(caption, fontsize=9)
        axis.axis("off")
    figure.suptitle(title(config, results), fontsize=7)
    figure.tight_layout()
    staging = path + ".full.png"
    figure.savefig(staging)
    save_small(Image.open(staging), path)
    os.remove(staging)


def main(argv):
    if len(argv) != 2 or argv[0] not in ("guide", "readme", "results"):
        raise SystemExit(__doc__.split("\n\n")[1])
    what, run_dir = argv[0], argv[1].rstrip("/")
    if what == "guide":
        shrink_figures(run_dir, IMAGES, prefix="caltech_vae_vamp_")
    elif what == "results":
        shrink_figures(run_dir, os.path.join(ROOT, "results", "figures", os.path.basename(run_dir)))
    else:
        readme_figure(run_dir, os.path.join(IMAGES, "readme_samples_pseudo_inputs.png"))


if __name__ == "__main__":
    main(sys.argv[1:])
