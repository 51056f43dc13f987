r"""Trains a model of the paper, evaluates it on the test set and writes results.

    python -m trainers.train --flagfile=configs/caltech_vae_vamp.cfg --output_dir=runs/caltech_vae_vamp

Flags after ``--flagfile`` override the config's. Writes into ``OUTPUT_DIR``:
``config.json`` (the flags the run started with), ``checkpoints/state`` (the
full training state after every epoch), ``checkpoints/best`` (the best
validation weights), ``tensorboard/``, and after training ``results.json``
(test log-likelihood by importance sampling with ``--eval_samples`` samples,
test ELBO and its parts, history, every flag value),
``test_log_likelihoods.npy`` and ``figures/*.png``. Re-running the same
command with the same ``--output_dir`` resumes after the last completed epoch.
"""
import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from tfvamp import datasets, distribute, evaluation, export, figures, models, priors  # noqa: E402
from tfvamp.optimizers import AdamNormGrad  # noqa: E402
from tfvamp.callbacks import (  # noqa: E402
    EpochTimer, KLWarmUp, NonFiniteLossError, PaperEarlyStopping, SampleImages, StopOnNonFiniteLoss,
    TrainingCheckpoint)
from trainers import common  # noqa: E402

OPTIMIZERS = {"adam_normgrad": AdamNormGrad, "adam": keras.optimizers.Adam}

flags.DEFINE_enum("dataset", "caltech", sorted(datasets.DATASETS), "Dataset to train on.")
flags.DEFINE_enum("model", "vae", sorted(models.MODELS), "Model of the paper.")
flags.DEFINE_enum("prior", "vamp", list(priors.PRIORS), "Prior over the (top) latent.")
flags.DEFINE_integer("num_components", 500, "K: pseudo-inputs of the VampPrior / MoG components.", lower_bound=1)
flags.DEFINE_enum("pseudo_inputs_init", "random", ["random", "data"],
                  "VampPrior pseudo-inputs: N(mean, std) of the dataset (random) or K random "
                  "training images (data, the paper's 'VampPrior data').")
flags.DEFINE_integer("latent_dim", 40, "Size of each latent level.", lower_bound=1)
flags.DEFINE_integer("hidden_units", 300, "Width of the gated layers.", lower_bound=1)
flags.DEFINE_integer("epochs", 2000, "Maximum number of epochs.", lower_bound=1)
flags.DEFINE_integer("batch_size", 100, "Global training batch size (split across replicas).", lower_bound=1)
flags.DEFINE_float("learning_rate", 5e-4, "Adam learning rate.", lower_bound=0.0)
flags.DEFINE_enum("optimizer", "adam_normgrad", list(OPTIMIZERS),
                  "adam_normgrad: Adam on per-variable normalised gradients, as the authors' code; "
                  "adam: plain Adam.")
flags.DEFINE_integer("warmup_epochs", 100, "Epochs of linear KL warm-up (0: none).", lower_bound=0)
flags.DEFINE_integer("early_stopping_patience", 50, "Epochs without validation improvement before stopping.", lower_bound=0)
flags.DEFINE_integer("eval_samples", 5000, "Importance samples per test image.", lower_bound=1)
flags.DEFINE_integer("eval_batch_size", 100, "Test images evaluated at once.", lower_bound=1)
flags.DEFINE_string("data_dir", None, "Directory with the datasets (layout of ../shared/data); "
                    "default: $TFVAMP_DATA_DIR, else the embedded copy (caltech) or the download cache "
                    "($TFVAMP_CACHE_DIR, default ~/.cache/tfvamp).")
flags.DEFINE_string("output_dir", "runs/default", "Where checkpoints, TensorBoard logs, figures and "
                    "results go; a run already there is resumed.")
