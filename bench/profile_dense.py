r"""Where a dense model's training step and its importance-sampled evaluation
spend their time (issue 28), from TensorFlow's profiler.

    PYTHONPATH=. python bench/profile_dense.py                     # vae, hvae x standard, vamp; ~3 min
    PYTHONPATH=. python bench/profile_dense.py --models=vae --priors=standard --eval=false

For each model and prior, in one process (oneDNN and XLA's flags as ``trainers.train``
sets them for the dense float32 models, ``trainers.cli.choose_cpu_switches``):

* the train step as the trainer compiles it (``train_step`` under XLA,
  AdamNormGrad, a Caltech batch of 100), median wall time over ``--steps``;
* a profiler trace of ``--trace_steps`` more steps: every XLA thunk (one
  HLO instruction of the optimised module: a matmul, a fused elementwise
  loop, a copy) with its thread time, grouped by what it computes (the TF op
  it came from: forward pass, gradient, optimizer update, random noise) and
  by kind (matmul or not);
* the same for one image's IS evaluation at S = ``--eval_samples`` (the
  per-image function ``tfvamp.evaluate`` runs, a plain ``tf.function``, so
  the trace shows TensorFlow ops);
* this process's matmul rate (an XLA ``tf.matmul`` 1024^3), measured
  between the timed steps, and the FLOP-bound time of a step (its matmul
  FLOPs, ``bench/measure.py``, at that rate).

Thread times add up over the 2 cores, so a step of ``w`` ms has ``2w`` ms of
thread time; what no thunk or op used is the executor's own waiting and
dispatch ("idle").
"""
import collections
import glob
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from trainers import cli  # noqa: E402

cli.choose_cpu_switches("vae", "float32")  # as trainers.train sets them for the dense models
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from measure import _graph_flops, matmul_rate, median_seconds, step_flops  # noqa: E402

flags.DEFINE_list("models", ["vae", "hvae"], "Dense models to profile.")
flags.DEFINE_list("priors", ["standard", "vamp"], "Priors to profile.")
flags.DEFINE_integer("steps", 60, "Timed train steps per configuration (after 10 warm-up steps).")
flags.DEFINE_integer("trace_steps", 20, "Train steps traced by the profiler.")
flags.DEFINE_boolean("eval", True, "Also profile the IS evaluation of one image.")
flags.DEFINE_integer("eval_samples", 5000, "Importance samples of the profiled evaluation.")
flags.DEFINE_integer("eval_images", 3, "Images timed (and traced) for the evaluation.")
flags.DEFINE_boolean("compare_noise", True, "Also time the step with TFP's own noise (TensorFlow's "
                     "auto_select generator) against the posterior's Philox noise, taking turns.")
flags.DEFINE_integer("top", 8, "Slowest thunks or ops listed per configuration.")

FLAGS = flags.FLAGS
BATCH = 100
# Events of the profiler that contain others (or wait): not work of their own.
CONTAINERS = re.compile(r"ThunkExecutor|SlinkyThreadPool|Await|Execute|BlockUntilReady|__inference|"
                        r"train_step|EagerCopy|FunctionRun|ExecutorState|RunFunction|Host|"
                        r"tf_data|Iterator|::|^\$")
INSTRUCTION = re.compile(r"^\s*(?:ROOT )?%?([\w.\-]+) = \S+ ([\w\-]+)\(")
OP_NAME = re.compile(r'op_name="([^"]*)"')


def hlo_instructions(hlo_text):
    """``{instruction name: (opcode, TF op name)}`` of an optimised HLO module."""
    table = {}
    for line in hlo_text.splitlines():
        match = INSTRUCTION.match(line)
        if match:
            op_name = OP_NAME.search(line)
            table[match.group(1)] = (match.group(2), op_name.group(1) if op_name else "")
    return table


def phase(op_name):
    """What the TF op named ``op_name`` computes in a train step."""
    if re.search(r"random|Random", op_name):
        return "random noise"
    if re.search(r"adam|optimizer|update_step|Assign", op_name, re.IGNORECASE):
        return "optimizer update"
    if "gradient_tape" in op_name or "gradients" in op_name:
        return "gradient"
    return "forward"


def traced(function, calls):
    """Runs ``function()`` ``calls`` times under the profiler; returns
    ``[(thread name, event name, seconds)]`` of the host's events."""
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        for _ in range(calls):
            function()
        tf.profiler.experimental.stop()
        path = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)[-1]
        space = xplane_pb2.XSpace()
        with open(path, "rb") as f:
            space.ParseFromString(f.read())
    events = []
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        for line in plane.lines:
            for event in line.events:
                events.append((line.name, plane.event_metadata[event.metadata_id].name,
                               event.duration_ps * 1e-12))
    return events


def print_breakdown(title, groups, per, wall):
    total = sum(groups.values())
    print(f"\n{title}: {1e3 * wall:.2f} ms wall, {2e3 * wall:.2f} ms of thread time on 2 cores")
    print("| part | kind | thread ms | share of 2 x wall |\n|---|---|---|---|")
    for (part, kind), seconds in sorted(groups.items(), key=lambda item: -item[1]):
        print(f"| {part} | {kind} | {1e3 * seconds / per:.2f} | {100 * seconds / per / (2 * wall):.0f}% |")
    idle = 2 * wall - total / per
    print(f"| idle, dispatch | - | {1e3 * idle:.2f} | {100 * idle / (2 * wall):.0f}% |")


