"""The training run behind the ``trainers.train`` command line, for a
``RunConfig``: training with the paper's schedule, test evaluation (the part
``trainers.run_evaluation`` shares with ``trainers.evaluate``), figures,
export and ``results.json``, with progress lines a log file can hold."""
import datetime
import os
import shutil
import signal
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from tfvamp import diagnostics, distribute, export, figures
from tfvamp.monitoring import PriorMonitor
from tfvamp.callbacks import (
    EpochLog, EpochTimer, KLWarmUp, PaperEarlyStopping, StopOnNonFiniteLoss, TensorBoardLog,
    TrainingCheckpoint)
from tfvamp.checkpoints import best_checkpoint_path, restore_best_weights
from tfvamp.errors import NonFiniteLossError
from tfvamp.optimizers import AdamNormGrad
from trainers import cli, run_evaluation
from trainers.atomic_files import keep_copy, write_file_atomic, write_json_atomic, write_npz_atomic
from trainers.errors import checkpoint_error, lost_worker_error, skipped_checkpoints_text
from trainers.progress import ProgressLine
from trainers.reports import weights_fingerprint
from trainers.run_config import RunConfig
from trainers.run_files import checkpoint_dir, finished_run_message

# Training images on which the monitor computes its statistics (tfvamp.monitoring.PriorMonitor).
MONITOR_IMAGES = 1000

OPTIMIZERS = {"adam_normgrad": AdamNormGrad, "adam": keras.optimizers.Adam}


class RunFinishedError(RuntimeError):
    """``output_dir`` holds a finished run and ``replace_results`` is not set."""


def prepare_output_dir(config, write):
    """Checks a run already in ``output_dir`` has the same model flags and is
    not finished (unless ``replace_results``); writes ``config.json`` for a
    new run when ``write``."""
    output_dir = config.output_dir
    finished = finished_run_message(config)  # checks the model flags of a finished run
    if finished and not config.replace_results:
        raise RunFinishedError(finished)
    if not finished and os.path.exists(os.path.join(output_dir, "config.json")):
        config.check_resumes(RunConfig.read(output_dir))
    elif not finished and write:
        os.makedirs(output_dir, exist_ok=True)
        write_json_atomic(os.path.join(output_dir, "config.json"), config.to_json())


def train_and_evaluate(config, callbacks=()):
    """Trains (resuming from ``output_dir`` if an unfinished run is there),
    evaluates, writes the results and figures; returns the results dict.

    ``callbacks`` are extra Keras callbacks for ``fit``. Raises
    ``NonFiniteLossError`` if the loss becomes NaN or infinite,
    ``RunFinishedError`` if ``output_dir`` holds a finished run and
    ``config.replace_results`` is not set, and ``LostWorkerError`` if a worker
    of the cluster stops answering for ``config.worker_timeout`` seconds.
    ``config`` is a ``RunConfig``.
    """
    if config.logical_cpu_devices:
        distribute.configure_logical_cpus(config.logical_cpu_devices)
    strategy = distribute.make_strategy(config.strategy, config.worker_timeout)
    chief = distribute.is_chief(strategy)
    output_dir = config.output_dir
    # Non-chief workers of a cluster take part in every step but write to a scratch directory.
    dataset = config.load_dataset()  # before writing anything
    config.likelihood_of(dataset)  # a FlagError, too
    write_dir = output_dir if chief else tempfile.mkdtemp(prefix="tfvamp_worker_")
    prepare_output_dir(config, write=chief)
    try:
        return _train_and_evaluate(config, dataset, callbacks, strategy, chief, write_dir)
    except tf.errors.OpError as error:
        task = distribute.lost_worker(error, strategy)
        if task is None:
            raise
        raise lost_worker_error(task, f"Every file in {output_dir} is whole: the run resumes after "
                                "its last completed epoch, or its test images evaluated so far.") from None
    finally:
        if not chief:
            shutil.rmtree(write_dir, ignore_errors=True)


def _say(message):
    print(message, flush=True)


def _fit_verbosity(config):
    """Keras' ``verbose`` for ``fit`` and whether to print one line per epoch."""
    verbose = config.verbose
    if verbose == "auto":
        verbose = "1" if sys.stdout.isatty() else "2"
    return (1, False) if verbose == "1" else (0, verbose == "2")


