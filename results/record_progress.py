"""Records how far each unfinished run of RUNS_DIR got, and the command that resumes it.

    python results/record_progress.py [--with_checkpoints] RUNS_DIR [NAME ...]

A run lives on only through its checkpoints, on the machine that trained it; what it has
reached is kept in the repository as ``results/unfinished/NAME.json`` (read from the run's
``config.json`` and its latest state checkpoint: epochs completed, the best validation loss
and its epoch, the epochs since the last improvement), and ``results/make_table.py`` lists
those files in RESULTS.md. A run whose ``results.json`` exists is finished: its file here is
removed (``reproduce.sh`` keeps its results under ``results/``). ``NAME`` picks runs; by
default every run directory of RUNS_DIR named like ``reproduce.sh``'s runs.

``--with_checkpoints`` also keeps what resuming needs, for a run longer than a session on a
machine that is not kept: ``config.json``, the latest state checkpoint (weights, optimizer,
the trainer's history and early-stopping state) and the best epoch's, in
``results/unfinished/NAME/`` (about 36 MB for a static MNIST VAE + VampPrior).
``reproduce.sh`` starts a run from there when RUNS_DIR has none of its checkpoints.
"""
import datetime
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
UNFINISHED = os.path.join(HERE, "unfinished")
INITIALIZER_SHORT = {"he_normal": "he", "glorot_uniform": "glorot"}


def resume_command(name, config):
    """The reproduce.sh call that resumes run ``name``: from RUNS_DIR's checkpoints, else from
    those kept in ``results/unfinished/NAME/``, else (both gone) from scratch."""
    init = config.get("kernel_initializer", "he_normal")
    prefix = f"INIT={init} " if init != "he_normal" else ""
    return (f"{prefix}RUNS={config['config']} SEEDS={config['seed']} "
            f"bash results/reproduce.sh ../shared/data RUNS_DIR  # resumes RUNS_DIR/{name}")


def read_state(run_dir):
    """The trainer's state in the run's latest checkpoint, or None before the first epoch."""
    import tensorflow as tf

    path = tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints", "state"))
    if path is None:
        return None

    def value(name):
        return tf.train.load_variable(path, f"trainer/{name}/.ATTRIBUTES/VARIABLE_VALUE")

    history = json.loads(value("history").decode())
    return {"epochs_completed": int(value("epoch")), "best_epoch": int(value("best_epoch")),
            "best_validation_loss": round(float(value("best")), 3),
            "epochs_since_improvement": int(value("wait")),
            "last_validation_loss": round(history[-1]["val_loss"], 3) if history else None}


def keep_checkpoints(run_dir, name, best_epoch):
    """Copies what resuming run ``name`` needs to ``results/unfinished/NAME/`` (replacing an
    earlier copy): its config, its latest state checkpoint and its best epoch's checkpoint."""
    import tensorflow as tf

    state = tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints", "state"))
    best = os.path.join(run_dir, "checkpoints", "best", f"epoch-{best_epoch}")
    target = os.path.join(UNFINISHED, name)
    temporary = f"{target}.tmp"
    shutil.rmtree(temporary, ignore_errors=True)
    for sub in ("state", "best"):
        os.makedirs(os.path.join(temporary, "checkpoints", sub))
    shutil.copy2(os.path.join(run_dir, "config.json"), temporary)
    with open(os.path.join(temporary, "checkpoints", "state", "checkpoint"), "w") as f:
        f.write(f'model_checkpoint_path: "{os.path.basename(state)}"\n')
    for prefix, sub in ((state, "state"), (best, "best")):
        directory, stem = os.path.split(prefix)
        for file in os.listdir(directory):
            if file.startswith(f"{stem}."):
                shutil.copy2(os.path.join(directory, file), os.path.join(temporary, "checkpoints", sub))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(temporary, target)


def record(run_dir, name, today=None, with_checkpoints=False):
    """Writes (or removes, for a finished run) ``results/unfinished/NAME.json`` (and, with
    ``with_checkpoints``, ``results/unfinished/NAME/``); returns the record written, or None."""
    target = os.path.join(UNFINISHED, f"{name}.json")
    if os.path.exists(os.path.join(run_dir, "results.json")):
        if os.path.exists(target):
            os.remove(target)
        shutil.rmtree(os.path.join(UNFINISHED, name), ignore_errors=True)
        return None
    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    state = read_state(run_dir)
    if state is None:
        return None
    entry = {"run": name, "recorded": today or datetime.date.today().isoformat(),
             "flags": {k: v for k, v in config.items() if k not in ("data_dir", "output_dir")},
             **state, "resume": resume_command(name, config)}
    os.makedirs(UNFINISHED, exist_ok=True)
    temporary = f"{target}.tmp"
    with open(temporary, "w") as f:
        json.dump(entry, f, indent=1)
        f.write("\n")
    os.replace(temporary, target)
    if with_checkpoints:
        keep_checkpoints(run_dir, name, state["best_epoch"])
    return entry


def main(argv):
    with_checkpoints = "--with_checkpoints" in argv
    argv = [arg for arg in argv if arg != "--with_checkpoints"]
    if not argv:
        raise SystemExit(__doc__)
    runs_dir, names = argv[0], argv[1:]
    if not names:
        names = sorted(n for n in os.listdir(runs_dir)
                       if os.path.isfile(os.path.join(runs_dir, n, "config.json")))
    for name in names:
        entry = record(os.path.join(runs_dir, name), name, with_checkpoints=with_checkpoints)
        if entry is not None:
            print(f"{name}: {entry['epochs_completed']} epochs, best validation loss "
                  f"{entry['best_validation_loss']} at epoch {entry['best_epoch']}")


if __name__ == "__main__":
    main(sys.argv[1:])
