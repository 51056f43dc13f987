"""What every command-line program of ``trainers/`` does before and around
TensorFlow, without importing it: so that a mistyped flag is reported at once.

* ``CHOICES``: the names the flags accept (``tests/test_cli.py`` checks they
  are the library's registries);
* ``run(main)``: ``absl.app.run`` with ``--config=NAME`` and package-relative
  ``--flagfile``s resolved (``resolve_config_args``);
* ``import_tensorflow()``: imports TensorFlow and lists its devices with the
  native start-up lines that say nothing on a CPU machine held back (see
  ``BENIGN_NATIVE_LINES``); every other line still reaches stderr, and with
  ``--verbosity`` given nothing is held back at all;
* every failure as one line on stderr (``error_line``) and exit status 1, the
  traceback only with ``--verbosity`` or ``TFVAMP_TRACEBACK=1``;
* Ctrl-C and SIGTERM (``Interrupted``): they stop the program at once, or
  inside ``deferred_interrupts()`` at the next safe point the program checks
  (``pending_interrupt()``), with one line saying what was kept and how to go
  on, and exit status 130 / 143;
* in a ``TF_CONFIG`` cluster (``in_cluster``), the native lines of the collective
  ops aborted by a lost worker held back (``hold_back_native_lines``): the
  program says it in one line.
"""
import contextlib
import errno
import importlib.util
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import traceback
import warnings

from absl import app, flags, logging

import configs



