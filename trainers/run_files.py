"""The files of a run directory beyond ``config.json`` (``RunConfig``): where
its checkpoints are, and what its ``results.json`` says about a finished run."""
import json
import os


def checkpoint_dir(output_dir):
    """The checkpoints of the run in ``output_dir`` (``TrainingCheckpoint``'s directory)."""
    return os.path.join(output_dir, "checkpoints")


def finished_run_message(config):
    """If ``config.output_dir`` holds a finished run (its ``results.json``),
    what to tell the user; ``None`` otherwise. Raises ``RunMismatchError`` if
    the run there has other model flags (``RunConfig.check_resumes``)."""
    output_dir = config.output_dir
    path = os.path.join(output_dir, "results.json")
    if not os.path.exists(path):
        return None
    config.check_resumes(type(config).read(output_dir))
    with open(path) as f:
        results = json.load(f)
    return (f"{os.path.abspath(output_dir)} holds a finished run: test log-likelihood "
            f"{results['test_log_likelihood']:.2f} nats (S={results['eval_samples']}), "
            f"{results['epochs_trained']} epochs, best at epoch {results['best_epoch']}. "
            "Nothing was changed.\n"
            f"To re-evaluate it (written to a file of its own): python -m trainers.evaluate "
            f"--output_dir={output_dir} --eval_samples=N\n"
            "To train it on and replace its results: the same command with --replace_results "
            "(the old results.json is kept).")
