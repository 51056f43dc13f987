"""The one-level VAE (L = 1) of the paper, with its networks or yours."""
import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfvamp.likelihoods import DecoderDistribution
from tfvamp.models.base import LatentVariableModel, map_rows
from tfvamp.models.networks import gated_mlp_decoder, gated_mlp_encoder
from tfvamp.objectives import LogTerms
from tfvamp.posteriors import (check_encoder, check_float32_distribution, encoder_posterior,
                               posterior_moments)
from tfvamp.priors import VampPrior
from tfvamp.serialization import deserialize

tfd = tfp.distributions


@keras.saving.register_keras_serializable(package="tfvamp")
class VAE(LatentVariableModel):
    """``q(z|x)``, ``p(x|z)`` and the prior ``p(z)``; with the VampPrior,
    ``p(z) = (1/K) sum_k q(z|u_k)`` uses this same encoder.

    By default the paper's networks: two GatedDense(300) layers each. Pass
    your own Keras ``encoder`` and ``decoder`` as you wrote them to get the
    same ELBO with KL warm-up, importance-sampled log-likelihood, sampling,
    saving and export for them. Both are checked when the model is built.

    The encoder maps ``[B, *input_shape]`` to ``q(z|x)``: the mean and
    log-variance of a diagonal Gaussian (two outputs; more outputs such as
    ``[z_mean, z_log_var, z]`` or a dict, found by name or chosen by
    ``posterior_outputs``), or a ``tfd.Distribution`` over ``[latent_dim]``
    (any family: the ELBO and the log-likelihood use its own ``log_prob``).
    The decoder maps ``[B, latent_dim]`` to what the likelihood takes:
    ``[B, *input_shape, num_params]``, or ``[B, *input_shape]`` for the
    one-parameter likelihoods; or a ``tfd.Distribution`` over one input per
    latent, which is then the likelihood. A decoder ending in a sigmoid needs
    ``likelihood="bernoulli_probs"`` (``"bernoulli"`` takes logits, and such a
    decoder is refused with it).

    Example, on standardised vectors of 13 features::

        vae = VAE((13,), encoder=my_encoder, decoder=my_decoder, likelihood="gaussian",
                  prior=VampPrior(my_encoder, (13,), num_components=50,
                                  pseudo_input_map="none"))

    Args:
      input_shape: shape of one input: an image ``(H, W, C)``, or ``(D,)``.
      encoder: your encoder ``q(z|x)``; default: the paper's.
      decoder: your decoder; default: the paper's.
      likelihood: ``"bernoulli"`` (logits), ``"bernoulli_probs"``,
        ``"clamped_bernoulli"``, ``"discretized_logistic"``, ``"gaussian"``,
        or a function from the decoder's output to a ``tfd.Distribution``
        over one input; default: the decoder's own distribution if it returns
        one, else ``"bernoulli"``.
      prior: ``"standard"``, ``"mog"``, ``"vamp"``, or a prior layer (a
        ``VampPrior`` built on ``encoder``).
      latent_dim: size of z; default: your encoder's, else 40.
      hidden_units: width of the paper's gated layers (300).
      num_components: K, for the MoG prior and the VampPrior.
      posterior_outputs: ``(mean, log_variance)``: positions or names of
        your encoder's outputs (``VampPrior``); default: the prior's, or found
        by name.
      pseudo_inputs_init_mean: mean of the VampPrior's ``N(mean, std)``
        initialisation of the pseudo-inputs.
      pseudo_inputs_init_std: its standard deviation.
      pseudo_inputs_init_data: optional training inputs to initialise the
        pseudo-inputs from instead (not part of the config).
      seed: seed of the model's sampling.
      precision: ``"float32"`` or ``"bfloat16"`` (``LatentVariableModel``).
      kernel_initializer: initializer of the paper's Dense kernels.
      **kwargs: Keras' ``Model`` arguments (``name``, ...).
    """

    def __init__(self, input_shape, encoder=None, decoder=None, likelihood=None, prior="vamp",
                 latent_dim=None, hidden_units=300, num_components=500, posterior_outputs=None,
                 pseudo_inputs_init_mean=0.05, pseudo_inputs_init_std=0.01,
                 pseudo_inputs_init_data=None, seed=None, precision=None,
                 kernel_initializer="glorot_uniform", **kwargs):
        encoder, decoder = (deserialize(n, f"the VAE's {part}") if isinstance(n, dict) else n
                            for n, part in ((encoder, "encoder"), (decoder, "decoder")))
        if posterior_outputs is None and isinstance(prior, VampPrior):
            posterior_outputs = prior.posterior_outputs
        selection = (0, 1)  # the paper's encoder returns [mean, log_variance]
        if encoder is not None:
            latent_size, selection = check_encoder(encoder, input_shape, latent_dim,
                                                   posterior_outputs)
            latent_dim = latent_size if latent_dim is None else latent_dim
        latent_dim = 40 if latent_dim is None else latent_dim
        probe = None if decoder is None else decoder(tf.zeros([1, int(latent_dim)]))
        likelihood = _resolve_likelihood(likelihood, probe)
        super().__init__(input_shape, likelihood=likelihood, prior=prior, latent_dim=latent_dim,
                         hidden_units=hidden_units, num_components=num_components,
                         pseudo_inputs_init_mean=pseudo_inputs_init_mean,
                         pseudo_inputs_init_std=pseudo_inputs_init_std, seed=seed,
                         precision=precision, kernel_initializer=kernel_initializer, **kwargs)
        self.posterior_outputs = None if posterior_outputs is None else tuple(posterior_outputs)
        self._selection = selection
        self.own_networks = {"encoder": encoder is not None, "decoder": decoder is not None}
        with self.network_scope():
            self.encoder = encoder or gated_mlp_encoder(
                self.image_shape, self.latent_dim, self.hidden_units)
            if decoder is None:
                if self.likelihood.takes_probabilities:
                    raise ValueError(f"The {self.likelihood.name} likelihood reads probabilities "
                                     "(a decoder of yours ending in a sigmoid); the paper's "
                                     'decoder returns logits: use likelihood="bernoulli"')
                if self.likelihood.num_params is None:
                    raise ValueError(f"The {self.likelihood.name} likelihood needs a decoder of "
                                     "yours (for its parameters, or returning the distribution)")
                decoder = gated_mlp_decoder(self.latent_dim, self.image_shape,
                                            self.likelihood.num_params, self.hidden_units)
                probe = decoder(tf.zeros([1, self.latent_dim]))
            self.decoder = decoder
        self._decoder_adds_axis = _check_decoder(self.decoder, probe, self.likelihood,
                                                 self.image_shape)
        self.prior = self.build_prior(self.encoder, pseudo_inputs_init_data,
                                      posterior_outputs=self.posterior_outputs)
        if isinstance(self.prior, VampPrior) and self.prior._selection != self._selection:
            raise ValueError(f"The VampPrior reads the encoder's outputs {self.prior._selection} "
                             f"as (mean, log_variance), the model {self._selection}: give both "
                             "the same posterior_outputs")
        self.built = True  # every part is built above

    def get_config(self):
        """The settings, and your networks (if any) as Keras configs."""
        config = super().get_config()
        for name, own in self.own_networks.items():
            if own:
                config[name] = keras.saving.serialize_keras_object(getattr(self, name))
        if self.posterior_outputs is not None:
            config["posterior_outputs"] = list(self.posterior_outputs)
        return config

    def posterior(self, x, training=False):
        """``q(z|x)``: a ``tfd.Distribution`` of batch shape ``[B]`` over ``[latent_dim]``."""
        return encoder_posterior(self.encoder, x, self._selection, training)

    def encode(self, x):
        """Mean and log-variance of q(z|x) (float32; for a non-diagonal
        posterior, the log of its marginal variances)."""
        return posterior_moments(self.posterior(x))

    def _decoder_params(self, z, training=False):
        """Likelihood parameters for latents of any leading shape ``[..., d]``."""
        params = map_rows(lambda z: self.decoder(z, training=training), z)
        return params[..., None] if self._decoder_adds_axis else params

    def _log_likelihood(self, z, x, training=False):
        """``log p(x|z)`` for latents ``[..., d]`` (``x``: ``[B, *input_shape]``)."""
        if not isinstance(self.likelihood, DecoderDistribution):
            return self.likelihood.log_prob(self._decoder_params(z, training), x)
        x = tf.broadcast_to(tf.cast(x, tf.float32),
                            tf.concat([tf.shape(z)[:-1], tf.shape(x)[1:]], 0))
        return map_rows(lambda z, x: self.decoder(z, training=training).log_prob(x), z, x,
                        event_ranks=(1, len(self.image_shape)))

    def log_terms(self, x, prior, num_samples=1, training=False):
        """``log p(x|z_s)``, ``log p(z_s)``, ``log q(z_s|x)`` for S draws ``z_s ~ q(z|x)``."""
        posterior = self.posterior(x, training=training)
        z = posterior.sample(num_samples, seed=self.next_seed())  # [S, B, d]
        return LogTerms(
            log_likelihood=self._log_likelihood(z, x, training),
            log_prior=prior.log_prob(z),
            log_posterior=posterior.log_prob(z),
        )

    def decode(self, z):
        """The mean of p(x|z) for latents ``z``."""
        if isinstance(self.likelihood, DecoderDistribution):
            return map_rows(lambda z: self.decoder(z).mean(), z)
        return self.likelihood.mean(self._decoder_params(z))

    def generate_from_top(self, z_top, seed):
        """The mean of p(x|z); nothing more is drawn, so ``seed`` is unused."""
        return self.decode(z_top)


