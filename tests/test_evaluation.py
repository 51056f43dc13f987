"""The test evaluation: its Monte Carlo error, per-image seeds (the same values
on one device, on 2 logical CPUs, across batch sizes and resumes), and the
partial file that never mixes settings.

Logical CPU devices must be set up before TensorFlow initialises, so the
2-device check runs in a fresh Python process (this file run as a script).
"""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO_ROOT

TINY = dict(prior="vamp", num_components=10, hidden_units=16, latent_dim=4, seed=0)


def _tiny_model_and_images(count=20):
    """The same weights whatever ran before (Keras' initialisers draw from its global seed)."""
    import keras

    from tfvamp import datasets, models

    keras.utils.set_random_seed(0)
    caltech = datasets.load_dataset("caltech")
    model = models.build_model("vae", input_shape=caltech.input_shape, likelihood="bernoulli", **TINY)
    return model, caltech.test[:count]


def test_importance_sampling_statistics_are_the_float64_formulas_without_overflow():
    from tfvamp.objectives import importance_sampling_statistics

    rng = np.random.default_rng(0)
    log_weights = -500.0 + rng.normal(scale=2.0, size=(1000, 3))  # exp(-500) underflows float32
    estimate, error, ess = (t.numpy() for t in importance_sampling_statistics(log_weights))
    w = np.exp(log_weights - log_weights.max(0))  # float64, rescaled per image
    S = len(w)
    np.testing.assert_allclose(estimate, np.log(w.mean(0)) + log_weights.max(0), rtol=1e-6)
    np.testing.assert_allclose(error, np.sqrt(w.var(0, ddof=1) / (S * w.mean(0) ** 2)), rtol=1e-3)
    np.testing.assert_allclose(ess, w.sum(0) ** 2 / (w ** 2).sum(0), rtol=1e-3)
    equal = importance_sampling_statistics(np.zeros((50, 2), np.float32))
    np.testing.assert_allclose(equal[1].numpy(), 0.0, atol=1e-3)  # equal weights: no error
    np.testing.assert_allclose(equal[2].numpy(), 50.0, rtol=1e-5)


def test_monte_carlo_standard_error_agrees_with_the_spread_over_seeds():
    """40 evaluations of 20 images with S = 100, each with its own seed: the
    seed-to-seed standard deviation of the estimates against the standard
    error each evaluation reports. Tolerance: 15% for the per-image errors
    (pooled over 20 images x 40 seeds); 0.75-1.35 for the test-set mean's: the
    standard deviation of 40 draws is itself uncertain by ~11% for Gaussian
    draws and more for these heavy-tailed ones (this model's ratio: 1.23 over
    40 seeds, 1.10 over 100, 1.07 over 200; another initialisation gave 1.35)."""
    import tensorflow as tf

    from tfvamp import evaluation

    model, images = _tiny_model_and_images()
    x, indices = tf.constant(images), tf.range(len(images))
    run = tf.function(lambda seed: evaluation.evaluate_images(
        model, x, indices, model.prior_distribution(), 100, 1000, seed))
    values = np.stack([run(tf.constant([0, s], tf.int32)).numpy() for s in range(40)])
    estimates, errors = values[..., 0], values[..., 1]  # [seeds, images]
    pooled = np.sqrt(np.mean(estimates.var(axis=0, ddof=1)) / np.mean(errors ** 2))
    assert 0.85 < pooled < 1.15, pooled
    mean_errors = [evaluation.summarise(dict(zip(evaluation.PER_IMAGE, v.T)))["mean_log_likelihood_se"]
                   for v in values]
    ratio = estimates.mean(axis=1).std(ddof=1) / np.mean(mean_errors)
    assert 0.75 < ratio < 1.35, ratio
    # evaluate() with seed s is this computation.
    results = evaluation.evaluate(model, images, 100, batch_size=7, seed=3)
    np.testing.assert_allclose(results["log_likelihood"], estimates[3], rtol=1e-6)
    assert results["mean_log_likelihood_se"] == pytest.approx(mean_errors[3], rel=1e-5)


