"""Datasets of the paper, each loaded as an ``ImageDataset``."""
from tfvamp.datasets import caltech, freyfaces
from tfvamp.datasets.core import DatasetError, ImageDataset

DATASETS = {"caltech": caltech.load, "freyfaces": freyfaces.load}


def load_dataset(name, data_dir=None):
    """Loads dataset ``name`` (a key of ``DATASETS``), from ``data_dir`` if given."""
    try:
        loader = DATASETS[name]
    except KeyError:
        raise ValueError(f"Unknown dataset {name!r}; valid: {sorted(DATASETS)}") from None
    return loader(data_dir)


__all__ = ["DATASETS", "DatasetError", "ImageDataset", "load_dataset"]
