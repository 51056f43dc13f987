"""The one-level VAE (L = 1) of the paper."""
import keras

from tfvamp.models.base import LatentVariableModel, map_rows
from tfvamp.models.networks import gated_mlp_decoder, gated_mlp_encoder
from tfvamp.objectives import LogTerms
from tfvamp.priors import as_float32, diagonal_gaussian, make_prior


@keras.saving.register_keras_serializable(package="tfvamp")
class VAE(LatentVariableModel):
    """``q(z|x)`` and ``p(x|z)`` are two-layer GatedDense networks; ``p(z)`` is the prior.

    With the VampPrior, ``p(z) = (1/K) sum_k q(z|u_k)`` uses this same encoder.
    """

    def __init__(self, input_shape, **kwargs):
        init_data = kwargs.pop("pseudo_inputs_init_data", None)
        super().__init__(input_shape, **kwargs)
        with self.network_scope():
            self.encoder = gated_mlp_encoder(self.image_shape, self.latent_dim, self.hidden_units)
            self.decoder = gated_mlp_decoder(
                self.latent_dim, self.image_shape, self.likelihood.num_params, self.hidden_units
            )
        self.prior = make_prior(
            self.prior_name, self.latent_dim, self.num_components, encoder=self.encoder,
            input_shape=self.image_shape, init_mean=self.pseudo_inputs_init_mean,
            init_std=self.pseudo_inputs_init_std, init_data=init_data, seed=self.seed,
        )
        self.built = True  # every part is built above

    def encode(self, x):
        return tuple(as_float32(t) for t in self.encoder(x))

    def _decoder_params(self, z):
        """Likelihood parameters for latents of any leading shape ``[..., d]``."""
        return map_rows(self.decoder, z)

    def log_terms(self, x, prior, num_samples=1):
        posterior = diagonal_gaussian(*self.encoder(x))
        z = posterior.sample(num_samples, seed=self.next_seed())  # [S, B, d]
        return LogTerms(
            log_likelihood=self.likelihood.log_prob(self._decoder_params(z), x),
            log_prior=prior.log_prob(z),
            log_posterior=posterior.log_prob(z),
        )

    def decode(self, z):
        return self.likelihood.mean(self._decoder_params(z))

    def generate_from_top(self, z_top, seed):
        """The mean of p(x|z); nothing more is drawn, so ``seed`` is unused."""
        return self.decode(z_top)
