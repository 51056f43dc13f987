"""The test evaluation of a run that both command lines run,
``trainers.train`` (after training) and ``trainers.evaluate`` (on its own):
sharded over the run's ``tf.distribute`` strategy, resumable after a crash,
and reported with its Monte Carlo error.

Every finished step goes to a partial file (``.npz``, written atomically)
with the settings that produced it: S, the seed, the chunk size, the
checkpoint (best epoch and a SHA-256 of the weights) and the model. The same
command, re-run after a crash, continues after the last finished step; with
other settings the partial file is not used (a line says why) and is replaced
after the first step. Since each image's estimate depends only on its index
and the settings (``tfvamp.evaluation``), a resumed evaluation gives the same
values as an uninterrupted one. Ctrl-C or SIGTERM stops it between two steps
(a few seconds each), keeping the finished images in the partial file.
"""
import json
import os
import signal

import numpy as np

from trainers import cli
from trainers.atomic_files import write_npz_atomic
from trainers.reports import weights_fingerprint


def evaluation_settings(model, config, best_epoch, num_samples, seed, num_images):
    """What an evaluation's per-image values depend on, as a JSON-able dict."""
    return {
        "eval_samples": int(num_samples),
        "eval_seed": int(seed),
        "eval_chunk_size": int(model.rows_per_chunk),
        "best_epoch": int(best_epoch),
        "weights_sha256": weights_fingerprint(model),
        "model": config.model_settings(),
        "test_images": int(num_images),
    }


def read_partial(path, settings, say=print):
    """The per-image arrays saved in the partial file ``path`` if it was
    written with ``settings``; else ``None`` (with a line saying why)."""
    if not os.path.exists(path):
        return None
    try:
        with np.load(path) as saved:
            saved_settings = json.loads(str(saved["settings"]))
            arrays = {name: saved[name] for name in saved.files if name != "settings"}
    except (OSError, ValueError, KeyError) as error:
        say(f"Ignoring the unreadable partial evaluation {path} ({error}); starting over.")
        return None
    if saved_settings != settings:
        changed = ", ".join(f"{k}: {saved_settings.get(k)!r} -> {v!r}" for k, v in settings.items()
                            if saved_settings.get(k) != v)
        say(f"The partial evaluation {path} has other settings ({changed}); starting over "
            "(it is replaced after the first step).")
        return None
    done = min(len(values) for values in arrays.values())
    say(f"Resuming the test evaluation after {done} of {settings['test_images']} images ({path}).")
    return arrays


def evaluate_resumably(model, images, settings, partial_path, strategy, chief, batch_size,
                       progress=None, say=print):
    """``tfvamp.evaluate`` of ``images`` with ``settings``, continued from
    ``partial_path`` if it holds results of the same settings; the chief
    writes every finished step there. Returns ``tfvamp.evaluate``'s dict.

    A first SIGINT/SIGTERM (``trainers.cli``) stops it between two steps, a
    few seconds later, with ``cli.Interrupted`` saying how many images are
    kept in ``partial_path`` and the command that goes on from there."""
    from tfvamp import evaluation

    resume = read_partial(partial_path, settings, say)
    encoded_settings = np.array(json.dumps(settings, sort_keys=True))
    kept = {"images": len(resume["log_likelihood"]) if resume else 0}

    def on_batch(per_image):
        if chief:
            write_npz_atomic(partial_path, settings=encoded_settings, **per_image)
        kept["images"] = len(per_image["log_likelihood"])

    def between_steps():
        signum = cli.pending_interrupt()
        if signum is not None:
            where = (f"{kept['images']} of {len(images)} images are kept in {partial_path}"
                     if chief else "the chief keeps the images evaluated")
            raise cli.Interrupted(signum, (
                f"Interrupted by {signal.Signals(signum).name} during the test evaluation; {where}. "
                f"To go on from there: {cli.command_line()}"))

    with cli.deferred_interrupts():
        return evaluation.evaluate(model, images, settings["eval_samples"], batch_size,
                                   chunk_size=settings["eval_chunk_size"], progress=progress,
                                   seed=settings["eval_seed"], strategy=strategy, resume=resume,
                                   on_batch=on_batch, between_steps=between_steps)


def test_results(test, settings):
    """``results.json``'s test entries from ``tfvamp.evaluate``'s dict."""
    return {
        "test_log_likelihood": test["mean_log_likelihood"],
        "test_log_likelihood_se": test["mean_log_likelihood_se"],
        "test_log_likelihood_bias": test["mean_log_likelihood_bias"],
        "test_effective_sample_size": test["mean_effective_sample_size"],
        "test_elbo": test["mean_elbo"],
        "test_reconstruction": test["mean_reconstruction"],
        "test_kl": test["mean_kl"],
        "eval_samples": settings["eval_samples"],
        "eval_seed": settings["eval_seed"],
        "eval_chunk_size": settings["eval_chunk_size"],
    }


def per_image_arrays(test):
    """The per-image arrays of ``tfvamp.evaluate``'s dict, for an ``.npz``."""
    from tfvamp.evaluation import PER_IMAGE

    return {name: test[name] for name in PER_IMAGE}
