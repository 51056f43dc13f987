r"""Re-runs the test evaluation of a run of ``trainers.train`` from its best weights.

    python -m trainers.evaluate --output_dir=runs/caltech_vae_vamp --eval_samples=5000

Rebuilds the model from ``OUTPUT_DIR/config.json``, loads the best validation
weights from ``OUTPUT_DIR/checkpoints/best``, estimates the test
log-likelihood by importance sampling with its Monte Carlo standard error,
prints the results table and writes them to files of their own,
``OUTPUT_DIR/evaluations/<UTC time>-S<samples>.json`` with the per-image
log-likelihoods beside it as ``.npy`` and every per-image value (standard
error, effective sample size, ELBO) as ``.npz``: the run's ``results.json``
is never touched. Works on a finished run and on an unfinished one (with its
best weights so far), though not while another program (a training) uses the
directory: ``trainers.run_lock``.

``--strategy`` (and ``--logical_cpu_devices``) split the test images over
devices or, with ``TF_CONFIG``, over the workers of a cluster, as for
``trainers.train``; the values do not depend on it. Finished steps go to
``OUTPUT_DIR/evaluations/in-progress-S<samples>-seed<seed>.npz``: the same
command, re-run after a crash, continues from there. This module is the
command line; the evaluation itself, which ``trainers.train`` runs too, is
``trainers.run_evaluation``.
"""
import datetime
import os

from absl import app, flags

from trainers import cli, run_lock
from trainers.atomic_files import write_file_atomic, write_json_atomic, write_npz_atomic
from trainers.errors import FlagError, checkpoint_error, lost_worker_error, skipped_checkpoints_text
from trainers.progress import ProgressLine
from trainers.reports import evaluation_rows, results_table
from trainers.run_config import RunConfig
from trainers.run_files import checkpoint_dir

flags.DEFINE_string("output_dir", None, "Output directory of a run of trainers.train.", required=True)
flags.DEFINE_integer("eval_samples", None, "Importance samples per test image (default: the run's).",
                     lower_bound=1)
flags.DEFINE_integer("eval_batch_size", None, "Test images evaluated at once (default: the run's).",
                     lower_bound=1)
flags.DEFINE_string("data_dir", None, "Dataset directory (default: the run's).")
flags.DEFINE_integer("seed", None, "Seed of the importance samples (default: the run's).")
flags.DEFINE_enum("likelihood", None, cli.LIKELIHOODS, "Evaluate under this p(x|z), e.g. a grey run under "
                  "authors_discretized_logistic or discretized_logistic (default: the run's).")
flags.DEFINE_enum("strategy", "auto", cli.STRATEGIES, "tf.distribute strategy over which the test "
                  "images are split, as trainers.train's.")
flags.DEFINE_integer("logical_cpu_devices", int(os.environ.get(cli.LOGICAL_CPUS_ENV, 0)),
                     "Split the CPU into this many logical devices (0: don't), e.g. for "
                     "--strategy=mirrored without GPUs; default from $TFVAMP_LOGICAL_CPU_DEVICES.",
                     lower_bound=0)
flags.DEFINE_integer("worker_timeout", cli.WORKER_TIMEOUT_S, "In a TF_CONFIG cluster: seconds after "
                     "which a worker that stopped answering (killed, its machine or network lost) counts "
                     "as lost; the others then exit, naming it and the command that resumes.",
                     lower_bound=1)

FLAGS = flags.FLAGS


def evaluate_run(output_dir, eval_samples=None, eval_batch_size=None, data_dir=None, progress=None,
                 seed=None, strategy=None, say=print, likelihood=None):
    """Test results of the best weights saved in ``output_dir``; a dict like
    ``results.json``'s test entries, plus ``best_epoch``, ``config``, the
    per-image arrays ``per_image`` (``tfvamp.evaluation.PER_IMAGE``) and, on
    the chief, ``diagnostics`` (``tfvamp.diagnostics.run_diagnostics``).
    If the latest training state's files are truncated or corrupt, the best
    weights the newest whole state records are evaluated, with a line
    (``say``) saying so.

    ``strategy`` (default: the current one) splits the images over its
    replicas; the chief of a cluster writes the partial file. ``progress(done,
    total)`` is called before the first step and whenever test images are finished.
    ``likelihood`` (a name of ``cli.LIKELIHOODS``; default None: the run's)
    evaluates the run's weights under another likelihood of as many
    parameters, e.g. a grey run under the authors' discretised logistic."""
    import tensorflow as tf

    from tfvamp import diagnostics, distribute
    from tfvamp.checkpoints import restore_newest_best_weights
    from trainers import run_evaluation

    strategy = strategy or tf.distribute.get_strategy()
    config = RunConfig.read(output_dir)
    if likelihood is not None:
        config = config.replace(likelihood=likelihood)
    dataset = config.load_dataset(data_dir)
    with strategy.scope():
        model = config.build_model(dataset)
    best_epoch, skipped = restore_newest_best_weights(model.variables, checkpoint_dir(output_dir))
    if not best_epoch:
        raise FileNotFoundError(f"{output_dir} has no saved best weights yet (no epoch completed).")
    if skipped:
        say(f"{skipped_checkpoints_text(skipped)}: evaluating the best weights the newest whole "
            f"one records, those of epoch {best_epoch}.")
    eval_samples = eval_samples or config.eval_samples
    seed = config.seed if seed is None else seed
    settings = run_evaluation.evaluation_settings(model, config, best_epoch, eval_samples, seed,
                                                  len(dataset.test))
    directory = os.path.join(output_dir, "evaluations")
    chief = distribute.is_chief(strategy)
    if chief:
        os.makedirs(directory, exist_ok=True)
    partial = os.path.join(directory, f"in-progress-S{eval_samples}-seed{seed}.npz")
    test = run_evaluation.evaluate_resumably(
        model, dataset.test, settings, partial, strategy, chief,
        eval_batch_size or config.eval_batch_size, progress=progress, say=say)
    return {
        **run_evaluation.test_results(test, settings),
        "best_epoch": best_epoch,
        "config": config.to_json(),
        "per_image": run_evaluation.per_image_arrays(test),
        **({"diagnostics": diagnostics.run_diagnostics(model, dataset.test, test["log_likelihood"], seed=seed)}
           if chief else {}),
        "partial_path": partial,
    }


