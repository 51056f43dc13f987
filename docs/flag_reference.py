"""The command-line flags of the trainers, read from their own absl definitions.

``docs/flags_hook.py`` puts ``markdown(program)`` where a page says
``<!-- flags: trainers.train -->``; ``tests/test_doc_code.py`` checks the
flags that the pages' shell commands use against ``flags(program)``.

Each program is imported in a child process of its own: the programs define
some flags with the same names in absl's one global registry. Their modules
import neither TensorFlow nor tfvamp (flags are checked before TensorFlow
loads, ``trainers/cli.py``), so this takes about a second per program.

    python docs/flag_reference.py trainers.train     # prints the Markdown
"""
import functools
import json
import os
import re
import subprocess
import sys

PROGRAMS = ("trainers.train", "trainers.evaluate", "trainers.export")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs in the child: every flag the program defines, and every name absl accepts.
_DUMP = r"""
import importlib, json, sys
from absl import flags

module = importlib.import_module(sys.argv[1])
defined = []
for flag in flags.FLAGS.get_flags_for_module(module):
    parser = flag.parser
    defined.append({
        "name": flag.name,
        "type": flag.flag_type(),
        "boolean": flag.boolean,
        "default": flag.default,
        "help": flag.help,
        "choices": list(getattr(parser, "enum_values", None) or []),
        "lower_bound": getattr(parser, "lower_bound", None),
        "required": any("must have a value other than None" in getattr(v, "message", "")
                        for v in flag.validators),
    })
json.dump({"doc": module.__doc__ or "", "flags": defined,
           "accepted": sorted(set(flags.FLAGS) | {f"no{f.name}" for f in flags.FLAGS.get_flags_for_module(module) if f.boolean})},
          sys.stdout)
"""


@functools.lru_cache(maxsize=None)
def read(program):
    """``{"doc", "flags", "accepted"}`` of ``program`` (e.g. ``"trainers.train"``)."""
    if program not in PROGRAMS:
        raise ValueError(f"{program!r} is none of {PROGRAMS}")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [REPO_ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    env.pop("TFVAMP_LOGICAL_CPU_DEVICES", None)  # a flag's default read from it: show the code's
    result = subprocess.run([sys.executable, "-c", _DUMP, program], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"reading the flags of {program} failed:\n{result.stderr}")
    return json.loads(result.stdout)


def flags(program):
    """The flag definitions of ``program``, in name order."""
    return sorted(read(program)["flags"], key=lambda flag: flag["name"])


def accepted(program):
    """Every ``--NAME`` the program accepts: its own flags (booleans also as
    ``--noNAME``) and absl's (``--flagfile``, ``--helpshort``, ``--verbosity``, ...)."""
    return set(read(program)["accepted"])


def _help(flag):
    """The flag's help, less the ``<a|b>: `` absl puts before an enum's."""
    return _rst_to_markdown(re.sub(r"^<[^>]*>: ", "", flag["help"]))


def _rst_to_markdown(text):
    return re.sub(r"``(.+?)``", r"`\1`", text)


def _cell(text):
    return " ".join(str(text).split()).replace("|", "\\|")


def _default(flag):
    if flag["required"]:
        return "required"
    if flag["default"] is None:
        return "none"
    if flag["boolean"]:
        return "true" if flag["default"] else "false"
    return f"`{flag['default']}`"


def _values(flag):
    if flag["choices"]:
        return ", ".join(f"`{choice}`" for choice in flag["choices"])
    if flag["boolean"]:
        return f"`--{flag['name']}` / `--no{flag['name']}`"
    kind = {"int": "integer", "float": "number", "string": "text"}.get(flag["type"], flag["type"])
    if flag["lower_bound"] is not None:
        kind += f" ≥ {flag['lower_bound']}"
    return kind


def markdown(program):
    """A Markdown section on ``program``: its docstring, then one table row per flag."""
    info = read(program)
    lines = [_rst_to_markdown(info["doc"]).strip(), "",
             "| flag | default | values | what it does |", "| --- | --- | --- | --- |"]
    for flag in flags(program):
        lines.append(f"| `--{flag['name']}` | {_cell(_default(flag))} | {_cell(_values(flag))} "
                     f"| {_cell(_help(flag))} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    for name in sys.argv[1:] or PROGRAMS:
        print(markdown(name))
