r"""The mixture log-density of the MoG prior and the VampPrior: accuracy and
speed, before and after the accuracy fix of issue 10.

    PYTHONPATH=. python bench/mixture_density.py              # ~2 min on 2 cores
    PYTHONPATH=. python bench/mixture_density.py --rounds=5   # quick

Three ways of computing ``log sum_k w_k N(z | loc_k, diag(exp(log_variance_k)))``
(d=40, K=500), all float32 in and out, in one process:

* ``before``: the float32 matmul expansion
  ``sum_j (z_j - m_kj)^2 P_kj = [z^2, z] . [P_k, -2 m_k P_k] + sum_j m_kj^2 P_kj``
  that ``DiagonalGaussianMixture.log_prob`` used before the fix (kept here only);
* ``broadcast``: a plain ``tfd.MixtureSameFamily`` of ``diagonal_gaussian``
  components, an ``[N, K, d]`` broadcast;
* ``now``: ``tfvamp.gaussians.DiagonalGaussianMixture(loc, log_variance).log_prob``.

Accuracy: the largest error against a float64 reference (the ``[N, K, d]``
differences, logsumexp) of the log-density and of its gradients with respect
to ``z``, ``loc`` and ``log_variance``, for component means of scale 1 to 100,
log-variances uniform in [-6, 2] or all -6, and ``z`` drawn from the
components themselves (each z next to a far, narrow component).

Speed: milliseconds per call of a ``tf.function`` computing the summed
log-density (forward) or it and its gradients with respect to ``z``, ``loc``
and ``log_variance`` (forward+backward, as the VampPrior's train step), for

* the train step: ``z`` of [100, 40], XLA-compiled (as ``model.fit`` runs it);
* the IS evaluation: ``z`` of [1000, 40] (one chunk of decoded latents), a
  plain ``tf.function`` (as ``tfvamp.evaluation`` runs it);

and, for the density's share, two larger pieces of those (the VAE's gated MLP
networks on 28x28 images, untrained): the VampPrior's whole term of a train
step (the encoder on the K pseudo-inputs, the density, the gradients to the
pseudo-inputs and the encoder's weights), and an evaluation chunk's decoder
pass plus the density.

The forms take turns call batch by call batch (``--rounds`` rounds of
``--calls`` calls each), so they share the machine's load; the median over the
rounds is printed, and the ratio to ``before`` from the same run.
"""
import os
import sys
import time

# oneDNN as trainers.train runs the dense models in float32 (off).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_probability as tfp  # noqa: E402
from absl import app, flags  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.mixture_cases import (K, LATENT, mixture_parameters, points,  # noqa: E402
                                 reference_log_prob, reference_log_prob_tf)
from tfvamp.models.networks import gated_mlp_decoder, gated_mlp_encoder  # noqa: E402
from tfvamp.gaussians import DiagonalGaussianMixture, diagonal_gaussian  # noqa: E402

tfd = tfp.distributions

flags.DEFINE_integer("rounds", 20, "Timing rounds; every form runs --calls calls per round.")
flags.DEFINE_integer("calls", 5, "Calls per form and round.")
FLAGS = flags.FLAGS


def before_log_prob(z, loc, log_variance):
    """The float32 matmul expansion used before issue 10 (uniform weights)."""
    precision = tf.exp(-log_variance)
    quadratic = tf.matmul(
        tf.concat([tf.square(z), z], axis=-1),
        tf.concat([precision, -2.0 * loc * precision], axis=-1),
        transpose_b=True,
    ) + tf.reduce_sum(tf.square(loc) * precision + log_variance, axis=-1)
    log_2pi = np.log(2.0 * np.pi) * LATENT
    return tf.reduce_logsumexp(-0.5 * (quadratic + log_2pi), axis=-1) - np.log(K)


def broadcast_log_prob(z, loc, log_variance):
    mixture = tfd.MixtureSameFamily(tfd.Categorical(logits=tf.zeros([K])),
                                    diagonal_gaussian(loc, log_variance))
    return mixture.log_prob(z)


