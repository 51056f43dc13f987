"""What every command-line program of ``trainers/`` does before and around
TensorFlow, without importing it: so that a mistyped flag is reported at once.

* ``CHOICES``: the names the flags accept (``tests/test_cli.py`` checks they
  are the library's registries);
* ``run(main)``: ``absl.app.run`` with ``--config=NAME`` and package-relative
  ``--flagfile``s resolved (``resolve_config_args``);
* ``import_tensorflow()``: imports TensorFlow and lists its devices with the
  native start-up lines that say nothing on a CPU machine held back (see
  ``BENIGN_NATIVE_LINES``); every other line still reaches stderr, and with
  ``--verbosity`` given nothing is held back at all.
"""
import os
import re
import sys
import tempfile
import warnings

from absl import app, flags, logging

import configs

# The names the flags accept; they mirror tfvamp's registries (checked by a test).
DATASETS = ("caltech", "dynamic_mnist", "freyfaces", "histopathology", "omniglot", "static_mnist")
MODELS = ("convhvae", "hvae", "pixelhvae", "vae")
PRIORS = ("standard", "mog", "vamp")
STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker")
OPTIMIZERS = ("adam_normgrad", "adam")
PRECISIONS = ("float32", "bfloat16")
KERNEL_INITIALIZERS = ("glorot_uniform", "he_normal")

# Native lines TensorFlow prints while it loads on a machine without an NVIDIA
# driver, none of which needs an action.
BENIGN_NATIVE_LINES = (
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"cudart_stub\.cc.*Could not find cuda drivers on your machine",
    r"port\.cc.*oneDNN custom operations are on",
    r"cpu_feature_guard\.cc.*This TensorFlow binary is optimized",
    r"To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags",
)
# Only where no NVIDIA driver is installed is a failed cuInit expected.
NO_DRIVER_LINES = (r"cuda_platform\.cc.*failed call to cuInit",)


# TensorFlow's oneDNN kernels, chosen by measurement (bench/switches.py, bench/README.md):
# they make the convolutional models' steps 1.2-1.9x faster, bfloat16 needs them, and the
# dense models' float32 steps measured up to 1.3x slower with them.
CONVOLUTIONAL_MODELS = ("convhvae", "pixelhvae")


def choose_onednn(model, precision):
    """Sets ``TF_ENABLE_ONEDNN_OPTS`` (before TensorFlow is imported) for a
    run of ``model`` in ``precision``, unless the environment already sets it."""
    use = model in CONVOLUTIONAL_MODELS or precision != "float32"
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1" if use else "0")


def cpu_emulates_bfloat16(cpuinfo="/proc/cpuinfo"):
    """Whether this x86 CPU lacks the instructions (AVX-512, or AVX-NE-CONVERT)
    that TensorFlow's oneDNN kernels need for bfloat16, so that TensorFlow falls
    back to emulating it (a convHVAE step measured 16x slower than float32 on
    such a CPU, bench/README.md). False where ``cpuinfo`` lists no x86 flags."""
    try:
        with open(cpuinfo) as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), None)
    except OSError:
        return False
    return flags is not None and not {"avx512f", "avx_ne_convert"} & set(flags)


def has_nvidia_driver():
    return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidiactl")


def verbosity_given():
    """Whether the user asked for absl's ``--verbosity`` (then nothing is held back)."""
    return flags.FLAGS.is_parsed() and flags.FLAGS["verbosity"].present


def import_tensorflow():
    """Imports TensorFlow and initialises its device list; returns the module.

    Writes TensorFlow's native start-up output to stderr less the lines of
    ``BENIGN_NATIVE_LINES`` (and ``NO_DRIVER_LINES`` without a driver), and
    keeps Python's DeprecationWarnings of the imports (TFP's distutils) and
    absl's INFO lines (TensorFlow's per-save notes) out, unless ``--verbosity``
    was given.
    """
    if "tensorflow" in sys.modules or verbosity_given():
        import tensorflow as tf
        return tf
    # TensorFlow's INFO and WARNING lines: the warnings it prints in a run come
    # from inside Keras' input pipeline (GeneratorDatasetOp "will not be optimized").
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.set_verbosity(logging.WARNING)
    patterns = [re.compile(p) for p in BENIGN_NATIVE_LINES
                + (() if has_nvidia_driver() else NO_DRIVER_LINES)]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                import tensorflow as tf
                import tensorflow_probability  # noqa: F401  (its import-time warnings)
                tf.config.list_physical_devices()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode(errors="replace").splitlines()
                    if not any(p.search(line) for p in patterns)]
            if kept:
                print("\n".join(kept), file=sys.stderr, flush=True)
    return tf


def resolve_config_args(argv):
    """``argv`` with ``--config=NAME`` expanded in place into
    ``--flagfile=<configs>/NAME.cfg`` (the flags after it override the
    file's, as for any flagfile), and a ``--flagfile`` that does not exist
    as given but names a file of the installed ``configs`` package (e.g.
    ``configs/caltech_vae_vamp.cfg`` outside the repository) resolved to it.
    """
    resolved = []
    for arg in argv:
        match = re.fullmatch(r"--(config|flagfile)=(.*)", arg)
        if match is None:
            resolved.append(arg)
            continue
        name, value = match.groups()
        if name == "config":
            path = os.path.join(configs.CONFIG_DIR, value if value.endswith(".cfg") else f"{value}.cfg")
            if not os.path.exists(path):
                known = ", ".join(os.path.basename(p)[:-4] for p in configs.config_paths())
                raise app.UsageError(f"--config={value}: no such config; the configs are: {known}")
            resolved += [arg, f"--flagfile={path}"]
        elif not os.path.exists(value) and os.path.exists(
                os.path.join(configs.CONFIG_DIR, os.path.basename(value))):
            resolved.append(f"--flagfile={os.path.join(configs.CONFIG_DIR, os.path.basename(value))}")
        else:
            resolved.append(arg)
    return resolved


def run(main):
    """``absl.app.run(main)`` with ``--config``/``--flagfile`` resolved."""
    try:
        argv = resolve_config_args(sys.argv)
    except app.UsageError as error:
        sys.exit(f"Error: {error}")
    app.run(main, argv=argv)
