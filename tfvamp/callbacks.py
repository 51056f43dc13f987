"""The paper's training schedule, crash-safe checkpoints and monitoring, as
Keras callbacks.

Pass them to ``fit`` in this order: ``KLWarmUp``, ``StopOnNonFiniteLoss``,
``PaperEarlyStopping``, ``EpochTimer``, ``TensorBoardLog`` (it writes what the
ones before it logged), ``TrainingCheckpoint`` (it reads the state of the
ones before it), ``EpochLog``.
"""
import json
import math
import os
import shutil
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from tfvamp.checkpoints import best_checkpoint_path, is_unreadable, state_checkpoints
from tfvamp.errors import NonFiniteLossError


def warmup_beta(epoch, warmup_epochs):
    """KL warm-up: beta = epoch / warmup_epochs for the 1-based ``epoch``, at most 1."""
    if warmup_epochs <= 0:
        return 1.0
    return min(1.0, epoch / warmup_epochs)


class KLWarmUp(keras.callbacks.Callback):
    """Sets ``model.beta`` at the start of every epoch (linear warm-up) and
    logs it as ``beta``."""

    def __init__(self, warmup_epochs):
        super().__init__()
        self.warmup_epochs = int(warmup_epochs)

    def on_epoch_begin(self, epoch, logs=None):
        self.model.beta.assign(warmup_beta(epoch + 1, self.warmup_epochs))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["beta"] = float(self.model.beta.numpy())


class EpochTimer(keras.callbacks.Callback):
    """Logs each epoch's wall time (training and validation) as ``epoch_seconds``,
    so a resumed run's history still adds up to its whole training time.
    The callbacks after it (the checkpoint write) are not counted."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self._start


class PaperEarlyStopping(keras.callbacks.Callback):
    """Early stopping on the validation loss, as the authors' code does it.

    The patience counter starts at the warm-up's last epoch, the first at full
    beta (the authors reset it while ``epoch < warmup``); training stops once
    the validation loss has not improved for more than ``patience`` epochs.
    ``improved`` says whether the epoch just ended is the new best
    (``TrainingCheckpoint`` then keeps its weights); ``best``, ``best_epoch``
    (1-based) and ``wait`` are the state a resumed run continues from.
    """

    def __init__(self, patience, warmup_epochs=0, monitor="val_loss"):
        super().__init__()
        self.patience = int(patience)
        self.warmup_epochs = int(warmup_epochs)
        self.monitor = monitor
        self.best = math.inf
        self.best_epoch = 0
        self.wait = 0
        self.improved = False
        self.last_epoch = 0  # the last epoch seen in this session

    @property
    def stopped(self):
        return self.wait > self.patience

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            raise ValueError(f"PaperEarlyStopping needs {self.monitor!r} in the logs; "
                             "pass validation_data to fit().")
        self.last_epoch = epoch + 1
        self.improved = float(value) < self.best
        if self.improved:
            self.best, self.best_epoch, self.wait = float(value), epoch + 1, 0
        else:
            self.wait = 0 if epoch + 1 < self.warmup_epochs else self.wait + 1
        if self.stopped:
            self.model.stop_training = True

    def stop_reason(self):
        """Why training stopped early, as a sentence (``None`` if it did not)."""
        if not self.stopped:
            return None
        after = f" after epoch {self.last_epoch}" if self.last_epoch else ""
        counted = (f", counted from epoch {self.warmup_epochs}, the warm-up's last"
                   if self.warmup_epochs > 1 else "")
        return (f"Stopped early{after}: the validation loss did not improve for {self.wait} epochs "
                f"(patience {self.patience}{counted}); best {self.best:.3f} at epoch {self.best_epoch}.")


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training at the first non-finite training loss (checked after
    every step) or validation value (checked after every epoch).

    ``failure`` then holds a message naming the epoch and step (1-based);
    ``TrainingCheckpoint`` does not save that epoch, so the last good
    checkpoint stays as it was. With ``raise_error=True`` (what the library's
    models' ``fit`` adds when given none) ``fit`` then ends with a
    ``NonFiniteLossError`` carrying that message.
    """

    def __init__(self, raise_error=False):
        super().__init__()
        self.failure = None
        self.epoch = 0
        self.raise_error = bool(raise_error)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        value = (logs or {}).get("loss")
        if self.failure is None and value is not None and not np.isfinite(float(value)):
            self.failure = (f"Non-finite training loss ({float(value)}) at epoch {self.epoch + 1}, "
                            f"step {batch + 1}")
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.failure is not None:
            return
        bad = {k: v for k, v in (logs or {}).items() if not np.isfinite(float(v))}
        if bad:
            self.failure = f"Non-finite values {bad} at the end of epoch {epoch + 1}"
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.raise_error and self.failure is not None:
            raise NonFiniteLossError(f"{self.failure}: training stopped")