flags.DEFINE_integer("seed", 0, "Random seed.")
flags.DEFINE_boolean("jit_compile", True, "Compile the train step with XLA (only used with one replica).")
flags.DEFINE_enum("strategy", "auto", list(distribute.STRATEGIES), "tf.distribute strategy (see README).")
flags.DEFINE_integer("logical_cpu_devices", int(os.environ.get(distribute.LOGICAL_CPUS_ENV, 0)),
                     "Split the CPU into this many logical devices (0: don't), e.g. to try "
                     f"--strategy=mirrored without GPUs; default from ${distribute.LOGICAL_CPUS_ENV}.",
                     lower_bound=0)
flags.DEFINE_enum("verbose", "auto", ["auto", "0", "1", "2"], "Keras progress display.")

FLAGS = flags.FLAGS


def flag_values():
    return {f.name: f.value for f in FLAGS.get_flags_for_module(sys.modules[__name__])}


def prepare_output_dir(config, write):
    """Checks a run already in ``output_dir`` has the same model flags;
    writes ``config.json`` for a new run when ``write``."""
    output_dir = config["output_dir"]
    if os.path.exists(os.path.join(output_dir, "config.json")):
        common.check_same_model(common.read_config(output_dir), config, output_dir)
    elif write:
        os.makedirs(output_dir, exist_ok=True)
        common.write_json_atomic(os.path.join(output_dir, "config.json"), config)


def train_and_evaluate(config, callbacks=()):
    """Trains (resuming from ``output_dir`` if a run is there), evaluates,
    writes the results and figures; returns the results dict.

    ``callbacks`` are extra Keras callbacks for ``fit``. Raises
    ``NonFiniteLossError`` if the loss becomes NaN or infinite.
    """
    if config.get("logical_cpu_devices"):
        distribute.configure_logical_cpus(config["logical_cpu_devices"])
    strategy = distribute.make_strategy(config["strategy"])
    chief = distribute.is_chief(strategy)
    output_dir = config["output_dir"]
    # Non-chief workers of a cluster take part in every step but write to a scratch directory.
    dataset = datasets.load_dataset(config["dataset"], config["data_dir"])  # before writing anything
    write_dir = output_dir if chief else tempfile.mkdtemp(prefix="tfvamp_worker_")
    prepare_output_dir(config, write=chief)
    try:
        return _train_and_evaluate(config, dataset, callbacks, strategy, chief, write_dir)
    finally:
        if not chief:
            shutil.rmtree(write_dir, ignore_errors=True)


