"""The errors of a run the user can act on, each with a message saying how:
a flag that does not fit, a run directory holding another model's run, and
truncated or corrupt checkpoint files (and the line for those passed over)."""
import os

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
