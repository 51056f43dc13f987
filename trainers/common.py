"""What ``trainers.train`` and ``trainers.evaluate`` share: building the model
of a run from its flags, the run's files, and the results table."""
import contextlib
import hashlib
import json
import os
import shutil
import sys
import time

import numpy as np

# Flags that fix the model's variables: a run resumes only with the same values.
MODEL_FLAGS = ("dataset", "model", "prior", "num_components", "latent_dim", "hidden_units")
# Flags added after runs were saved, with what those runs used (read_config fills them in).
DEFAULTS_OF_EARLIER_RUNS = {"precision": "float32", "kernel_initializer": "glorot_uniform",
                            "clamp_bernoulli": False, "pseudo_inputs_init": "random",
                            "optimizer": "adam_normgrad", "authors_logistic": False}


def build_model_for(dataset, config):
    """The model ``config`` describes, for ``dataset`` (an ``ImageDataset``)."""
    from tfvamp import models

    init_mean, init_std = dataset.pseudo_inputs_init
    return models.build_model(
        config["model"],
        input_shape=dataset.input_shape,
        likelihood=likelihood_for(dataset, config),
        prior=config["prior"],
        latent_dim=config["latent_dim"],
        hidden_units=config["hidden_units"],
        num_components=config["num_components"],
        pseudo_inputs_init_mean=init_mean,
        pseudo_inputs_init_std=init_std,
        pseudo_inputs_init_data=dataset.train if config["pseudo_inputs_init"] == "data" else None,
        seed=config["seed"],
        precision=config["precision"],
        kernel_initializer=config["kernel_initializer"],
    )


class FlagError(ValueError):
    """A flag that does not fit the run's dataset."""


def likelihood_for(dataset, config):
    """p(x|z) of a run: the dataset's, or with ``--clamp_bernoulli`` the authors'
    clamped Bernoulli (``tfvamp.likelihoods.ClampedBernoulliLikelihood``), with
    ``--authors_logistic`` their discretised logistic
    (``tfvamp.likelihoods.AuthorsDiscretizedLogisticLikelihood``)."""
    if config.get("authors_logistic"):
        if dataset.likelihood != "discretized_logistic":
            raise FlagError(f"--authors_logistic applies to grey data; {dataset.name} is modelled "
                            f"with a {dataset.likelihood} likelihood.")
        return "authors_discretized_logistic"
    if not config["clamp_bernoulli"]:
        return dataset.likelihood
    if dataset.likelihood != "bernoulli":
        raise FlagError(f"--clamp_bernoulli applies to binary data; {dataset.name} is modelled "
                        f"with a {dataset.likelihood} likelihood.")
    return "clamped_bernoulli"


def load_run_dataset(config, data_dir=None):
    """The dataset of a run: read from the files in ``data_dir`` (default: the
    run's ``--data_dir``), or through TensorFlow Datasets when the run has a
    ``--tfds_data_dir`` (prepared there once, from those files); the same
    arrays either way."""
    from tfvamp import datasets

    data_dir = data_dir or config["data_dir"]
    if config.get("tfds_data_dir"):
        if not sys.stdout.isatty():  # TFDS's progress bars would fill a log file
            import tensorflow_datasets as tfds

            tfds.disable_progress_bar()
        return datasets.load_from_tfds(config["dataset"], config["tfds_data_dir"], manual_dir=data_dir)
    return datasets.load_dataset(config["dataset"], data_dir)


def checkpoint_dir(output_dir):
    return os.path.join(output_dir, "checkpoints")