def now_log_prob(z, loc, log_variance):
    return DiagonalGaussianMixture(loc, log_variance).log_prob(z)


FORMS = {"before": before_log_prob, "broadcast": broadcast_log_prob, "now": now_log_prob}


def gradients(log_prob, arrays, dtype):
    tensors = [tf.constant(a, dtype) for a in arrays]
    with tf.GradientTape() as tape:
        tape.watch(tensors)
        total = tf.reduce_sum(log_prob(*tensors))
    return [g.numpy().astype(np.float64) for g in tape.gradient(total, tensors)]


def far_case(scale, log_variances, num=500):
    """``(z, loc, log_variance)`` float32: means of scale ``scale``,
    log-variances ``"uniform"`` in [-6, 2] or ``"all-6"``, ``z`` drawn from the components."""
    loc, log_variance = mixture_parameters(scale, log_variances)
    return points("components", loc, log_variance, num=num), loc, log_variance


def accuracy_table():
    print("| means' scale | log-variances | " + " | ".join(
        f"{name}: log p error (nats) | {name}: gradient error" for name in FORMS) + " |")
    print("|---|---|" + "---|---|" * len(FORMS))
    for scale in (1.0, 5.0, 10.0, 100.0):
        for log_variances in ("uniform", "all-6"):
            arrays = far_case(scale, log_variances)
            expected = reference_log_prob(*(a.astype(np.float64) for a in arrays))
            gradient_arrays = (arrays[0][:64],) + arrays[1:]
            expected_gradients = gradients(reference_log_prob_tf, gradient_arrays, tf.float64)
            cells = []
            for log_prob in FORMS.values():
                error = np.abs(log_prob(*arrays).numpy() - expected).max()
                actual_gradients = gradients(log_prob, gradient_arrays, tf.float32)
                gradient_error = max(np.abs(a - e).max() / np.abs(e).max()
                                     for a, e in zip(actual_gradients, expected_gradients))
                cells += [f"{error:.2g}", f"{gradient_error:.1g}"]
            label = "in [-6, 2]" if log_variances == "uniform" else "all -6"
            print(f"| {scale:g} | {label} | " + " | ".join(cells) + " |")
    print("\n(gradient error: the largest of max|g - g64| / max|g64| over the gradients with "
          "respect to z, loc and log_variance, for the first 64 points)")


def density_functions(log_prob, jit_compile):
    """The summed log-density (forward) and it with its gradients with respect
    to ``z``, ``loc`` and ``log_variance`` (forward+backward), as ``tf.function``s."""
    def forward(z, loc, log_variance):
        return tf.reduce_sum(log_prob(z, loc, log_variance))

    def forward_backward(z, loc, log_variance):
        with tf.GradientTape() as tape:
            tape.watch([z, loc, log_variance])
            total = forward(z, loc, log_variance)
        return total, tape.gradient(total, [z, loc, log_variance])

    return (tf.function(forward, jit_compile=jit_compile),
            tf.function(forward_backward, jit_compile=jit_compile))


def vamp_prior_term(log_prob, encoder):
    """The VampPrior's part of a train step (XLA): encode the K pseudo-inputs,
    the mixture log-density of z, gradients to z, the pseudo-inputs and the
    encoder's weights."""
    def step(z, pseudo_inputs):
        with tf.GradientTape() as tape:
            tape.watch([z, pseudo_inputs])
            loc, log_variance = encoder(pseudo_inputs)
            total = tf.reduce_sum(log_prob(z, loc, log_variance))
        return total, tape.gradient(total, [z, pseudo_inputs] + encoder.trainable_variables)

    return tf.function(step, jit_compile=True)


def evaluation_chunk(log_prob, decoder):
    """One IS-evaluation chunk's decoder pass and mixture log-density (plain
    ``tf.function``; the prior's ``loc`` and ``log_variance`` are given)."""
    def chunk(z, loc, log_variance):
        return (tf.reduce_sum(decoder(z)), tf.reduce_sum(log_prob(z, loc, log_variance)))

    return tf.function(chunk)


