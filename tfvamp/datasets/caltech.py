"""Caltech 101 Silhouettes, 28x28 binary, the fixed split 4,100 / 2,264 / 2,307.

The file is embedded in the package (see ``data/PROVENANCE.md``), so no
download is needed; a local data directory (``--data_dir`` or
``TFVAMP_DATA_DIR``) takes precedence and must then hold the file.
"""
import os

import numpy as np

from tfvamp.datasets import download, readers
from tfvamp.datasets.core import DatasetError, ImageDataset, verify_checksum

FOLDER = "caltech101_silhouettes"
FILENAME = "caltech101_silhouettes_28_split1.mat"
SHA256 = "eb6735e8d84b1850fabc5590124aab1755e90c9fd28123585324398405e1e42a"
SIZE = 872124
URL = "https://people.cs.umass.edu/~marlin/data/caltech101_silhouettes_28_split1.mat"
EMBEDDED_PATH = os.path.join(os.path.dirname(__file__), "data", FILENAME)
SIZES = {"train": 4100, "val": 2264, "test": 2307}
# Paper: pseudo-inputs initialised N(0.5, 0.02) on Caltech.
PSEUDO_INPUTS_INIT = (0.5, 0.02)


def find_file(data_dir=None):
    """The file in the local data directory if one is in force, else the embedded copy."""
    if download.local_dir(data_dir) is None:
        return EMBEDDED_PATH
    return download.locate(FOLDER, [FILENAME], download.Remote((URL,), SHA256, SIZE), data_dir,
                           hint=" (leave out the data directory to use the copy embedded in tfvamp)")


def _images(mat, key, path):
    """Rows of 784 column-major pixels with background 1 -> [N, 28, 28, 1], object = 1."""
    if key + "_data" not in mat:
        raise DatasetError(f"{path} has no variable {key}_data")
    raw = readers.check_images(mat[key + "_data"], f"{path} ({key}_data)", SIZES[key], (784,))
    images = raw.reshape(-1, 28, 28, order="F").astype(np.float32)
    return (1.0 - images)[..., None]


def load(data_dir=None):
    path = find_file(data_dir)
    verify_checksum(path, SHA256)
    mat = readers.mat_arrays(path)
    return ImageDataset(
        name="caltech",
        train=_images(mat, "train", path),
        validation=_images(mat, "val", path),
        test=_images(mat, "test", path),
        likelihood="bernoulli",
        pseudo_inputs_init=PSEUDO_INPUTS_INIT,
    )
