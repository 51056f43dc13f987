"""The documentation site (guides, flag reference, API reference from the
docstrings) builds with warnings as errors: ``mkdocs build --strict``, as
docs/index.md documents.

MkDocs and Material for MkDocs come with the test extra (``pip install -e
".[test]"``); without them this test fails rather than skips. The API
reference is read from the sources statically (griffe) and the flag reference
imports only the trainers' flag modules: neither imports TensorFlow, a few
seconds. (``tests/test_doc_code.py`` runs the pages' code.)
"""
import ast
import os
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

sys.path.insert(0, os.path.join(REPO_ROOT, "docs"))
import flag_reference  # noqa: E402  (docs/flag_reference.py)

# guide -> sections it must have (their heading anchors), the places other work fills in included
GUIDES = {
    "guides/experiments": ["the-configs", "the-protocol", "the-models"],
    "guides/own-model": ["encoder-and-decoder-conventions", "priors", "likelihoods",
                         "saving-loading-and-export"],
    "guides/training": ["the-run-directory", "resume", "one-run-per-directory", "interrupts",
                        "precision-precision", "devices-and-tfdistribute-strategy",
                        "several-machines"],
    "guides/evaluation": ["re-evaluating-a-run", "sharding-resuming-and-the-monte-carlo-error",
                          "the-figures-of-a-run"],
    "guides/serving": ["the-signatures", "rest-and-grpc-bodies", "the-client"],
    "guides/datasets": ["where-the-files-come-from", "through-tensorflow-datasets"],
    "guides/reproducing": ["what-we-found", "test-log-likelihood-per-configuration"],
    "guides/speed": ["time-per-model-on-a-cpu", "last-measured"],
}

# page of the site -> objects it must document (their heading anchors)
EXPECTED = {
    "api/tfvamp": ["tfvamp"],
    "api/priors": ["tfvamp.priors", "tfvamp.priors.VampPrior",
                   "tfvamp.priors.MixtureOfGaussiansPrior", "tfvamp.priors.StandardNormalPrior"],
    "api/gaussians": ["tfvamp.gaussians", "tfvamp.gaussians.DiagonalGaussianMixture",
                      "tfvamp.gaussians.FullCovarianceGaussianMixture"],
    "api/posteriors": ["tfvamp.posteriors", "tfvamp.posteriors.check_encoder",
                       "tfvamp.posteriors.posterior_mixture"],
    "api/likelihoods": ["tfvamp.likelihoods"],
    "api/layers": ["tfvamp.layers"],
    "api/objectives": ["tfvamp.objectives"],
    "api/evaluation": ["tfvamp.evaluation"],
    "api/diagnostics": ["tfvamp.diagnostics"],
    "api/models": ["tfvamp.models", "tfvamp.models.build_model", "tfvamp.models.base",
                   "tfvamp.models.base.LatentVariableModel", "tfvamp.models.inputs",
                   "tfvamp.models.vae.VAE",
                   "tfvamp.models.hvae.HVAE", "tfvamp.models.networks"],
    "api/datasets": ["tfvamp.datasets", "tfvamp.datasets.load_dataset",
                     "tfvamp.datasets.core.ImageDataset"],
    "api/callbacks": ["tfvamp.callbacks"],
    "api/checkpoints": ["tfvamp.checkpoints", "tfvamp.checkpoints.restore_best_weights"],
    "api/errors": ["tfvamp.errors", "tfvamp.errors.NonFiniteInputError"],
    "api/optimizers": ["tfvamp.optimizers"],
    "api/export": ["tfvamp.export"],
    "api/serving": ["tfvamp.serving"],
    "api/figures": ["tfvamp.figures"],
    "api/distribute": ["tfvamp.distribute"],
}


def test_api_reference_builds_with_warnings_as_errors(tmp_path):
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{output}"

    for page, objects in EXPECTED.items():
        html = (site / page / "index.html").read_text(encoding="utf-8")
        missing = [name for name in objects if f'id="{name}"' not in html]
        assert not missing, f"{page}: no documentation of {missing}"
    own = (site / "guides" / "own-model" / "index.html").read_text(encoding="utf-8")
    assert "posterior_outputs" in own and "bernoulli_probs" in own  # the conventions page
    models = (site / "api" / "models" / "index.html").read_text(encoding="utf-8")
    assert "Parameters:" in models  # LatentVariableModel's "Args:" section, parsed
    # every public name (tfvamp.__all__) is listed on the package's page, with a link
    package = (site / "api" / "tfvamp" / "index.html").read_text(encoding="utf-8")
    unlisted = [name for name in public_names() if f"<code>tfvamp.{name}</code></a>" not in package]
    assert not unlisted, f"api/tfvamp: no link to {unlisted}"

    for page, sections in GUIDES.items():
        html = (site / page / "index.html").read_text(encoding="utf-8")
        missing = [anchor for anchor in sections if f'id="{anchor}"' not in html]
        assert not missing, f"{page}: no sections {missing}"
    # the flag reference lists every flag of every program, from the flags' definitions
    flags_page = (site / "reference" / "flags" / "index.html").read_text(encoding="utf-8")
    for program in flag_reference.PROGRAMS:
        unlisted = [flag["name"] for flag in flag_reference.flags(program)
                    if f"<code>--{flag['name']}</code>" not in flags_page]
        assert not unlisted, f"reference/flags: {program} flags missing: {unlisted}"
    assert "<!-- flags:" not in flags_page
    # the configs table is generated from configs/: every config is in it
    experiments = (site / "guides" / "experiments" / "index.html").read_text(encoding="utf-8")
    assert "<code>dynamic_mnist</code></td>" in experiments and "vampdata" in experiments
    # the figures of the guides are in the site, and small
    images = sorted((site / "images").glob("*.png"))
    assert len(images) >= 5 and sum(image.stat().st_size for image in images) < 1_000_000
    # RESULTS.md and bench/README.md are included as they stand
    assert "Reproducing the paper on a CPU" in (
        site / "guides" / "reproducing" / "index.html").read_text(encoding="utf-8")


def public_names():
    """``tfvamp.__all__`` without dunders, read from the source (no import)."""
    with open(os.path.join(REPO_ROOT, "tfvamp", "__init__.py"), encoding="utf-8") as file:
        tree = ast.parse(file.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets):
            return [name for name in ast.literal_eval(node.value) if not name.startswith("__")]
    return []


def test_readme_results_are_those_of_results_md():
    """README.md's results table quotes RESULTS.md's (generated) table, cell for cell."""
    import re

    def read(name):
        with open(os.path.join(REPO_ROOT, name), encoding="utf-8") as file:
            return file.read()

    readme, results = read("README.md"), read("RESULTS.md")
    rows = re.findall(r"^\| `(\w+)` \| (-[0-9.]+ ± [0-9.]+) \| \**(-[0-9.]+ ± [0-9.]+)\** \|$",
                      readme, flags=re.M)
    assert len(rows) == 2, "README.md's results table (vae and hvae rows) not found"
    for model, standard, vamp in rows:
        for prior, value in (("standard", standard), ("vamp", vamp)):
            assert f"| caltech {model} {prior} He | 3 | {value} |" in results, (
                f"README.md: caltech {model} {prior} {value} is not RESULTS.md's")
