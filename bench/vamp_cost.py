r"""The VampPrior's training cost per epoch against the standard prior's
(supplementary 8.4.2), on MNIST-shaped data, each pair in one run (issue 37).

    PYTHONPATH=. python bench/vamp_cost.py --bench_model=vae         # ~2 min
    PYTHONPATH=. python bench/vamp_cost.py --bench_model=hvae        # ~3 min
    PYTHONPATH=. python bench/vamp_cost.py --bench_model=convhvae --train_images=300 \
        --validation_images=60 --rounds=2

One process per model, with the switches ``trainers.train`` chooses for it
(``trainers.cli.choose_cpu_switches``): the model with the standard prior and
with the VampPrior at K = 500 and K = 1000 (the paper's MNIST and OMNIGLOT
settings), built side by side and trained in turns, ``--rounds`` turns each of
``--epochs_per_turn`` epochs, so the three share the machine's load. An epoch is
``model.fit`` as the trainer runs it (AdamNormGrad, XLA as the model's
``xla_train_step``, batch 100, one iterator over the training batches for the
whole ``fit``) over ``--train_images`` random binary 28x28 images, with a
validation set of ``--validation_images`` as one batch (as ``trainers.train``
on one device: the pseudo-inputs encoded once per pass); 2000 and 400 keep
MNIST's 50000 : 10000 proportion of training to validation. An epoch's time
runs from its start to its end, validation included; each turn's first epoch
is not counted (it starts the turn's iterator, whose first step takes 0 or
0.5 s at random on 2 cores, and in the first round it compiles). The figure is
the median of the counted epochs. Ratio = VampPrior / standard per epoch.

The FLOPs explain the ratio: a training step's matmul/convolution FLOPs
(``bench/measure.py``: 3x the forward, for forward and backward), and of them
the VampPrior's pass of its K pseudo-inputs through the encoder ``q(z|u_k)``,
3x its forward too, which every training step runs whatever the batch size.
The paper's ratios (their GPU): HVAE 1.4 (K = 500), convHVAE 1.9 / 2.1 and
PixelHVAE 1.4 / 1.7 (K = 500 / 1000); their VAE's is not given.

``--json_out=results/vamp_cost/MODEL.json`` also writes the figures, the CPU and the
load, from which ``results/make_table.py`` makes RESULTS.md's table for 8.4.2.
"""
import datetime
import json
import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from trainers import cli  # noqa: E402

flags.DEFINE_enum("bench_model", "vae", ["vae", "hvae", "convhvae", "pixelhvae"], "Model to time.")
flags.DEFINE_list("components", ["500", "1000"], "K of the VampPriors timed against the standard prior.")
flags.DEFINE_integer("train_images", 2000, "Training images per epoch (batches of 100).")
flags.DEFINE_integer("validation_images", 400, "Validation images, one batch per epoch.")
flags.DEFINE_integer("rounds", 3, "Turns of each configuration.")
flags.DEFINE_integer("epochs_per_turn", 3, "Epochs of a turn (its first is not counted).")
flags.DEFINE_string("json_out", None, "Also write the figures to this JSON file.")

FLAGS = flags.FLAGS
BATCH = 100
# Supplementary 8.4.2: VampPrior / standard wall-clock time, {model: {K: ratio}}.
PAPER = {"hvae": {500: 1.4}, "convhvae": {500: 1.9, 1000: 2.1}, "pixelhvae": {500: 1.4, 1000: 1.7}}


