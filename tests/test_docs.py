"""The API reference (mkdocs + mkdocstrings) builds from the docstrings with
warnings as errors: ``mkdocs build --strict``, as docs/index.md documents.

MkDocs comes with the test extra (``pip install -e ".[test]"``); without it
this test fails rather than skips. The build reads the sources statically
(griffe), importing neither tfvamp nor TensorFlow: a few seconds.
"""
import ast
import os
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# page of the site -> objects it must document (their heading anchors)
EXPECTED = {
    "api/tfvamp": ["tfvamp"],
    "api/priors": ["tfvamp.priors", "tfvamp.priors.VampPrior",
                   "tfvamp.priors.DiagonalGaussianMixture",
                   "tfvamp.priors.FullCovarianceGaussianMixture",
                   "tfvamp.priors.MixtureOfGaussiansPrior", "tfvamp.priors.StandardNormalPrior"],
    "api/likelihoods": ["tfvamp.likelihoods"],
    "api/layers": ["tfvamp.layers"],
    "api/objectives": ["tfvamp.objectives"],
    "api/evaluation": ["tfvamp.evaluation"],
    "api/models": ["tfvamp.models", "tfvamp.models.build_model", "tfvamp.models.base",
                   "tfvamp.models.base.LatentVariableModel", "tfvamp.models.vae.VAE",
                   "tfvamp.models.hvae.HVAE", "tfvamp.models.networks"],
    "api/datasets": ["tfvamp.datasets", "tfvamp.datasets.load_dataset",
                     "tfvamp.datasets.core.ImageDataset"],
    "api/callbacks": ["tfvamp.callbacks"],
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
    own = (site / "own_model" / "index.html").read_text(encoding="utf-8")
    assert "posterior_outputs" in own and "bernoulli_probs" in own  # the conventions page
    models = (site / "api" / "models" / "index.html").read_text(encoding="utf-8")
    assert "Parameters:" in models  # LatentVariableModel's "Args:" section, parsed
    # every public name (tfvamp.__all__) is listed on the package's page, with a link
    package = (site / "api" / "tfvamp" / "index.html").read_text(encoding="utf-8")
    unlisted = [name for name in public_names() if f"<code>tfvamp.{name}</code></a>" not in package]
    assert not unlisted, f"api/tfvamp: no link to {unlisted}"


def public_names():
    """``tfvamp.__all__`` without dunders, read from the source (no import)."""
    with open(os.path.join(REPO_ROOT, "tfvamp", "__init__.py"), encoding="utf-8") as file:
        tree = ast.parse(file.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets):
            return [name for name in ast.literal_eval(node.value) if not name.startswith("__")]
    return []
