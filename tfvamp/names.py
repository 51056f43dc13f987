"""The names tfvamp's registries accept, in a module that imports only ``os``.

``tfvamp.datasets.DATASETS`` and ``tfvamp.models.MODELS`` are keyed by these
names, and ``tfvamp.priors.PRIORS``, ``tfvamp.distribute.STRATEGIES`` and the
models' ``PRECISIONS`` are these tuples. The trainers read this file before
TensorFlow is imported (``trainers.cli``), so that a mistyped flag is reported
at once.
"""
import os

DATASETS = ("static_mnist", "dynamic_mnist", "omniglot", "caltech", "freyfaces", "histopathology")
MODELS = ("vae", "hvae", "convhvae", "pixelhvae")
PRIORS = ("standard", "mog", "vamp")
STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker")
PRECISIONS = ("float32", "bfloat16")

# Seconds without a heartbeat after which a worker of a cluster counts as lost
# (``tfvamp.distribute.make_strategy``; the trainers' --worker_timeout).
WORKER_TIMEOUT_S = 60

# The environment variable a program's --logical_cpu_devices defaults to.
LOGICAL_CPUS_ENV = "TFVAMP_LOGICAL_CPU_DEVICES"

# A user's own images (``tfvamp.datasets.load_images``): a TFDS dataset by name, an array
# file, or a folder of image files.
TFDS_PREFIX = "tfds:"
ARRAY_FILE_SUFFIXES = (".npz", ".npy")


def is_own_data(source):
    """Whether ``source`` names a user's images (``tfds:NAME...``, an ``.npz``/``.npy``
    path, or an existing folder) rather than one of ``DATASETS``."""
    source = str(source)
    return source not in DATASETS and (source.startswith(TFDS_PREFIX) or source.endswith(ARRAY_FILE_SUFFIXES)
                                       or os.path.isdir(source))