class Trainer:
    """The model of a run, compiled under ``strategy``, with its training
    state restored from ``output_dir`` (if a run is there) and the callbacks
    of the paper's schedule; ``fit()`` trains it as ``trainers.train`` does.

    Its parts are attributes: ``model``, ``guard`` (``StopOnNonFiniteLoss``),
    ``early_stopping``, ``checkpoint`` and ``initial_epoch`` (epochs already
    completed).
    """

    def __init__(self, config, dataset, strategy, write_dir):
        self.config, self.dataset, self.strategy, self.write_dir = config, dataset, strategy, write_dir
        keras.utils.set_random_seed(config.seed)
        with strategy.scope():
            self.model = config.build_model(dataset)
            jit_compile = config.jit_compile
            if jit_compile is None:
                jit_compile = self.model.xla_train_step
            self.jit_compile = bool(jit_compile) and distribute.supports_jit(strategy)
            optimizer = OPTIMIZERS[config.optimizer](config.learning_rate)
            self.model.compile(optimizer=optimizer, jit_compile=self.jit_compile)
            self.model.optimizer.build(self.model.trainable_variables)
        self.guard = StopOnNonFiniteLoss()
        self.early_stopping = PaperEarlyStopping(config.early_stopping_patience,
                                                 warmup_epochs=config.warmup_epochs)
        self.checkpoint = TrainingCheckpoint(checkpoint_dir(write_dir), self.model,
                                             self.early_stopping, self.guard)
        self.monitor = PriorMonitor(dataset.fixed_sample("train", MONITOR_IMAGES, config.seed),
                                    every=config.monitor_every,
                                    log_dir=os.path.join(write_dir, "tensorboard"),
                                    warmup_epochs=config.warmup_epochs)
        try:
            self.initial_epoch = self.checkpoint.restore(checkpoint_dir(config.output_dir))
        except Exception as error:  # noqa: BLE001 (those of a bad checkpoint get a message)
            raise checkpoint_error(error, config.output_dir) or error

    @property
    def done(self):
        return self.initial_epoch >= self.config.epochs or self.early_stopping.stopped

    def fit(self, callbacks=()):
        """Trains from ``initial_epoch`` up to ``config.epochs`` or early
        stopping; ``callbacks`` come after the trainer's own."""
        config = self.config
        # One replica: the validation set as one batch, so the prior (the VampPrior's
        # pseudo-inputs) is encoded once per pass; several: batches split across them.
        single = self.strategy.num_replicas_in_sync == 1
        fit_verbose, epoch_lines = _fit_verbosity(config)
        tensorboard = TensorBoardLog(os.path.join(self.write_dir, "tensorboard"), config.sample_every,
                                     seed=config.seed)
        with cli.deferred_interrupts():
            try:
                self.model.fit(
                    # Epoch k's batches depend on the seed and k alone: a resumed run sees the same.
                    self.dataset.training_epochs(config.batch_size, config.seed, self.initial_epoch,
                                                 config.epochs),
                    steps_per_epoch=self.dataset.steps_per_epoch(config.batch_size),
                    validation_data=self.dataset.pipeline("validation",
                                                          None if single else config.batch_size),
                    initial_epoch=self.initial_epoch,
                    epochs=config.epochs,
                    shuffle=False,  # the pipeline shuffles
                    callbacks=[
                        KLWarmUp(config.warmup_epochs), self.guard, self.early_stopping, EpochTimer(),
                        tensorboard, self.monitor, self.checkpoint,
                        *([EpochLog(self.early_stopping)] if epoch_lines else []),
                        *callbacks,
                        StopAtSafePoint(self.checkpoint, self.dataset.steps_per_epoch(config.batch_size)),
                    ],
                    verbose=fit_verbose,
                )
            except cli.Interrupted:
                tensorboard.on_train_end()  # the epochs logged so far reach their files
                self.monitor.on_train_end()
                raise


