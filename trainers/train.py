r"""Trains a model of the paper, evaluates it on the test set and writes results.

    python -m trainers.train --config=caltech_vae_vamp --output_dir=runs/caltech_vae_vamp

``--config=NAME`` (or ``--flagfile=configs/NAME.cfg``) loads one of the
paper's experiments; flags after it override its values. Writes into
``OUTPUT_DIR``: ``config.json`` (the flags the run started with),
``checkpoints/state`` (the full training state after every epoch),
``checkpoints/best`` (the best validation weights), ``tensorboard/``, and
after training ``results.json`` (test log-likelihood by importance sampling
with ``--eval_samples`` samples and its Monte Carlo standard error, test ELBO
and its parts, history, every flag value), ``test_log_likelihoods.npy``,
``test_evaluation.npz`` (every per-image value), ``figures/*.png`` and
``export/``. The test evaluation is split over ``--strategy``'s replicas and
saves every finished step to ``test_evaluation.in-progress.npz``: a run killed
while evaluating continues from there when re-run.

Only one program at a time uses an ``OUTPUT_DIR`` (``trainers.run_lock``): a
second one exits at once, naming the first. Ctrl-C or SIGTERM stops training
after the current step, keeps the checkpoint of the last completed epoch and
prints the command that goes on (exit status 130 / 143). Re-running the same
command on an unfinished run resumes it after the last completed epoch. A
finished run (``results.json`` written) is left untouched:
``trainers.evaluate`` re-evaluates it into a file of its own, and
``--replace_results`` trains on (up to ``--epochs``) and replaces the results,
keeping the old ``results.json`` beside them.

Flags are parsed and checked before TensorFlow is imported. This module is the
command line (flags, the directory's lock, the printed results); the run
itself, which tests and benchmarks call with a ``RunConfig``, is
``trainers.training``.
"""
import os
import sys

from absl import app, flags

from trainers import cli, run_lock
from trainers.reports import evaluation_rows, results_table
from trainers.run_config import RunConfig
from trainers.run_files import finished_run_message

flags.DEFINE_string("config", None, "A paper experiment by name (configs/NAME.cfg, e.g. caltech_vae_vamp); "
                    "flags after it override its values.")
flags.DEFINE_string("dataset", "caltech", f"Dataset to train on: one of the paper's ({', '.join(cli.DATASETS)}), "
                    "or your own images: an .npz/.npy file, a folder of PNG/JPEG files, or tfds:NAME "
                    "(a TFDS dataset, optionally with /CONFIG and :TRAIN:VALIDATION:TEST splits; the "
                    "datasets guide, 'Your own images').")
flags.register_validator(
    "dataset", lambda value: value in cli.DATASETS or cli.is_own_data(value),
    message=f"--dataset must be one of {list(cli.DATASETS)}, an .npz or .npy file, an existing folder "
            "of images, or tfds:NAME")
flags.DEFINE_enum("model", "vae", cli.MODELS, "Model of the paper.")
flags.DEFINE_enum("prior", "vamp", cli.PRIORS, "Prior over the (top) latent.")
flags.DEFINE_integer("num_components", 500, "K: pseudo-inputs of the VampPrior / MoG components.", lower_bound=1)
flags.DEFINE_enum("pseudo_inputs_init", "random", ["random", "data"],
                  "VampPrior pseudo-inputs: N(mean, std) of the dataset (random) or K random "
                  "training images (data, the paper's 'VampPrior data').")
flags.DEFINE_integer("latent_dim", 40, "Size of each latent level.", lower_bound=1)
flags.DEFINE_integer("hidden_units", 300, "Width of the gated layers.", lower_bound=1)
flags.DEFINE_integer("epochs", 2000, "Maximum number of epochs.", lower_bound=1)
flags.DEFINE_integer("batch_size", 100, "Global training batch size (split across replicas).", lower_bound=1)
flags.DEFINE_float("learning_rate", 5e-4, "Adam learning rate.", lower_bound=0.0)
flags.DEFINE_enum("optimizer", "adam_normgrad", cli.OPTIMIZERS,
                  "adam_normgrad: Adam on per-variable normalised gradients, as the authors' code; "
                  "adam: plain Adam.")
flags.DEFINE_boolean("clamp_bernoulli", False, "Binary data: clamp the Bernoulli probabilities to "
                     "[1e-5, 1 - 1e-5] as the authors' code (default: the exact Bernoulli).")
flags.DEFINE_enum("binarize", None, ["static", "dynamic"], "Your own grey images: binarise them once "
                  "(static) or the training images afresh every epoch (dynamic), as the paper's MNIST, "
                  "for the Bernoulli likelihood (default: as they are).")
flags.DEFINE_enum("likelihood", None, cli.LIKELIHOODS, "p(x|z) (default: the data's: Bernoulli for binary "
                  "images, the discretised logistic for grey ones).")
flags.DEFINE_integer("split_seed", 0, "Your own images without validation or test images: the seed of "
                     "the split that holds 10% of the training images out for each.")
