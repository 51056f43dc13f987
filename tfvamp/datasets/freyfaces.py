"""Frey Faces: 1,965 grey 28x20 faces, shuffled with a fixed seed, 1,565 / 200 / 200.

``freyfaces.pkl`` is a Python 2 pickle of a list whose first element is a
1965 x 560 uint8 array; it is read with the NumPy-only unpickler. Pixels are
scaled as (x + 0.5) / 256 and modelled by the discretised logistic. The
``frey_faces`` TFDS builder holds the split uint8 images (``read_splits``); the
scaling is applied on top of them (``to_image_dataset``).
"""
import numpy as np

from tfvamp.datasets import download, readers
from tfvamp.datasets.core import DatasetError, ImageDataset

FOLDER = "freyfaces"
FILENAME = "freyfaces.pkl"
SHA256 = "3b69410c6a5fd6e03f09012905168be3712373a094a776f7e58fcd0670d2138a"
SIZE = 3568521
URL = "https://raw.githubusercontent.com/jmtomczak/vae_vampprior/master/datasets/Freyfaces/freyfaces.pkl"
NUM_IMAGES, NUM_TRAIN, NUM_VALIDATION = 1965, 1565, 200
SPLIT_SEED = 0
PSEUDO_INPUTS_INIT = (0.5, 0.02)  # paper: Caltech and Frey Faces


def find_file(data_dir=None):
    return download.locate(FOLDER, [FILENAME], download.Remote((URL,), SHA256, SIZE), data_dir)


def read_splits(path):
    """The checked file, split at random (fixed seed): ``{split: {"image": uint8 [N, 28, 20, 1]}}``."""
    contents = readers.restricted_pickle_load(readers.read_verified(path, SHA256), path)
    if not isinstance(contents, (list, tuple)) or not contents:
        raise DatasetError(f"{path} must hold a list whose first element is the image array")
    images = readers.check_images(contents[0], path, NUM_IMAGES, (28, 20), high=255)
    images = images.reshape(NUM_IMAGES, 28, 20, 1).astype(np.uint8)
    images = images[np.random.default_rng(SPLIT_SEED).permutation(NUM_IMAGES)]
    end_validation = NUM_TRAIN + NUM_VALIDATION
    return {"train": {"image": images[:NUM_TRAIN]},
            "validation": {"image": images[NUM_TRAIN:end_validation]},
            "test": {"image": images[end_validation:]}}


def to_image_dataset(images):
    """The paper's dataset from the builder's images ``{split: uint8 [N, 28, 20, 1]}``: (x + 0.5) / 256."""
    return ImageDataset(name="freyfaces", likelihood="discretized_logistic", pseudo_inputs_init=PSEUDO_INPUTS_INIT,
                        **{split: (images[split].astype(np.float32) + 0.5) / 256.0
                           for split in ("train", "validation", "test")})


def load(data_dir=None):
    splits = read_splits(find_file(data_dir))
    return to_image_dataset({split: examples["image"] for split, examples in splits.items()})
