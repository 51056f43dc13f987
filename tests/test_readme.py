"""The README's Python snippets run as written."""
import os
import re

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def python_blocks(section):
    with open(README) as f:
        text = f.read()
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", body, flags=re.S)


def test_the_vampprior_snippet_runs_as_written(tmp_path, monkeypatch, capsys):
    (snippet,) = python_blocks("A VampPrior in your own model")
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    log_likelihood = float(re.search(r"test log-likelihood of 100 images: (-?[0-9.]+) nats",
                                     printed).group(1))
    assert -250 < log_likelihood < -80  # trained: an untrained model is near -550
    assert os.path.exists(tmp_path / "my_vae.keras")
    assert os.path.exists(tmp_path / "my_vae_serving" / "saved_model.pb")
    import keras
    restored = keras.models.load_model(tmp_path / "my_vae.keras")
    assert restored.prior.encoder is restored.encoder
