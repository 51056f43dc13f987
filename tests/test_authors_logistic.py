"""The authors' discretised logistic (``log_Logistic_256``) against numbers
computed by hand, and beside ours at an edge pixel."""
import math

import numpy as np
import pytest
import tensorflow as tf

import tfvamp
from tfvamp.likelihoods import AuthorsDiscretizedLogisticLikelihood, DiscretizedLogisticLikelihood


def _params(mean_logits, log_scales):
    """Decoder output ``[1, 1, P, 1, 2]`` for P pixels of a ``(1, P, 1)`` image."""
    return tf.constant(np.stack([mean_logits, log_scales], -1)[None, None, :, None, :], tf.float32)


def test_authors_logistic_matches_hand_computed_values():
    # Pixel 1: grey level 0 (x = 0.5/256, an edge bin); mean sigmoid(-8) = 3.4e-4, clamped up
    # to 1/512; log-scale 0, s = 1:
    #   log(sigmoid((1/256 - 1/512) / 1) - sigmoid((0 - 1/512) / 1) + 1e-7) = -6.931369728700897
    # Pixel 2: grey level 100 (x = 100.5/256); mean sigmoid(0) = 0.5; log-scale -10, bounded to
    # -4.5, s = exp(-4.5):
    #   log(sigmoid((101/256 - 0.5) / s) - sigmoid((100/256 - 0.5) / s) + 1e-7) = -10.705498227527327
    params = _params([-8.0, 0.0], [0.0, -10.0])
    x = tf.constant([[[[0.5 / 256], [100.5 / 256]]]], tf.float32)
    likelihood = tfvamp.get_likelihood("authors_discretized_logistic")
    assert isinstance(likelihood, AuthorsDiscretizedLogisticLikelihood)
    log_prob = likelihood.log_prob(params, x).numpy()
    assert log_prob.shape == (1,)
    assert log_prob[0] == pytest.approx(-6.931369728700897 - 10.705498227527327, abs=2e-4)
    np.testing.assert_allclose(likelihood.mean(params).numpy().ravel(), [1 / 512, 0.5], rtol=1e-6)


def test_authors_logistic_loses_the_tails_that_ours_puts_into_the_edge_bins():
    # The edge pixel above: ours gives bin 0 the whole lower tail, log sigmoid((1/256 - m) / s)
    # with the unclamped mean m = sigmoid(-8): -0.691363, 6.24 nats above the authors'.
    params = _params([-8.0], [0.0])
    x = tf.constant([[[[0.5 / 256]]]], tf.float32)
    ours = DiscretizedLogisticLikelihood().log_prob(params, x).numpy()[0]
    theirs = AuthorsDiscretizedLogisticLikelihood().log_prob(params, x).numpy()[0]
    sigmoid_m = 1 / (1 + math.exp(8.0))
    assert ours == pytest.approx(math.log(1 / (1 + math.exp(-(1 / 256 - sigmoid_m)))), abs=1e-5)
    assert ours - theirs == pytest.approx(6.24000640416083, abs=2e-4)
    # Their 256 bins' masses (each + 1e-7) add up to the mass on [0, 1] alone, the tails
    # below 0 and above 1 lost: sigmoid(1 - 1/512) - sigmoid(-1/512) + 256e-7 = 0.2311883.
    bins = tf.reshape((tf.range(256, dtype=tf.float32) + 0.5) / 256, [1, 1, 256, 1])
    masses = tf.exp(AuthorsDiscretizedLogisticLikelihood(event_ndims=0).log_prob(
        _params(np.full(256, -8.0), np.zeros(256)), bins)).numpy()
    assert masses.sum() == pytest.approx(0.2311883, abs=2e-5)


def test_a_model_trains_and_samples_with_the_authors_logistic():
    model = tfvamp.VAE((4, 4, 1), likelihood="authors_discretized_logistic", prior="standard",
                       latent_dim=2, hidden_units=8, seed=0)
    images = ((np.random.default_rng(0).integers(0, 256, (16, 4, 4, 1)) + 0.5) / 256).astype(np.float32)
    terms = model.elbo_terms(tf.constant(images))
    assert np.all(np.isfinite(terms.loss.numpy()))
    samples = model.likelihood.sample(_params(np.zeros(3), np.zeros(3)), seed=(1, 2)).numpy()
    assert np.all((samples > 0) & (samples < 1))
    assert tfvamp.get_likelihood(model.likelihood.get_config()).name == "authors_discretized_logistic"


def test_the_trainers_likelihood_flag_builds_the_authors_logistic(tmp_path):
    from conftest import SHARED_DATA
    from tfvamp import datasets
    from trainers import train
    from trainers.run_config import RunConfig

    config = RunConfig.from_flags({**train.flag_values(), "dataset": "freyfaces", "data_dir": SHARED_DATA,
                                   "latent_dim": 2, "hidden_units": 8, "num_components": 3,
                                   "likelihood": "authors_discretized_logistic"})
    frey = datasets.load_dataset("freyfaces", SHARED_DATA)
    assert config.build_model(frey).likelihood.name == "authors_discretized_logistic"
    ours = config.replace(likelihood=None).build_model(frey)
    assert ours.likelihood.name == "discretized_logistic"
