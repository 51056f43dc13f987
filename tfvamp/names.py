"""The names tfvamp's registries accept, in a module that imports nothing.

``tfvamp.datasets.DATASETS`` and ``tfvamp.models.MODELS`` are keyed by these
names, and ``tfvamp.priors.PRIORS``, ``tfvamp.distribute.STRATEGIES`` and the
models' ``PRECISIONS`` are these tuples. The trainers read this file before
TensorFlow is imported (``trainers.cli``), so that a mistyped flag is reported
at once.
"""
DATASETS = ("static_mnist", "dynamic_mnist", "omniglot", "caltech", "freyfaces", "histopathology")
MODELS = ("vae", "hvae", "convhvae", "pixelhvae")
PRIORS = ("standard", "mog", "vamp")
STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker")
PRECISIONS = ("float32", "bfloat16")

# The environment variable a program's --logical_cpu_devices defaults to.
LOGICAL_CPUS_ENV = "TFVAMP_LOGICAL_CPU_DEVICES"
