"""Frey Faces: 1,965 grey 28x20 faces, shuffled with a fixed seed, 1,565 / 200 / 200.

``freyfaces.pkl`` is a Python 2 pickle of a list whose first element is a
1965 x 560 uint8 array; it is read with the NumPy-only unpickler. Pixels are
scaled as (x + 0.5) / 256 and modelled by the discretised logistic.
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


def load(data_dir=None):
    path = download.locate(FOLDER, [FILENAME], download.Remote((URL,), SHA256, SIZE), data_dir)
    contents = readers.restricted_pickle_load(readers.read_verified(path, SHA256), path)
    if not isinstance(contents, (list, tuple)) or not contents:
        raise DatasetError(f"{path} must hold a list whose first element is the image array")
    images = readers.check_images(contents[0], path, NUM_IMAGES, (28, 20), high=255)
    images = images.reshape(NUM_IMAGES, 28, 20, 1)
    images = images[np.random.default_rng(SPLIT_SEED).permutation(NUM_IMAGES)]
    images = (images.astype(np.float32) + 0.5) / 256.0
    end_validation = NUM_TRAIN + NUM_VALIDATION
    return ImageDataset(
        name="freyfaces",
        train=images[:NUM_TRAIN],
        validation=images[NUM_TRAIN:end_validation],
        test=images[end_validation:],
        likelihood="discretized_logistic",
        pseudo_inputs_init=PSEUDO_INPUTS_INIT,
    )
