"""The code in README.md and the guides (docs/**/*.md) runs as written.

Every ```` ```python ```` block is run, unless the line right before it says
why not, as ``<!-- not run: needs a TensorFlow Serving server -->`` (a marker
without a reason fails). The blocks of one page build on each other: they run
in order, in one namespace, in a child process of their own (with a time
limit, in an empty working directory), and a failure names the page and line.

Shell blocks are not run, but every ``python -m trainers.X --flag`` in them
must name a flag that program has (``docs/flag_reference.py``).
"""
import json
import os
import re
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO_ROOT, "docs"))
import flag_reference  # noqa: E402  (docs/flag_reference.py)

FENCE = re.compile(r"^(?P<indent> *)```(?P<language>[\w-]*)\s*$")
NOT_RUN = re.compile(r"^\s*<!--\s*not run\b:?(?P<reason>.*?)-->\s*$")
PAGE_TIMEOUT_S = 600

# Runs in the child: each block of the page in one namespace, named page:line in tracebacks.
_RUNNER = r"""
import json, sys
namespace = {"__name__": "__main__"}
for line, code in json.load(sys.stdin):
    print(f"--- {sys.argv[1]}:{line}", flush=True)
    exec(compile(code, f"{sys.argv[1]}:{line}", "exec"), namespace)
"""


def pages():
    """README.md and every Markdown file under docs/, relative to the repository."""
    found = ["README.md"]
    for directory, _, names in os.walk(os.path.join(REPO_ROOT, "docs")):
        found += [os.path.relpath(os.path.join(directory, name), REPO_ROOT)
                  for name in sorted(names) if name.endswith(".md")]
    return sorted(found)


def code_blocks(page):
    """``[(language, first line number, code, reason not run or None)]`` of ``page``."""
    with open(os.path.join(REPO_ROOT, page), encoding="utf-8") as file:
        lines = file.read().splitlines()
    blocks, index = [], 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, language = len(opening["indent"]), opening["language"]
        end = index + 1
        while end < len(lines) and not re.match(r"^ *```\s*$", lines[end]):
            end += 1
        code = "\n".join(line[indent:] for line in lines[index + 1:end]) + "\n"
        previous = next((line for line in reversed(lines[:index]) if line.strip()), "")
        marker = NOT_RUN.match(previous)
        reason = None if marker is None else marker["reason"].strip()
        blocks.append((language, index + 2, code, reason))
        index = end + 1
    return blocks


def python_pages():
    return [page for page in pages() if any(b[0] == "python" for b in code_blocks(page))]


def run_page(page, tmp_path):
    blocks = [(line, code) for language, line, code, reason in code_blocks(page)
              if language == "python" and reason is None]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [REPO_ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
        TF_CPP_MIN_LOG_LEVEL="2", MPLBACKEND="Agg")
    try:
        result = subprocess.run([sys.executable, "-c", _RUNNER, page], input=json.dumps(blocks),
                                cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=PAGE_TIMEOUT_S)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"{page}: its code blocks ran longer than {PAGE_TIMEOUT_S} s:\n{error.stdout}")
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"a code block of {page} failed:\n{output[-6000:]}"
    return result.stdout


def test_every_page_is_found_and_python_blocks_exist():
    assert "README.md" in pages() and "docs/guides/own-model.md" in pages()
    assert python_pages(), "no ```python block anywhere"


@pytest.mark.parametrize("page", pages())
def test_blocks_not_run_say_why(page):
    unexplained = [line for _, line, _, reason in code_blocks(page) if reason == ""]
    assert not unexplained, (f"{page}: the blocks at lines {unexplained} are marked not run "
                             "without a reason (<!-- not run: REASON -->)")


@pytest.mark.parametrize("page", [p for p in python_pages() if p != "docs/guides/own-model.md"])
def test_python_blocks_run(page, tmp_path):
    run_page(page, tmp_path)


def test_own_model_guide_runs_and_trains(tmp_path):
    """The guide's model trains (an untrained one is near -550 nats), saves with the
    prior sharing the encoder again, and exports; its bfloat16 encoder trains."""
    printed = run_page("docs/guides/own-model.md", tmp_path)
    log_likelihood = float(re.search(r"test log-likelihood of 100 images: (-?[0-9.]+) nats",
                                     printed).group(1))
    assert -250 < log_likelihood < -80
    assert "prior shares the encoder: True" in printed
    # bfloat16 networks of yours, their distribution's parameters float32
    assert "bfloat16 bfloat16 <dtype: 'float32'>" in printed
    assert (tmp_path / "my_vae.keras").exists()
    assert (tmp_path / "my_vae_serving" / "saved_model.pb").exists()


def trainer_commands(code, with_values=False):
    """``(program, [flag names])`` of each ``python -m trainers.X ...`` in a shell block
    (``[(name, value or None)]`` with ``with_values``)."""
    joined = re.sub(r"\\\n", " ", code)
    for line in joined.splitlines():
        line = line.split(" #", 1)[0]
        for match in re.finditer(r"python3? -m (trainers\.\w+)(.*?)(?=&&|\|\||;|\||>|$)", line):
            flags = re.findall(r"(?<!\S)--(\w+)(?:=(\S+))?", match[2])
            yield match[1], [(name, value or None) for name, value in flags] if with_values \
                else [name for name, _ in flags]


@pytest.mark.parametrize("page", pages())
def test_shell_commands_name_real_flags(page):
    unknown = []
    for language, line, code, _ in code_blocks(page):
        if language not in ("bash", "sh", "shell", "console"):
            continue
        for program, flags in trainer_commands(code, with_values=True):
            assert program in flag_reference.PROGRAMS, f"{page}:{line}: no program {program}"
            unknown += [f"{page}:{line}: {program} --{name}"
                        for name, _ in flags if name not in flag_reference.accepted(program)]
            unknown += [f"{page}:{line}: --config={value} (no configs/{value}.cfg)"
                        for name, value in flags if name == "config" and not os.path.exists(
                            os.path.join(REPO_ROOT, "configs", f"{value}.cfg"))]
    assert not unknown, "flags that do not exist:\n" + "\n".join(unknown)


def test_the_flag_checker_catches_a_wrong_flag():
    (command,) = trainer_commands("python -m trainers.train --epochs=3 --epoch=3 > log\n")
    assert command == ("trainers.train", ["epochs", "epoch"])
    assert "epochs" in flag_reference.accepted("trainers.train")
    assert "epoch" not in flag_reference.accepted("trainers.train")
    assert "noclamp_bernoulli" in flag_reference.accepted("trainers.train")
    (command,) = trainer_commands("python -m trainers.train --config=caltech_vae_vamp \\\n"
                                  "  --nojit_compile && ls", with_values=True)
    assert command == ("trainers.train", [("config", "caltech_vae_vamp"), ("nojit_compile", None)])


def test_a_broken_block_fails_naming_its_page_and_line(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("Text.\n\n```python\nx = 1\n```\n\n<!-- not run: needs a GPU -->\n"
                    "```python\nraise SystemExit(3)\n```\n\n<!-- not run -->\n```bash\nls\n```\n\n"
                    "  ```python\n  assert x == 2, 'x is not 2'\n  ```\n")
    blocks = code_blocks(str(page))
    assert [(language, line, reason) for language, line, _, reason in blocks] == [
        ("python", 4, None), ("python", 9, "needs a GPU"), ("bash", 14, ""), ("python", 18, None)]
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(AssertionError, match=r"(?s)page\.md:18.*x is not 2"):
        run_page(str(page), work)