def profile_train_step(model, x, rate):
    step = tf.function(model.train_step, jit_compile=True)
    for _ in range(10):
        step(x)["loss"].numpy()
    wall = median_seconds(lambda: step(x)["loss"].numpy(), FLAGS.steps)
    instructions = hlo_instructions(step.experimental_get_compiler_ir(x)(stage="optimized_hlo"))
    events = traced(lambda: step(x)["loss"].numpy(), FLAGS.trace_steps)
    groups, thunks = collections.Counter(), collections.Counter()
    count = 0
    for _, name, seconds in events:
        if name not in instructions:
            continue
        count += 1
        opcode, op_name = instructions[name]
        kind = "matmul" if opcode in ("dot", "convolution") or name.startswith(("dot", "MatMul")) else opcode
        groups[(phase(op_name), kind)] += seconds
        thunks[(name, kind, op_name)] += seconds
    flops = step_flops(model, BATCH)
    bound = flops / rate
    matmul_seconds = sum(s for (_, kind), s in groups.items() if kind == "matmul") / FLAGS.trace_steps
    print_breakdown(f"train step ({count / FLAGS.trace_steps:.0f} thunks)", groups, FLAGS.trace_steps, wall)
    print(f"\nFLOPs {flops / 1e9:.3f} G; matmul rate {rate / 1e9:.0f} GFLOP/s -> FLOP bound "
          f"{1e3 * bound:.2f} ms; step at {100 * bound / wall:.0f}% of the matmul rate; "
          f"the step's own matmuls ran at {100 * bound / (matmul_seconds / 2):.0f}% of it "
          f"(their thread time over 2 cores)")
    print("slowest thunks (thread ms per step):")
    for (name, kind, op_name), seconds in thunks.most_common(FLAGS.top):
        print(f"  {1e3 * seconds / FLAGS.trace_steps:6.2f}  {name} ({kind}) <- {op_name[-90:]}")
    return wall, bound


def compare_noise(model, x, rounds=5):
    """Median step times with the posterior's noise from TFP's ``tfd.Normal``
    (TensorFlow's ``auto_select``: XLA's default generator in this step) and
    from ``PhiloxNormal``, the two compiled steps taking turns."""
    from tfvamp import priors

    steps = {"philox": tf.function(model.train_step, jit_compile=True)}
    ours = priors.PhiloxNormal._sample_n
    priors.PhiloxNormal._sample_n = priors.tfd.Normal._sample_n
    try:
        steps["tfp default"] = tf.function(model.train_step, jit_compile=True)
        steps["tfp default"](x)["loss"].numpy()  # traced with TFP's sampler
    finally:
        priors.PhiloxNormal._sample_n = ours
    times = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            step(x)["loss"].numpy()
            times[name].append(median_seconds(lambda: step(x)["loss"].numpy(), FLAGS.steps // rounds))
    before, after = np.median(times["tfp default"]), np.median(times["philox"])
    print(f"noise from TFP's default generator {1e3 * before:.2f} ms, from Philox {1e3 * after:.2f} ms "
          f"a step: {before / after:.2f}x")


def profile_evaluation(model, images, rate):
    from tfvamp import evaluation

    step = evaluation.make_step(model, FLAGS.eval_samples, model.rows_per_chunk)
    image, index, seed = tf.constant(images[:1]), tf.constant([0]), tf.constant([0, 0])
    evaluate = lambda: step(image, index, seed).numpy()  # noqa: E731
    evaluate()  # traces
    n = FLAGS.eval_images
    wall = median_seconds(evaluate, n)
    events = traced(evaluate, n)
    groups = collections.Counter()
    for thread, name, seconds in events:
        if "/" not in name or CONTAINERS.search(name.split(":")[0]):
            continue  # the function's own event, the executor's, Python's
        op, _, op_type = name.partition(":")
        layer = re.sub(r"(map/while/|body/_\d+/|_\d+\b)", "", op)
        groups[(layer[-60:], "matmul" if "MatMul" in op_type or "MatMul" in op else op_type or "op")] += seconds
    top = collections.Counter(dict(groups.most_common(FLAGS.top)))
    other = sum(groups.values()) - sum(top.values())
    top[("other ops", "op")] = other
    print_breakdown(f"IS evaluation of one image, S = {FLAGS.eval_samples}", top, n, wall)
    decoder = tf.function(lambda z: model.decoder(z)) if hasattr(model, "decoder") else None
    if decoder is not None:
        z = tf.zeros([FLAGS.eval_samples, model.latent_dim])
        flops = _graph_flops(decoder.get_concrete_function(z).graph)
        print(f"decoder FLOPs per image {flops / 1e9:.2f} G -> {1e3 * flops / rate:.1f} ms at the matmul "
              f"rate; evaluation at {100 * flops / rate / wall:.0f}% of the matmul rate")


def main(argv):
    del argv
    from tfvamp import datasets, models
    from tfvamp.optimizers import AdamNormGrad

    print(f"{cli.describe_cpu()}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start; "
          f"TF {tf.__version__}, oneDNN {os.environ['TF_ENABLE_ONEDNN_OPTS']}, XLA_FLAGS {os.environ['XLA_FLAGS']!r}")
    data = datasets.load_dataset("caltech")
    x = tf.constant(data.train[:BATCH])
    for name in FLAGS.models:
        for prior in FLAGS.priors:
            model = models.build_model(name, input_shape=data.input_shape, likelihood=data.likelihood,
                                       prior=prior, seed=0, kernel_initializer="he_normal")
            model.compile(optimizer=AdamNormGrad(5e-4), jit_compile=True)
            model(x)
            print(f"\n## {name} + {prior} prior")
            profile_train_step(model, x, matmul_rate())
            if FLAGS.compare_noise:
                compare_noise(model, x)
            if FLAGS.eval:
                profile_evaluation(model, data.test, matmul_rate())
    print(f"\nload average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    app.run(main)