def _train_and_evaluate(config, dataset, callbacks, strategy, chief, write_dir):
    output_dir = config["output_dir"]
    keras.utils.set_random_seed(config["seed"])
    jit_compile = bool(config["jit_compile"]) and distribute.supports_jit(strategy)
    with strategy.scope():
        model = common.build_model_for(dataset, config)
        optimizer = OPTIMIZERS[config["optimizer"]](config["learning_rate"])
        model.compile(optimizer=optimizer, jit_compile=jit_compile)
        model.optimizer.build(model.trainable_variables)
    print(f"Strategy {type(strategy).__name__} with {strategy.num_replicas_in_sync} replica(s), "
          f"XLA {'on' if jit_compile else 'off'}; {'chief' if chief else 'worker'} writing to {write_dir}",
          flush=True)

    guard = StopOnNonFiniteLoss()
    early_stopping = PaperEarlyStopping(config["early_stopping_patience"], warmup_epochs=config["warmup_epochs"])
    checkpoint = TrainingCheckpoint(common.checkpoint_dir(write_dir), model, early_stopping, guard)
    initial_epoch = checkpoint.restore(common.checkpoint_dir(output_dir))
    if initial_epoch:
        print(f"Resuming {output_dir} after epoch {initial_epoch} "
              f"(best validation loss {early_stopping.best:.3f} at epoch {early_stopping.best_epoch})",
              flush=True)

    tensorboard_dir = os.path.join(write_dir, "tensorboard")
    start = time.perf_counter()
    if initial_epoch < config["epochs"] and not early_stopping.stopped:
        model.fit(
            dataset.pipeline("train", config["batch_size"], shuffle=True,
                             seed=config["seed"] + initial_epoch),
            validation_data=dataset.pipeline("validation", config["batch_size"]),
            initial_epoch=initial_epoch,
            shuffle=False,  # the pipeline shuffles
            epochs=config["epochs"],
            callbacks=[
                KLWarmUp(config["warmup_epochs"]), EpochTimer(), guard, early_stopping, checkpoint,
                keras.callbacks.TensorBoard(tensorboard_dir, write_graph=False),
                SampleImages(os.path.join(tensorboard_dir, "samples"), seed=config["seed"]),
                *callbacks,
            ],
            verbose=config["verbose"] if config["verbose"] == "auto" else int(config["verbose"]),
        )
    train_seconds = time.perf_counter() - start
    if guard.failure is not None:
        raise NonFiniteLossError(
            f"{guard.failure}; training stopped. The last good checkpoint (after epoch "
            f"{len(checkpoint.history)}) in {checkpoint.directory} is intact: rerunning resumes "
            "from it (consider a lower --learning_rate).")
    fingerprint = common.weights_fingerprint(model)
    print(f"Last-epoch weights fingerprint (sha256) {fingerprint}", flush=True)
    results = {"epochs_trained": len(checkpoint.history), "resumed_after_epoch": initial_epoch,
               "last_weights_sha256": fingerprint,
               "train_seconds": sum(epoch.get("epoch_seconds", 0.0) for epoch in checkpoint.history),
               "session_train_seconds": train_seconds}
    if not chief:
        return results

    checkpoint.restore_best()
    results.update(evaluate_and_write(model, dataset, config, output_dir))
    results.update(best_validation_loss=early_stopping.best, best_epoch=early_stopping.best_epoch,
                   history=checkpoint.history, flags=config,
                   export=export.export_model(model, os.path.join(output_dir, "export"), config["model"]))
    common.write_json_atomic(os.path.join(output_dir, "results.json"), results)
    return results


def evaluate_and_write(model, dataset, config, output_dir):
    """Test evaluation of ``model`` (its best weights), the per-example
    log-likelihoods and the figures; returns the test results."""
    start = time.perf_counter()
    test = evaluation.evaluate(model, dataset.test, config["eval_samples"], config["eval_batch_size"])
    eval_seconds = time.perf_counter() - start
    np.save(os.path.join(output_dir, "test_log_likelihoods.npy"), test["log_likelihood"])
    figure_paths = figures.write_figures(
        model, dataset.test, test["log_likelihood"], os.path.join(output_dir, "figures"),
        seed=config["seed"], title=f"{config['model']} + {config['prior']} prior on {config['dataset']}")
    return {
        "test_log_likelihood": test["mean_log_likelihood"],
        "test_elbo": test["mean_elbo"],
        "test_reconstruction": test["mean_reconstruction"],
        "test_kl": test["mean_kl"],
        "eval_samples": config["eval_samples"],
        "eval_seconds": eval_seconds,
        "figures": sorted(figure_paths),
    }


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # TensorFlow's per-checkpoint INFO lines
    config = flag_values()
    if config["logical_cpu_devices"]:  # before TensorFlow initialises its devices
        distribute.configure_logical_cpus(config["logical_cpu_devices"])
    try:
        results = train_and_evaluate(config)
    except (NonFiniteLossError, common.RunMismatchError, datasets.DatasetError) as error:
        sys.exit(f"Error: {error}")
    if "test_log_likelihood" not in results:
        print(f"Worker done: {results['epochs_trained']} epochs.")
        return
    print(common.results_table([
        *common.evaluation_rows(results),
        ("epochs", f"{results['epochs_trained']} (best validation at epoch {results['best_epoch']})"),
        ("results", os.path.join(FLAGS.output_dir, "results.json")),
    ]))


if __name__ == "__main__":
    app.run(main)
