r"""The sharded, resumable test evaluation: seconds per test image on 1 and on 2
logical CPU devices, and what writing the partial file after every step costs.

    PYTHONPATH=. python bench/eval_scale.py --model=vae --images=40 --eval_batch_size=20
    PYTHONPATH=. python bench/eval_scale.py --model=pixelhvae --precision=bfloat16 --images=4 \
        --eval_batch_size=4 --rounds=1

In one process split into 2 logical CPU devices (``--devices``), the same
untrained model (the cost does not depend on the weights) evaluates the same
``--images`` Caltech test images with S = ``--samples``, round after round:
``tfvamp.evaluate`` under ``OneDeviceStrategy`` (cpu:0) and under
``MirroredStrategy`` over the logical devices, each after a warm-up step
(tracing), then on one device again with the partial file written after every
step as ``trainers.evaluate`` writes it (``trainers.run_evaluation``). Prints
the seconds per image of each (median over ``--rounds``), the 2-device
speed-up, the with/without-partial-file time ratio, the writes' own share of
the time, and what one write of a 10,000-image partial file (MNIST's test set)
takes. Logical devices share the process's CPU threads: on a machine whose
cores one device already keeps busy, they show what splitting costs, not a
speed-up; on GPUs (``MirroredStrategy`` over them) or a cluster's workers, each
replica brings its own hardware.
"""
import json
import os
import statistics
import sys
import tempfile
import time

from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from trainers import cli  # noqa: E402

flags.DEFINE_enum("model", "vae", cli.MODELS, "Model.")
flags.DEFINE_enum("prior", "vamp", cli.PRIORS, "Prior.")
flags.DEFINE_integer("images", 40, "Test images timed per configuration and round.")
flags.DEFINE_integer("samples", 5000, "Importance samples per image.")
flags.DEFINE_integer("eval_batch_size", 20, "Images per step (split over the replicas).")
flags.DEFINE_integer("devices", 2, "Logical CPU devices of the sharded configuration.", lower_bound=2)
flags.DEFINE_integer("rounds", 2, "Rounds of the configurations, taking turns.", lower_bound=1)
flags.DEFINE_enum("precision", "float32", cli.PRECISIONS, "The networks' compute dtype.")
flags.DEFINE_boolean("compare_batched", False, "Only compare, on one device, the per-image "
                     "evaluation (evaluation.evaluate_images) with the batched estimator of "
                     "model.log_likelihood (the serving signature's; how tfvamp.evaluate ran "
                     "before per-image seeds) on the same --eval_batch_size images, taking turns.")

FLAGS = flags.FLAGS


