"""OMNIGLOT 28x28 (Burda et al.'s ``chardata.mat``): 24,345 training images, of which
1,345 picked at random (fixed seed) are held out for validation, and 8,070 test;
grey values in [0, 1], dynamically binarised like MNIST.

``chardata.mat`` holds ``data`` (784 x 24,345) and ``testdata`` (784 x 8,070), one
image per column, each stored column-major: image ``n`` is
``data[:, n].reshape(28, 28, order="F")`` (the IWAE and VampPrior loaders'
convention). Its SHA-256 is not known to us, so the file is checked strictly
instead: both keys, exactly these shapes, finite values in [0, 1].

The ``omniglot_chardata`` TFDS builder holds the grey images of the three splits
(``read_splits``); the binarisation is applied on top of them (``to_image_dataset``).
"""
import numpy as np

from tfvamp.datasets import download, readers
from tfvamp.datasets.core import DatasetError, ImageDataset, binarize_once

FOLDER = "omniglot"
FILENAME = "chardata.mat"
URL = "https://raw.githubusercontent.com/yburda/iwae/master/datasets/OMNIGLOT/chardata.mat"
SIZES = {"data": 24345, "testdata": 8070}
NUM_VALIDATION = 1345
SPLIT_SEED, VALIDATION_SEED, TEST_SEED = 0, 777, 778
PSEUDO_INPUTS_INIT = (0.05, 0.01)  # paper: MNIST and OMNIGLOT


def read_chardata(path):
    """``{"data": ..., "testdata": ...}`` as float32 ``[N, 28, 28, 1]`` images."""
    mat = readers.mat_arrays(path)
    images = {}
    for key, count in SIZES.items():
        if key not in mat:
            raise DatasetError(f"{path} has no variable {key!r}; it is not OMNIGLOT's chardata.mat")
        columns = mat[key]
        if columns.shape != (784, count):
            raise DatasetError(f"{path}: {key!r} must be 784 x {count} (one image per column), "
                               f"got {columns.shape}")
        readers.check_images(columns, f"{path} ({key})", count, (784,))
        images[key] = columns.T.reshape(count, 28, 28, order="F").astype(np.float32)[..., None]
    return images


def find_file(data_dir=None):
    return download.locate(FOLDER, [FILENAME], download.Remote((URL,)), data_dir, validate=read_chardata)


def read_splits(path):
    """``{split: {"image": float32 [N, 28, 28, 1]}}``: validation held out of ``data`` at random (fixed seed)."""
    images = read_chardata(path)
    train = images["data"][np.random.default_rng(SPLIT_SEED).permutation(SIZES["data"])]
    return {"train": {"image": train[:-NUM_VALIDATION]},
            "validation": {"image": train[-NUM_VALIDATION:]},
            "test": {"image": images["testdata"]}}


def to_image_dataset(images):
    """The paper's dataset from the builder's grey images ``{split: float32 [N, 28, 28, 1]}``.

    Validation and test are binarised once (fixed seeds), the training set at random every epoch.
    """
    return ImageDataset(
        name="omniglot",
        train=images["train"],
        validation=binarize_once(images["validation"], VALIDATION_SEED),
        test=binarize_once(images["test"], TEST_SEED),
        likelihood="bernoulli",
        pseudo_inputs_init=PSEUDO_INPUTS_INIT,
        dynamic_binarization=True,
    )


def load(data_dir=None):
    splits = read_splits(find_file(data_dir))
    return to_image_dataset({split: examples["image"] for split, examples in splits.items()})
