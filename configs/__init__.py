"""One absl flagfile per experiment of the paper: ``DATASET_MODEL_PRIOR.cfg``.

    python -m trainers.train --flagfile=configs/caltech_vae_vamp.cfg --output_dir=runs/caltech_vae_vamp

Flags after ``--flagfile`` override the file's. ``...vampdata.cfg`` is the
paper's "VampPrior data" (pseudo-inputs initialised with training images).
"""
import glob
import os

CONFIG_DIR = os.path.dirname(os.path.abspath(__file__))

# What the paper's experiments use (Sec. 4, Tables 1-2, supplementary 8.4).
PAPER_DATASETS = ("static_mnist", "dynamic_mnist", "omniglot", "caltech", "freyfaces", "histopathology")
PAPER_MODELS = ("vae", "hvae", "convhvae", "pixelhvae")
PAPER_PRIORS = ("standard", "mog", "vamp")


def config_paths():
    """Paths of every config, sorted."""
    return sorted(glob.glob(os.path.join(CONFIG_DIR, "*.cfg")))


def read_config(path):
    """The ``--name=value`` lines of a flagfile as ``{name: value}`` strings
    (comments and blank lines skipped)."""
    values = {}
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if not line.startswith("--") or "=" not in line:
                raise ValueError(f"{path}:{number}: expected --name=value, got {line!r}")
            name, value = line[2:].split("=", 1)
            if name in values:
                raise ValueError(f"{path}:{number}: --{name} given twice")
            values[name] = value
    return values
