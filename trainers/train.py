r"""Trains a model of the paper, evaluates it on the test set and writes results.

    python -m trainers.train --dataset=caltech --prior=vamp --output_dir=runs/caltech_vae_vamp

Writes ``OUTPUT_DIR/results.json``: the test log-likelihood (importance
sampling with ``--eval_samples`` samples), the test ELBO and its parts, the
epochs trained, the training time and every flag value.
"""
import json
import os
import sys
import time

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from tfvamp import datasets, evaluation, export, models, priors  # noqa: E402
from tfvamp.callbacks import EarlyStoppingWithBestWeights, KLWarmUp  # noqa: E402

flags.DEFINE_enum("dataset", "caltech", sorted(datasets.DATASETS), "Dataset to train on.")
flags.DEFINE_enum("model", "vae", sorted(models.MODELS), "Model of the paper.")
flags.DEFINE_enum("prior", "vamp", list(priors.PRIORS), "Prior over the (top) latent.")
flags.DEFINE_integer("num_components", 500, "K: pseudo-inputs of the VampPrior / MoG components.", lower_bound=1)
flags.DEFINE_enum("pseudo_inputs_init", "random", ["random", "data"],
                  "VampPrior pseudo-inputs: N(mean, std) of the dataset (random) or K training images (data).")
flags.DEFINE_integer("latent_dim", 40, "Size of each latent level.", lower_bound=1)
flags.DEFINE_integer("hidden_units", 300, "Width of the gated layers.", lower_bound=1)
flags.DEFINE_integer("epochs", 2000, "Maximum number of epochs.", lower_bound=1)
flags.DEFINE_integer("batch_size", 100, "Training batch size.", lower_bound=1)
flags.DEFINE_float("learning_rate", 5e-4, "Adam learning rate.", lower_bound=0.0)
flags.DEFINE_integer("warmup_epochs", 100, "Epochs of linear KL warm-up (0: none).", lower_bound=0)
flags.DEFINE_integer("early_stopping_patience", 50, "Epochs without validation improvement before stopping.", lower_bound=0)
flags.DEFINE_integer("eval_samples", 5000, "Importance samples per test image.", lower_bound=1)
flags.DEFINE_integer("eval_batch_size", 100, "Test images evaluated at once.", lower_bound=1)
flags.DEFINE_string("data_dir", None, "Directory with the datasets (layout of ../shared/data); "
                    "default: $TFVAMP_DATA_DIR, else the embedded copy (caltech) or the download cache "
                    "($TFVAMP_CACHE_DIR, default ~/.cache/tfvamp).")
flags.DEFINE_string("output_dir", "runs/default", "Where results (and later checkpoints) go.")
flags.DEFINE_integer("seed", 0, "Random seed.")
flags.DEFINE_boolean("jit_compile", True, "Compile the train step with XLA.")
flags.DEFINE_enum("verbose", "auto", ["auto", "0", "1", "2"], "Keras progress display.")

FLAGS = flags.FLAGS


def flag_values():
    return {f.name: f.value for f in FLAGS.get_flags_for_module(sys.modules[__name__])}


def build_model_for(dataset, config):
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
        pseudo_inputs_init_data=dataset.train if config["pseudo_inputs_init"] == "data" else None,
        seed=config["seed"],
    )


def train_and_evaluate(config):
    """Trains, evaluates and writes ``results.json``; returns the results dict."""
    keras.utils.set_random_seed(config["seed"])
    dataset = datasets.load_dataset(config["dataset"], config["data_dir"])
    model = build_model_for(dataset, config)
    model.compile(optimizer=keras.optimizers.Adam(config["learning_rate"]),
                  jit_compile=config["jit_compile"])
    early_stopping = EarlyStoppingWithBestWeights(
        config["early_stopping_patience"], warmup_epochs=config["warmup_epochs"])
    verbose = config["verbose"] if config["verbose"] == "auto" else int(config["verbose"])

    start = time.perf_counter()
    history = model.fit(
        dataset.pipeline("train", config["batch_size"], shuffle=True, seed=config["seed"]),
        validation_data=dataset.pipeline("validation", config["batch_size"]),
        epochs=config["epochs"],
        callbacks=[KLWarmUp(config["warmup_epochs"]), early_stopping],
        shuffle=False,  # the pipeline shuffles
        verbose=verbose,
    )
    train_seconds = time.perf_counter() - start

    start = time.perf_counter()
    test = evaluation.evaluate(model, dataset.test, config["eval_samples"], config["eval_batch_size"])
    results = {
        "test_log_likelihood": test["mean_log_likelihood"],
        "test_elbo": test["mean_elbo"],
        "test_reconstruction": test["mean_reconstruction"],
        "test_kl": test["mean_kl"],
        "best_validation_loss": early_stopping.best,
        "best_epoch": early_stopping.best_epoch,
        "epochs_trained": len(history.history["loss"]),
        "eval_samples": config["eval_samples"],
        "train_seconds": train_seconds,
        "eval_seconds": time.perf_counter() - start,
        "export": export.export_model(model, os.path.join(config["output_dir"], "export"), config["model"]),
        "flags": config,
    }
    os.makedirs(config["output_dir"], exist_ok=True)
    np.save(os.path.join(config["output_dir"], "test_log_likelihoods.npy"), test["log_likelihood"])
    with open(os.path.join(config["output_dir"], "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    return results


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    results = train_and_evaluate(flag_values())
    print(
        f"test log-likelihood {results['test_log_likelihood']:.2f} nats "
        f"(IS, S={results['eval_samples']}), test ELBO {results['test_elbo']:.2f}, "
        f"{results['epochs_trained']} epochs in {results['train_seconds']:.0f} s; "
        f"results in {os.path.join(FLAGS.output_dir, 'results.json')}"
    )


if __name__ == "__main__":
    app.run(main)
