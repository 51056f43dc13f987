"""tf.distribute: 2 replicas compute what 1 does; mirrored and multi-worker runs.

Logical CPU devices must be set up before TensorFlow initialises, so the
checks that need them run in a fresh Python process (this file run as a
script, or the trainer's command line).
"""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO_ROOT, run_cluster, subprocess_env

TINY = ["--dataset=caltech", "--prior=vamp", "--num_components=10", "--hidden_units=16",
        "--latent_dim=4", "--eval_samples=10", "--warmup_epochs=2", "--verbose=2"]


def one_step_on_1_and_2_replicas():
    """Two SGD steps (a batch of 10 images, split 5/5, then 7, split 4/3) of
    the same model under one device and under MirroredStrategy on 2 logical
    CPUs. Returns the losses and the weights after each run.

    The posterior noise is made a fixed function of each image (the test
    model below), so both runs see the same noise per image: with random
    noise, per-replica draws differ from a single device's by construction,
    and the comparison would not isolate the distributed averaging.
    """
    from tfvamp.distribute import configure_logical_cpus

    configure_logical_cpus(2)
    import keras
    import tensorflow as tf

    from tfvamp.models.vae import VAE
    from tfvamp.objectives import LogTerms
    from tfvamp.gaussians import diagonal_gaussian

    keras.utils.set_random_seed(0)  # the same initial weights in every process
    projection = tf.constant(np.random.default_rng(1).normal(size=(784, 4)), tf.float32)

    class ImageKeyedNoiseVAE(VAE):
        def log_terms(self, x, prior, num_samples=1, training=False):
            mean, log_variance = self.encoder(x, training=training)
            noise = tf.sin(tf.reshape(x, [-1, 784]) @ projection)  # a function of the image
            z = (mean + tf.exp(0.5 * log_variance) * noise)[None]  # [1, B, d]
            return LogTerms(self.likelihood.log_prob(self._decoder_params(z, training), x),
                            prior.log_prob(z),
                            diagonal_gaussian(mean, log_variance).log_prob(z))

    images = (np.random.default_rng(0).uniform(size=(17, 28, 28, 1)) < 0.4).astype(np.float32)
    data = tf.data.Dataset.from_tensor_slices(images).batch(10)
    results = {}
    initial = None
    for name, strategy in [("one", tf.distribute.OneDeviceStrategy("/cpu:0")),
                           ("two", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))]:
        with strategy.scope():
            model = ImageKeyedNoiseVAE((28, 28, 1), prior="vamp", num_components=5, hidden_units=16,
                                       latent_dim=4, seed=0)
            model.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=False)
        if initial is None:
            initial = [w.numpy() for w in model.trainable_weights]
        for variable, value in zip(model.trainable_weights, initial):
            variable.assign(value)
        history = model.fit(data, epochs=1, verbose=0).history
        results[name] = {
            "replicas": strategy.num_replicas_in_sync,
            "metrics": {k: v[0] for k, v in history.items()},
            "weights": [np.asarray(w.numpy()).tolist() for w in model.trainable_weights],
        }
    results["initial"] = [w.tolist() for w in initial]
    return results


def test_two_replicas_compute_the_same_loss_and_gradients_as_one():
    completed = subprocess.run([sys.executable, __file__, "replicas"], cwd=REPO_ROOT, env=subprocess_env(),
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(completed.stdout.strip().splitlines()[-1])
    one, two = results["one"], results["two"]
    assert (one["replicas"], two["replicas"]) == (1, 2)
    for name in ("loss", "reconstruction", "kl"):
        # atol: the KL is a difference of float32 log-densities of size ~1-10 per image, so the
        # replicas' other summation order moves it by ~1e-7 however small it is (0.001-0.13 here)
        np.testing.assert_allclose(two["metrics"][name], one["metrics"][name], rtol=1e-5, atol=1e-6)
    moved = 0.0
    for initial, w1, w2 in zip(results["initial"], one["weights"], two["weights"]):
        np.testing.assert_allclose(np.array(w2), np.array(w1), rtol=1e-4, atol=1e-6)
        moved = max(moved, np.abs(np.array(w1) - np.array(initial)).max())
    assert moved > 1e-3  # the steps changed the weights: equal updates are not trivially equal


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus_trains_from_the_command_line(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "trainers.train", *TINY, "--epochs=2", "--strategy=mirrored",
         "--logical_cpu_devices=2", f"--output_dir={tmp_path}"],
        cwd=REPO_ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "MirroredStrategy with 2 replica(s), XLA off" in completed.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["epochs_trained"] == 2 and np.isfinite(results["test_log_likelihood"])


@pytest.mark.slow
def test_multi_worker_runs_on_two_processes_with_identical_weights(tmp_path):
    workers = run_cluster([sys.executable, "-m", "trainers.train", *TINY, "--epochs=2",
                           "--strategy=multi_worker", f"--output_dir={tmp_path}"], timeout=900)
    outputs = [output for _, output in workers]
    for returncode, output in workers:
        assert returncode == 0, output[-3000:]
        assert "CollectiveAllReduceStrategy with 2 replica(s)" in output  # MultiWorkerMirroredStrategy
    fingerprints = [re.search(r"fingerprint \(sha256\) (\w+)", output).group(1) for output in outputs]
    assert fingerprints[0] == fingerprints[1]
    assert "chief writing to" in outputs[0] and "worker writing to" in outputs[1]
    assert "Worker done: 2 epochs" in outputs[1]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["epochs_trained"] == 2 and results["last_weights_sha256"] == fingerprints[0]
    # Only the chief wrote here: one event file per TensorBoard folder.
    for folder in ("train", "validation"):
        assert len(os.listdir(tmp_path / "tensorboard" / folder)) == 1


if __name__ == "__main__":
    if sys.argv[1:] == ["replicas"]:
        print(json.dumps(one_step_on_1_and_2_replicas()))
