"""Caltech 101 Silhouettes, 28x28 binary, the fixed split 1: 4,100 / 2,264 / 2,307.

The file is embedded in the package (see ``data/PROVENANCE.md``), so no
download is needed; a local data directory (``--data_dir`` or
``TFVAMP_DATA_DIR``) takes precedence and must then hold the file. The file
stores each image column-major with the object 0 on a background of 1;
``read_splits`` turns them upright with the object 1 (the paper's orientation):
the examples of the ``caltech101_silhouettes`` TFDS builder.
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
SPLIT_KEYS = {"train": "train", "validation": "val", "test": "test"}  # split -> the file's name for it
NUM_CLASSES = 101
# Paper: pseudo-inputs initialised N(0.5, 0.02) on Caltech.
PSEUDO_INPUTS_INIT = (0.5, 0.02)


def find_file(data_dir=None):
    """The file in the local data directory if one is in force, else the embedded copy."""
    if download.local_dir(data_dir) is None:
        return EMBEDDED_PATH
    return download.locate(FOLDER, [FILENAME], download.Remote((URL,), SHA256, SIZE), data_dir,
                           hint=" (leave out the data directory to use the copy embedded in tfvamp)")


def _variable(mat, name, path):
    if name not in mat:
        raise DatasetError(f"{path} has no variable {name}")
    return mat[name]


def _images(mat, key, path):
    """Rows of 784 column-major pixels with background 1 -> uint8 [N, 28, 28, 1], object = 1."""
    raw = readers.check_images(_variable(mat, key + "_data", path), f"{path} ({key}_data)", SIZES[key], (784,))
    images = raw.reshape(-1, 28, 28, order="F").astype(np.uint8)
    return (1 - images)[..., None]


def _labels(mat, key, path):
    """The file's labels 1..101 as 0..100."""
    labels = readers.check_images(_variable(mat, key + "_labels", path), f"{path} ({key}_labels)", SIZES[key],
                                  (1,), low=1, high=NUM_CLASSES)
    return labels.reshape(-1).astype(np.int64) - 1


def class_names(path=EMBEDDED_PATH):
    """The 101 class names, in label order."""
    names = _variable(readers.mat_arrays(path), "classnames", path).reshape(-1)
    return [str(np.asarray(name).reshape(-1)[0]) for name in names]


def read_splits(path):
    """The checked file as ``{split: {"image": uint8 [N, 28, 28, 1] (object = 1), "label": 0..100}}``."""
    verify_checksum(path, SHA256)
    mat = readers.mat_arrays(path)
    return {split: {"image": _images(mat, key, path), "label": _labels(mat, key, path)}
            for split, key in SPLIT_KEYS.items()}


def to_image_dataset(images):
    """The paper's dataset from the builder's images ``{split: uint8 [N, 28, 28, 1]}``."""
    return ImageDataset(name="caltech", likelihood="bernoulli", pseudo_inputs_init=PSEUDO_INPUTS_INIT,
                        **{split: images[split].astype(np.float32) for split in SPLIT_KEYS})


def load(data_dir=None):
    splits = read_splits(find_file(data_dir))
    return to_image_dataset({split: examples["image"] for split, examples in splits.items()})