flags.DEFINE_integer("warmup_epochs", 100, "Epochs of linear KL warm-up (0: none).", lower_bound=0)
flags.DEFINE_integer("early_stopping_patience", 50, "Epochs without validation improvement before stopping.", lower_bound=0)
flags.DEFINE_integer("eval_samples", 5000, "Importance samples per test image.", lower_bound=1)
flags.DEFINE_integer("eval_batch_size", 100, "Test images evaluated at once.", lower_bound=1)
flags.DEFINE_string("data_dir", None, "Directory with the datasets (layout of ../shared/data); "
                    "default: $TFVAMP_DATA_DIR, else the embedded copy (caltech) or the download cache "
                    "($TFVAMP_CACHE_DIR, default ~/.cache/tfvamp).")
flags.DEFINE_string("tfds_data_dir", None, "Read the dataset through TensorFlow Datasets (tfvamp's "
                    "builders; TFDS's binarized_mnist and mnist), prepared once in this TFDS data_dir from "
                    "--data_dir's files (dynamic_mnist: the canonical .gz files) or downloaded; the same "
                    "arrays as without it.")
flags.DEFINE_string("output_dir", "runs/default", "Where checkpoints, TensorBoard logs, figures and "
                    "results go; an unfinished run already there is resumed, a finished one left alone.")
flags.DEFINE_boolean("replace_results", False, "On a finished run: train on up to --epochs, re-evaluate "
                     "and replace results.json (the old one is kept as results.replaced-<time>.json).")
flags.DEFINE_integer("seed", 0, "Random seed.")
flags.DEFINE_boolean("jit_compile", None, "Compile the train step with XLA (only with one replica). "
                     "Default: on for vae and hvae, off for convhvae and pixelhvae (faster on CPU).")
flags.DEFINE_enum("precision", "float32", cli.PRECISIONS,
                  "Compute dtype of the networks; densities, ELBO and importance weights stay float32.")
flags.DEFINE_enum("kernel_initializer", "glorot_uniform", cli.KERNEL_INITIALIZERS,
                  "Initializer of the Dense kernels: Keras' glorot_uniform, or he_normal as the "
                  "authors' code (the paper's configs set he_normal).")
flags.DEFINE_enum("strategy", "auto", cli.STRATEGIES, "tf.distribute strategy (the training guide: docs/guides/training.md).")
flags.DEFINE_integer("logical_cpu_devices", int(os.environ.get(cli.LOGICAL_CPUS_ENV, 0)),
                     "Split the CPU into this many logical devices (0: don't), e.g. to try "
                     "--strategy=mirrored without GPUs; default from $TFVAMP_LOGICAL_CPU_DEVICES.",
                     lower_bound=0)
flags.DEFINE_integer("worker_timeout", cli.WORKER_TIMEOUT_S, "In a TF_CONFIG cluster: seconds after "
                     "which a worker that stopped answering (killed, its machine or network lost) counts "
                     "as lost; the others then exit, naming it and the command that resumes.",
                     lower_bound=1)
flags.DEFINE_integer("sample_every", 10, "Write generated samples to TensorBoard every this many epochs "
                     "(0: never).", lower_bound=0)
flags.DEFINE_integer("monitor_every", 10, "Every this many epochs, write the prior's component "
                     "statistics and the posterior's active units to TensorBoard (tensorboard/prior: "
                     "the pseudo-inputs most used first, their usage, effective and unused K, drift), "
                     "and warn once if the posterior collapses after the warm-up (0: never).",
                     lower_bound=0)
flags.DEFINE_enum("verbose", "auto", ["auto", "0", "1", "2"],
                  "Progress of each epoch: 1 a progress bar, 2 one line per epoch, 0 none; auto: a bar "
                  "on a terminal, one line per epoch otherwise (a log file).")

FLAGS = flags.FLAGS


def flag_values():
    """Every flag of this program as ``{name: value}``."""
    return {f.name: f.value for f in FLAGS.get_flags_for_module(sys.modules[__name__])}


def train_and_evaluate(config, callbacks=()):
    """See ``trainers.training.train_and_evaluate`` (imported on first use,
    so that this module loads without TensorFlow); ``config`` is a ``RunConfig``."""
    from trainers import training

    return training.train_and_evaluate(config, callbacks)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    config = RunConfig.from_flags(flag_values())
    if cli.in_cluster(config.strategy):  # a lost worker is this program's one line
        cli.hold_back_native_lines(cli.LOST_WORKER_NATIVE_LINES)
    # The non-chief workers of a cluster write to scratch directories of their own.
    if cli.writes_output_dir(config.strategy):
        with run_lock.hold(config.output_dir, "trainers.train", create=True):
            train_and_report(config)
    else:
        train_and_report(config)


def train_and_report(config):
    """Trains and evaluates the run ``config`` describes and prints its
    results; a finished run is only described (unless ``replace_results``)."""
    finished = finished_run_message(config)
    if finished and not config.replace_results:
        print(finished)
        return
    cli.choose_cpu_switches(config.model, config.precision)
    cli.import_tensorflow()
    from trainers import training

    results = training.train_and_evaluate(config)
    if "test_log_likelihood" not in results:
        print(f"Worker done: {results['epochs_trained']} epochs.")
        return
    print(results_table([
        ("run", config.describe()),
        *evaluation_rows(results),
        ("epochs", f"{results['epochs_trained']} (best validation at epoch {results['best_epoch']})"),
        ("results", os.path.join(os.path.abspath(FLAGS.output_dir), "results.json")),
    ]), flush=True)


if __name__ == "__main__":
    cli.run(main)
