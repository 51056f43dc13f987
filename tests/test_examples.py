"""The examples run (shortened) and print what their docstrings promise."""
import os
import re
import sys

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
sys.path.insert(0, EXAMPLES)


def test_the_tabular_example_prints_both_priors_and_saves_and_exports(tmp_path, capsys):
    import tabular_vampprior

    results = tabular_vampprior.main(str(tmp_path), max_epochs=3, num_samples=50)
    printed = capsys.readouterr().out
    for prior in ("standard", "vamp"):
        line = re.search(rf"{prior} prior: test log-likelihood (-?[0-9.]+) nats \(IS, S=50\)",
                         printed)
        assert line and abs(float(line.group(1)) - results[prior]) < 0.01
    assert "same prior density True, encoder shared True" in printed
    assert re.search(r"of their values outside \[0, 1\]", printed)
    assert os.path.exists(tmp_path / "vamp.keras")
    assert os.path.exists(tmp_path / "serving" / "1" / "saved_model.pb")


def test_the_keras_vae_example_trains_with_the_vampprior_saves_and_reloads(tmp_path, capsys):
    import keras_vae_to_vampprior

    loss = keras_vae_to_vampprior.main(epochs=1, directory=str(tmp_path))
    assert loss == loss and loss < 545  # finite, below the ~545 nats of an untrained decoder
    assert "same log p(z) True, encoder shared True" in capsys.readouterr().out
    assert os.path.exists(tmp_path / "keras_vae_vampprior.keras")


def test_the_full_covariance_example_trains_both_posterior_families(tmp_path, capsys):
    import full_covariance_vampprior

    results = full_covariance_vampprior.main(epochs=1, num_samples=20, directory=str(tmp_path))
    printed = capsys.readouterr().out
    assert "full-covariance posteriors (FullCovarianceGaussianMixture)" in printed
    assert "diagonal posteriors (DiagonalGaussianMixture)" in printed
    assert printed.count("same log p(z) True, encoder shared True") == 2
    assert all(-600 < value < 0 for value in results.values())
