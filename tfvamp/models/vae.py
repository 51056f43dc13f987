"""The one-level VAE (L = 1) of the paper, with its networks or yours."""
import keras
import tensorflow as tf

from tfvamp.models.base import LatentVariableModel, map_rows
from tfvamp.models.networks import gated_mlp_decoder, gated_mlp_encoder
from tfvamp.objectives import LogTerms
from tfvamp.priors import as_float32, check_encoder, diagonal_gaussian


@keras.saving.register_keras_serializable(package="tfvamp")
class VAE(LatentVariableModel):
    """``q(z|x)``, ``p(x|z)`` and the prior ``p(z)``; with the VampPrior,
    ``p(z) = (1/K) sum_k q(z|u_k)`` uses this same encoder.

    By default the paper's networks: two GatedDense(300) layers each. Pass
    your own Keras ``encoder`` (input ``[B, *input_shape]`` to the mean and
    log-variance, each ``[B, latent_dim]``) and ``decoder`` (latents
    ``[B, latent_dim]`` to what the likelihood takes: ``[B, *input_shape,
    num_params]`` for the named likelihoods) to get the same ELBO with KL
    warm-up, importance-sampled log-likelihood, sampling, saving and export
    for them. Both are checked when the model is built. ``latent_dim``
    defaults to your encoder's.

    Example, on standardised vectors of 13 features::

        vae = VAE((13,), encoder=my_encoder, decoder=my_decoder, likelihood="gaussian",
                  prior=VampPrior(my_encoder, (13,), num_components=50,
                                  pseudo_input_map="none"))
    """

    def __init__(self, input_shape, encoder=None, decoder=None, **kwargs):
        init_data = kwargs.pop("pseudo_inputs_init_data", None)
        encoder, decoder = (keras.saving.deserialize_keras_object(n) if isinstance(n, dict) else n
                            for n in (encoder, decoder))
        if encoder is not None:
            latent_size = check_encoder(encoder, input_shape, kwargs.get("latent_dim"))
            kwargs.setdefault("latent_dim", latent_size)
        super().__init__(input_shape, **kwargs)
        self.own_networks = {"encoder": encoder is not None, "decoder": decoder is not None}
        with self.network_scope():
            self.encoder = encoder or gated_mlp_encoder(
                self.image_shape, self.latent_dim, self.hidden_units)
            if decoder is None:
                if self.likelihood.num_params is None:
                    raise ValueError(f"A likelihood given as a function ({self.likelihood.name}) "
                                     "needs a decoder of yours for its parameters")
                decoder = gated_mlp_decoder(self.latent_dim, self.image_shape,
                                            self.likelihood.num_params, self.hidden_units)
            self.decoder = decoder
        _check_decoder(self.decoder, self.likelihood, self.latent_dim, self.image_shape)
        self.prior = self.build_prior(self.encoder, init_data)
        self.built = True  # every part is built above

    def get_config(self):
        """The settings, and your networks (if any) as Keras configs."""
        config = super().get_config()
        for name, own in self.own_networks.items():
            if own:
                config[name] = keras.saving.serialize_keras_object(getattr(self, name))
        return config

    def encode(self, x):
        """Mean and log-variance of q(z|x) (float32)."""
        return tuple(as_float32(t) for t in self.encoder(x))

    def _decoder_params(self, z, training=False):
        """Likelihood parameters for latents of any leading shape ``[..., d]``."""
        return map_rows(lambda z: self.decoder(z, training=training), z)

    def log_terms(self, x, prior, num_samples=1, training=False):
        """``log p(x|z_s)``, ``log p(z_s)``, ``log q(z_s|x)`` for S draws ``z_s ~ q(z|x)``."""
        posterior = diagonal_gaussian(*self.encoder(x, training=training))
        z = posterior.sample(num_samples, seed=self.next_seed())  # [S, B, d]
        return LogTerms(
            log_likelihood=self.likelihood.log_prob(self._decoder_params(z, training), x),
            log_prior=prior.log_prob(z),
            log_posterior=posterior.log_prob(z),
        )

    def decode(self, z):
        """The mean of p(x|z) for latents ``z``."""
        return self.likelihood.mean(self._decoder_params(z))

    def generate_from_top(self, z_top, seed):
        """The mean of p(x|z); nothing more is drawn, so ``seed`` is unused."""
        return self.decode(z_top)


def _check_decoder(decoder, likelihood, latent_dim, input_shape):
    """Checks that ``likelihood`` of ``decoder``'s output for one latent is a
    distribution over one input of ``input_shape``; a clear error otherwise."""
    expected = tuple(input_shape)
    params = decoder(tf.zeros([1, latent_dim]))
    shape = tuple(tf.convert_to_tensor(params).shape)
    if likelihood.num_params is not None and shape != (1,) + expected + (likelihood.num_params,):
        raise ValueError(
            f"For the {likelihood.name} likelihood the decoder must return [batch, *input_shape, "
            f"{likelihood.num_params}] = {(None,) + expected + (likelihood.num_params,)}; "
            f"for one latent it returned shape {shape}")
    distribution = likelihood.distribution(params)
    if tuple(distribution.batch_shape) != (1,) or tuple(distribution.event_shape) != expected:
        raise ValueError(
            f"The {likelihood.name} likelihood of the decoder's output (shape {shape}) is a "
            f"distribution of batch shape {tuple(distribution.batch_shape)} over events of shape "
            f"{tuple(distribution.event_shape)}, not one event of shape {expected} per latent")
