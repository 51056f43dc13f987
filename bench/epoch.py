r"""Epoch time of the whole trainer against bare ``fit`` steps (issue 11).

    PYTHONPATH=. python bench/epoch.py                     # vae, hvae x standard, vamp; ~4 min
    PYTHONPATH=. python bench/epoch.py --bench_models=vae --bench_epochs=6 --rounds=1

For each configuration, on Caltech 101 Silhouettes with the paper's settings
(batch 100, 41 steps an epoch, K = 500), one run measures:

* **trainer**: ``trainers.training.Trainer.fit``, exactly what
  ``python -m trainers.train`` runs per epoch (train steps, validation pass,
  KL warm-up, early stopping, checkpoint writes, TensorBoard scalars, samples
  every ``--sample_every`` epochs, the one-line epoch log), timed from one
  epoch's end to the next's, after every callback;
* **bare**: ``model.fit`` on the same model and pipeline with no callbacks
  and no validation, plus one validation pass (``model.evaluate`` of the
  trainer's validation set), timed the same way;
* **parts** (``--parts``, the default): the trainer's epochs of the first
  round split into the step calls, Keras' loop around them, the validation
  pass and each callback's ``on_epoch_end``.

Medians over the epochs after the first of each round (compilation); the
two take turns ``--rounds`` times so they share the machine's load. Ratio =
trainer / (bare + validation): the per-epoch cost of everything else. The
FLOP bound of an epoch is its steps' and its validation pass's matmul FLOPs
(``bench/measure.py``: 3x the forward for a step, the forward for the
validation set) at this process's matmul rate, measured after every round;
"x bound" = trainer / bound (issue 28's target: 1.5x). On a
shared 2-core VM epoch times jump between two levels about 2x apart (the
host's load), so the 10th percentiles, the least disturbed epochs, are
printed too.
"""
import io
import os
import sys
import tempfile
import time

from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from trainers import cli  # noqa: E402

flags.DEFINE_list("bench_models", ["vae", "hvae"], "Models to time.")
flags.DEFINE_list("bench_priors", ["standard", "vamp"], "Priors to time.")
flags.DEFINE_integer("bench_epochs", 10, "Epochs per round and kind (the first is not counted).")
flags.DEFINE_integer("rounds", 2, "Rounds of (trainer, bare) per configuration.")
flags.DEFINE_boolean("parts", True, "Also split the trainer's epoch (first round) into its parts.")


FLAGS = flags.FLAGS
# The authors' PyTorch code on this kind of machine (2 threads), seconds per
# Caltech epoch with validation, two rounds (issue 11).
AUTHORS = {"standard": (0.60, 0.54), "vamp": (2.04, 2.50)}