class TrainingCheckpoint(keras.callbacks.Callback):
    """Saves the full training state after every epoch, and the best weights.

    ``directory/state/epoch-N`` holds every model variable (weights, beta, the
    sampling seed), the optimizer's variables, the completed epochs, the
    early-stopping state and the history (the last 2 kept: the older one is
    removed only once the newer one is written whole);
    ``directory/best/epoch-N`` is the state of the best validation epoch N,
    kept as hard links to its state files (a copy where links are not
    supported), so keeping the best weights writes nothing more; the best
    epochs of both kept states are kept. Its model variables are read with
    ``tfvamp.checkpoints.restore_best_weights``. The state is written by
    ``tf.train.CheckpointManager``: a checkpoint becomes visible only once
    complete, so a crash mid-write leaves the previous one intact. The best
    files appear data first, index last (each renamed into place); a crash
    between the two is repaired by ``restore``, which also falls back to the
    previous state when the latest one's files are truncated or corrupt, and
    removes the temporary files a failed write (a full disk) left behind.

    Variables are checkpointed as flat lists in the model's own order, so a
    checkpoint restores into a model built with the same flags.
    """

    def __init__(self, directory, model, early_stopping, guard=None):
        super().__init__()
        self.directory = directory
        self.early_stopping = early_stopping
        self.guard = guard
        self.history = []
        self.skipped = []
        self._epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self._best = tf.Variable(math.inf, dtype=tf.float64, trainable=False)
        self._best_epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self._wait = tf.Variable(0, dtype=tf.int64, trainable=False)
        self._history = tf.Variable("[]", dtype=tf.string, trainable=False)
        trainer = tf.train.Checkpoint(epoch=self._epoch, best=self._best, best_epoch=self._best_epoch,
                                      wait=self._wait, history=self._history)
        model_variables = list(model.variables)
        self.state = tf.train.CheckpointManager(
            tf.train.Checkpoint(model=model_variables, optimizer=list(model.optimizer.variables),
                                trainer=trainer),
            os.path.join(directory, "state"), max_to_keep=2, checkpoint_name="epoch")
        self.model_variables = model_variables

    def restore(self, directory=None):
        """Restores the newest whole state saved in ``directory`` (default:
        this callback's own), if any; returns the completed epochs.

        A newer state whose files are truncated, corrupt or missing
        (``tfvamp.checkpoints.is_unreadable``) is skipped: ``skipped`` lists
        them as ``(path, error)``, newest first. If no state is whole, the
        error of the newest is raised; a state of another model raises at
        once. Restoring from its own directory also removes what a failed
        write left there (``state/*_temp/``, ``best/*.tmp``): only one
        process writes a checkpoint directory.
        """
        directory = directory or self.directory
        own = os.path.normpath(directory) == os.path.normpath(self.directory)
        if own:
            self._remove_temporaries()
        self.skipped = []
        for path in state_checkpoints(directory):
            try:
                self.state.checkpoint.restore(path).assert_existing_objects_matched()
                break
            except (IndexError, tf.errors.OpError) as error:
                if not is_unreadable(error):
                    raise
                self.skipped.append((path, error))
        else:
            if self.skipped:
                raise self.skipped[0][1]
            return 0
        self.early_stopping.best = float(self._best.numpy())
        self.early_stopping.best_epoch = int(self._best_epoch.numpy())
        self.early_stopping.wait = int(self._wait.numpy())
        self.history = json.loads(self._history.numpy().decode())
        epoch = int(self._epoch.numpy())
        best_epoch = self.early_stopping.best_epoch
        if own and epoch == best_epoch and not tf.io.gfile.exists(self.best_checkpoint_path() + ".index"):
            # A crash came between saving the state and keeping it as the best.
            self._keep_as_best(path, best_epoch)
        return epoch

    def _remove_temporaries(self):
        for path in tf.io.gfile.glob(os.path.join(self.directory, "state", "*_temp")):
            shutil.rmtree(path, ignore_errors=True)
        for path in tf.io.gfile.glob(os.path.join(self.directory, "best", "*.tmp")):
            os.remove(path)

    def best_checkpoint_path(self):
        """The checkpoint of the best epoch the restored/saved state knows of."""
        return best_checkpoint_path(self.directory, self.early_stopping.best_epoch)

    def on_epoch_end(self, epoch, logs=None):
        if self.guard is not None and self.guard.failure is not None:
            return  # keep the last good checkpoint
        previous_best = int(self._best_epoch.numpy())  # that of the state kept beside the new one
        self.history.append({"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}})
        self._epoch.assign(epoch + 1)
        self._best.assign(self.early_stopping.best)
        self._best_epoch.assign(self.early_stopping.best_epoch)
        self._wait.assign(self.early_stopping.wait)
        self._history.assign(json.dumps(self.history))
        # The state first: best weights are only ever written for an epoch it records.
        path = self.state.save(checkpoint_number=epoch + 1)
        if self.early_stopping.improved:
            self._keep_as_best(path, epoch + 1)
        # The previous state's best stays: restore falls back to that state if this one is corrupt.
        self._remove_bests_but(previous_best, self.early_stopping.best_epoch)

    def _keep_as_best(self, state_path, epoch):
        """Makes the state checkpoint ``state_path`` the best one, as ``best/epoch-<epoch>``."""
        target = best_checkpoint_path(self.directory, epoch)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        sources = sorted(tf.io.gfile.glob(state_path + ".data-*")) + [state_path + ".index"]
        for source in sources:
            final = target + source[len(state_path):]
            if os.path.exists(final) and os.path.samefile(source, final):
                continue  # already its link (renaming a link onto itself would leave it behind)
            temporary = f"{final}.tmp"
            if os.path.exists(temporary):
                os.remove(temporary)
            try:
                os.link(source, temporary)
            except OSError:
                shutil.copyfile(source, temporary)
            os.replace(temporary, final)

    def _remove_bests_but(self, *epochs):
        """Removes the best checkpoints of every epoch but ``epochs``."""
        best = os.path.join(self.directory, "best")
        if not os.path.isdir(best):
            return
        kept = tuple(f"epoch-{int(epoch)}." for epoch in epochs if epoch)
        for name in os.listdir(best):
            if not name.startswith(kept):
                os.remove(os.path.join(best, name))


class EpochLog(keras.callbacks.Callback):
    """Prints one line per epoch, for log files: the training loss and its
    parts, beta, the validation loss, the epoch's seconds and the best
    validation epoch so far (from ``early_stopping``). Put it after the
    callbacks that add to the logs (``KLWarmUp``, ``EpochTimer``)."""

    def __init__(self, early_stopping=None, stream=None):
        super().__init__()
        self.early_stopping = early_stopping
        self.stream = stream

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        parts = [f"epoch {epoch + 1}/{self.params.get('epochs', '?')}: loss {logs.get('loss', math.nan):.3f}"]
        if "reconstruction" in logs:
            parts[0] += (f" (reconstruction {logs['reconstruction']:.3f}, KL {logs.get('kl', math.nan):.3f}, "
                         f"beta {logs.get('beta', math.nan):.2f})")
        if "val_loss" in logs:
            parts.append(f"validation {logs['val_loss']:.3f}")
        if "epoch_seconds" in logs:
            parts.append(f"{logs['epoch_seconds']:.2f} s")
        if self.early_stopping is not None and self.early_stopping.best_epoch:
            parts.append(f"best {self.early_stopping.best:.3f} at epoch {self.early_stopping.best_epoch}")
        print(", ".join(parts), file=self.stream or sys.stdout, flush=True)


class TensorBoardLog(keras.callbacks.Callback):
    """Writes every epoch's scalars to TensorBoard, and a grid of images
    generated from the prior every ``sample_every`` epochs (0: never).

    ``log_dir/train`` gets the training values (``loss``, ``reconstruction``,
    ``kl``, ``beta``, ``epoch_seconds``, ``learning_rate``),
    ``log_dir/validation`` the validation ones under the same names,
    ``log_dir/samples`` the images (tag ``samples``); the step is the 1-based
    epoch, as in ``results.json``'s history.
    """

    def __init__(self, log_dir, sample_every=10, num_images=64, seed=0):
        super().__init__()
        self.log_dir = log_dir
        self.sample_every = int(sample_every)
        self.num_images = int(num_images)
        self.seed = seed
        self._writers = {}
        self._sample = None

    def _writer(self, name):
        if name not in self._writers:
            self._writers[name] = tf.summary.create_file_writer(os.path.join(self.log_dir, name))
        return self._writers[name]

    def on_epoch_end(self, epoch, logs=None):
        step = epoch + 1
        values = {"train": {}, "validation": {}}
        for key, value in (logs or {}).items():
            split = "validation" if key.startswith("val_") else "train"
            values[split][key[4:] if split == "validation" else key] = value
        values["train"].setdefault("learning_rate", _learning_rate(self.model.optimizer))
        for split, scalars in values.items():
            with self._writer(split).as_default():
                for name, value in scalars.items():
                    tf.summary.scalar(name, value, step=step)
        if self.sample_every and step % self.sample_every == 0:
            self._write_samples(step)

    def _write_samples(self, step):
        from tfvamp.figures import image_grid  # matplotlib only when needed

        if self._sample is None:
            self._sample = tf.function(lambda seed: self.model.sample(self.num_images, seed=seed))
        samples = self._sample(tf.constant([self.seed, step], tf.int32))
        grid = image_grid(np.asarray(samples))
        with self._writer("samples").as_default():
            tf.summary.image("samples", grid[None, ..., None] if grid.ndim == 2 else grid[None], step=step)

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


def _learning_rate(optimizer):
    if optimizer is None:
        return math.nan
    return float(np.asarray(optimizer.learning_rate))