def _resolve_likelihood(likelihood, decoder_output):
    """The likelihood: ``"decoder"`` for a decoder returning a distribution
    (the only choice then), else the one given, ``"bernoulli"`` by default."""
    returns_distribution = isinstance(decoder_output, tfd.Distribution)
    if likelihood is None:
        return "decoder" if returns_distribution else "bernoulli"
    if returns_distribution and likelihood != "decoder":
        raise ValueError(f"The decoder returns a {type(decoder_output).__name__}, which is its "
                         f"own likelihood: leave likelihood={likelihood!r} out")
    if likelihood == "decoder" and not returns_distribution:
        raise ValueError('likelihood="decoder" needs a decoder that returns a tfd.Distribution')
    return likelihood


# Layers that only move values around: the decoder's last computing layer is before them.
_SHAPE_LAYERS = (keras.layers.Reshape, keras.layers.Flatten, keras.layers.Permute,
                 keras.layers.Cropping1D, keras.layers.Cropping2D, keras.layers.Identity)


def _last_layer(model):
    """The layer that computes a Keras model's (first) output, through
    reshaping layers and nested models; for a subclassed model, the last
    layer it tracks. None when there is none to see."""
    outputs = getattr(model, "outputs", None)
    if outputs:
        layer = outputs[0]._keras_history.operation
        while isinstance(layer, _SHAPE_LAYERS) and layer._inbound_nodes:
            layer = layer._inbound_nodes[0].input_tensors[0]._keras_history.operation
    else:
        layers = getattr(model, "layers", None)
        layer = layers[-1] if layers else None
    if isinstance(layer, keras.Model) and layer is not model:
        return _last_layer(layer)
    return layer


