"""The errors of a run the user can act on, each with a message saying how:
a flag that does not fit, a run directory holding another model's run,
truncated or corrupt checkpoint files (and the line for those passed over), and a lost
worker of a cluster."""
import json
import os

from trainers.cli import command_line
from trainers.run_files import checkpoint_dir


class FlagError(ValueError):
    """A flag that does not fit the run's dataset."""


class RunMismatchError(ValueError):
    """The flags given do not fit the run already in ``--output_dir``."""


class CheckpointError(RuntimeError):
    """The checkpoint files of a run are truncated or corrupt."""


def checkpoint_error(error, output_dir):
    """What ``error``, raised restoring a checkpoint of ``output_dir``, means
    for the user: ``RunMismatchError`` (another model's variables than its
    ``config.json`` describes) or ``CheckpointError`` (truncated or corrupt
    files: ``trainers.train`` raises it only when no kept state is whole);
    ``None`` for any other error."""
    from tfvamp.checkpoints import is_unreadable  # TensorFlow: imported once a checkpoint was read

    text = str(error).strip()
    first = text.splitlines()[0][:200] if text else type(error).__name__
    if (isinstance(error, ValueError) and "when attempting to restore variable" in text
            or isinstance(error, AssertionError) and "checkpoint" in text.lower()):
        return RunMismatchError(
            f"the checkpoints in {output_dir} do not fit the model its config.json describes "
            f"({first}): they are another model's. Use the config.json that came with them, or "
            "another --output_dir.")
    if is_unreadable(error):
        return CheckpointError(
            f"the checkpoint files in {checkpoint_dir(output_dir)} are truncated or corrupt "
            f"({first}): restore them from a copy, or start afresh with another --output_dir.")
    return None


def skipped_checkpoints_text(skipped):
    """The states ``TrainingCheckpoint.restore`` or
    ``tfvamp.checkpoints.restore_newest_best_weights`` passed over
    (``skipped``, ``(path, error)``), as the start of a line: which are
    truncated or corrupt, and the first error's first line."""
    names = ", ".join(os.path.abspath(path) for path, _ in skipped)
    error = skipped[0][1]
    first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
    return f"The latest checkpoint {names} is truncated or corrupt ({first})"


class LostWorkerError(RuntimeError):
    """A worker of the run's ``TF_CONFIG`` cluster stopped answering."""


def lost_worker_error(task, kept):
    """The ``LostWorkerError`` of losing ``task``, ``(job, index)`` as
    ``tfvamp.distribute.lost_worker`` names it (``(None, None)``: unnamed),
    saying what is ``kept`` (a sentence) and the command that goes on."""
    job, index = task
    if job is None:
        who = "a worker of the cluster"
    else:
        address = json.loads(os.environ["TF_CONFIG"])["cluster"][job][index]  # the task TensorFlow named
        who = f"{'the chief' if job == 'chief' else f'{job} {index}'} of the cluster ({address})"
    return LostWorkerError(
        f"lost {who}: it stopped answering (killed, or its machine or network lost), so this "
        f"worker stopped too. {kept} To go on, start every worker again, each with its own "
        f"TF_CONFIG: {command_line()}")