class StopAtSafePoint(keras.callbacks.Callback):
    """Ends ``fit`` with ``cli.Interrupted`` once a SIGINT/SIGTERM was recorded
    (``cli.deferred_interrupts``): after the current training step, whose
    epoch is then trained again from its start on resume, or, if the signal
    came during validation or the checkpoint, once the epoch is saved."""

    def __init__(self, checkpoint, steps_per_epoch):
        super().__init__()
        self.checkpoint, self.steps_per_epoch = checkpoint, steps_per_epoch
        self.epoch = 0

    def _stop(self, where):
        signum = cli.pending_interrupt()
        name = signal.Signals(signum).name
        saved = len(self.checkpoint.history)  # the epochs completed and saved
        go_on = (f"the checkpoint after epoch {saved} is kept. To resume after it: " if saved
                 else "no epoch was completed yet. To start again: ")
        raise cli.Interrupted(signum, f"Interrupted by {name} {where}; {go_on}{cli.command_line()}")

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        if cli.pending_interrupt() is not None:
            self._stop(f"before epoch {epoch + 1}")

    def on_train_batch_end(self, batch, logs=None):
        if cli.pending_interrupt() is not None:
            self._stop(f"in epoch {self.epoch + 1} after step {batch + 1} of {self.steps_per_epoch} "
                       f"(epoch {self.epoch + 1} will be trained again from its start)")

    def on_epoch_end(self, epoch, logs=None):
        if cli.pending_interrupt() is not None:
            self._stop(f"after epoch {epoch + 1}")


def _train_and_evaluate(config, dataset, callbacks, strategy, chief, write_dir):
    output_dir = config.output_dir
    trainer = Trainer(config, dataset, strategy, write_dir)
    model, guard, early_stopping, checkpoint = (trainer.model, trainer.guard, trainer.early_stopping,
                                                trainer.checkpoint)
    initial_epoch = trainer.initial_epoch
    if dataset.notes:  # what load_images decided from the user's data
        _say("data: " + "; ".join(dataset.notes))
    _say(f"{config.describe()}; {trainer.model.likelihood.name} likelihood; "
         f"{type(strategy).__name__.lstrip('_')} with {strategy.num_replicas_in_sync} replica(s), "
         f"XLA {'on' if trainer.jit_compile else 'off'}, {trainer.model.precision}; {'chief' if chief else 'worker'} writing to "
         f"{os.path.abspath(write_dir)}")
    if (trainer.model.precision == "bfloat16" and not tf.config.list_physical_devices("GPU")
            and cli.cpu_emulates_bfloat16()):
        _say("Warning: this CPU has no AVX-512, so TensorFlow emulates bfloat16 here: expect "
             "steps many times slower than with --precision=float32 (a convhvae step measured "
             "16x slower, bench/README.md).")
    best = f"best validation loss {early_stopping.best:.3f} at epoch {early_stopping.best_epoch}"
    if checkpoint.skipped:
        _say(f"{skipped_checkpoints_text(checkpoint.skipped)}: resuming {output_dir} after epoch "
             f"{initial_epoch}, the newest whole checkpoint ({best}); the epochs after it are "
             "trained again.")
    elif initial_epoch:
        _say(f"Resuming {output_dir} after epoch {initial_epoch} ({best})")
    start = time.perf_counter()
    if not trainer.done:
        trainer.fit(callbacks)
    train_seconds = time.perf_counter() - start
    if guard.failure is not None:
        raise NonFiniteLossError(
            f"{guard.failure}; training stopped. The last good checkpoint (after epoch "
            f"{len(checkpoint.history)}) in {checkpoint.directory} is intact: rerunning resumes "
            "from it (consider a lower --learning_rate).")
    epochs_trained = len(checkpoint.history)
    _say(early_stopping.stop_reason() or f"Reached the epoch limit (--epochs={config.epochs}) "
         f"after {epochs_trained} epochs; best validation loss {early_stopping.best:.3f} at epoch "
         f"{early_stopping.best_epoch}.")
    fingerprint = weights_fingerprint(model)
    _say(f"Last-epoch weights fingerprint (sha256) {fingerprint}")
    results = {"epochs_trained": epochs_trained, "resumed_after_epoch": initial_epoch,
               "last_weights_sha256": fingerprint,
               "train_seconds": sum(epoch.get("epoch_seconds", 0.0) for epoch in checkpoint.history),
               "session_train_seconds": train_seconds}
    _restore_best_weights(checkpoint, output_dir)
    # Every worker of a cluster evaluates its share of the test set; the chief writes.
    test = evaluate_and_write(model, dataset, config, output_dir, strategy, chief,
                              early_stopping.best_epoch)
    if not chief:
        return results
    results.update(test)
    results.update(prior_statistics(trainer, output_dir))
    _say("Exporting the best weights for TensorFlow Serving ...")
    start = time.perf_counter()
    export_path = os.path.abspath(export.export_model(model, os.path.join(output_dir, "export"), config.model))
    _say(f"Exported {export_path} ({time.perf_counter() - start:.1f} s)")
    results.update(best_validation_loss=early_stopping.best, best_epoch=early_stopping.best_epoch,
                   history=checkpoint.history, flags=config.to_json(), export=export_path)
    results_path = os.path.join(output_dir, "results.json")
    if os.path.exists(results_path):  # only with replace_results: keep the old results
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        keep_copy(results_path, os.path.join(output_dir, f"results.replaced-{stamp}.json"))
    write_json_atomic(results_path, results)  # replaces the old one only once complete
    if os.path.exists(partial_evaluation_path(output_dir)):  # results.json holds it all now
        os.remove(partial_evaluation_path(output_dir))
    return results


