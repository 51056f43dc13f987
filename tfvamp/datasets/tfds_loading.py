"""The paper's datasets from TensorFlow Datasets: ``load_dataset``'s arrays, read from TFDS.

Static and dynamic MNIST come from TFDS's own ``binarized_mnist`` and ``mnist``
builders, whose recorded checksums are ours; the other four from the builders
of ``tfvamp.datasets.builders``. The paper's preprocessing is each dataset
module's ``to_image_dataset``, applied on top of the builder's splits, as
``load_dataset`` applies it on top of the same splits read from the files.

TFDS writes ``binarized_mnist`` and ``mnist`` in an order of its own: each split
sorted by a hash of the example's key, its index in the file. ``file_order``
undoes that, and the result is checked against the SHA-256 of the file
(Larochelle's ``.amat``, the uncompressed MNIST IDX), so the paper's splits
(the last 10,000 training images of MNIST for validation) are exactly ours.
"""
import os
import tempfile

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core import hashing

from tfvamp.datasets import (caltech, dynamic_mnist, freyfaces, histopathology, omniglot, readers,
                             static_mnist)
from tfvamp.datasets.core import DatasetError, check_sha256

TFDS_NAMES = {
    "static_mnist": "binarized_mnist",
    "dynamic_mnist": "mnist",
    "omniglot": "omniglot_chardata",
    "caltech": "caltech101_silhouettes",
    "freyfaces": "frey_faces",
    "histopathology": "histopathology_gray",
}
# The canonical files TFDS's mnist builder takes from a manual directory (it checks their SHA-256).
MNIST_GZ_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                  "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def file_order(examples, split):
    """A split of ``binarized_mnist`` or ``mnist`` as TFDS wrote it -> in the order of the file."""
    hasher = hashing.Hasher(split)
    written = sorted(range(len(examples)), key=hasher.hash_key)  # TFDS's order of the file's indices
    ordered = np.empty_like(examples)
    ordered[written] = examples
    return ordered


def write_amat_files(data_dir, target_dir):
    """Writes Larochelle's three ``.amat`` files, from the ``.npz`` or ``.amat`` files found as
    ``load_dataset("static_mnist", data_dir)`` finds them, into ``target_dir`` (a manual directory
    for TFDS's ``binarized_mnist``, which checks their SHA-256)."""
    images = static_mnist.read_images(data_dir)
    for split in static_mnist.SPLITS:
        with open(os.path.join(target_dir, static_mnist.amat_name(split)), "wb") as f:
            f.write(readers.amat_bytes(images[split]))


def _images(builder, split):
    return tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, shuffle_files=False))["image"]


def _prepare(builder, manual_dir):
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))


def _prepare_binarized_mnist(builder, manual_dir):
    """TFDS wants the three ``.amat`` files at the top of its manual directory: write them there."""
    if manual_dir is None or builder.is_prepared():
        _prepare(builder, manual_dir)
        return
    with tempfile.TemporaryDirectory(prefix="binarized_mnist-") as amat_dir:
        write_amat_files(manual_dir, amat_dir)
        _prepare(builder, amat_dir)


def _prepare_mnist(builder, manual_dir):
    if manual_dir is not None and not builder.is_prepared():
        missing = [name for name in MNIST_GZ_FILES if not os.path.isfile(os.path.join(manual_dir, name))]
        if missing:
            raise DatasetError(
                f"TFDS's mnist builder needs the canonical {missing} at the top of {manual_dir}: it checks "
                f"the SHA-256 of the .gz files (from {dynamic_mnist.URLS[0]}), so uncompressed or re-compressed "
                "IDX files will not do; load_dataset('dynamic_mnist', ...) takes those.")
    _prepare(builder, manual_dir)


def _static_mnist_splits(builder):
    images = {}
    for split, (_, _, sha256, _) in static_mnist.SPLITS.items():
        images[split] = file_order(_images(builder, split), split)
        check_sha256(readers.amat_bytes(images[split]), sha256, f"TFDS's binarized_mnist {split} split")
    return images


def _dynamic_mnist_splits(builder):
    images = {}
    for split, stem in (("train", "train-images-idx3-ubyte"), ("test", "t10k-images-idx3-ubyte")):
        images[split] = file_order(_images(builder, split), split)
        check_sha256(readers.idx_bytes(images[split][..., 0]), dynamic_mnist.FILES[stem][1],
                     f"TFDS's mnist {split} split")
    return images


_MODULES = {"omniglot": omniglot, "caltech": caltech, "freyfaces": freyfaces, "histopathology": histopathology}


def load_from_tfds(name, tfds_data_dir=None, manual_dir=None):
    """``load_dataset(name)``'s ``ImageDataset``, read from TFDS (prepared first if needed).

    ``tfds_data_dir`` is TFDS's ``data_dir`` (default ``~/tensorflow_datasets``).
    ``manual_dir`` is a local directory laid out as ``../shared/data`` (nothing is
    downloaded then), except for ``dynamic_mnist``: TFDS's ``mnist`` builder needs
    the four canonical ``.gz`` files at its top. Without it, the files are downloaded
    (TFDS's downloads for the MNISTs, the tfvamp cache for the others).
    """
    if name not in TFDS_NAMES:
        raise ValueError(f"Unknown dataset {name!r}; valid: {sorted(TFDS_NAMES)}")
    builder = tfds.builder(TFDS_NAMES[name], data_dir=tfds_data_dir)
    if name == "static_mnist":
        _prepare_binarized_mnist(builder, manual_dir)
        return static_mnist.to_image_dataset(_static_mnist_splits(builder))
    if name == "dynamic_mnist":
        _prepare_mnist(builder, manual_dir)
        return dynamic_mnist.to_image_dataset(_dynamic_mnist_splits(builder))
    _prepare(builder, manual_dir)
    images = {split: _images(builder, split) for split in ("train", "validation", "test")}
    return _MODULES[name].to_image_dataset(images)
