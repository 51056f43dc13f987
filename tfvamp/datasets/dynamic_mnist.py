"""Dynamic MNIST: 50,000 train / 10,000 validation (the last 10,000 of the training
file) / 10,000 test; pixels / 255, the training set re-binarised at random every
epoch, validation and test binarised once with a fixed seed.

Accepts the IDX image files under the canonical names (``train-images-idx3-ubyte``)
or the ``train-images.idx3-ubyte`` spelling, each gzipped (``.gz``) or not.
Checksum policy: the SHA-256 of the *uncompressed* IDX content is checked on
every load, so any gzip of the right file is accepted; a download is also
checked against the SHA-256 of the canonical ``.gz`` (as recorded by TFDS).
These are the image files of TFDS's own ``mnist`` builder: the paper's split and
binarisation are applied on top of its ``train`` and ``test`` images
(``to_image_dataset``), see ``tfvamp.datasets.load_from_tfds``.
"""
import numpy as np

from tfvamp.datasets import download, readers
from tfvamp.datasets.core import ImageDataset, binarize_once

FOLDER = "mnist"
URLS = ("https://storage.googleapis.com/cvdf-datasets/mnist/", "http://yann.lecun.com/exdb/mnist/")
# file stem -> (images, sha256 of the uncompressed IDX, sha256 and size of the canonical .gz)
FILES = {
    "train-images-idx3-ubyte": (60000, "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
    "t10k-images-idx3-ubyte": (10000, "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                               "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
}
NUM_VALIDATION = 10000
VALIDATION_SEED, TEST_SEED = 777, 778
PSEUDO_INPUTS_INIT = (0.05, 0.01)  # paper: MNIST and OMNIGLOT


def file_names(stem):
    """Accepted names, canonical download name first."""
    dotted = stem.replace("-idx", ".idx")
    return [f"{stem}.gz", stem, dotted, f"{dotted}.gz"]


def read_images(stem, data_dir=None):
    """The checked images of one IDX file as uint8 ``[N, 28, 28, 1]``."""
    count, sha256, gz_sha256, gz_size = FILES[stem]
    remote = download.Remote(tuple(url + stem + ".gz" for url in URLS), gz_sha256, gz_size)
    path = download.locate(FOLDER, file_names(stem), remote, data_dir)
    images = readers.idx_images(readers.read_verified(path, sha256), path)
    readers.check_images(images, path, count, (28, 28), high=255)
    return images[..., None]


def to_image_dataset(images):
    """The paper's dataset from the two files' images ``{"train": 60,000, "test": 10,000}`` (uint8, [N, 28, 28, 1]).

    Pixels / 255; the last 10,000 training images are the validation set; validation and test
    are binarised once (fixed seeds), the training set at random every epoch (``ImageDataset``).
    """
    train = images["train"].astype(np.float32) / 255.0
    test = images["test"].astype(np.float32) / 255.0
    return ImageDataset(
        name="dynamic_mnist",
        train=train[:-NUM_VALIDATION],
        validation=binarize_once(train[-NUM_VALIDATION:], VALIDATION_SEED),
        test=binarize_once(test, TEST_SEED),
        likelihood="bernoulli",
        pseudo_inputs_init=PSEUDO_INPUTS_INIT,
        dynamic_binarization=True,
    )


def load(data_dir=None):
    return to_image_dataset({"train": read_images("train-images-idx3-ubyte", data_dir),
                             "test": read_images("t10k-images-idx3-ubyte", data_dir)})
