"""Frey Faces: 1,965 grey 28x20 faces, shuffled with a fixed seed, 1,565 / 200 / 200.

Pixels are scaled as (x + 0.5) / 256 and modelled by the discretised logistic.
"""
import io
import os
import pickle

import numpy as np

from tfvamp.datasets.core import DatasetError, ImageDataset, verify_checksum

FILENAME = "freyfaces.pkl"
SHA256 = "3b69410c6a5fd6e03f09012905168be3712373a094a776f7e58fcd0670d2138a"
URL = "https://raw.githubusercontent.com/jmtomczak/vae_vampprior/master/datasets/Freyfaces/freyfaces.pkl"
SPLIT_SEED = 0
NUM_TRAIN, NUM_VALIDATION = 1565, 200
PSEUDO_INPUTS_INIT = (0.5, 0.02)  # paper: Caltech and Frey Faces

# The only globals a NumPy-array pickle needs; anything else is refused.
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles NumPy arrays and plain containers; refuses every other callable."""

    def find_class(self, module, name):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise DatasetError(f"Refusing to unpickle {module}.{name}: only NumPy arrays are allowed")
        if module == "numpy.core.multiarray":
            module = "numpy._core.multiarray"
        return super().find_class(module, name)


def restricted_pickle_load(data: bytes):
    """``pickle.loads`` that only reconstructs NumPy arrays (Python 2 pickles too)."""
    return _NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()


def find_file(data_dir):
    if data_dir is None:
        raise DatasetError(f"Frey Faces needs a data directory holding freyfaces/{FILENAME}; get it from {URL}")
    candidates = [os.path.join(data_dir, "freyfaces", FILENAME), os.path.join(data_dir, FILENAME)]
    for path in candidates:
        if os.path.isfile(path):
            return path
    raise DatasetError(f"{FILENAME} not found; looked in {candidates}. Get it from {URL}")


def load(data_dir=None):
    path = find_file(data_dir)
    verify_checksum(path, SHA256)
    with open(path, "rb") as f:
        contents = restricted_pickle_load(f.read())
    images = np.asarray(contents[0]).reshape(-1, 28, 20, 1)
    images = images[np.random.default_rng(SPLIT_SEED).permutation(len(images))]
    images = ((images.astype(np.float32) + 0.5) / 256.0)
    end_validation = NUM_TRAIN + NUM_VALIDATION
    return ImageDataset(
        name="freyfaces",
        train=images[:NUM_TRAIN],
        validation=images[NUM_TRAIN:end_validation],
        test=images[end_validation:],
        likelihood="discretized_logistic",
        pseudo_inputs_init=PSEUDO_INPUTS_INIT,
    )