def interleaved_ms(functions, args, rounds, calls):
    """Median over rounds of the mean ms per call; the functions take turns."""
    for function in functions.values():
        for _ in range(3):
            tf.nest.map_structure(lambda t: t.numpy(), function(*args))  # trace, compile, warm up
    per_round = {name: [] for name in functions}
    for _ in range(rounds):
        for name, function in functions.items():
            start = time.perf_counter()
            for _ in range(calls):
                result = function(*args)
            tf.nest.map_structure(lambda t: t.numpy(), result)
            per_round[name].append((time.perf_counter() - start) / calls * 1e3)
    return {name: float(np.median(times)) for name, times in per_round.items()}


def speed_table(rounds, calls):
    rng = np.random.default_rng(1)
    loc = tf.constant(rng.normal(size=(K, LATENT)).astype("float32"))
    log_variance = tf.constant(rng.uniform(-6.0, 2.0, size=(K, LATENT)).astype("float32"))

    def latents(num):
        chosen = rng.integers(0, K, size=num)
        return tf.constant((loc.numpy()[chosen] + np.exp(0.5 * log_variance.numpy()[chosen])
                            * rng.normal(size=(num, LATENT))).astype("float32"))

    z_train, z_eval = latents(100), latents(1000)
    image_shape = (28, 28, 1)  # Caltech 101 Silhouettes, the VAE's gated MLP networks
    encoder = gated_mlp_encoder(image_shape, LATENT)
    decoder = gated_mlp_decoder(LATENT, image_shape, 1)
    pseudo_inputs = tf.constant(rng.uniform(size=(K,) + image_shape).astype("float32"))

    rows = []  # (workload, z, compiled, pass, {form: function}, args)
    for workload, z, jit_compile in (("train step", z_train, True), ("IS evaluation", z_eval, False)):
        pairs = {name: density_functions(log_prob, jit_compile) for name, log_prob in FORMS.items()}
        for index, pass_name in enumerate(("forward", "forward+backward")):
            rows.append((f"{workload}: mixture log-density", z, jit_compile, pass_name,
                         {name: pair[index] for name, pair in pairs.items()},
                         (z, loc, log_variance)))
    rows.append(("train step: VampPrior term (encoder on K pseudo-inputs + density)", z_train,
                 True, "forward+backward",
                 {name: vamp_prior_term(log_prob, encoder) for name, log_prob in FORMS.items()},
                 (z_train, pseudo_inputs)))
    rows.append(("IS evaluation: decoder on the chunk + density", z_eval, False, "forward",
                 {name: evaluation_chunk(log_prob, decoder) for name, log_prob in FORMS.items()},
                 (z_eval, loc, log_variance)))

    print("| workload | z | compiled | pass | " + " | ".join(f"{name} ms" for name in FORMS)
          + " | " + " | ".join(f"{name} / before" for name in FORMS if name != "before") + " |")
    print("|---|---|---|---|" + "---|" * (2 * len(FORMS) - 1))
    for workload, z, jit_compile, pass_name, functions, args in rows:
        ms = interleaved_ms(functions, args, rounds, calls)
        print(f"| {workload} | {z.shape.as_list()} | {'XLA' if jit_compile else 'tf.function'} "
              f"| {pass_name} | " + " | ".join(f"{ms[name]:.2f}" for name in FORMS) + " | "
              + " | ".join(f"{ms[name] / ms['before']:.2f}x" for name in FORMS if name != "before")
              + " |", flush=True)


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main(argv):
    del argv
    tf.get_logger().setLevel("ERROR")  # the retracing notes of the many timed functions
    print(f"TensorFlow {tf.__version__}, oneDNN {os.environ['TF_ENABLE_ONEDNN_OPTS']}, "
          f"{os.cpu_count()} CPUs, load average {load_average()} (1, 5, 15 min)\n")
    print("Accuracy against float64, z drawn from the components (d=40, K=500):\n")
    accuracy_table()
    print("\nSpeed (d=40, K=500; median over rounds):\n")
    speed_table(FLAGS.rounds, FLAGS.calls)
    print(f"\nload average at the end: {load_average()}")


if __name__ == "__main__":
    app.run(main)