def _ends_in_sigmoid(decoder):
    layer = _last_layer(decoder)
    activation = getattr(layer, "activation", None)
    return layer if activation is keras.activations.sigmoid else None


def _check_decoder(decoder, params, likelihood, input_shape):
    """Checks that ``likelihood`` of the decoder's output ``params`` for one
    latent is a distribution over one input of ``input_shape``; a clear error
    otherwise. Returns whether the decoder's output needs the parameter axis
    (a one-parameter likelihood, output ``[B, *input_shape]``)."""
    expected = tuple(input_shape)
    if isinstance(likelihood, DecoderDistribution):
        shape, adds_axis = type(params).__name__, False
    else:
        shape = tuple(tf.convert_to_tensor(params).shape)
        adds_axis = likelihood.num_params == 1 and shape == (1,) + expected
        full = (None,) + expected + (likelihood.num_params,)
        if likelihood.num_params is not None and shape != (1,) + full[1:] and not adds_axis:
            either = (f"[batch, *input_shape] = {(None,) + expected} or "
                      if likelihood.num_params == 1 else "")
            raise ValueError(
                f"For the {likelihood.name} likelihood the decoder must return {either}[batch, "
                f"*input_shape, {likelihood.num_params}] = {full}; "
                f"for one latent it returned shape {shape}")
        if adds_axis:
            params = params[..., None]
    if likelihood.takes_logits:
        sigmoid = _ends_in_sigmoid(decoder)
        if sigmoid is not None:
            instead = (' or pass likelihood="bernoulli_probs" to read them as probabilities'
                       if likelihood.num_params == 1 else "")
            raise ValueError(
                f"The decoder's last layer ({sigmoid.name}) ends in a sigmoid, so it returns "
                f"probabilities, but the {likelihood.name} likelihood takes logits (it applies "
                f"the sigmoid itself): remove the decoder's sigmoid{instead}")
    if likelihood.takes_probabilities:
        last = _last_layer(decoder)
        outside = not np.all((0.0 <= np.asarray(params)) & (np.asarray(params) <= 1.0))
        if outside or getattr(last, "activation", None) is keras.activations.linear:
            raise ValueError(
                f"The {likelihood.name} likelihood reads the decoder's output as probabilities, "
                f"but the decoder's last layer ({getattr(last, 'name', '?')}) has no sigmoid"
                + (" and it returned values outside [0, 1]" if outside else "")
                + ': end it in a sigmoid, or pass likelihood="bernoulli" for logits')
    distribution = likelihood.distribution(params)
    check_float32_distribution(distribution, "The decoder" if isinstance(likelihood, DecoderDistribution)
                               else f"The {likelihood.name} likelihood of the decoder's output")
    if tuple(distribution.batch_shape) != (1,) or tuple(distribution.event_shape) != expected:
        raise ValueError(
            f"The {likelihood.name} likelihood of the decoder's output ({shape}) is a "
            f"distribution of batch shape {tuple(distribution.batch_shape)} over events of shape "
            f"{tuple(distribution.event_shape)}, not one event of shape {expected} per latent")
    return adds_axis