def main(argv):
    del argv
    cli.choose_cpu_switches(FLAGS.model, FLAGS.precision, evaluation_only=True)
    cli.import_tensorflow()
    from tfvamp.distribute import configure_logical_cpus

    configure_logical_cpus(FLAGS.devices)
    import numpy as np
    import tensorflow as tf

    from tfvamp import datasets, evaluation, models
    from trainers.atomic_files import write_npz_atomic

    dataset = datasets.load_dataset("caltech")
    devices = [f"/cpu:{i}" for i in range(FLAGS.devices)]
    strategies = {"1 device": tf.distribute.OneDeviceStrategy(devices[0]),
                  f"{FLAGS.devices} devices": tf.distribute.MirroredStrategy(devices)}
    built = {}
    for name, strategy in strategies.items():
        with strategy.scope():
            built[name] = models.build_model(FLAGS.model, input_shape=dataset.input_shape,
                                             likelihood=dataset.likelihood, prior=FLAGS.prior, seed=0,
                                             precision=FLAGS.precision)
    weights = [v.numpy() for v in built["1 device"].variables]
    for model in built.values():
        for variable, value in zip(model.variables, weights):
            variable.assign(value)
    if FLAGS.compare_batched:
        return compare_batched(built["1 device"], dataset.test[:FLAGS.eval_batch_size])
    warm_up = dataset.test[:FLAGS.eval_batch_size]
    images = dataset.test[FLAGS.eval_batch_size:FLAGS.eval_batch_size + FLAGS.images]
    directory = tempfile.mkdtemp(prefix="tfvamp_eval_scale_")
    partial = os.path.join(directory, "in-progress.npz")
    settings = np.array(json.dumps({"eval_samples": FLAGS.samples}))
    write_seconds = []

    def write_partial(per_image):
        start = time.perf_counter()
        write_npz_atomic(partial, settings=settings, **per_image)
        write_seconds.append(time.perf_counter() - start)

    configs = [(name, strategy, None) for name, strategy in strategies.items()]
    configs.append(("1 device + partial file", strategies["1 device"], write_partial))
    seconds = {name: [] for name, _, _ in configs}
    values = {}
    for name, strategy, _ in configs[:2]:  # traces
        evaluation.evaluate(built[name], warm_up, FLAGS.samples, FLAGS.eval_batch_size, strategy=strategy)
    for _ in range(FLAGS.rounds):
        for name, strategy, on_batch in configs:
            model = built[name.split(" + ")[0]]
            start = time.perf_counter()
            test = evaluation.evaluate(model, images, FLAGS.samples, FLAGS.eval_batch_size,
                                       strategy=strategy, on_batch=on_batch)
            seconds[name].append((time.perf_counter() - start) / FLAGS.images)
            values[name] = test["log_likelihood"]
    load = os.getloadavg()
    print(f"{FLAGS.model} + {FLAGS.prior} ({FLAGS.precision}), S={FLAGS.samples}, {FLAGS.images} Caltech "
          f"test images in steps of {FLAGS.eval_batch_size}, {FLAGS.rounds} round(s); "
          f"load average {load[0]:.1f}")
    for name, _, _ in configs:
        print(f"  {name:<24} {statistics.median(seconds[name]):.4f} s per image "
              f"(rounds: {', '.join(f'{s:.4f}' for s in seconds[name])})")
    one, many = (statistics.median(seconds[name]) for name in list(strategies))
    with_file = statistics.median(seconds["1 device + partial file"])
    print(f"  {FLAGS.devices} devices / 1 device: {one / many:.2f}x the speed; per-image values equal: "
          f"{np.allclose(values['1 device'], values[list(strategies)[1]], rtol=1e-5)}")
    print(f"  with / without the partial file: {with_file / one:.3f}x the time; the writes themselves: "
          f"{statistics.median(write_seconds) * 1e3:.2f} ms each, "
          f"{statistics.median(write_seconds) / (with_file * FLAGS.eval_batch_size):.1e} of a step")
    full = {name: np.zeros(10000, np.float32) for name in evaluation.PER_IMAGE}
    start = time.perf_counter()
    for _ in range(10):
        write_npz_atomic(partial, settings=settings, **full)
    print(f"  one write of a 10,000-image partial file: {(time.perf_counter() - start) * 1e2:.2f} ms")
    os.remove(partial)
    os.rmdir(directory)


def compare_batched(model, images):
    """Seconds per image of the per-image and the batched estimator, each
    traced first, ``--rounds`` turns each."""
    import tensorflow as tf

    from tfvamp import evaluation

    x, indices, seed = tf.constant(images), tf.range(len(images)), tf.constant([0, 0])
    estimators = {
        "batched (model.log_likelihood)": tf.function(
            lambda: model.log_likelihood(x, FLAGS.samples, prior=model.prior_distribution())),
        "per image (evaluate_images)": tf.function(lambda: evaluation.evaluate_images(
            model, x, indices, model.prior_distribution(), FLAGS.samples, model.rows_per_chunk, seed)),
    }
    seconds = {name: [] for name in estimators}
    for estimator in estimators.values():
        estimator()  # traces
    for _ in range(FLAGS.rounds):
        for name, estimator in estimators.items():
            start = time.perf_counter()
            estimator().numpy()
            seconds[name].append((time.perf_counter() - start) / len(images))
    print(f"{FLAGS.model} + {FLAGS.prior} ({FLAGS.precision}), S={FLAGS.samples}, {len(images)} images; "
          f"load average {os.getloadavg()[0]:.1f}")
    for name, values in seconds.items():
        print(f"  {name:<32} {', '.join(f'{v:.3f}' for v in values)} s per image")


if __name__ == "__main__":
    cli.run(main)
