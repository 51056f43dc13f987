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
