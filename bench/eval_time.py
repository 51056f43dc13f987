r"""What the test evaluation of a model costs: seconds per test image at S
importance samples, and the whole Caltech test set extrapolated from it.

    PYTHONPATH=. python bench/eval_time.py --model=convhvae --images=20 --samples=5000

Times ``tfvamp.evaluation.evaluate`` (what ``trainers.train`` runs after
training) on ``--images`` Caltech test images, in batches of
``--eval_batch_size``, after one warm-up batch (tracing). The weights are
untrained: the cost does not depend on them.
"""
import os
import sys
import time

from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from trainers import cli  # noqa: E402

flags.DEFINE_enum("model", "vae", cli.MODELS, "Model.")
flags.DEFINE_enum("prior", "vamp", cli.PRIORS, "Prior.")
flags.DEFINE_integer("images", 100, "Test images timed (after the warm-up batch).")
flags.DEFINE_integer("samples", 5000, "Importance samples per image.")
flags.DEFINE_integer("eval_batch_size", 100, "Images per batch, as trainers.train --eval_batch_size.")
flags.DEFINE_enum("precision", "float32", cli.PRECISIONS, "The networks' compute dtype, as trainers.train --precision.")

FLAGS = flags.FLAGS


def main(argv):
    del argv
    cli.choose_cpu_switches(FLAGS.model, FLAGS.precision, evaluation_only=True)  # as trainers.evaluate
    cli.import_tensorflow()
    from tfvamp import datasets, evaluation, models

    dataset = datasets.load_dataset("caltech")
    model = models.build_model(FLAGS.model, input_shape=dataset.input_shape, likelihood=dataset.likelihood,
                               prior=FLAGS.prior, seed=0, precision=FLAGS.precision)
    batch = min(FLAGS.eval_batch_size, FLAGS.images)
    evaluation.evaluate(model, dataset.test[:batch], FLAGS.samples, batch)  # traces
    start = time.perf_counter()
    evaluation.evaluate(model, dataset.test[batch:batch + FLAGS.images], FLAGS.samples, batch)
    per_image = (time.perf_counter() - start) / FLAGS.images
    total = per_image * len(dataset.test)
    load = os.getloadavg()
    print(f"{FLAGS.model} + {FLAGS.prior} ({FLAGS.precision}), S={FLAGS.samples}, batches of {batch}: {per_image:.3f} s per "
          f"test image; the Caltech test set ({len(dataset.test)} images): {total / 60:.1f} min "
          f"({total / 3600:.2f} h); load average {load[0]:.1f}")


if __name__ == "__main__":
    cli.run(main)
