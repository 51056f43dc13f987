"""What ``trainers.train`` and ``trainers.evaluate`` share: building the model
of a run from its flags, the run's files, and the results table."""
import hashlib
import json
import os

import numpy as np

from tfvamp import models

# Flags that fix the model's variables: a run resumes only with the same values.
MODEL_FLAGS = ("dataset", "model", "prior", "num_components", "latent_dim", "hidden_units")


def build_model_for(dataset, config):
    """The model ``config`` describes, for ``dataset`` (an ``ImageDataset``)."""
    init_mean, init_std = dataset.pseudo_inputs_init
    return models.build_model(
        config["model"],
        input_shape=dataset.input_shape,
        likelihood=dataset.likelihood,
        prior=config["prior"],
        latent_dim=config["latent_dim"],
        hidden_units=config["hidden_units"],
        num_components=config["num_components"],
        pseudo_inputs_init_mean=init_mean,
        pseudo_inputs_init_std=init_std,
        pseudo_inputs_init_data=dataset.train if config.get("pseudo_inputs_init") == "data" else None,
        seed=config["seed"],
    )


def checkpoint_dir(output_dir):
    return os.path.join(output_dir, "checkpoints")


def write_json_atomic(path, value):
    """Writes ``value`` as JSON to ``path`` via a temporary file and a rename."""
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "w") as f:
        json.dump(value, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


def read_config(output_dir):
    """The flags a run in ``output_dir`` was started with (``config.json``)."""
    path = os.path.join(output_dir, "config.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: {output_dir} holds no run of trainers.train.")
    with open(path) as f:
        return json.load(f)


class RunMismatchError(ValueError):
    """The flags given do not fit the run already in ``--output_dir``."""


def check_same_model(saved, config, output_dir):
    """Raises RunMismatchError if ``config`` would build another model than ``saved``."""
    different = {k: (saved.get(k), config[k]) for k in MODEL_FLAGS if saved.get(k) != config[k]}
    if different:
        listed = ", ".join(f"--{k}={new} (saved run: {old})" for k, (old, new) in different.items())
        raise RunMismatchError(f"{output_dir} holds a run with other model flags: {listed}. "
                         "Use another --output_dir, or the run's own flags to resume it.")


def weights_fingerprint(model):
    """SHA-256 of every model variable's bytes: equal fingerprints, equal weights."""
    digest = hashlib.sha256()
    for variable in model.variables:
        digest.update(np.ascontiguousarray(np.asarray(variable)).tobytes())
    return digest.hexdigest()


def results_table(rows):
    """A plain-text table of ``(name, value)`` rows."""
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def evaluation_rows(results):
    return [
        ("test log-likelihood (IS)", f"{results['test_log_likelihood']:.2f} nats "
                                     f"(S={results['eval_samples']})"),
        ("test ELBO", f"{results['test_elbo']:.2f}"),
        ("test reconstruction", f"{results['test_reconstruction']:.2f}"),
        ("test KL", f"{results['test_kl']:.2f}"),
    ]
