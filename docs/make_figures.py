"""Makes the figures of the documentation (docs/images/) from one trainers.train run.

    python -m trainers.train --config=caltech_vae_vamp --output_dir=/tmp/docs-run \
        --epochs=60 --warmup_epochs=20 --eval_samples=200
    python docs/make_figures.py /tmp/docs-run

Shrinks the run's four figures (samples, reconstructions, pseudo-inputs,
log-likelihood histogram) to small palette PNGs, and draws the README's figure
from the run's export: 64 samples from the prior beside the 64 pseudo-inputs
that attract most of the posterior mass of 2000 random training images.
"""
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

IMAGES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "images")
WIDTHS = {"samples": 640, "reconstructions": 640, "pseudo_inputs": 420,
          "log_likelihood_histogram": 480}


def save_small(image, path, width=None, colors=64):
    image = image.convert("RGB")
    if width is not None:
        image = image.resize((width, round(image.size[1] * width / image.size[0])), Image.LANCZOS)
    image.quantize(colors=colors).save(path, optimize=True)


def readme_figure(run_dir, path):
    import tfvamp
    from tfvamp import figures
    from tfvamp.export import load_model, versions

    model_dir = os.path.join(run_dir, "export", "vae")
    model = load_model(os.path.join(model_dir, str(versions(model_dir)[-1])))
    data = tfvamp.datasets.load_dataset("caltech")
    samples = model.sample(64, seed=3).numpy()
    rows = np.random.default_rng(0).permutation(len(data.train))[:2000]
    usage = figures.pseudo_input_usage(model, data.train[rows])
    pseudo_inputs = model.prior.pseudo_inputs().numpy()[np.argsort(-usage)[:64]]
    figure, axes = plt.subplots(1, 2, figsize=(6.4, 3.5), dpi=100)
    for axis, images, title in [(axes[0], samples, "64 samples from the VampPrior"),
                                (axes[1], pseudo_inputs, "its 64 most used pseudo-inputs (of 500)")]:
        axis.imshow(figures.image_grid(images, 8), cmap="gray", vmin=0, vmax=1)
        axis.set_title(title, fontsize=9)
        axis.axis("off")
    figure.suptitle("VAE + VampPrior, Caltech 101 Silhouettes: 60 epochs on a CPU "
                    "(not the paper's protocol)", fontsize=8)
    figure.tight_layout()
    staging = path + ".full.png"
    figure.savefig(staging)
    save_small(Image.open(staging), path)
    os.remove(staging)


def main(run_dir):
    for name, width in WIDTHS.items():
        save_small(Image.open(os.path.join(run_dir, "figures", f"{name}.png")),
                   os.path.join(IMAGES, f"caltech_vae_vamp_{name}.png"), width)
    readme_figure(run_dir, os.path.join(IMAGES, "readme_samples_pseudo_inputs.png"))


if __name__ == "__main__":
    main(sys.argv[1])
