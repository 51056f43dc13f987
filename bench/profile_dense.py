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
  loop, a copy) with its duration, grouped by what it computes (the TF op
  it came from: forward pass, gradient, optimizer update, random noise) and
  by kind (matmul or not); each matmul's own rate (its FLOPs from the HLO
  shapes over its duration);
* how many of the 2 cores the timed steps kept busy (the process's CPU time
  over the wall time);
* the same for one image's IS evaluation at S = ``--eval_samples`` (the
  per-image function ``tfvamp.evaluate`` runs, a plain ``tf.function``, so
  the trace shows TensorFlow ops);
* this process's matmul rate (an XLA ``tf.matmul`` 1024^3), measured
  between the timed steps, and the FLOP-bound time of a step (its matmul
  FLOPs, ``bench/measure.py``, at that rate).

XLA runs a step's thunks one after the other, mostly: a thunk's duration is
wall time. A matmul thunk keeps both cores busy (Eigen splits it), an
elementwise fusion one, so the thunks' durations add up to about the step's
wall time, and the CPU time says how much of it the second core worked.
(The evaluation's TensorFlow ops do run two at a time, on TensorFlow's 2
inter-op threads, so their durations add up to more than its wall time.)
"""
import collections
import glob
import os
import re
import sys
import tempfile
import time

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
INSTRUCTION = re.compile(r"^\s*(?:ROOT )?%?([\w.\-]+) = (\S+) ([\w\-]+)\(([^)]*)\)")
OP_NAME = re.compile(r'op_name="([^"]*)"')
CONTRACTING = re.compile(r"lhs_contracting_dims=\{([\d,]*)\}")


def dims(shape):
    """The dimensions of an HLO shape such as ``f32[100,600]{1,0}`` (a list)."""
    found = re.match(r"\w+\[([\d,]*)\]", shape)
    return [int(d) for d in found.group(1).split(",") if d] if found else []


def hlo_instructions(hlo_text):
    """``{instruction name: (opcode, TF op name, FLOPs)}`` of an optimised HLO
    module; FLOPs for a ``dot`` (2 x its output's size x the contracted
    size), 0 for the rest."""
    shapes, table = {}, {}
    for line in hlo_text.splitlines():
        match = INSTRUCTION.match(line)
        if not match:
            continue
        name, shape, opcode, operands = match.groups()
        shapes[name] = dims(shape)
        flops = 0
        contracting = CONTRACTING.search(line)
        if opcode == "dot" and contracting:
            names = re.findall(r"%?([\w.\-]+)", operands.split(",")[0])
            lhs = shapes.get(names[-1], []) if names else []
            contracted = np.prod([lhs[int(d)] for d in contracting.group(1).split(",") if d]) if lhs else 0
            flops = 2 * int(np.prod(shapes[name])) * int(contracted)
        op_name = OP_NAME.search(line)
        table[name] = (opcode, op_name.group(1) if op_name else "", flops)
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


def print_breakdown(title, groups, per, wall, overlapping=False):
    """A table of ``groups`` (``{(part, kind): seconds over per calls}``):
    each part's share of the wall time of one call, and the rest, time no
    event covered; or, for ``overlapping`` events (TensorFlow ops, which run
    two at a time and nest), each part's share of their summed time."""
    total = sum(groups.values())
    share = "summed op time" if overlapping else "wall time"
    print(f"\n{title}: {1e3 * wall:.2f} ms wall")
    print(f"| part | kind | ms | share of the {share} |\n|---|---|---|---|")
    for (part, kind), seconds in sorted(groups.items(), key=lambda item: -item[1]):
        print(f"| {part} | {kind} | {1e3 * seconds / per:.2f} | "
              f"{100 * seconds / (total if overlapping else per * wall):.0f}% |")
    if not overlapping:
        rest = wall - total / per
        print(f"| between thunks (negative: thunks overlapped) | - | {1e3 * rest:.2f} | {100 * rest / wall:.0f}% |")


def cores_busy(function, calls):
    """Median wall seconds of ``function()`` over ``calls`` calls, and the
    cores it kept busy on average (this process's CPU time over wall time)."""
    start, cpu = time.perf_counter(), time.process_time()
    wall = median_seconds(function, calls)
    return wall, (time.process_time() - cpu) / (time.perf_counter() - start)


def profile_train_step(model, x, rate):
    step = tf.function(model.train_step, jit_compile=True)
    for _ in range(10):
        step(x)["loss"].numpy()
    wall, busy = cores_busy(lambda: step(x)["loss"].numpy(), FLAGS.steps)
    instructions = hlo_instructions(step.experimental_get_compiler_ir(x)(stage="optimized_hlo"))
    events = traced(lambda: step(x)["loss"].numpy(), FLAGS.trace_steps)
    groups, thunks = collections.Counter(), collections.Counter()
    count = dot_flops = 0
    for _, name, seconds in events:
        if name not in instructions:
            continue
        count += 1
        opcode, op_name, flops = instructions[name]
        dot_flops += flops
        kind = "matmul" if opcode in ("dot", "convolution") or name.startswith(("dot", "MatMul")) else opcode
        groups[(phase(op_name), kind)] += seconds
        thunks[(name, kind, op_name, flops)] += seconds
    steps = FLAGS.trace_steps
    flops = step_flops(model, BATCH)
    bound = flops / rate
    matmul_seconds = sum(s for (_, kind), s in groups.items() if kind == "matmul") / steps
    print_breakdown(f"train step ({count / steps:.0f} thunks)", groups, steps, wall)
    print(f"\ncores busy: {busy:.2f} of 2 over the timed steps (a matmul thunk keeps both busy, "
          f"an elementwise fusion one)")
    print(f"FLOPs {flops / 1e9:.3f} G; matmul rate {rate / 1e9:.0f} GFLOP/s -> FLOP bound "
          f"{1e3 * bound:.2f} ms; step at {100 * bound / wall:.0f}% of the matmul rate; its matmul "
          f"thunks ({dot_flops / steps / 1e9:.3f} GFLOP) ran at "
          f"{100 * dot_flops / steps / matmul_seconds / rate:.0f}% of it")
    print("slowest thunks (ms per step; a matmul's own rate):")
    for (name, kind, op_name, flops_), seconds in thunks.most_common(FLAGS.top):
        own = f", {flops_ * steps / seconds / 1e9:.0f} GFLOP/s" if flops_ else ""
        print(f"  {1e3 * seconds / steps:6.2f}  {name} ({kind}{own}) <- {op_name[-90:]}")
    return wall, bound


def compare_noise(model, x, rounds=5):
    """Median step times with the posterior's noise from TFP's ``tfd.Normal``
    (TensorFlow's ``auto_select``: XLA's default generator in this step) and
    from ``PhiloxNormal``, the two compiled steps taking turns."""
    from tfvamp import gaussians

    steps = {"philox": tf.function(model.train_step, jit_compile=True)}
    ours = gaussians.PhiloxNormal._sample_n
    gaussians.PhiloxNormal._sample_n = gaussians.tfd.Normal._sample_n
    try:
        steps["tfp default"] = tf.function(model.train_step, jit_compile=True)
        steps["tfp default"](x)["loss"].numpy()  # traced with TFP's sampler
    finally:
        gaussians.PhiloxNormal._sample_n = ours
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
    print_breakdown(f"IS evaluation of one image, S = {FLAGS.eval_samples}", top, n, wall, overlapping=True)
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
