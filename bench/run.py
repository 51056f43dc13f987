r"""Speed benchmark of tfvamp's models, printed as one table (issue 7, Speed).

    PYTHONPATH=. python bench/run.py            # every model in tfvamp.models.MODELS
    PYTHONPATH=. python bench/run.py --models=vae --rounds=3 --eval_batches=2

Measures in one run, on Caltech 101 Silhouettes (28x28 binary, the embedded
copy), batch 100:

* the matmul throughput of this machine (a large ``tf.matmul``, XLA-compiled),
  measured between the rounds of training steps so it sees the same load;
* the training step time of every model with the standard, MoG (K=500) and
  VampPrior (K=500, K=1000) priors: ``model.fit`` as the trainer runs it
  (AdamNormGrad, XLA as the trainer's default ``xla_train_step``, ``tf.data`` prefetch), per-step times from a
  callback, median over all steps after the first epoch (warm-up/compilation);
  the configurations take turns round by round so they share the machine's load;
* the FLOPs of one step, counted from the matmul/convolution shapes of the
  traced negative ELBO (forward; the VampPrior's pseudo-input encoder pass is
  in it) times 3 for forward + backward, and the achieved FLOP/s;
* importance-sampled test log-likelihood (S=5000): test images per second,
  standard prior and VampPrior (K=500), with the compiled per-batch function
  of ``tfvamp.evaluation.evaluate`` (median over batches after the first);
* the peak RSS of a training run (a subprocess training the VampPrior model).
"""
import os
import resource
import subprocess
import sys
import time

# oneDNN as trainers.train runs the dense models in float32 (off); bench/switches.py compares
# the settings per model. Set TF_ENABLE_ONEDNN_OPTS=1 to time the convolutional models as trained.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfvamp import datasets, evaluation, models  # noqa: E402
from tfvamp.optimizers import AdamNormGrad  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from measure import StepTimer, step_flops  # noqa: E402

flags.DEFINE_list("models", None, "Models to time (default: every key of tfvamp.models.MODELS).")
flags.DEFINE_integer("rounds", 8, "Rounds of training epochs per configuration (the first is warm-up).")
flags.DEFINE_integer("steps_per_round", 41, "Training steps per round (41 = one Caltech epoch).")
flags.DEFINE_integer("eval_samples", 5000, "Importance samples per test image.")
flags.DEFINE_integer("eval_batches", 3, "Batches of 100 test images timed per evaluation configuration.")
flags.DEFINE_integer("matmul_size", 1024, "n of the n x n x n matmul measuring throughput.")
flags.DEFINE_integer("steps_per_execution", 1, "Keras compile(steps_per_execution=...); the trainer uses 1.")
flags.DEFINE_boolean("rss", True, "Measure the peak RSS of a training subprocess.")
flags.DEFINE_string("rss_child", None, "Internal: train this model in this process and print its peak RSS.")

FLAGS = flags.FLAGS
BATCH = 100
PRIORS = (("standard", 0), ("mog", 500), ("vamp", 500), ("vamp", 1000))


def build(model_name, prior, num_components):
    model = models.build_model(
        model_name, input_shape=(28, 28, 1), likelihood="bernoulli", prior=prior,
        num_components=max(num_components, 1), seed=0)
    model.compile(optimizer=AdamNormGrad(5e-4), jit_compile=model.xla_train_step,
                  steps_per_execution=FLAGS.steps_per_execution)
    return model


# -- timings -----------------------------------------------------------------


@tf.function(jit_compile=True)
def _matmul(a, b):
    return tf.matmul(a, b)


def matmul_seconds(n, repeats=10):
    a = tf.random.normal([n, n])
    b = tf.random.normal([n, n])
    _matmul(a, b).numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        _matmul(a, b).numpy()
        times.append(time.perf_counter() - start)
    return times


def time_training(configs, data, rounds, steps):
    """Per-step seconds of every configuration; round r of each runs before round r+1."""
    timers = {key: StepTimer() for key in configs}
    matmul_times = []
    pipeline = (tf.data.Dataset.from_tensor_slices(data).shuffle(len(data), seed=0)
                .repeat().batch(BATCH, drop_remainder=True).prefetch(tf.data.AUTOTUNE))
    for round_index in range(rounds):
        for key, model in configs.items():
            timer = timers[key]
            first = len(timer.times)
            model.fit(pipeline, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[timer])
            if round_index == 0:  # warm-up: compilation and first steps
                del timer.times[first:]
            matmul_times += matmul_seconds(FLAGS.matmul_size, repeats=2)
    return {key: np.array(t.times) for key, t in timers.items()}, np.array(matmul_times)