def _library_names():
    """``tfvamp/names.py``, read without importing the ``tfvamp`` package (which imports
    TensorFlow)."""
    package = importlib.util.find_spec("tfvamp").submodule_search_locations[0]
    spec = importlib.util.spec_from_file_location("tfvamp_names", os.path.join(package, "names.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The names the flags accept: the library's registries (tfvamp/names.py), and the trainers' own.
_NAMES = _library_names()
DATASETS = tuple(sorted(_NAMES.DATASETS))
MODELS = tuple(sorted(_NAMES.MODELS))
PRIORS = _NAMES.PRIORS
STRATEGIES = _NAMES.STRATEGIES
PRECISIONS = _NAMES.PRECISIONS
LOGICAL_CPUS_ENV = _NAMES.LOGICAL_CPUS_ENV
WORKER_TIMEOUT_S = _NAMES.WORKER_TIMEOUT_S
is_own_data = _NAMES.is_own_data
OPTIMIZERS = ("adam_normgrad", "adam")
LIKELIHOODS = ("bernoulli", "discretized_logistic", "authors_discretized_logistic", "gaussian")  # names of tfvamp.likelihoods.LIKELIHOODS
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


# TensorFlow's oneDNN kernels, chosen by measurement (bench/switches.py, bench/eval_time.py,
# bench/README.md), the same on AVX2 and AVX-512 CPUs: they make the convolutional models' steps
# 1.2-1.9x faster, bfloat16 needs them, and the IS evaluation of the dense models 1.1-1.2x
# faster; the dense models' XLA-compiled float32 train steps measured no faster with them
# (0.76-1.23x, within the noise of one round), so their training runs keep TensorFlow's own.
CONVOLUTIONAL_MODELS = ("convhvae", "pixelhvae")


# XLA's copy insertion with region analysis: the compiled train step then no longer copies
# weight matrices that the backward pass reads and the optimizer updates in place (bit-identical
# weights; 14 and 27 fewer thunks in the VAE and HVAE steps, bench/README.md).
XLA_CPU_FLAGS = ("--xla_cpu_copy_insertion_use_region_analysis=true",)


def choose_cpu_switches(model, precision, evaluation_only=False):
    """Sets, before TensorFlow is imported, the switches measured fastest for
    a run of ``model`` in ``precision`` (bench/README.md), each unless the
    environment already sets it: ``TF_ENABLE_ONEDNN_OPTS`` (oneDNN) and the
    flags of ``XLA_CPU_FLAGS`` in ``XLA_FLAGS``. ``evaluation_only``: a run
    that only evaluates (``trainers.evaluate``), with oneDNN for every model."""
    use = evaluation_only or model in CONVOLUTIONAL_MODELS or precision != "float32"
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1" if use else "0")
    xla_flags = os.environ.get("XLA_FLAGS", "")
    for flag in XLA_CPU_FLAGS:
        if flag.split("=")[0] not in xla_flags:
            xla_flags = f"{xla_flags} {flag}".strip()
    os.environ["XLA_FLAGS"] = xla_flags


def cpu_flags(cpuinfo="/proc/cpuinfo"):
    """The x86 instruction-set flags of this CPU (a set), or None where
    ``cpuinfo`` lists none (another architecture, or no /proc)."""
    try:
        with open(cpuinfo) as f:
            return next((set(line.split(":", 1)[1].split()) for line in f if line.startswith("flags")), None)
    except OSError:
        return None


def cpu_kind(cpuinfo="/proc/cpuinfo"):
    """The CPU kinds the speed switches are decided for (bench/README.md):
    ``"avx512-amx"`` (AVX-512 with AMX tiles), ``"avx512"``, ``"avx2"``, or
    ``"other"`` (no x86 flags, or older vector units)."""
    flags_ = cpu_flags(cpuinfo) or set()
    if "avx512f" in flags_:
        return "avx512-amx" if "amx_tile" in flags_ else "avx512"
    return "avx2" if "avx2" in flags_ else "other"


def describe_cpu(cpuinfo="/proc/cpuinfo"):
    """``"AMD EPYC (avx2: avx2)"``: the model name, the kind and its flags, for benchmark output."""
    try:
        with open(cpuinfo) as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "CPU")
    except OSError:
        model = "CPU"
    flags_ = cpu_flags(cpuinfo) or set()
    listed = [name for name in ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")
              if name in flags_]
    return f"{model} ({cpu_kind(cpuinfo)}: {', '.join(listed) or 'no AVX2/AVX-512 flags'})"


def cpu_emulates_bfloat16(cpuinfo="/proc/cpuinfo"):
    """Whether this x86 CPU lacks the instructions (AVX-512, or AVX-NE-CONVERT)
    that TensorFlow's oneDNN kernels need for bfloat16, so that TensorFlow falls
    back to emulating it (a convHVAE step measured 16x slower than float32 on
    such a CPU, bench/README.md). False where ``cpuinfo`` lists no x86 flags."""
    flags_ = cpu_flags(cpuinfo)
    return flags_ is not None and not {"avx512f", "avx_ne_convert"} & flags_


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


def _tf_config():
    """``TF_CONFIG``'s cluster and task (empty dicts where it names none)."""
    try:
        tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    except ValueError:
        return {}, {}  # make_strategy reports it
    return tf_config.get("cluster") or {}, tf_config.get("task") or {}


def in_cluster(strategy):
    """Whether ``--strategy`` makes this process a worker of ``TF_CONFIG``'s
    cluster: ``multi_worker``, or ``auto`` with a cluster of several tasks (as
    ``tfvamp.distribute.make_strategy``, without TensorFlow)."""
    cluster, _ = _tf_config()
    size = sum(len(tasks) for name, tasks in cluster.items() if name in ("chief", "worker"))
    return strategy == "multi_worker" or (strategy == "auto" and size > 1)


def writes_output_dir(strategy):
    """Whether this process writes ``--output_dir`` under ``--strategy``: every
    one but the non-chief workers of a ``TF_CONFIG`` cluster (as
    ``tfvamp.distribute.is_chief``, without TensorFlow)."""
    cluster, task = _tf_config()
    if not in_cluster(strategy):
        return True
    if task.get("type") in (None, "chief"):
        return True
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0 and "chief" not in cluster


# The native lines TensorFlow's collective ops print as they abort when a worker of the
# cluster is lost, each followed by the lines of its message: the program's own line says it
# (``tfvamp.distribute.lost_worker``).
LOST_WORKER_NATIVE_LINES = (r"ring_alg\.cc:\d+\] Aborting Ring(Reduce|Gather)",
                            r"base_collective_executor\.cc:\d+\] BaseCollectiveExecutor::StartAbort")

# The filter process of hold_back_native_lines: copies its input to its output, less the
# native lines matching argv[1] and the lines of their messages (up to the next native line,
# or a line of the program's own or of Python's).
_FILTER = r"""
import re, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)  # it ends when its input does
signal.signal(signal.SIGTERM, signal.SIG_IGN)
held = re.compile(sys.argv[1])
native = re.compile(r"[IWEF][0-9]{4} [0-9]{2}:[0-9]{2}:[0-9.]+ +[0-9]+ ")
own = re.compile(r"(Error:|Interrupted by|Traceback|Warning:|WARNING|ERROR|INFO)")
holding = False
for line in sys.stdin.buffer:
    text = line.decode(errors="replace")
    if native.match(text):
        holding = bool(held.search(text))
    elif own.match(text):
        holding = False
    if not holding:
        sys.stdout.buffer.write(line)
        sys.stdout.buffer.flush()
"""
_filters = []  # the filter process, kept while this process runs


def hold_back_native_lines(patterns):
    """From now on, this process's stderr (Python's and TensorFlow's native
    lines) goes through a filter process that drops the native log lines
    matching one of ``patterns`` (regular expressions), with the lines of their
    messages; every other line passes at once, and the filter outlives this
    process long enough to pass on its last lines (a crash's too). Nothing is
    held back with ``--verbosity`` or ``TFVAMP_TRACEBACK=1``."""
    if show_traceback():
        return
    sys.stderr.flush()
    process = subprocess.Popen([sys.executable, "-c", _FILTER, "|".join(patterns)],
                               stdin=subprocess.PIPE, stdout=sys.stderr.fileno())
    os.dup2(process.stdin.fileno(), sys.stderr.fileno())
    process.stdin.close()  # fd 2 is now its input's only writer: it ends with this process
    _filters.append(process)


def command_line():
    """The command this process was started with, as a user types it."""
    program = sys.argv[0]
    if program.endswith(".py") and os.path.basename(os.path.dirname(program)) == "trainers":
        program = f"-m trainers.{os.path.basename(program)[:-3]}"
    return f"python {program} {shlex.join(sys.argv[1:])}".rstrip()


# -- interrupts -------------------------------------------------------------
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Interrupted(Exception):
    """The program was stopped by ``signum`` (SIGINT or SIGTERM); ``message``
    says where it stopped and what was kept."""

    def __init__(self, signum, message=None):
        super().__init__(message or (
            f"Interrupted by {signal.Signals(signum).name}. Every file is written whole or not at "
            f"all; to go on, run again: {command_line()}"))
        self.signum = signum
        self.exit_code = EXIT_CODES[signum]


_interrupts = {"deferring": False, "pending": None}


def _on_signal(signum, frame):
    if _interrupts["deferring"] and _interrupts["pending"] is None:
        _interrupts["pending"] = signum  # the program stops at its next safe point
        return
    raise Interrupted(signum)  # outside a deferred block, or a second signal: now


def handle_interrupts():
    """Makes SIGTERM, and SIGINT unless it is ignored (a job started with
    ``nohup`` or in the background), raise ``Interrupted``."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)


@contextlib.contextmanager
def deferred_interrupts():
    """Inside the block a first SIGINT/SIGTERM is only recorded, for the
    program to act on at a safe point (``pending_interrupt()``); a second one
    stops it at once."""
    _interrupts.update(deferring=True, pending=None)
    try:
        yield
    finally:
        _interrupts["deferring"] = False


def pending_interrupt():
    """The signal recorded inside ``deferred_interrupts()``, or ``None``."""
    return _interrupts["pending"]


# -- failures as one line ---------------------------------------------------
def show_traceback():
    """Whether a failure prints its traceback: with ``--verbosity`` or ``TFVAMP_TRACEBACK=1``."""
    return verbosity_given() or os.environ.get("TFVAMP_TRACEBACK", "") not in ("", "0")


RETRY = ("run the same command again: every file is written whole or not at all, so nothing "
         "written before is lost")


def _os_error_line(error):
    where = error.filename or "a file"
    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return f"no space to write {where} ({error.strerror}): free some space and {RETRY}."
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (f"{where}: {error.strerror}. Give yourself access to it (or choose another "
                "--output_dir / --data_dir).")
    if error.errno in (errno.EEXIST, errno.ENOTDIR):
        return (f"{where}: {error.strerror}: a file is where a directory must be; "
                "choose another --output_dir (or move the file).")
    return f"{where}: {error.strerror}."


def error_line(error):
    """``error`` as one line for stderr: what happened and what to do."""
    if isinstance(error, OSError) and error.errno is not None and error.strerror:
        return f"Error: {_os_error_line(error)}"
    text = str(error).strip() or type(error).__name__
    if isinstance(error, OSError):
        return f"Error: {' '.join(text.split())}"
    if type(error).__module__.startswith("tensorflow") and hasattr(error, "message"):
        # TensorFlow's errors (tf.errors.OpError): their first line says what failed.
        text = error.message.strip().splitlines()[0] if error.message.strip() else text
        if re.search(r"No space left|Disk quota|File too large", text):
            return f"Error: TensorFlow could not write a file ({text}): free some space and {RETRY}."
        if re.search(r"Permission denied|Read-only file system", text):
            return f"Error: TensorFlow could not write a file ({text}): check the permissions."
        if type(error).__name__ == "DataLossError":
            return (f"Error: a file TensorFlow read is corrupt or truncated ({text}); restore it "
                    "from a copy (a run resumes from checkpoints/state only when its files are whole).")
        return f"Error: TensorFlow: {text}"
    if type(error).__module__.split(".")[0] in ("tfvamp", "trainers"):
        return f"Error: {' '.join(text.split())}"
    return (f"Error: unexpected {type(error).__name__}: {' '.join(text.split())[:500]} -- rerun "
            "with TFVAMP_TRACEBACK=1 to see where, and report it with the traceback.")


def _main_with_one_line_errors(main):
    def wrapped(argv):
        try:
            return main(argv)
        except app.UsageError:
            raise
        except (Interrupted, KeyboardInterrupt) as interrupt:
            if show_traceback():
                traceback.print_exc()
            if not isinstance(interrupt, Interrupted):
                interrupt = Interrupted(signal.SIGINT)
            print(interrupt, file=sys.stderr, flush=True)
            sys.exit(interrupt.exit_code)
        except Exception as error:  # noqa: BLE001 (every failure: one line)
            if show_traceback():
                raise
            logging.set_verbosity(logging.ERROR)  # TensorFlow's warnings as its objects go
            sys.exit(error_line(error))
    return wrapped


def run(main):
    """``absl.app.run(main)`` with ``--config``/``--flagfile`` resolved, every
    failure of ``main`` one line on stderr, and SIGINT/SIGTERM handled
    (``handle_interrupts``)."""
    try:
        argv = resolve_config_args(sys.argv)
    except app.UsageError as error:
        sys.exit(f"Error: {error}")
    handle_interrupts()
    app.run(_main_with_one_line_errors(main), argv=argv)