def prior_statistics(trainer, output_dir):
    """The best weights' prior statistics for ``results.json`` (``tfvamp.monitoring``, on the
    monitor's fixed sample of training images): the active units and, for a mixture prior,
    the effective and unused numbers of components; with the pseudo-inputs' snapshots of this
    session, the figure of their drift."""
    monitor = trainer.monitor
    monitor.set_model(trainer.model)
    statistics = monitor.statistics()
    usage = statistics.pop("usage", None)
    results = {"monitor": {**statistics, "images": len(monitor.images)}}
    if usage is not None:
        results["monitor"]["num_components"] = len(usage)
    if monitor.snapshots:
        path = os.path.join(output_dir, "figures", "pseudo_input_drift.png")
        figures.plot_pseudo_input_drift(monitor.snapshots, path)
        results["monitor"]["drift_figure"] = os.path.abspath(path)
    return results


def _restore_best_weights(checkpoint, output_dir):
    """The best validation weights into the model: from this process's own
    checkpoints, or, for a cluster's worker whose best epoch was saved in an
    earlier session (its scratch directory is new), from ``output_dir``'s."""
    best_epoch = checkpoint.early_stopping.best_epoch
    if not best_epoch:
        return
    path = checkpoint.best_checkpoint_path()
    if not tf.io.gfile.exists(f"{path}.index"):
        path = best_checkpoint_path(checkpoint_dir(output_dir), best_epoch)
    restore_best_weights(checkpoint.model_variables, path)


def partial_evaluation_path(output_dir):
    """The test evaluation's partial file of a run (until ``results.json``)."""
    return os.path.join(output_dir, "test_evaluation.in-progress.npz")


def evaluate_and_write(model, dataset, config, output_dir, strategy=None, chief=True, best_epoch=0):
    """Test evaluation of ``model`` (its best weights, of epoch ``best_epoch``),
    split over ``strategy``'s replicas and resumable (``trainers.run_evaluation``);
    the chief writes the per-image values and the figures. Returns the test
    results."""
    start = time.perf_counter()
    settings = run_evaluation.evaluation_settings(model, config, best_epoch, config.eval_samples,
                                                  config.seed, len(dataset.test))
    progress = ProgressLine(
        f"Test log-likelihood by importance sampling (S={config.eval_samples})", "images")
    test = run_evaluation.evaluate_resumably(
        model, dataset.test, settings, partial_evaluation_path(output_dir), strategy, chief,
        config.eval_batch_size, progress=progress if chief else None, say=_say)
    eval_seconds = time.perf_counter() - start
    results = {**run_evaluation.test_results(test, settings), "eval_seconds": eval_seconds}
    if not chief:
        return results
    write_file_atomic(os.path.join(output_dir, "test_log_likelihoods.npy"),
                             lambda f: np.save(f, test["log_likelihood"]))
    write_npz_atomic(os.path.join(output_dir, "test_evaluation.npz"),
                            **run_evaluation.per_image_arrays(test))
    results["diagnostics"] = diagnostics.run_diagnostics(model, dataset.test, test["log_likelihood"],
                                                         seed=config.seed)
    _say("Writing figures ...")
    start = time.perf_counter()
    figure_paths = figures.write_figures(
        model, dataset.test, test["log_likelihood"], os.path.join(output_dir, "figures"),
        seed=config.seed, title=config.describe(separator="\n"),
        train_images=dataset.train, num_samples=config.eval_samples)
    _say(f"Figures in {os.path.abspath(os.path.join(output_dir, 'figures'))} "
         f"({time.perf_counter() - start:.1f} s)")
    return {**results, "figures": sorted(os.path.abspath(p) for p in figure_paths.values())}