def test_estimates_do_not_depend_on_batch_size_or_resume_and_settings_never_mix(tmp_path):
    from tfvamp import evaluation
    from trainers import run_evaluation

    model, images = _tiny_model_and_images(25)
    whole = evaluation.evaluate(model, images, 30, batch_size=25, seed=1)
    seen = []
    resumed = evaluation.evaluate(model, images, 30, batch_size=4, seed=1,
                                  resume={k: whole[k][:9] + 0 for k in evaluation.PER_IMAGE},
                                  on_batch=lambda done: seen.append(len(done["log_likelihood"])))
    # Continued after the 9 images given, in steps of at most batch_size images (fewer at first).
    steps = np.diff([9] + seen)
    assert seen[-1] == 25 and np.all(steps >= 1) and np.all(steps <= 4), seen
    for name in evaluation.PER_IMAGE:
        np.testing.assert_allclose(resumed[name], whole[name], rtol=1e-6)
    other_seed = evaluation.evaluate(model, images, 30, seed=2)
    assert np.all(other_seed["log_likelihood"] != whole["log_likelihood"])

    # A partial file of other settings (here: the seed) is not used.
    lines = []
    partial = str(tmp_path / "partial.npz")
    settings = {"eval_samples": 30, "eval_seed": 1, "eval_chunk_size": 1000, "test_images": 25}
    run_evaluation.evaluate_resumably(model, images[:10], {**settings, "test_images": 10}, partial,
                                      None, True, 5, say=lines.append)
    stale = dict(np.load(partial))
    stale["settings"] = np.array(json.dumps(settings, sort_keys=True))
    np.savez(partial, **stale)  # 10 images' values, saved as if with ``settings``
    for changed in ({**settings, "eval_seed": 2}, {**settings, "eval_samples": 31}):
        result = run_evaluation.evaluate_resumably(model, images, changed, partial, None, False, 25,
                                                   say=lines.append)
        assert "has other settings" in lines[-1]
        fresh = evaluation.evaluate(model, images, changed["eval_samples"], seed=changed["eval_seed"])
        np.testing.assert_allclose(result["log_likelihood"], fresh["log_likelihood"], rtol=1e-6)
    # The same settings: resumed after the 10 images, the values of an uninterrupted run.
    result = run_evaluation.evaluate_resumably(model, images, settings, partial, None, True, 25,
                                               say=lines.append)
    assert lines[-1].startswith("Resuming the test evaluation after 10 of 25 images")
    np.testing.assert_allclose(result["log_likelihood"], whole["log_likelihood"], rtol=1e-6)
    assert len(np.load(partial)["log_likelihood"]) == 25


def test_steps_split_images_into_chunks_of_samples_and_a_stop_between_them_keeps_the_finished_images():
    """With steps shorter than any image takes, every step is one chunk of one
    image's samples: the values are those of whole images, and an exception of
    ``between_steps`` (a stop request) ends the evaluation between two chunks,
    after the last ``on_batch``, from which it resumes to the same values."""
    import tensorflow as tf

    from tfvamp import evaluation

    model, images = _tiny_model_and_images(5)
    whole = evaluation.make_step(model, 50, 20)(tf.constant(images), tf.range(5), tf.constant([0, 1]))
    calls, kept = [], []

    class Stop(Exception):
        pass

    def between_steps():
        calls.append(len(kept[-1]["elbo"]) if kept else 0)
        if len(calls) == 8:
            raise Stop

    with pytest.raises(Stop):
        evaluation.evaluate(model, images, 50, chunk_size=20, seed=1, step_seconds=1e-9,
                            between_steps=between_steps, on_batch=lambda done: kept.append(done))
    # 50 samples in 3 chunks of 17 (one dropped): a step per chunk, 3 steps an image.
    assert calls == [0, 0, 0, 1, 1, 1, 2, 2]
    resumed = evaluation.evaluate(model, images, 50, chunk_size=20, seed=1, resume=kept[-1])
    for i, name in enumerate(evaluation.PER_IMAGE):
        np.testing.assert_array_equal(resumed[name], np.asarray(whole)[:, i])