def main(argv):
    del argv
    cli.choose_cpu_switches("vae", "float32")  # as trainers.train runs the dense models
    tf = cli.import_tensorflow()
    import keras
    import numpy as np

    from tfvamp import datasets, distribute
    from trainers import train, training
    from trainers.run_config import RunConfig

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from measure import matmul_rate, step_flops

    class EpochParts(keras.callbacks.Callback):
        """Where each epoch of ``fit`` goes: the step calls, Keras' loop between
        them and around the validation pass, the pass itself, each callback's
        ``on_epoch_end`` (``time_callbacks`` wraps them) and the gap to the next
        epoch; seconds per epoch, each epoch's parts adding up to its time."""

        def __init__(self):
            super().__init__()
            self.epochs, self.now, self.mark = [], {}, None

        def _add(self, name, since):
            now = time.perf_counter()
            self.now[name] = self.now.get(name, 0.0) + now - since
            return now

        def time_callbacks(self, callbacks):
            for callback in callbacks:
                def timed(epoch, logs=None, hook=callback.on_epoch_end, name=type(callback).__name__):
                    start = time.perf_counter()
                    hook(epoch, logs)
                    self.mark = self._add(f"{name}.on_epoch_end", start)
                callback.on_epoch_end = timed
            return callbacks

        def on_epoch_begin(self, epoch, logs=None):
            previous, self.now = self.now, {}
            if self.mark is not None:  # the previous epoch's last callback to this epoch's start
                previous["between epochs"] = time.perf_counter() - self.mark
                self.epochs.append(previous)
            self.mark = time.perf_counter()

        def on_train_batch_begin(self, batch, logs=None):
            self.mark = self._add("before the first step" if batch == 0 else "between steps", self.mark)

        def on_train_batch_end(self, batch, logs=None):
            self.mark = self._add("steps", self.mark)

        def on_test_begin(self, logs=None):
            self.mark = self._add("last step to the validation pass", self.mark)

        def on_test_end(self, logs=None):
            self.mark = self._add("validation pass", self.mark)

        def on_epoch_end(self, epoch, logs=None):  # called first: the callbacks' times come after
            self.mark = self._add("validation pass to the callbacks", self.mark)

        def medians(self):
            """Each part's median over the epochs after the first (compilation), and the epochs' median."""
            epochs = self.epochs[1:]
            parts = {name: float(np.median([e.get(name, 0.0) for e in epochs])) for name in epochs[-1]}
            return parts, float(np.median([sum(e.values()) for e in epochs]))

    class EpochEnds(keras.callbacks.Callback):
        """Time stamps of the start of training and of every epoch's end."""

        def on_train_begin(self, logs=None):
            self.stamps = [time.perf_counter()]

        def on_epoch_end(self, epoch, logs=None):
            self.stamps.append(time.perf_counter())

        def seconds(self):
            return list(np.diff(self.stamps))[1:]  # the first epoch compiles

    dataset = datasets.load_dataset("caltech")
    defaults = {f.name: f.default for f in train.FLAGS.get_flags_for_module(train)}
    rows, all_rates, all_parts = [], [], []
    for model_name in FLAGS.bench_models:
        for prior in FLAGS.bench_priors:
            config = RunConfig.from_flags({**defaults, "model": model_name, "prior": prior,
                                           "verbose": "2", "sample_every": 10,
                                           "output_dir": tempfile.mkdtemp(prefix="tfvamp_bench_")})
            strategy = distribute.make_strategy(config.strategy)  # auto, as the trainer
            trainer_times, bare_times, validation_times, rates = [], [], [], []
            trainer = None
            for round_ in range(FLAGS.rounds):
                config = config.replace(epochs=(round_ + 1) * FLAGS.bench_epochs)
                trainer = training.Trainer(config, dataset, strategy, config.output_dir)
                stamps = EpochEnds()
                if FLAGS.parts and round_ == 0:
                    parts = EpochParts()
                    fit = trainer.model.fit
                    trainer.model.fit = lambda *args, callbacks, **kwargs: fit(
                        *args, callbacks=[parts, *parts.time_callbacks(callbacks)], **kwargs)
                sys.stdout, printed = io.StringIO(), sys.stdout  # the epoch lines
                try:
                    trainer.fit([stamps])
                finally:
                    sys.stdout = printed
                trainer_times += stamps.seconds()
                if FLAGS.parts and round_ == 0:
                    del trainer.model.fit
                    all_parts.append((model_name, prior, *parts.medians()))
                model = trainer.model
                stamps = EpochEnds()
                model.fit(dataset.training_epochs(100, round_, 0, FLAGS.bench_epochs),  # the trainer's pipeline
                          steps_per_epoch=dataset.steps_per_epoch(100), epochs=FLAGS.bench_epochs,
                          shuffle=False, verbose=0, callbacks=[stamps])
                bare_times += stamps.seconds()
                validation = dataset.pipeline("validation", None)
                model.evaluate(validation, verbose=0)  # compiles for this pipeline
                for _ in range(FLAGS.bench_epochs):
                    start = time.perf_counter()
                    model.evaluate(validation, verbose=0)
                    validation_times.append(time.perf_counter() - start)
                rates.append(matmul_rate())
            steps = dataset.steps_per_epoch(100)
            bound = (steps * step_flops(model, 100) + step_flops(model, len(dataset.validation)) / 3) \
                / np.median(rates)
            trainer_s, trainer_p10 = np.median(trainer_times), np.percentile(trainer_times, 10)
            bare_s, bare_p10 = np.median(bare_times), np.percentile(bare_times, 10)
            validation_s, validation_p10 = np.median(validation_times), np.percentile(validation_times, 10)
            authors = min(AUTHORS[prior])
            all_rates += rates
            rows.append((model_name, prior, f"{trainer_s:.3f} ({trainer_p10:.3f})",
                         f"{bare_s:.3f} ({bare_p10:.3f})", f"{validation_s:.3f} ({validation_p10:.3f})",
                         f"{trainer_s / (bare_s + validation_s):.2f} "
                         f"({trainer_p10 / (bare_p10 + validation_p10):.2f})",
                         f"{authors / trainer_s:.1f}x ({authors / trainer_p10:.1f}x)"
                         if model_name == "vae" else "-",
                         f"{bound:.3f}", f"{trainer_s / bound:.2f} ({trainer_p10 / bound:.2f})"))
            print(f"done {model_name} {prior}: trainer {np.round(trainer_times, 3)} "
                  f"bare {np.round(bare_times, 3)}", file=sys.stderr, flush=True)
    load = os.getloadavg()
    print(f"Caltech, batch 100, 41 steps/epoch, K=500; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; "
          f"TensorFlow {tf.__version__}")
    print("Median (10th percentile) over epochs; ratio = trainer / (bare + validation); "
          "speed-up against the authors' best epoch time measured here.")
    print(f"{cli.describe_cpu()}; matmul rate {np.median(all_rates) / 1e9:.0f} GFLOP/s "
          f"(median of the rounds, {np.min(all_rates) / 1e9:.0f}-{np.max(all_rates) / 1e9:.0f})")
    print("| model | prior | trainer s/epoch | bare fit s/epoch | validation pass s | ratio | vs authors "
          "| FLOP bound s | x bound |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    for model_name, prior, parts, epoch in all_parts:
        print(f"\n{model_name} + {prior}: the trainer's epoch in parts (medians over the first round's "
              f"epochs after its first: epoch {epoch:.3f} s, the parts' medians add up to "
              f"{sum(parts.values()):.3f} s)")
        print("| part | s/epoch | share |\n|---|---|---|")
        for name, seconds in sorted(parts.items(), key=lambda item: -item[1]):
            print(f"| {name} | {seconds:.4f} | {seconds / epoch:.0%} |")


if __name__ == "__main__":
    cli.run(main)
