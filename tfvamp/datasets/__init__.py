"""The paper's six datasets, each loaded as an ``ImageDataset`` (see ``download`` for
where files are looked for, cached and checked).

Importing this package registers the TensorFlow Datasets builders of ``builders``
(``caltech101_silhouettes``, ``frey_faces``, ``omniglot_chardata``,
``histopathology_gray``); ``load_from_tfds`` gives ``load_dataset``'s arrays
through TFDS (TFDS's own ``binarized_mnist`` and ``mnist`` for the MNISTs).
"""
from tfvamp.datasets import builders  # noqa: F401  (defining the builders registers them with TFDS)
from tfvamp.datasets import caltech, dynamic_mnist, freyfaces, histopathology, omniglot, static_mnist
from tfvamp.datasets.core import DatasetError, ImageDataset
from tfvamp.datasets.own_images import load_images
from tfvamp.datasets.tfds_loading import TFDS_NAMES, load_from_tfds

DATASETS = {
    "static_mnist": static_mnist.load,
    "dynamic_mnist": dynamic_mnist.load,
    "omniglot": omniglot.load,
    "caltech": caltech.load,
    "freyfaces": freyfaces.load,
    "histopathology": histopathology.load,
}


def load_dataset(name, data_dir=None):
    """Loads dataset ``name`` (a key of ``DATASETS``), from ``data_dir`` if given."""
    try:
        loader = DATASETS[name]
    except KeyError:
        raise ValueError(f"Unknown dataset {name!r}; valid: {sorted(DATASETS)}") from None
    return loader(data_dir)


__all__ = ["DATASETS", "TFDS_NAMES", "DatasetError", "ImageDataset", "load_dataset", "load_from_tfds",
           "load_images"]
