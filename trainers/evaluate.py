r"""Re-runs the test evaluation of a run of ``trainers.train`` from its best weights.

    python -m trainers.evaluate --output_dir=runs/caltech_vae_vamp --eval_samples=5000

Rebuilds the model from ``OUTPUT_DIR/config.json``, loads the best validation
weights from ``OUTPUT_DIR/checkpoints/best``, estimates the test
log-likelihood by importance sampling, prints the results table and writes
them to a file of its own, ``OUTPUT_DIR/evaluations/<UTC time>-S<samples>.json``
(with the per-example log-likelihoods beside it as ``.npy``): the run's
``results.json`` is never touched. Works on a finished run and on an unfinished
one (with its best weights so far), though not while another program (a
training) uses the directory: ``trainers.run_lock``.
"""
import datetime
import os

from absl import app, flags

from trainers import cli, common, run_lock

flags.DEFINE_string("output_dir", None, "Output directory of a run of trainers.train.", required=True)
flags.DEFINE_integer("eval_samples", None, "Importance samples per test image (default: the run's).",
                     lower_bound=1)
flags.DEFINE_integer("eval_batch_size", None, "Test images evaluated at once (default: the run's).",
                     lower_bound=1)
flags.DEFINE_string("data_dir", None, "Dataset directory (default: the run's).")

FLAGS = flags.FLAGS


def evaluate_run(output_dir, eval_samples=None, eval_batch_size=None, data_dir=None, progress=None):
    """Test results of the best weights saved in ``output_dir``; a dict like
    ``results.json``'s test entries, plus ``best_epoch``, ``config`` and the
    per-example ``log_likelihoods``. ``progress(done, total)`` is called after
    every batch of test images."""
    from tfvamp import evaluation
    from tfvamp.callbacks import best_checkpoint_path, restore_best_weights, saved_best_epoch

    config = common.read_config(output_dir)
    best_epoch = saved_best_epoch(common.checkpoint_dir(output_dir))
    if not best_epoch:
        raise FileNotFoundError(f"{output_dir} has no saved best weights yet (no epoch completed).")
    dataset = common.load_run_dataset(config, data_dir)
    model = common.build_model_for(dataset, config)
    restore_best_weights(model.variables, best_checkpoint_path(common.checkpoint_dir(output_dir), best_epoch))
    eval_samples = eval_samples or config["eval_samples"]
    test = evaluation.evaluate(model, dataset.test, eval_samples,
                               eval_batch_size or config["eval_batch_size"], progress=progress)
    return {
        "test_log_likelihood": test["mean_log_likelihood"],
        "test_elbo": test["mean_elbo"],
        "test_reconstruction": test["mean_reconstruction"],
        "test_kl": test["mean_kl"],
        "eval_samples": eval_samples,
        "best_epoch": best_epoch,
        "config": config,
        "log_likelihoods": test["log_likelihood"],
    }


def write_evaluation(output_dir, results):
    """Writes ``results`` to ``output_dir/evaluations/<UTC time>-S<samples>.json``
    (and the per-example log-likelihoods to the same name ``.npy``), a new
    file every time; returns the JSON path."""
    import numpy as np

    directory = os.path.join(output_dir, "evaluations")
    os.makedirs(directory, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    stem = os.path.join(directory, f"{stamp}-S{results['eval_samples']}")
    np.save(f"{stem}.npy", results["log_likelihoods"])
    common.write_json_atomic(f"{stem}.json", {k: v for k, v in results.items() if k != "log_likelihoods"})
    return f"{stem}.json"


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    config = common.read_config(FLAGS.output_dir)  # before importing TensorFlow: a wrong path fails at once
    with run_lock.hold(FLAGS.output_dir, "trainers.evaluate"):
        cli.choose_onednn(config["model"], config["precision"])
        cli.import_tensorflow()
        try:
            results = evaluate_run(FLAGS.output_dir, FLAGS.eval_samples, FLAGS.eval_batch_size,
                                   FLAGS.data_dir, progress=common.ProgressLine(
                                       "Test log-likelihood by importance sampling", "images"))
        except Exception as error:  # noqa: BLE001 (those of restoring the checkpoint get a message)
            raise common.checkpoint_error(error, FLAGS.output_dir) or error
        path = write_evaluation(FLAGS.output_dir, results)
    config = results["config"]
    print(common.results_table([
        ("run", f"{common.describe_run(config)} ({os.path.abspath(FLAGS.output_dir)})"),
        ("weights", f"best validation, epoch {results['best_epoch']}"),
        *common.evaluation_rows(results),
        ("written to", os.path.abspath(path)),
    ]), flush=True)


if __name__ == "__main__":
    cli.run(main)
