"""Reading the checkpoints ``tfvamp.callbacks.TrainingCheckpoint`` writes.

A run's checkpoint directory holds ``state/epoch-N`` (the full training
state of the last 2 epochs) and ``best/epoch-N`` (the state of the best
validation epoch N); a model's variables are read back from either::

    best_epoch = saved_best_epoch(directory)
    restore_best_weights(model.variables, best_checkpoint_path(directory, best_epoch))

or, passing over a latest state whose files are truncated or corrupt::

    best_epoch, skipped = restore_newest_best_weights(model.variables, directory)
"""
import os
import re

import tensorflow as tf


def best_checkpoint_path(directory, best_epoch):
    """The checkpoint of the best epoch ``best_epoch`` in ``directory``."""
    return os.path.join(directory, "best", f"epoch-{int(best_epoch)}")


def restore_best_weights(model_variables, path):
    """Loads the model variables (``list(model.variables)``) saved at ``path``
    by ``TrainingCheckpoint`` (a best or a state checkpoint)."""
    status = tf.train.Checkpoint(model=list(model_variables)).restore(path)
    status.assert_existing_objects_matched().expect_partial()  # the optimizer's state is not wanted


def saved_best_epoch(directory):
    """The best epoch recorded by the latest state in ``directory`` (0: none)."""
    path = tf.train.latest_checkpoint(os.path.join(directory, "state"))
    if path is None:
        return 0
    return int(tf.train.load_variable(path, "trainer/best_epoch/.ATTRIBUTES/VARIABLE_VALUE"))


def restore_newest_best_weights(model_variables, directory):
    """Loads into ``model_variables`` the best weights recorded by the newest
    state in ``directory`` whose state and best files are whole; returns
    ``(best_epoch, skipped)``, ``skipped`` the ``(path, error)`` of the newer
    states passed over for truncated, corrupt or missing files
    (``is_unreadable``), newest first. ``(0, [])`` where no epoch is saved;
    if none is whole, the newest one's error is raised."""
    skipped = []
    for path in state_checkpoints(directory):
        try:
            best_epoch = int(tf.train.load_variable(path, "trainer/best_epoch/.ATTRIBUTES/VARIABLE_VALUE"))
            restore_best_weights(model_variables, best_checkpoint_path(directory, best_epoch))
            return best_epoch, skipped
        except (IndexError, tf.errors.OpError) as error:
            if not is_unreadable(error):
                raise
            skipped.append((path, error))
    if skipped:
        raise skipped[0][1]
    return 0, []


def state_checkpoints(directory):
    """The state checkpoints (paths) ``directory/state`` records, newest
    (its ``model_checkpoint_path``) first; a ``checkpoint`` file naming only
    that one (written by hand, or by ``results/record_progress.py``) gives it alone."""
    state = tf.train.get_checkpoint_state(os.path.join(directory, "state"))
    if state is None:
        return []
    names = [os.path.basename(path) for path in
             [state.model_checkpoint_path, *reversed(state.all_model_checkpoint_paths)]]
    return [os.path.join(directory, "state", name) for name in dict.fromkeys(names)]


# The messages TensorFlow's reader gives for a checkpoint's files that are cut
# short, overwritten or missing (it raises a plain OpError for several of them).
_UNREADABLE = re.compile(r"Read less bytes|not an sstable|corrupt|checksum|truncated|"
                         r"No such file|Unable to open table file|Data loss", re.IGNORECASE)


def is_unreadable(error):
    """Whether ``error``, raised restoring a checkpoint, says its files are
    truncated, corrupt or missing (rather than of another model, or not
    readable for want of permission)."""
    if isinstance(error, (tf.errors.DataLossError, tf.errors.OutOfRangeError, tf.errors.NotFoundError)):
        return True
    if isinstance(error, (IndexError, tf.errors.OpError)):
        return not isinstance(error, tf.errors.PermissionDeniedError) and bool(
            _UNREADABLE.search(str(error)))
    return False
