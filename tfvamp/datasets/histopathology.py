"""Histopathology patches (grey, 28x28): 6,800 / 2,000 / 2,000, discretised logistic.

The canonical file is ``histopathology.pkl.tar.gz`` (Tomczak & Welling's
Householder-flow repository), a tar archive holding ``histopathology.pkl``: a
(Python 2) pickle of a dict with ``training``, ``validation`` and ``test`` arrays
of grey values in [0, 1], one 28x28 patch (row-major) per row. Either the
archive or the extracted ``histopathology.pkl`` is accepted; the pickle is read
with the NumPy-only unpickler. Its SHA-256 is not known to us, so the content is
checked strictly instead (keys, counts, values). Values are clipped to
[1/512, 1 - 1/512], the centres of the first and last of the 256 bins.

The ``histopathology_gray`` TFDS builder holds the file's values (``read_splits``);
the clipping is applied on top of them (``to_image_dataset``).
"""
import numpy as np

from tfvamp.datasets import download, readers
from tfvamp.datasets.core import DatasetError, ImageDataset

FOLDER = "histopathology"
PICKLE = "histopathology.pkl"
ARCHIVE = PICKLE + ".tar.gz"
URL = ("https://raw.githubusercontent.com/jmtomczak/vae_householder_flow/master/"
       "datasets/histopathologyGray/" + ARCHIVE)
SIZES = {"training": 6800, "validation": 2000, "test": 2000}
PSEUDO_INPUTS_INIT = (0.4, 0.05)  # paper: histopathology
CLIP = (1.0 / 512, 1.0 - 1.0 / 512)


def read_patches(path):
    """``{"training": ..., "validation": ..., "test": ...}`` as float32 ``[N, 28, 28, 1]``."""
    if path.endswith(".tar.gz"):
        data = readers.tar_member(path, PICKLE)
    else:
        with open(path, "rb") as f:
            data = f.read()
    contents = readers.restricted_pickle_load(data, path)
    if not isinstance(contents, dict) or not set(SIZES) <= set(contents):
        found = sorted(contents) if isinstance(contents, dict) else type(contents).__name__
        raise DatasetError(f"{path} must hold a dict with keys {sorted(SIZES)}; found {found}")
    patches = {}
    for key, count in SIZES.items():
        values = readers.check_images(contents[key], f"{path} ({key})", count, (28, 28))
        patches[key] = np.reshape(values, (count, 28, 28, 1)).astype(np.float32)
    return patches


def find_file(data_dir=None):
    return download.locate(FOLDER, [ARCHIVE, PICKLE], download.Remote((URL,)), data_dir, validate=read_patches)


def read_splits(path):
    """``{split: {"image": float32 [N, 28, 28, 1]}}``, the file's values."""
    patches = read_patches(path)
    return {"train": {"image": patches["training"]},
            "validation": {"image": patches["validation"]},
            "test": {"image": patches["test"]}}


def to_image_dataset(images):
    """The paper's dataset from the builder's images ``{split: float32 [N, 28, 28, 1]}``, clipped."""
    return ImageDataset(name="histopathology", likelihood="discretized_logistic",
                        pseudo_inputs_init=PSEUDO_INPUTS_INIT,
                        **{split: np.clip(images[split], *CLIP) for split in ("train", "validation", "test")})


def load(data_dir=None):
    splits = read_splits(find_file(data_dir))
    return to_image_dataset({split: examples["image"] for split, examples in splits.items()})
