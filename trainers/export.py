r"""Exports a finished run's model for TensorFlow Serving again.

    python -m trainers.export --output_dir=runs/caltech_vae_vamp [--version=N]

Loads the newest export of the run (``OUTPUT_DIR/export/<model_name>/<version>``,
written with the best weights at the end of ``trainers.train``) and writes it
with the current signatures as a new version, ``--version`` or the next free
number. Prints the new export's path.
"""
import json
import os

from absl import app, flags

from trainers import cli, run_lock

flags.DEFINE_string("output_dir", None, "Directory of a finished trainers.train run.", required=True)
flags.DEFINE_integer("version", None, "Version to export as (default: the next free number); "
                     "an existing version is never overwritten.", lower_bound=1)
flags.DEFINE_string("model_name", None, "Model name under OUTPUT_DIR/export "
                    "(default: the run's --model).")

FLAGS = flags.FLAGS


def reexport(output_dir, version=None, model_name=None):
    """Writes the newest export of the run in ``output_dir`` as a new version; returns its path."""
    from tfvamp import export

    if model_name is None:
        results_path = os.path.join(output_dir, "results.json")
        if not os.path.exists(results_path):
            raise FileNotFoundError(f"{results_path} is missing: {output_dir} is not a finished "
                                    "trainers.train run (or pass --model_name)")
        with open(results_path) as f:
            model_name = json.load(f)["flags"]["model"]
    export_dir = os.path.join(output_dir, "export")
    existing = export.versions(os.path.join(export_dir, model_name))
    if not existing:
        raise FileNotFoundError(f"No export in {os.path.join(export_dir, model_name)}; "
                                "trainers.train writes one at the end of a run")
    model = export.load_model(os.path.join(export_dir, model_name, str(existing[-1])))
    return export.export_model(model, export_dir, model_name, version)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    with run_lock.hold(FLAGS.output_dir, "trainers.export"):
        cli.import_tensorflow()
        print(reexport(FLAGS.output_dir, FLAGS.version, FLAGS.model_name))


if __name__ == "__main__":
    cli.run(main)
