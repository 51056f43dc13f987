"""Keeps a finished run's per-image test values small, for histograms and tails later.

    python results/keep_per_image.py RUN_DIR results/per_image/NAME.npz

Reads the run's ``test_evaluation.npz`` (written by ``trainers.train``'s evaluation: per test
image, the importance-sampled log-likelihood, its Monte Carlo standard error and effective
sample size, and the ELBO) and writes those four arrays, float32, compressed (about 130 kB for
10,000 images). Runs evaluated before the file existed keep only ``test_log_likelihoods.npy``:
then that array alone is kept.
"""
import os
import sys

import numpy as np

KEPT = ("log_likelihood", "log_likelihood_se", "effective_sample_size", "elbo")


def keep(run_dir, path):
    evaluation = os.path.join(run_dir, "test_evaluation.npz")
    if os.path.exists(evaluation):
        with np.load(evaluation) as values:
            arrays = {name: values[name].astype(np.float32) for name in KEPT if name in values.files}
    else:
        arrays = {"log_likelihood": np.load(os.path.join(run_dir, "test_log_likelihoods.npy")).astype(np.float32)}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    np.savez_compressed(path, **arrays)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__.split("\n\n")[1])
    keep(sys.argv[1], sys.argv[2])