def main(argv):
    del argv
    cli.choose_cpu_switches(FLAGS.bench_model, "float32")
    tf = cli.import_tensorflow()
    import numpy as np

    from tfvamp import models
    from tfvamp.optimizers import AdamNormGrad

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from measure import EpochTimer, _graph_flops, step_flops

    rng = np.random.default_rng(0)
    images = (rng.random((FLAGS.train_images + FLAGS.validation_images, 28, 28, 1)) < 0.13)
    images = images.astype(np.float32)
    train, validation = images[:FLAGS.train_images], images[FLAGS.train_images:]
    pipeline = (tf.data.Dataset.from_tensor_slices(train).shuffle(len(train), seed=0)
                .batch(BATCH, drop_remainder=True).repeat().prefetch(tf.data.AUTOTUNE))
    steps_per_epoch = FLAGS.train_images // BATCH
    validation = tf.data.Dataset.from_tensors(validation)

    configs = {"standard": ("standard", 1)}
    configs.update({f"vamp K={k}": ("vamp", int(k)) for k in FLAGS.components})
    built = {}
    for name, (prior, k) in configs.items():
        model = models.build_model(FLAGS.bench_model, input_shape=(28, 28, 1), likelihood="bernoulli",
                                   prior=prior, num_components=k, seed=0)
        model.compile(optimizer=AdamNormGrad(5e-4), jit_compile=model.xla_train_step)
        built[name] = model

    start_load = os.getloadavg()[0]
    print(f"{FLAGS.bench_model} on {cli.describe_cpu()}, {os.cpu_count()} cores; "
          f"load average {start_load:.1f} at the start", flush=True)
    seconds = {name: [] for name in built}
    for turn in range(FLAGS.rounds):
        for name, model in built.items():
            timer = EpochTimer()
            model.fit(pipeline, steps_per_epoch=steps_per_epoch, validation_data=validation,
                      epochs=FLAGS.epochs_per_turn, callbacks=[timer], verbose=0)
            seconds[name] += timer.seconds[1:]
        print(f"round {turn + 1}: " + ", ".join(
            f"{n} {' '.join(f'{t:.2f}' for t in times[-(FLAGS.epochs_per_turn - 1):])} s"
            for n, times in seconds.items()), flush=True)
    load = os.getloadavg()[0]

    rows, figures = [], []
    standard = np.median(seconds["standard"])
    standard_flops = step_flops(built["standard"])
    for name, model in built.items():
        epoch_seconds = np.median(seconds[name])
        flops = step_flops(model)
        prior_flops, k = 0, None
        if name != "standard":  # the K pseudo-inputs through the encoder, forward and backward
            prior_pass = tf.function(lambda m=model: m.prior.encode_pseudo_inputs())
            prior_flops = 3 * _graph_flops(prior_pass.get_concrete_function().graph)
            k = configs[name][1]
        paper = PAPER.get(FLAGS.bench_model, {}).get(k)
        figures.append({"prior": name, "num_components": k, "epoch_seconds": float(epoch_seconds),
                        "epoch_seconds_p10_p90": [float(np.percentile(seconds[name], p)) for p in (10, 90)],
                        "time_ratio": float(epoch_seconds / standard), "paper_ratio": paper,
                        "gflop_per_step": flops / 1e9, "pseudo_input_gflop_per_step": prior_flops / 1e9,
                        "flop_ratio": flops / standard_flops})
        rows.append(f"| {FLAGS.bench_model} | {name} | {epoch_seconds:.2f} | "
                    f"{np.percentile(seconds[name], 10):.2f}-{np.percentile(seconds[name], 90):.2f} | "
                    f"{epoch_seconds / standard:.2f} | {'-' if paper is None else f'{paper:.1f}'} | "
                    f"{flops / 1e9:.3f} | {prior_flops / 1e9:.3f} | {flops / standard_flops:.2f} |")
    print(f"\n{FLAGS.train_images} training images + {FLAGS.validation_images} validation per epoch, "
          f"median of {len(seconds['standard'])} epochs; load average {load:.1f} at the end\n")
    print("| model | prior | s/epoch | p10-p90 s | time ratio | paper | GFLOP/step | "
          "of it pseudo-inputs | FLOP ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if FLAGS.json_out:
        os.makedirs(os.path.dirname(os.path.abspath(FLAGS.json_out)), exist_ok=True)
        with open(FLAGS.json_out, "w") as f:
            json.dump({"model": FLAGS.bench_model, "date": datetime.date.today().isoformat(),
                       "cpu": cli.describe_cpu(), "cores": os.cpu_count(),
                       "load_average": [round(start_load, 1), round(load, 1)],
                       "train_images": FLAGS.train_images, "validation_images": FLAGS.validation_images,
                       "epochs_counted": len(seconds["standard"]), "rows": figures}, f, indent=1)


if __name__ == "__main__":
    app.run(main)