def test_an_interrupt_stops_a_run_evaluation_between_steps_saying_what_is_kept(tmp_path, monkeypatch):
    from tfvamp import evaluation
    from trainers import cli, run_evaluation

    model, images = _tiny_model_and_images(6)
    checks = []

    def pending():  # SIGTERM arrives during the fourth step
        checks.append(None)
        return signal.SIGTERM if len(checks) > 4 else None

    monkeypatch.setattr(cli, "pending_interrupt", pending)
    monkeypatch.setattr(sys, "argv", ["trainers/evaluate.py", "--output_dir=runs/a"])
    partial = tmp_path / "partial.npz"
    settings = {"eval_samples": 20, "eval_seed": 1, "eval_chunk_size": 1000, "test_images": 6}
    real_evaluate = evaluation.evaluate
    monkeypatch.setattr(evaluation, "evaluate", lambda *args, **kwargs: real_evaluate(
        *args, **kwargs, step_seconds=1e-9))  # a step per image
    with pytest.raises(cli.Interrupted) as interrupted:
        run_evaluation.evaluate_resumably(model, images, settings, str(partial), None, True, 6)
    assert str(interrupted.value) == (
        f"Interrupted by SIGTERM during the test evaluation; 4 of 6 images are kept in {partial}. "
        "To go on from there: python -m trainers.evaluate --output_dir=runs/a")
    assert interrupted.value.exit_code == 143
    assert len(np.load(partial)["log_likelihood"]) == 4


def per_image_on_1_and_2_logical_cpus():
    """The per-image values of 23 images (S = 40) on one device and under
    MirroredStrategy on 2 logical CPUs (batches of 10: 5 images per replica,
    the last step padded), from the same weights."""
    from tfvamp.distribute import configure_logical_cpus

    configure_logical_cpus(2)
    import tensorflow as tf

    from tfvamp import evaluation

    results = {}
    weights = None
    for name, strategy in [("one", tf.distribute.OneDeviceStrategy("/cpu:0")),
                           ("two", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))]:
        with strategy.scope():
            model, images = _tiny_model_and_images(23)
        if weights is None:
            weights = [v.numpy() for v in model.variables]
        for variable, value in zip(model.variables, weights):
            variable.assign(value)
        test = evaluation.evaluate(model, images, 40, batch_size=10, seed=5, strategy=strategy)
        results[name] = {"replicas": strategy.num_replicas_in_sync,
                         **{k: test[k].tolist() for k in evaluation.PER_IMAGE}}
    return results


def test_one_device_and_two_logical_cpus_give_equal_per_image_estimates():
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    completed = subprocess.run([sys.executable, __file__, "replicas"], cwd=REPO_ROOT, env=env,
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(completed.stdout.strip().splitlines()[-1])
    one, two = results["one"], results["two"]
    assert (one["replicas"], two["replicas"]) == (1, 2)
    assert len(two["log_likelihood"]) == 23
    for name in ("log_likelihood", "log_likelihood_se", "effective_sample_size", "elbo"):
        np.testing.assert_allclose(two[name], one[name], rtol=1e-5, err_msg=name)
    assert len(set(one["log_likelihood"])) == 23  # 23 different values, not one repeated


if __name__ == "__main__":
    if sys.argv[1:] == ["replicas"]:
        sys.path.insert(0, REPO_ROOT)
        print(json.dumps(per_image_on_1_and_2_logical_cpus()))


def test_progress_line_estimates_the_time_left_of_a_resumed_evaluation(monkeypatch):
    import io

    from trainers.progress import ProgressLine

    clock = iter([0.0, 100.0, 100.0, 110.0])  # construction, then the calls below
    monkeypatch.setattr("time.perf_counter", lambda: next(clock))
    stream = io.StringIO()
    progress = ProgressLine("Test", "images", stream=stream)
    progress(800, 1000)  # resumed after 800 images, 100 s after the line was made (loading)
    progress(900, 1000)  # 100 images in 10 s: 100 left, about 10 s
    lines = stream.getvalue().splitlines()
    assert lines == ["Test: 800/1000 images, 0 s", "Test: 900/1000 images, 10 s, about 10 s left"]