def time_evaluation(model, images, num_samples, num_batches):
    """Seconds per test image: median over batches of ``BATCH`` images of the
    compiled per-batch evaluation that ``tfvamp.evaluation.evaluate`` runs, after
    one warm-up (compilation) batch; the prior is encoded once per batch, as there."""
    step = evaluation.make_step(model, num_samples, model.rows_per_chunk)
    seed = tf.constant([0, 0], tf.int32)
    times = []
    for index in range(num_batches + 1):
        x = tf.constant(images[index * BATCH:(index + 1) * BATCH])
        start = time.perf_counter()
        step(x, tf.range(index * BATCH, index * BATCH + len(x)), seed).numpy()
        times.append(time.perf_counter() - start)
    return np.median(times[1:]) / BATCH, times[0]


def peak_rss_of_training(model_name, steps):
    """Peak RSS (MiB) of a fresh process training ``model_name`` with the VampPrior (K=500)."""
    command = [sys.executable, os.path.abspath(__file__), f"--rss_child={model_name}",
               f"--steps_per_round={steps}"]
    output = subprocess.run(command, capture_output=True, text=True, check=True,
                            env=dict(os.environ, PYTHONPATH=os.getcwd())).stdout
    return float(output.strip().splitlines()[-1])


def rss_child(model_name, steps):
    data = datasets.load_dataset("caltech")
    model = build(model_name, "vamp", 500)
    model.fit(data.pipeline("train", BATCH, shuffle=True, seed=0), epochs=max(1, steps // 41),
              verbose=0)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main(argv):
    del argv
    if FLAGS.rss_child:
        rss_child(FLAGS.rss_child, FLAGS.steps_per_round)
        return
    model_names = FLAGS.models or list(models.MODELS)
    keras.utils.set_random_seed(0)
    caltech = datasets.load_dataset("caltech")
    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, models {model_names}; "
          f"load average {os.getloadavg()[0]:.2f} at start")

    configs = {(m, p, k): build(m, p, k) for m in model_names for p, k in PRIORS}
    flops = {key: step_flops(model) for key, model in configs.items()}
    step_times, matmul_times = time_training(configs, caltech.train, FLAGS.rounds,
                                             FLAGS.steps_per_round)
    n = FLAGS.matmul_size
    matmul_flops = 2 * n ** 3 / np.median(matmul_times)
    spread = np.percentile(2 * n ** 3 / matmul_times, [10, 90]) / 1e9
    print(f"\nmatmul {n}x{n}x{n} (XLA): {matmul_flops / 1e9:.1f} GFLOP/s median "
          f"(10-90%: {spread[0]:.1f}-{spread[1]:.1f}) over {len(matmul_times)} runs\n")

    header = ("model", "prior", "K", "ms/step", "p10-p90 ms", "s/epoch(41)", "GFLOP/step",
              "GFLOP/s", "% matmul", "time ratio", "p10 time ratio", "FLOP ratio")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for (m, p, k), times in step_times.items():
        median = np.median(times)
        p10, p90 = np.percentile(times, [10, 90])
        base = (m, "standard", 0)
        time_ratio = median / np.median(step_times[base])
        p10_ratio = p10 / np.percentile(step_times[base], 10)
        flop_ratio = flops[(m, p, k)] / flops[base]
        achieved = flops[(m, p, k)] / median
        print(f"| {m} | {p} | {k or '-'} | {1e3 * median:.1f} | {1e3 * p10:.1f}-{1e3 * p90:.1f} | "
              f"{41 * median:.2f} | {flops[(m, p, k)] / 1e9:.3f} | {achieved / 1e9:.1f} | "
              f"{100 * achieved / matmul_flops:.0f}% | {time_ratio:.2f} | {p10_ratio:.2f} | {flop_ratio:.2f} |")

    if FLAGS.eval_batches > 0:
        print(f"\nIS evaluation, S={FLAGS.eval_samples}, batches of {BATCH} Caltech test images, "
              f"median of {FLAGS.eval_batches} (first batch, compilation included, in brackets)\n")
        print("| model | prior | K | s/image | images/s | ratio to standard |")
        print("|---|---|---|---|---|---|")
        for m in model_names:
            base = None
            for p, k in (("standard", 0), ("vamp", 500)):
                seconds, first = time_evaluation(configs[(m, p, k)], caltech.test,
                                                 FLAGS.eval_samples, FLAGS.eval_batches)
                base = base or seconds
                print(f"| {m} | {p} | {k or '-'} | {seconds:.4f} ({first:.1f} s) | "
                      f"{1 / seconds:.1f} | {seconds / base:.2f} |")

    if FLAGS.rss:
        print()
        for m in model_names:
            rss = peak_rss_of_training(m, 2 * 41)
            print(f"peak RSS, {m} + VampPrior K=500, 2 epochs of training: {rss:.0f} MiB")
    print(f"\nload average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    app.run(main)
