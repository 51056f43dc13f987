"""Encoders and decoders that return TensorFlow Probability distributions
(issue 39, item 4): exported by ``tfvamp.export`` and served by plain TensorFlow
in a fresh process (as TensorFlow Serving runs the SavedModel), every signature
answers the model's own values; in bfloat16 (Keras' ``mixed_bfloat16`` policy)
a distribution with bfloat16 parameters is refused with one clear line, and one
whose parameter layers are float32 trains and serves."""
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfvamp
from conftest import REPO_ROOT
from tfvamp import export
from tfvamp.evaluation import log_likelihood_and_elbo

tfd = tfp.distributions
IMAGE, LATENT = (8, 8, 1), 3


@keras.saving.register_keras_serializable(package="test_distribution_networks")
class DistributionEncoder(keras.Model):
    """q(z|x) as a distribution: ``diagonal`` (``MultivariateNormalDiag``),
    ``full`` (``MultivariateNormalTriL``) or ``mixture`` (each latent a mixture
    of two normals); ``output_dtype`` the dtype of the layers that give its
    parameters (None: Keras' policy)."""

    def __init__(self, family="diagonal", output_dtype=None, **kwargs):
        super().__init__(**kwargs)
        self.family, self.output_dtype = family, output_dtype
        self.hidden = keras.layers.Dense(16, activation="tanh")
        sizes = {"diagonal": 2 * LATENT, "full": LATENT + LATENT * (LATENT + 1) // 2,
                 "mixture": 3 * 2 * LATENT}
        self.params = keras.layers.Dense(sizes[family], dtype=output_dtype)

    def call(self, x):
        params = self.params(self.hidden(tf.reshape(x, [-1, int(np.prod(IMAGE))])))
        if self.family == "full":
            scale_tril = tfp.bijectors.FillScaleTriL(diag_shift=1e-3).forward(params[:, LATENT:])
            return tfd.MultivariateNormalTriL(params[:, :LATENT], scale_tril)
        if self.family == "mixture":
            params = tf.reshape(params, [-1, LATENT, 2, 3])
            per_latent = tfd.MixtureSameFamily(
                tfd.Categorical(logits=params[..., 0]),
                tfd.Normal(params[..., 1], tf.nn.softplus(params[..., 2]) + 1e-3), reparameterize=True)
            return tfd.Independent(per_latent, reinterpreted_batch_ndims=1)
        return tfd.MultivariateNormalDiag(params[:, :LATENT], tf.nn.softplus(params[:, LATENT:]) + 1e-3)

    def get_config(self):
        return {**super().get_config(), "family": self.family, "output_dtype": self.output_dtype}


@keras.saving.register_keras_serializable(package="test_distribution_networks")
class BernoulliDecoder(keras.Model):
    """p(x|z) as a distribution over one image."""

    def __init__(self, output_dtype=None, **kwargs):
        super().__init__(**kwargs)
        self.output_dtype = output_dtype
        self.hidden = keras.layers.Dense(16, activation="tanh")
        self.logits = keras.layers.Dense(int(np.prod(IMAGE)), dtype=output_dtype)

    def call(self, z):
        logits = tf.reshape(self.logits(self.hidden(z)), [-1, *IMAGE])
        return tfd.Independent(tfd.Bernoulli(logits=logits, dtype=tf.float32), 3)

    def get_config(self):
        return {**super().get_config(), "output_dtype": self.output_dtype}


def logits_decoder():
    """A decoder of tensors (Bernoulli logits, no parameter axis)."""
    z = keras.Input((LATENT,))
    h = keras.layers.Dense(16, activation="tanh")(z)
    return keras.Model(z, keras.layers.Reshape(IMAGE)(keras.layers.Dense(int(np.prod(IMAGE)))(h)))


def binary_images(n=40, seed=0):
    return (np.random.default_rng(seed).uniform(size=(n,) + IMAGE) < 0.3).astype("float32")


@pytest.fixture
def bfloat16_policy():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    yield
    keras.mixed_precision.set_global_policy("float32")


