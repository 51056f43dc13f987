r"""Which CPU switches make a training step fastest: oneDNN, XLA and bfloat16 (issue 12).

    PYTHONPATH=. python bench/switches.py                      # convhvae, pixelhvae: ~12 min
    PYTHONPATH=. python bench/switches.py --models=vae,hvae --priors=standard,vamp --steps=41

oneDNN is chosen when TensorFlow is imported (``TF_ENABLE_ONEDNN_OPTS``), so
every setting runs in its own child process; the children run one after the
other, settings taking turns round by round, so all of them see the same
machine. Each child times ``--steps`` steps of one ``model.fit`` (per-step times from a callback) on Caltech
(batch 100, AdamNormGrad, as ``trainers.train``) after a warm-up execution,
and measures, in the same process, the throughput of a float32 matmul
(1024^3) and of a float32 convolution (3x3, 64 -> 128 channels on
100 x 28 x 28, the convHVAE decoder's), each with the child's oneDNN setting.

The table gives the median step time, the FLOPs of a step (3x the forward
matmul/convolution FLOPs of the traced graph, ``bench/measure.py``), the achieved
FLOP/s as a share of the child's float32 matmul and convolution throughput, and
the speed-up over ``before``: oneDNN off, float32, XLA on (the trainer's
setting before issue 12).
"""
import json
import os
import subprocess
import sys
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from trainers import cli  # noqa: E402

flags.DEFINE_list("models", ["convhvae", "pixelhvae"], "Models to time.")
flags.DEFINE_list("priors", ["vamp"], "Priors to time.")
flags.DEFINE_integer("steps", 6, "Timed training steps per child (after one warm-up execution).")
flags.DEFINE_integer("rounds", 1, "Rounds; every setting runs once per round.")
flags.DEFINE_list("settings", None, "Settings to run (default: all of SETTINGS).")
flags.DEFINE_string("child", None, "Internal: model,prior,precision,xla to time in this process.")

FLAGS = flags.FLAGS
BATCH = 100
# name: (oneDNN on, precision, XLA-compiled train step "on" or "off")
SETTINGS = {
    "before": (False, "float32", "on"),
    "onednn": (True, "float32", "on"),
    "onednn-noxla": (True, "float32", "off"),
    "onednn-bf16": (True, "bfloat16", "on"),
    "onednn-bf16-noxla": (True, "bfloat16", "off"),
}


def child(spec):
    """Times one setting in this process; prints one JSON line."""
    model_name, prior, precision, xla = spec.split(",")
    cli.choose_cpu_switches(model_name, precision)  # XLA's flags as the trainer (oneDNN: the parent's)
    import numpy as np
    import tensorflow as tf

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from measure import StepTimer, step_flops
    from tfvamp import datasets, models
    from tfvamp.optimizers import AdamNormGrad

    data = datasets.load_dataset("caltech")
    model = models.build_model(model_name, input_shape=data.input_shape, likelihood=data.likelihood,
                               prior=prior, seed=0, precision=precision)
    model.compile(optimizer=AdamNormGrad(5e-4), jit_compile=xla == "on")
    flops = step_flops(model, BATCH)
    pipeline = data.pipeline("train", BATCH, shuffle=True, seed=0).repeat()
    model.fit(pipeline, steps_per_epoch=2, epochs=1, verbose=0, shuffle=False)  # compiles
    timer = StepTimer()
    model.fit(pipeline, steps_per_epoch=FLAGS.steps, epochs=1, verbose=0, shuffle=False,
              callbacks=[timer])
    times = timer.times

    def throughput(fn, args, op_flops, repeats=10):
        fn(*args).numpy()
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn(*args).numpy()
            seconds.append(time.perf_counter() - start)
        return op_flops / np.median(seconds)

    n = 1024
    matmul = throughput(tf.function(tf.matmul), (tf.random.normal([n, n]), tf.random.normal([n, n])),
                        2 * n ** 3)
    images, kernel = tf.random.normal([BATCH, 28, 28, 64]), tf.random.normal([3, 3, 64, 128])
    conv = throughput(tf.function(lambda x, k: tf.nn.conv2d(x, k, 1, "SAME")), (images, kernel),
                      2 * BATCH * 28 * 28 * 128 * 9 * 64)
    print(json.dumps(dict(times=times, flops=flops, matmul=matmul, conv=conv)))


def run_child(model_name, prior, setting):
    onednn, precision, xla = SETTINGS[setting]
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="1" if onednn else "0", TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.getcwd())
    command = [sys.executable, os.path.abspath(__file__),
               f"--child={model_name},{prior},{precision},{xla}", f"--steps={FLAGS.steps}"]
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode:
        raise RuntimeError(f"{model_name} {prior} {setting} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv):
    del argv
    if FLAGS.child:
        child(FLAGS.child)
        return
    import numpy as np

    settings = FLAGS.settings or list(SETTINGS)
    configs = [(m, p) for m in FLAGS.models for p in FLAGS.priors]
    print(f"{cli.describe_cpu()}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start; "
          f"{FLAGS.steps} steps per child, {FLAGS.rounds} round(s)", flush=True)
    results = {}
    for _ in range(FLAGS.rounds):
        for config in configs:
            for setting in settings:
                out = run_child(*config, setting)
                entry = results.setdefault((*config, setting), dict(times=[], matmul=[], conv=[]))
                entry["times"] += out["times"]
                entry["matmul"].append(out["matmul"])
                entry["conv"].append(out["conv"])
                entry["flops"] = out["flops"]
    header = ("model", "prior", "setting", "ms/step", "p10-p90 ms", "GFLOP/step", "GFLOP/s",
              "% matmul", "% conv", "matmul, conv GFLOP/s (same child)", "speed-up vs before")
    print("\n| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for (m, p, setting), entry in results.items():
        median = np.median(entry["times"])
        p10, p90 = np.percentile(entry["times"], [10, 90])
        achieved = entry["flops"] / median
        matmul, conv = np.median(entry["matmul"]), np.median(entry["conv"])
        before = results.get((m, p, "before"))
        speedup = f"{np.median(before['times']) / median:.2f}x" if before else "-"
        print(f"| {m} | {p} | {setting} | {1e3 * median:.0f} | {1e3 * p10:.0f}-{1e3 * p90:.0f} | "
              f"{entry['flops'] / 1e9:.1f} | {achieved / 1e9:.0f} | {100 * achieved / matmul:.0f}% | "
              f"{100 * achieved / conv:.0f}% | {matmul / 1e9:.0f}, {conv / 1e9:.0f} | {speedup} |")
    print(f"\nload average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    app.run(main)
