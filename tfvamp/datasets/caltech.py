"""Caltech 101 Silhouettes, 28x28 binary, the fixed split 4,100 / 2,264 / 2,307.

The file is embedded in the package (see ``data/PROVENANCE.md``), so no
download is needed; a ``data_dir`` with the same file takes precedence.
"""
import os

import numpy as np
import scipy.io

from tfvamp.datasets.core import DatasetError, ImageDataset, verify_checksum

FILENAME = "caltech101_silhouettes_28_split1.mat"
SHA256 = "eb6735e8d84b1850fabc5590124aab1755e90c9fd28123585324398405e1e42a"
URL = "https://people.cs.umass.edu/~marlin/data/caltech101_silhouettes_28_split1.mat"
EMBEDDED_PATH = os.path.join(os.path.dirname(__file__), "data", FILENAME)
# Paper: pseudo-inputs initialised N(0.5, 0.02) on Caltech.
PSEUDO_INPUTS_INIT = (0.5, 0.02)


def find_file(data_dir=None):
    """``data_dir/caltech101_silhouettes/FILE`` or ``data_dir/FILE`` if given, else the embedded copy."""
    if data_dir is None:
        return EMBEDDED_PATH
    candidates = [os.path.join(data_dir, "caltech101_silhouettes", FILENAME),
                  os.path.join(data_dir, FILENAME)]
    for path in candidates:
        if os.path.isfile(path):
            return path
    raise DatasetError(
        f"{FILENAME} not found; looked in {candidates}. Get it from {URL}, "
        "or leave out the data directory to use the copy embedded in tfvamp."
    )


def _images(raw):
    """Rows of 784 column-major pixels with background 1 -> [N, 28, 28, 1], object = 1."""
    images = raw.reshape(-1, 28, 28, order="F").astype(np.float32)
    return (1.0 - images)[..., None]


def load(data_dir=None):
    path = find_file(data_dir)
    verify_checksum(path, SHA256)
    try:
        mat = scipy.io.loadmat(path)
    except Exception as error:  # scipy raises several types on a bad file
        raise DatasetError(f"{path} is not a readable MATLAB file: {error}") from error
    return ImageDataset(
        name="caltech",
        train=_images(mat["train_data"]),
        validation=_images(mat["val_data"]),
        test=_images(mat["test_data"]),
        likelihood="bernoulli",
        pseudo_inputs_init=PSEUDO_INPUTS_INIT,
    )
