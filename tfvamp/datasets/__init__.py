"""The paper's six datasets, each loaded as an ``ImageDataset`` (see ``download`` for
where files are looked for, cached and checked)."""
from tfvamp.datasets import caltech, dynamic_mnist, freyfaces, histopathology, omniglot, static_mnist
from tfvamp.datasets.core import DatasetError, ImageDataset

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


__all__ = ["DATASETS", "DatasetError", "ImageDataset", "load_dataset"]