def write_evaluation(output_dir, results):
    """Writes ``results`` to ``output_dir/evaluations/<UTC time>-S<samples>.json``,
    the per-image log-likelihoods to the same name ``.npy`` and every per-image
    value to ``.npz``, new files every time; then removes the partial file.
    Returns the JSON path."""
    import numpy as np

    directory = os.path.join(output_dir, "evaluations")
    os.makedirs(directory, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    stem = os.path.join(directory, f"{stamp}-S{results['eval_samples']}")
    per_image = results["per_image"]
    write_file_atomic(f"{stem}.npy", lambda f: np.save(f, per_image["log_likelihood"]))
    write_npz_atomic(f"{stem}.npz", **per_image)
    write_json_atomic(f"{stem}.json", {k: v for k, v in results.items()
                                              if k not in ("per_image", "partial_path")})
    if os.path.exists(results["partial_path"]):
        os.remove(results["partial_path"])
    return f"{stem}.json"


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    config = RunConfig.read(FLAGS.output_dir)  # before importing TensorFlow: a wrong path fails at once
    if cli.in_cluster(FLAGS.strategy):  # a lost worker is this program's one line
        cli.hold_back_native_lines(cli.LOST_WORKER_NATIVE_LINES)
    if cli.writes_output_dir(FLAGS.strategy):  # a cluster's other workers only compute
        with run_lock.hold(FLAGS.output_dir, "trainers.evaluate"):
            evaluate_and_report(config)
    else:
        evaluate_and_report(config)


def evaluate_and_report(config):
    """Evaluates the run in ``--output_dir`` under ``--strategy``; the chief
    writes and prints the results."""
    cli.choose_cpu_switches(config.model, config.precision, evaluation_only=True)
    cli.import_tensorflow()
    from tfvamp import distribute

    if FLAGS.logical_cpu_devices:
        distribute.configure_logical_cpus(FLAGS.logical_cpu_devices)
    try:
        strategy = distribute.make_strategy(FLAGS.strategy, FLAGS.worker_timeout)
    except ValueError as error:  # --strategy=multi_worker without TF_CONFIG
        raise FlagError(str(error)) from None
    chief = distribute.is_chief(strategy)
    progress = ProgressLine("Test log-likelihood by importance sampling", "images")
    print(f"Evaluating on {type(strategy).__name__.lstrip('_')} with "
          f"{strategy.num_replicas_in_sync} replica(s); {'chief' if chief else 'worker'}", flush=True)
    try:
        results = evaluate_run(FLAGS.output_dir, FLAGS.eval_samples, FLAGS.eval_batch_size, FLAGS.data_dir,
                               progress=progress if chief else None, seed=FLAGS.seed, strategy=strategy,
                               likelihood=FLAGS.likelihood)
    except Exception as error:  # noqa: BLE001 (those of restoring the checkpoint get a message)
        task = distribute.lost_worker(error, strategy)
        if task is not None:
            raise lost_worker_error(task, "The test images evaluated so far are kept: the evaluation "
                                    "resumes after them.") from None
        raise checkpoint_error(error, FLAGS.output_dir) or error
    if not chief:
        print("Worker done: the chief writes the results.")
        return
    path = write_evaluation(FLAGS.output_dir, results)
    print(results_table([
        ("run", f"{config.describe()} ({os.path.abspath(FLAGS.output_dir)})"),
        ("weights", f"best validation, epoch {results['best_epoch']}"),
        *evaluation_rows(results),
        ("written to", os.path.abspath(path)),
    ]), flush=True)


if __name__ == "__main__":
    cli.run(main)
