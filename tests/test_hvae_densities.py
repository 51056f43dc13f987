"""The HVAE's two-level densities against a float64 NumPy computation from its
own weights:

    log p(z2) + log p(z1 | z2)    and    log q(z2 | x) + log q(z1 | x, z2)

at the samples ``log_terms`` drew (recorded as they are drawn), for the
standard prior and the VampPrior (a mixture of ``q(z2 | u_k)``)."""
import numpy as np
import pytest
import tensorflow as tf

from tfvamp import gaussians, models, priors


def _gated_dense(layer, h):
    """``GatedDense``: ``(h W + b)[:u] * sigmoid((h W + b)[u:])`` (linear activation)."""
    kernel, bias = (np.asarray(v, np.float64) for v in (layer.dense.kernel, layer.dense.bias))
    value, gate = np.split(h @ kernel + bias, 2, axis=-1)
    return value / (1.0 + np.exp(-gate))


def _dense(layer, h):
    return h @ np.asarray(layer.kernel, np.float64) + np.asarray(layer.bias, np.float64)


def _gaussian_head(head, h):
    """``DiagonalGaussianHead``: mean and log-variance bounded by hardtanh(-6, 2)."""
    return _dense(head.mean, h), np.clip(_dense(head.log_variance, h), -6.0, 2.0)


def _mlp_encoder(network, h):
    """``gated_mlp_encoder`` (``q(z2|x)``, ``p(z1|z2)``): two GatedDense, then the head."""
    h = _gated_dense(network.get_layer("gated_dense_1"), h)
    h = _gated_dense(network.get_layer("gated_dense_2"), h)
    return _gaussian_head(network.get_layer("gaussian"), h)


def _log_normal(z, mean, log_variance):
    """``log N(z | mean, diag(exp(log_variance)))``, summed over the last axis."""
    return -0.5 * np.sum(np.log(2 * np.pi) + log_variance + (z - mean) ** 2 / np.exp(log_variance),
                         axis=-1)


def _reference_densities(model, x, z2, z1):
    """``(log p(z2) + log p(z1|z2), log q(z2|x) + log q(z1|x,z2))``, ``[S, B]``, in float64."""
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    q_z2 = _mlp_encoder(model.q_z2, x)  # each [B, d]
    features = _gated_dense(model.q_z1_features.get_layer("gated_dense_x"), x)  # [B, H]
    h_z2 = _gated_dense(model.q_z1.get_layer("gated_dense_z2"), z2)  # [S, B, H]
    joint = np.concatenate([np.broadcast_to(features, h_z2.shape[:-1] + features.shape[-1:]), h_z2], -1)
    q_z1 = _gaussian_head(model.q_z1.get_layer("gaussian"),
                          _gated_dense(model.q_z1.get_layer("gated_dense_joint"), joint))
    p_z1 = _mlp_encoder(model.p_z1, z2)
    if isinstance(model.prior, priors.VampPrior):
        u = np.clip(np.asarray(model.prior.pseudo_inputs_raw, np.float64), 0.0, 1.0)  # hardtanh
        means, log_variances = _mlp_encoder(model.q_z2, u)  # [K, d]
        log_components = _log_normal(z2[..., None, :], means, log_variances)  # [S, B, K]
        top = log_components.max(axis=-1)
        log_p_z2 = top + np.log(np.mean(np.exp(log_components - top[..., None]), axis=-1))
    else:
        log_p_z2 = _log_normal(z2, 0.0, 0.0)
    return (log_p_z2 + _log_normal(z1, *p_z1),
            _log_normal(z2, *q_z2) + _log_normal(z1, *q_z1))


@pytest.mark.parametrize("prior", ["standard", "vamp"])
def test_hvae_log_prior_and_log_posterior_match_numpy_float64(prior, monkeypatch):
    model = models.build_model("hvae", input_shape=(4, 4, 1), prior=prior, latent_dim=3,
                               hidden_units=8, num_components=5, seed=0)
    rng = np.random.default_rng(1)
    for variable in model.variables:  # every weight and bias away from its initial value
        if variable.trainable:
            variable.assign(rng.normal(0.0, 0.6, variable.shape).astype(np.float32))
    if prior == "vamp":  # some pseudo-input values outside [0, 1], where hardtanh clips
        model.prior.pseudo_inputs_raw.assign(rng.uniform(-0.5, 1.5, model.prior.pseudo_inputs_raw.shape))
    x = (rng.random((3, 4, 4, 1)) < 0.5).astype(np.float32)

    drawn = []  # z2 then z1, as log_terms draws them
    sample_n = gaussians.PhiloxNormal._sample_n

    def recording_sample_n(self, n, seed=None):
        value = sample_n(self, n, seed)
        drawn.append(value.numpy())
        return value

    monkeypatch.setattr(gaussians.PhiloxNormal, "_sample_n", recording_sample_n)
    terms = model.log_terms(tf.constant(x), model.prior_distribution(), num_samples=4)
    z2, z1 = (np.asarray(z, np.float64).reshape(4, 3, 3) for z in drawn)  # z1: one draw of [S, B]

    log_prior, log_posterior = _reference_densities(model, x, z2, z1)
    np.testing.assert_allclose(terms.log_prior.numpy(), log_prior, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(terms.log_posterior.numpy(), log_posterior, rtol=1e-5, atol=1e-4)