def trained(encoder, decoder):
    model = tfvamp.VAE(IMAGE, encoder=encoder, decoder=decoder, num_components=4, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(binary_images(), epochs=2, batch_size=10, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    return model


# Plain TensorFlow on the SavedModel, no tfvamp: every signature's outputs, into an .npz.
SERVE = r"""
import sys
import numpy as np
import tensorflow as tf

path, inputs_path, out_path = sys.argv[1:]
inputs = np.load(inputs_path)
sig = tf.saved_model.load(path).signatures
images, latents = tf.constant(inputs["images"]), tf.constant(inputs["latents"])
out = {}
for name, value in sig["encode"](images=images).items():
    out[f"encode_{name}"] = value.numpy()
out["decode"] = sig["decode"](latents=latents)["images"].numpy()
out["reconstruct"] = sig["reconstruct"](images=images)["images"].numpy()
out["sample"] = sig["sample"](num_samples=tf.constant(3), seed=tf.constant(7, tf.int64))["images"].numpy()
for name, value in sig["log_prob"](images=images, num_samples=tf.constant(50)).items():
    out[f"log_prob_{name}"] = value.numpy()
out["tfvamp_imported"] = np.array(any(m.startswith("tfvamp") for m in sys.modules))
library = sig["encode"].graph.as_graph_def().library
out["bfloat16_matmuls"] = np.array(sum(
    node.op == "MatMul" and node.attr["T"].type == tf.bfloat16.as_datatype_enum
    for function in library.function for node in function.node_def))
np.savez(out_path, **out)
"""

CASES = {
    "diagonal_encoder_distribution_decoder": lambda: (DistributionEncoder("diagonal"), BernoulliDecoder()),
    "full_covariance_encoder_logits_decoder": lambda: (DistributionEncoder("full"), logits_decoder()),
    "mixture_encoder_distribution_decoder": lambda: (DistributionEncoder("mixture"), BernoulliDecoder()),
    # Keras' mixed precision: bfloat16 networks, their distributions' parameters in float32
    "bfloat16_mixture_encoder_distribution_decoder": lambda: (DistributionEncoder("mixture", "float32"),
                                                              BernoulliDecoder("float32")),
}


@pytest.mark.parametrize("case", CASES)
def test_served_signatures_answer_the_models_own_values(case, tmp_path):
    bfloat16 = case.startswith("bfloat16")
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if bfloat16 else "float32")
    try:
        model = trained(*CASES[case]())
    finally:
        keras.mixed_precision.set_global_policy("float32")
    # A traced graph computes bfloat16 matmuls as eager Keras does, but may round between
    # them otherwise (fused ops): a few bfloat16 steps (2^-8 each) apart.
    rtol, atol = (3e-2, 3e-3) if bfloat16 else (1e-5, 1e-6)
    path = export.export_model(model, str(tmp_path / "export"))
    images = binary_images(4, seed=3)
    latents = np.random.default_rng(4).normal(size=(5, LATENT)).astype("float32")
    np.savez(tmp_path / "inputs.npz", images=images, latents=latents)
    served = subprocess.run([sys.executable, "-c", SERVE, path, str(tmp_path / "inputs.npz"),
                             str(tmp_path / "out.npz")], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "PYTHONPATH": ""})
    assert served.returncode == 0, served.stderr[-3000:]
    out = np.load(tmp_path / "out.npz")
    assert not out["tfvamp_imported"]
    assert (out["bfloat16_matmuls"] > 0) == bfloat16  # served in the model's precision

    # encode: the moments of the encoder's own distribution (marginal variances for the others)
    posterior = model.encoder(images)
    np.testing.assert_allclose(out["encode_mean"], posterior.mean().numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(out["encode_log_variance"], np.log(posterior.variance().numpy()),
                               rtol=rtol, atol=10 * atol)
    # decode and reconstruct: the mean of p(x|z), of the decoder's own distribution if it returns one
    np.testing.assert_allclose(out["decode"], model.decode(latents).numpy(), rtol=rtol, atol=atol)
    if isinstance(model.decoder, BernoulliDecoder):
        np.testing.assert_allclose(out["decode"], model.decoder(latents).mean().numpy(), rtol=rtol,
                                   atol=atol)
    np.testing.assert_allclose(out["reconstruct"], model.decode(posterior.mean()).numpy(), rtol=rtol,
                               atol=atol)
    seed = tf.bitcast(tf.constant(7, tf.int64), tf.int32)  # the signature's seed, as it reads it
    np.testing.assert_allclose(out["sample"], model.sample(3, seed=seed).numpy(), rtol=rtol, atol=atol)
    # log_prob: the model's, drawing from the sampling state the export starts from
    model.seed_generator.state.assign(export.load_model(path).seed_generator.state)
    log_likelihood, elbo, _, _ = log_likelihood_and_elbo(model, tf.constant(images),
                                                         model.prior_distribution(), 50)
    np.testing.assert_allclose(out["log_prob_log_likelihood"], log_likelihood.numpy(), rtol=rtol)
    np.testing.assert_allclose(out["log_prob_elbo"], elbo.numpy(), rtol=rtol)


@pytest.mark.parametrize("family", ["diagonal", "mixture"])
def test_a_bfloat16_distribution_encoder_is_refused_in_one_line(family, bfloat16_policy):
    encoder = DistributionEncoder(family)
    wrapper = "MultivariateNormalDiag" if family == "diagonal" else "Independent"
    message = (f"The encoder returns tfd.{wrapper} with bfloat16 parameters .* give the layers that "
               'output its parameters dtype="float32"')
    with pytest.raises(ValueError, match=message) as refused:
        tfvamp.VAE(IMAGE, encoder=encoder, decoder=logits_decoder(), num_components=4)
    assert "\n" not in str(refused.value)
    with pytest.raises(ValueError, match=message):  # the VampPrior, built on it first
        tfvamp.VampPrior(encoder, IMAGE, num_components=4)


def test_a_bfloat16_encoder_failing_in_its_own_distribution_is_told_the_fix(bfloat16_policy):
    # TFP's FillScaleTriL does not take bfloat16: the encoder itself fails.
    with pytest.raises(ValueError, match='it computes in bfloat16: .*dtype="float32"'):
        tfvamp.VAE(IMAGE, encoder=DistributionEncoder("full"), decoder=logits_decoder())


def test_a_bfloat16_distribution_decoder_is_refused_in_one_line(bfloat16_policy):
    with pytest.raises(ValueError, match="The decoder returns tfd.Independent with bfloat16 parameters "
                                         '.* dtype="float32"') as refused:
        tfvamp.VAE(IMAGE, encoder=DistributionEncoder("diagonal", "float32"), decoder=BernoulliDecoder())
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("family", ["diagonal", "full", "mixture"])
def test_bfloat16_networks_with_float32_distribution_layers_train(family, bfloat16_policy):
    encoder = DistributionEncoder(family, "float32")
    model = trained(encoder, BernoulliDecoder("float32"))
    assert encoder.hidden.compute_dtype == "bfloat16" and model.decoder.hidden.compute_dtype == "bfloat16"
    assert model.posterior(binary_images(2)).dtype == tf.float32
    log_likelihood = model.log_likelihood(binary_images(4, seed=3), num_samples=20).numpy()
    assert np.all(np.isfinite(log_likelihood))
