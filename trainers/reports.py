"""What a run reports: the results table it prints, the test log-likelihood
with its Monte Carlo error, and the fingerprint of its weights."""
import hashlib

import numpy as np


def weights_fingerprint(model):
    """SHA-256 of every model variable's bytes: equal fingerprints, equal weights."""
    digest = hashlib.sha256()
    for variable in model.variables:
        digest.update(np.ascontiguousarray(np.asarray(variable)).tobytes())
    return digest.hexdigest()


def results_table(rows):
    """A plain-text table of ``(name, value)`` rows."""
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def evaluation_rows(results):
    rows = [("test log-likelihood (IS)", f"{format_log_likelihood(results)} nats "
                                         f"(S={results['eval_samples']})")]
    if "test_log_likelihood_bias" in results:  # results of older runs have none
        rows.append(("estimated IS bias", f"{results['test_log_likelihood_bias']:.4f} nats (delta method, "
                                          "-se^2/2 per image; a lower bound at small ESS)"))
    if "test_effective_sample_size" in results:  # a small one makes the MC error unreliable too
        rows.append(("effective sample size", f"{results['test_effective_sample_size']:.1f} of "
                                              f"{results['eval_samples']} (mean per image)"))
    rows += [
        ("test ELBO", f"{results['test_elbo']:.2f}"),
        ("test reconstruction", f"{results['test_reconstruction']:.2f}"),
        ("test KL", f"{results['test_kl']:.2f}"),
    ]
    monitor = results.get("monitor")  # trainers.train's runs since the prior monitor
    if monitor is not None:
        rows.append(("active units", f"{monitor['active_units']} (top latent, on {monitor['images']} "
                                     "training images)"))
        if "num_components" in monitor:
            rows.append(("prior components", f"effective {monitor['effective_components']:.1f} of "
                                             f"{monitor['num_components']}, {monitor['unused_components']} unused"))
    return rows


def format_log_likelihood(results):
    """The test log-likelihood with its Monte Carlo standard error, e.g.
    ``-124.96 ± 0.02 (MC)`` (the error's first significant digit decides the
    decimals, at least 2); without one (results of older runs), the mean alone."""
    mean, error = results["test_log_likelihood"], results.get("test_log_likelihood_se")
    if error is None or not np.isfinite(error):
        return f"{mean:.2f}"
    decimals = max(2, -int(np.floor(np.log10(error)))) if error > 0 else 2
    return f"{mean:.{decimals}f} ± {error:.{decimals}f} (MC)"
