"""MkDocs hook: tables generated from the code, so that they cannot drift.

* ``<!-- flags: trainers.train -->`` (or ``trainers.evaluate``,
  ``trainers.export``): that program's docstring and a table of its flags,
  read from their absl definitions (``docs/flag_reference.py``);
* ``<!-- configs -->``: the paper's experiments shipped in ``configs/``, one
  row per dataset, one column per model, the priors in each cell.
"""
import glob
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flag_reference  # noqa: E402  (docs/flag_reference.py)

FLAGS_MARKER = re.compile(r"<!-- flags: ([\w.]+) -->")
CONFIGS_MARKER = "<!-- configs -->"
MODELS = ("vae", "hvae", "convhvae", "pixelhvae")
CONFIG_NAME = re.compile(rf"(?P<dataset>\w+?)_(?P<model>{'|'.join(MODELS)})_(?P<prior>\w+)\.cfg")


def configs_table(root):
    """Markdown table of ``configs/DATASET_MODEL_PRIOR.cfg``."""
    cells = {}
    for path in sorted(glob.glob(os.path.join(root, "configs", "*.cfg"))):
        match = CONFIG_NAME.fullmatch(os.path.basename(path))
        if match is None:
            raise ValueError(f"{path}: not named DATASET_MODEL_PRIOR.cfg")
        cells.setdefault(match["dataset"], {}).setdefault(match["model"], []).append(match["prior"])
    order = {"standard": 0, "mog": 1, "vamp": 2}
    lines = ["| dataset | " + " | ".join(f"`{m}`" for m in MODELS) + " |",
             "| --- |" + " --- |" * len(MODELS)]
    for dataset, models in sorted(cells.items()):
        row = [", ".join(sorted(models.get(m, []), key=lambda p: (order.get(p, 3), p))) or "–"
               for m in MODELS]
        lines.append(f"| `{dataset}` | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def on_page_markdown(markdown, page, config, files, **kwargs):
    markdown = FLAGS_MARKER.sub(lambda match: flag_reference.markdown(match.group(1)), markdown)
    if CONFIGS_MARKER in markdown:
        markdown = markdown.replace(
            CONFIGS_MARKER, configs_table(os.path.dirname(config.config_file_path)))
    return markdown
