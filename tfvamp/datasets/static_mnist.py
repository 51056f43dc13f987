"""Static MNIST: Larochelle's fixed binarisation, 50,000 / 10,000 / 10,000 (row-major 28x28).

Reads either the three original ``binarized_mnist_{train,valid,test}.amat``
files (downloaded into the cache when no local directory is given) or
``binarized_mnist_uint8.npz`` (keys ``train``/``valid``/``test``, uint8), a
lossless re-encoding: written back as ``.amat`` its arrays reproduce the three
canonical files byte for byte (the SHA-256s below, as recorded by TFDS).
These are the files of TFDS's own ``binarized_mnist`` builder, so
``tfvamp.datasets.load_from_tfds("static_mnist")`` gives the same arrays.
"""
import numpy as np

from tfvamp.datasets import download, readers
from tfvamp.datasets.core import DatasetError, ImageDataset, verify_checksum

FOLDER = "binarized_mnist"
URL = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"
# split -> (file split name, images, sha256 and size of binarized_mnist_<name>.amat)
SPLITS = {
    "train": ("train", 50000, "ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d", 78400000),
    "validation": ("valid", 10000, "1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2", 15680000),
    "test": ("test", 10000, "e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c", 15680000),
}
NPZ = "binarized_mnist_uint8.npz"
NPZ_SHA256 = "350243cb824d66d022e0c3e87cac231231668817ff03f5f6d7b6533017d56b4b"
PSEUDO_INPUTS_INIT = (0.05, 0.01)  # paper: MNIST and OMNIGLOT


def amat_name(split):
    return f"binarized_mnist_{SPLITS[split][0]}.amat"


def _from_amat(data_dir):
    arrays = {}
    for split, (_, _, sha256, size) in SPLITS.items():
        name = amat_name(split)
        path = download.locate(FOLDER, [name], download.Remote((URL + name,), sha256, size), data_dir,
                               hint=f" (nor {NPZ})")
        arrays[split] = readers.amat_images(readers.read_verified(path, sha256), path)
    return arrays


def _from_npz(path):
    verify_checksum(path, NPZ_SHA256)
    keys = {split: key for split, (key, *_) in SPLITS.items()}
    arrays = readers.npz_arrays(path, list(keys.values()))
    return {split: arrays[key] for split, key in keys.items()}


def read_images(data_dir=None):
    """The checked images ``{split: uint8 [N, 28, 28, 1]}`` in {0, 1}, from the .npz or the .amat files."""
    root = download.local_dir(data_dir) or download.cache_dir()
    npz = download.find(root, FOLDER, [NPZ])
    arrays = _from_npz(npz) if npz is not None else _from_amat(data_dir)
    images = {}
    for split, (_, count, _, _) in SPLITS.items():
        source = f"static MNIST {split} split"
        values = readers.check_images(arrays[split], source, count, (readers.AMAT_PIXELS,))
        if not np.all((values == 0) | (values == 1)):
            raise DatasetError(f"{source}: pixels must be 0 or 1")
        images[split] = values.reshape(count, 28, 28, 1).astype(np.uint8)
    return images


def to_image_dataset(images):
    """The paper's dataset from the images ``{split: uint8 [N, 28, 28, 1]}`` (of ``binarized_mnist``)."""
    return ImageDataset(name="static_mnist", likelihood="bernoulli", pseudo_inputs_init=PSEUDO_INPUTS_INIT,
                        **{split: images[split].astype(np.float32) for split in SPLITS})


def load(data_dir=None):
    return to_image_dataset(read_images(data_dir))