def write_file_atomic(path, write, mode="wb"):
    """Calls ``write(f)`` on a temporary file beside ``path`` and renames it to
    ``path`` once written and synced: a failed write (a full disk) leaves the
    file that was at ``path`` as it was, and no temporary behind."""
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with open(temporary, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def write_json_atomic(path, value):
    """Writes ``value`` as JSON to ``path`` as ``write_file_atomic`` does."""
    write_file_atomic(path, lambda f: json.dump(value, f, indent=2), mode="w")


def keep_copy(path, copy):
    """Makes ``copy`` a second name of the file ``path`` (a copy where links are not supported)."""
    try:
        os.link(path, copy)
    except OSError:
        with open(path, "rb") as source:
            write_file_atomic(copy, lambda f: shutil.copyfileobj(source, f))


def write_npz_atomic(path, **arrays):
    """Writes ``arrays`` as an ``.npz`` to ``path`` as ``write_file_atomic`` does."""
    write_file_atomic(path, lambda f: np.savez(f, **arrays))


def read_config(output_dir):
    """The flags a run in ``output_dir`` was started with (``config.json``);
    a flag added since reads as ``DEFAULTS_OF_EARLIER_RUNS`` says."""
    path = os.path.join(output_dir, "config.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: {output_dir} holds no run of trainers.train.")
    with open(path) as f:
        return {**DEFAULTS_OF_EARLIER_RUNS, **json.load(f)}


class RunMismatchError(ValueError):
    """The flags given do not fit the run already in ``--output_dir``."""


def check_same_model(saved, config, output_dir):
    """Raises RunMismatchError if ``config`` would build another model than ``saved``."""
    different = {k: (saved.get(k), config[k]) for k in MODEL_FLAGS if saved.get(k) != config[k]}
    if different:
        listed = ", ".join(f"--{k}={new} (saved run: {old})" for k, (old, new) in different.items())
        raise RunMismatchError(f"{output_dir} holds a run with other model flags: {listed}. "
                         "Use another --output_dir, or the run's own flags to resume it.")


class CheckpointError(RuntimeError):
    """The checkpoint files of a run are truncated or corrupt."""


def checkpoint_error(error, output_dir):
    """What ``error``, raised restoring a checkpoint of ``output_dir``, means
    for the user: ``RunMismatchError`` (another model's variables than its
    ``config.json`` describes) or ``CheckpointError`` (truncated or corrupt
    files); ``None`` for any other error."""
    text = str(error).strip()
    first = text.splitlines()[0][:200] if text else type(error).__name__
    if (isinstance(error, ValueError) and "when attempting to restore variable" in text
            or isinstance(error, AssertionError) and "checkpoint" in text.lower()):
        return RunMismatchError(
            f"the checkpoints in {output_dir} do not fit the model its config.json describes "
            f"({first}): they are another model's. Use the config.json that came with them, or "
            "another --output_dir.")
    if (isinstance(error, IndexError) and "Read less bytes" in text
            or type(error).__name__ in ("DataLossError", "OutOfRangeError")):
        return CheckpointError(
            f"the checkpoint files in {checkpoint_dir(output_dir)} are truncated or corrupt "
            f"({first}): restore them from a copy, or start afresh with another --output_dir.")
    return None


def finished_run_message(config):
    """If ``config["output_dir"]`` holds a finished run (its ``results.json``),
    what to tell the user; ``None`` otherwise. Raises ``RunMismatchError`` if
    the run there has other model flags."""
    output_dir = config["output_dir"]
    path = os.path.join(output_dir, "results.json")
    if not os.path.exists(path):
        return None
    check_same_model(read_config(output_dir), config, output_dir)
    with open(path) as f:
        results = json.load(f)
    return (f"{os.path.abspath(output_dir)} holds a finished run: test log-likelihood "
            f"{results['test_log_likelihood']:.2f} nats (S={results['eval_samples']}), "
            f"{results['epochs_trained']} epochs, best at epoch {results['best_epoch']}. "
            "Nothing was changed.\n"
            f"To re-evaluate it (written to a file of its own): python -m trainers.evaluate "
            f"--output_dir={output_dir} --eval_samples=N\n"
            "To train it on and replace its results: the same command with --replace_results "
            "(the old results.json is kept).")


def weights_fingerprint(model):
    """SHA-256 of every model variable's bytes: equal fingerprints, equal weights."""
    digest = hashlib.sha256()
    for variable in model.variables:
        digest.update(np.ascontiguousarray(np.asarray(variable)).tobytes())
    return digest.hexdigest()


def describe_run(config, separator="; "):
    """What a run is, in words: its model, prior and data, then the settings
    the paper's ablations change (initialiser, optimiser, clamped Bernoulli)
    and its seed, joined by ``separator``."""
    prior = f"{config['prior']} prior"
    if config["prior"] in ("vamp", "mog"):
        data_init = config["prior"] == "vamp" and config["pseudo_inputs_init"] == "data"
        prior += f" (K={config['num_components']}{', pseudo-inputs from data' if data_init else ''})"
    settings = [f"{config['kernel_initializer']} kernels", config["optimizer"]]
    if config["clamp_bernoulli"]:
        settings.append("clamped Bernoulli")
    if config.get("authors_logistic"):
        settings.append("the authors' discretised logistic")
    settings.append(f"seed {config['seed']}")
    return f"{config['model']} + {prior} on {config['dataset']}{separator}{', '.join(settings)}"


def results_table(rows):
    """A plain-text table of ``(name, value)`` rows."""
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def evaluation_rows(results):
    rows = [("test log-likelihood (IS)", f"{format_log_likelihood(results)} nats "
                                         f"(S={results['eval_samples']})")]
    if "test_log_likelihood_bias" in results:  # results of older runs have none
        rows.append(("estimated IS bias", f"{results['test_log_likelihood_bias']:.4f} nats (delta method, "
                                          "-se^2/2 per image; a lower bound at small ESS)"))
    if "test_effective_sample_size" in results:  # a small one makes the MC error unreliable too
        rows.append(("effective sample size", f"{results['test_effective_sample_size']:.1f} of "
                                              f"{results['eval_samples']} (mean per image)"))
    return rows + [
        ("test ELBO", f"{results['test_elbo']:.2f}"),
        ("test reconstruction", f"{results['test_reconstruction']:.2f}"),
        ("test KL", f"{results['test_kl']:.2f}"),
    ]


def format_log_likelihood(results):
    """The test log-likelihood with its Monte Carlo standard error, e.g.
    ``-124.96 ± 0.02 (MC)`` (the error's first significant digit decides the
    decimals, at least 2); without one (results of older runs), the mean alone."""
    mean, error = results["test_log_likelihood"], results.get("test_log_likelihood_se")
    if error is None or not np.isfinite(error):
        return f"{mean:.2f}"
    decimals = max(2, -int(np.floor(np.log10(error)))) if error > 0 else 2
    return f"{mean:.{decimals}f} ± {error:.{decimals}f} (MC)"


class ProgressLine:
    """A ``progress(done, total)`` callback that prints a line with the
    elapsed time and an estimate of the time left, at the first call and
    then every tenth of the work (so a log file gets about ten lines).

    The time left is extrapolated from the work done since the first call,
    so a resumed task (first call with ``done > 0``, printed) is estimated
    right; a first call with ``done == 0`` only starts the clock."""

    def __init__(self, what, unit, stream=None):
        self.what, self.unit, self.stream = what, unit, stream
        self.start = time.perf_counter()
        self.next_fraction = 0.0
        self.first_done = None

    def __call__(self, done, total):
        if self.first_done is None:  # the work starts now
            self.first_done, self.start = done, time.perf_counter()
            if done == 0 and total:
                return  # nothing to say until the first step is done
        fraction = done / total if total else 1.0
        if fraction < self.next_fraction and done < total:
            return
        self.next_fraction = (int(fraction * 10) + 1) / 10
        elapsed = time.perf_counter() - self.start
        rate = (done - self.first_done) / elapsed if elapsed > 0 else 0.0
        left = (f", about {_duration((total - done) / rate)} left"
                if rate > 0 and 0 < fraction < 1 else "")
        print(f"{self.what}: {done}/{total} {self.unit}, {_duration(elapsed)}{left}",
              file=self.stream, flush=True)


def _duration(seconds):
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
