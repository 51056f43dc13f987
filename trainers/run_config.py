"""A run's configuration: every flag of ``trainers.train``, as one typed, frozen
object built once (``RunConfig.from_flags``, or ``RunConfig.read`` from a run
directory's ``config.json``), with what a run does with it: describe it,
check that it resumes the run already in its directory, and build its
dataset, likelihood and model. ``config.json`` holds ``to_json()``: one key per
flag, the format of every earlier run.
"""
import dataclasses
import json
import os
import sys
from typing import Optional

from trainers.errors import FlagError, RunMismatchError

# Flags that fix the model's variables: a run resumes only with the same values.
MODEL_FLAGS = ("dataset", "model", "prior", "num_components", "latent_dim", "hidden_units")
# The flags, beyond MODEL_FLAGS, that change a model's estimates.
VALUE_FLAGS = ("precision", "kernel_initializer", "clamp_bernoulli", "pseudo_inputs_init",
               "likelihood", "binarize", "split_seed")
# Flags added after runs were saved, with what those runs used (``read`` fills them in).
DEFAULTS_OF_EARLIER_RUNS = {"precision": "float32", "kernel_initializer": "glorot_uniform",
                            "clamp_bernoulli": False, "pseudo_inputs_init": "random",
                            "optimizer": "adam_normgrad", "monitor_every": 10, "binarize": None,
                            "likelihood": None, "split_seed": 0,
                            "worker_timeout": 10}  # TensorFlow's own heartbeat timeout


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """The flags of one run of ``trainers.train`` (their help: ``python -m
    trainers.train --help``), in the order the program defines them."""

    config: Optional[str]
    dataset: str
    model: str
    prior: str
    num_components: int
    pseudo_inputs_init: str
    latent_dim: int
    hidden_units: int
    epochs: int
    batch_size: int
    learning_rate: float
    optimizer: str
    clamp_bernoulli: bool
    binarize: Optional[str]
    likelihood: Optional[str]
    split_seed: int
    warmup_epochs: int
    early_stopping_patience: int
    eval_samples: int
    eval_batch_size: int
    data_dir: Optional[str]
    tfds_data_dir: Optional[str]
    output_dir: str
    replace_results: bool
    seed: int
    jit_compile: Optional[bool]
    precision: str
    kernel_initializer: str
    strategy: str
    logical_cpu_devices: int
    worker_timeout: int
    sample_every: int
    monitor_every: int
    verbose: str

    @classmethod
    def from_flags(cls, values):
        """The configuration of ``{flag name: value}``, every flag of ``trainers.train``."""
        return cls(**values)

    @classmethod
    def read(cls, output_dir):
        """The configuration a run in ``output_dir`` was started with (its
        ``config.json``): a flag added since reads as ``DEFAULTS_OF_EARLIER_RUNS``
        says (else None), a flag since removed is left out."""
        path = os.path.join(output_dir, "config.json")
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} not found: {output_dir} holds no run of trainers.train.")
        with open(path) as f:
            saved = {**DEFAULTS_OF_EARLIER_RUNS, **json.load(f)}
        return cls(**{field.name: saved.get(field.name) for field in dataclasses.fields(cls)})

    def to_json(self):
        """``{flag name: value}``, as ``config.json`` and ``results.json``'s ``flags`` hold it."""
        return dataclasses.asdict(self)

    def replace(self, **changes):
        """This configuration with ``changes`` (flag name: value)."""
        return dataclasses.replace(self, **changes)

    def describe(self, separator="; "):
        """What the run is, in words: its model, prior and data, then the settings
        the paper's ablations change (initialiser, optimiser, clamped Bernoulli)
        and its seed, joined by ``separator``."""
        prior = f"{self.prior} prior"
        if self.prior in ("vamp", "mog"):
            data_init = self.prior == "vamp" and self.pseudo_inputs_init == "data"
            prior += f" (K={self.num_components}{', pseudo-inputs from data' if data_init else ''})"
        settings = [f"{self.kernel_initializer} kernels", self.optimizer]
        if self.clamp_bernoulli:
            settings.append("clamped Bernoulli")
        settings.append(f"seed {self.seed}")
        return f"{self.model} + {prior} on {self.dataset}{separator}{', '.join(settings)}"

    def model_settings(self):
        """The flags that fix the model and its estimates (``MODEL_FLAGS``,
        ``VALUE_FLAGS``), as ``{flag name: value}``."""
        return {name: getattr(self, name) for name in MODEL_FLAGS + VALUE_FLAGS}

    def check_resumes(self, saved):
        """Raises ``RunMismatchError`` unless this configuration builds the
        model of ``saved``, the run already in ``output_dir``."""
        different = {name: (getattr(saved, name), getattr(self, name)) for name in MODEL_FLAGS
                     if getattr(saved, name) != getattr(self, name)}
        if different:
            listed = ", ".join(f"--{k}={new} (saved run: {old})" for k, (old, new) in different.items())
            raise RunMismatchError(f"{self.output_dir} holds a run with other model flags: {listed}. "
                                   "Use another --output_dir, or the run's own flags to resume it.")

    def load_dataset(self, data_dir=None):
        """The run's dataset: one of the paper's, read from the files in ``data_dir``
        (default: ``--data_dir``) or through TensorFlow Datasets with ``--tfds_data_dir``
        (prepared there once, from those files), the same arrays either way; or the user's
        own images of ``--dataset`` (``tfvamp.datasets.load_images``, with ``--binarize``
        and ``--split_seed``; a ``tfds:`` dataset from ``--tfds_data_dir`` or ``data_dir``).
        A training set smaller than a batch is a ``FlagError``."""
        data_dir = data_dir or self.data_dir
        dataset = self._load_dataset(data_dir)
        if len(dataset.train) < self.batch_size:
            raise FlagError(f"{self.dataset} has {len(dataset.train)} training images, fewer than a "
                            f"batch (--batch_size={self.batch_size}): give more images or a smaller batch")
        return dataset

    def _load_dataset(self, data_dir):
        from tfvamp import datasets
        from tfvamp.names import is_own_data

        if is_own_data(self.dataset):  # the datasets guide, 'Your own images'
            return datasets.load_images(self.dataset, binarize=self.binarize, split_seed=self.split_seed,
                                        data_dir=self.tfds_data_dir or data_dir)
        if self.binarize:
            raise FlagError(f"--binarize is for your own grey images; {self.dataset} is binarised "
                            "as the paper's loaders decide")
        if self.tfds_data_dir:
            if not sys.stdout.isatty():  # TFDS's progress bars would fill a log file
                import tensorflow_datasets as tfds

                tfds.disable_progress_bar()
            return datasets.load_from_tfds(self.dataset, self.tfds_data_dir, manual_dir=data_dir)
        return datasets.load_dataset(self.dataset, data_dir)

    def likelihood_of(self, dataset):
        """p(x|z) of the run: ``--likelihood``, else the dataset's; with ``--clamp_bernoulli``
        the authors' clamped Bernoulli (``tfvamp.likelihoods.ClampedBernoulliLikelihood``)."""
        likelihood = self.likelihood or dataset.likelihood
        if not self.clamp_bernoulli:
            return likelihood
        if likelihood != "bernoulli":
            raise FlagError(f"--clamp_bernoulli applies to binary data; {dataset.name} is modelled "
                            f"with a {dataset.likelihood} likelihood.")
        return "clamped_bernoulli"

    def build_model(self, dataset):
        """The model of the run, for ``dataset`` (an ``ImageDataset``)."""
        from tfvamp import models

        init_mean, init_std = dataset.pseudo_inputs_init
        return models.build_model(
            self.model,
            input_shape=dataset.input_shape,
            likelihood=self.likelihood_of(dataset),
            prior=self.prior,
            latent_dim=self.latent_dim,
            hidden_units=self.hidden_units,
            num_components=self.num_components,
            pseudo_inputs_init_mean=init_mean,
            pseudo_inputs_init_std=init_std,
            pseudo_inputs_init_data=dataset.train if self.pseudo_inputs_init == "data" else None,
            seed=self.seed,
            precision=self.precision,
            kernel_initializer=self.kernel_initializer,
        )
