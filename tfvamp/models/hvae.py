"""The two-level models of the paper (L = 2): HVAE, convHVAE and PixelHVAE.

One class, ``HVAE``; the convHVAE and the PixelHVAE differ from it only in the
networks they plug in (``networks.HierarchyParts``). The densities are

    q(z1, z2 | x) = q(z2 | x) q(z1 | x, z2),    p(x, z1, z2) = p(x | z1, z2) p(z1 | z2) p(z2),

with the prior (standard, MoG or VampPrior) on the top latent z2; the
VampPrior's components are ``q(z2 | u_k)``, the same encoder as ``q(z2 | x)``.
The ELBO and the importance-sampled log-likelihood are the shared ones of
``LatentVariableModel``, fed with both levels' terms.
"""
import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfvamp.models import networks
from tfvamp.models.base import LatentVariableModel, map_rows
from tfvamp.objectives import LogTerms
from tfvamp.gaussians import as_float32, diagonal_gaussian


@keras.saving.register_keras_serializable(package="tfvamp")
class HVAE(LatentVariableModel):
    """HVAE (L = 2) with GatedDense networks of width 300 and ``z1 = z2 = latent_dim``.

    ``sample`` draws ``z2 ~ p(z2)``, ``z1 ~ p(z1|z2)`` and returns the mean of
    ``p(x|z1,z2)``; ``decode(z2)`` uses the mean of ``p(z1|z2)`` instead.

    Args:
      input_shape: shape of one image ``(H, W, C)``.
      likelihood: ``"bernoulli"``, ``"discretized_logistic"``, ... (``LatentVariableModel``).
      prior: ``"standard"``, ``"mog"`` or ``"vamp"`` (on ``z2``), or a prior layer.
      latent_dim: size of z1 and of z2 (40 in the paper).
      hidden_units: width of the gated layers (300 in the paper).
      num_components: K, for the MoG prior and the VampPrior.
      pseudo_inputs_init_mean: mean of the pseudo-inputs' ``N(mean, std)`` initialisation.
      pseudo_inputs_init_std: its standard deviation.
      pseudo_inputs_init_data: optional training images to initialise them from.
      seed: seed of the model's sampling.
      precision: ``"float32"`` or ``"bfloat16"``.
      kernel_initializer: initializer of the Dense kernels.
      **kwargs: Keras' ``Model`` arguments (``name``, ...).
    """

    def __init__(self, input_shape, likelihood="bernoulli", prior="vamp", latent_dim=40, hidden_units=300, num_components=500,
                 pseudo_inputs_init_mean=0.05, pseudo_inputs_init_std=0.01,
                 pseudo_inputs_init_data=None, seed=None, precision=None,
                 kernel_initializer="glorot_uniform", **kwargs):
        init_data = pseudo_inputs_init_data
        super().__init__(input_shape, likelihood=likelihood, prior=prior, latent_dim=latent_dim,
                         hidden_units=hidden_units, num_components=num_components,
                         pseudo_inputs_init_mean=pseudo_inputs_init_mean,
                         pseudo_inputs_init_std=pseudo_inputs_init_std, seed=seed,
                         precision=precision, kernel_initializer=kernel_initializer, **kwargs)
        if self.likelihood.takes_probabilities or self.likelihood.num_params is None:
            raise ValueError(f"The {type(self).__name__}'s networks return logits and "
                             f"parameters: the {self.likelihood.name} likelihood does not fit them")
        with self.network_scope():
            parts = self.build_parts()
        self.q_z2, self.q_z1_features, self.q_z1 = parts.q_z2, parts.q_z1_features, parts.q_z1
        self.p_z1, self.p_x, self.pixelcnn = parts.p_z1, parts.p_x, parts.pixelcnn
        self.prior = self.build_prior(self.q_z2, init_data)
        self.built = True  # every part is built above

    def build_parts(self):
        """The networks (``networks.HierarchyParts``): GatedDense layers throughout."""
        return networks.mlp_hvae_parts(self.image_shape, self.latent_dim,
                                       self.likelihood.num_params, self.hidden_units)

    @classmethod
    def from_config(cls, config):
        """The model of a ``get_config``; also an HVAE saved with the
        ``conv_filters`` the dense HVAE once took and ignored."""
        if not issubclass(cls, ConvolutionalHVAE):
            config = {key: value for key, value in config.items() if key != "conv_filters"}
        return super().from_config(config)

    def _x_params(self, z1, z2, x, training=False):
        """Parameters of ``p(x|z1,z2)``, ``[..., H, W, C, P]``; an autoregressive
        decoder is teacher-forced with ``x`` (broadcast over the leading axes)."""
        def p_x(z1, z2):
            return self.p_x([z1, z2], training=training)

        if self.pixelcnn is None:
            return map_rows(p_x, z1, z2)
        x = tf.broadcast_to(x, tf.concat([tf.shape(z1)[:-1], tf.shape(x)[-3:]], 0))
        return map_rows(lambda z1, z2, x: self.pixelcnn(x, p_x(z1, z2)), z1, z2, x,
                        event_ranks=(1, 1, 3))

    def log_terms(self, x, prior, num_samples=1, training=False):
        """Both levels' terms for S draws ``z2 ~ q(z2|x)``, ``z1 ~ q(z1|x,z2)``:
        ``log p(x|z1,z2)``, ``log p(z2) + log p(z1|z2)``, ``log q(z2|x) + log q(z1|x,z2)``."""
        q_z2 = diagonal_gaussian(*self.q_z2(x, training=training))
        z2 = q_z2.sample(num_samples, seed=self.next_seed())  # [S, B, d]
        features = self.q_z1_features(x, training=training)
        features = tf.broadcast_to(features, tf.concat([[num_samples], tf.shape(features)], 0))
        q_z1 = diagonal_gaussian(*map_rows(
            lambda f, z2: self.q_z1([f, z2], training=training), features, z2))
        z1 = q_z1.sample(seed=self.next_seed())
        p_z1 = diagonal_gaussian(*map_rows(lambda z2: self.p_z1(z2, training=training), z2))
        return LogTerms(
            log_likelihood=self.likelihood.log_prob(self._x_params(z1, z2, x, training), x),
            log_prior=prior.log_prob(z2) + p_z1.log_prob(z1),
            log_posterior=q_z2.log_prob(z2) + q_z1.log_prob(z1),
        )

    def encode(self, x):
        """Mean and log-variance of ``q(z2|x)``."""
        return tuple(as_float32(t) for t in self.q_z2(x))

    def _generate(self, z1, z2, seed):
        """The mean of ``p(x|z1,z2)``; for an autoregressive decoder, a sample
        drawn pixel by pixel (its mean has no closed form)."""
        if self.pixelcnn is None:
            return self.likelihood.mean(self.p_x([z1, z2]))
        return self.pixelcnn.sample(self.p_x([z1, z2]), self.likelihood, seed)

    def decode(self, z):
        """Images from top latents ``z2``, through the mean of ``p(z1|z2)``."""
        z1 = as_float32(self.p_z1(z)[0])
        return self._generate(z1, z, self.next_seed())

    def generate_from_top(self, z_top, seed):
        """Ancestral sampling below ``z2``: ``z1 ~ p(z1|z2)``, then ``_generate``."""
        z1_seed, x_seed = tfp.random.split_seed(seed, n=2)
        z1 = diagonal_gaussian(*self.p_z1(z_top)).sample(seed=z1_seed)
        return self._generate(z1, z_top, x_seed)


class ConvolutionalHVAE(HVAE):
    """The HVAE with gated-convolutional encoders of ``conv_filters`` channels
    (64 in the paper): the base of the convHVAE and the PixelHVAE. The other
    arguments are ``HVAE``'s.

    Args:
      input_shape: shape of one image ``(H, W, C)``.
      conv_filters: width of the convolutional parts.
      **kwargs: Keras' ``Model`` arguments (``name``, ...).
    """

    xla_train_step = False  # on CPU, XLA's convolutions were slower than oneDNN's (bench/)

    def __init__(self, input_shape, conv_filters=64, likelihood="bernoulli", prior="vamp",
                 latent_dim=40, hidden_units=300, num_components=500,
                 pseudo_inputs_init_mean=0.05, pseudo_inputs_init_std=0.01,
                 pseudo_inputs_init_data=None, seed=None, precision=None,
                 kernel_initializer="glorot_uniform", **kwargs):
        self.conv_filters = int(conv_filters)  # before HVAE builds the networks
        super().__init__(input_shape, likelihood=likelihood, prior=prior, latent_dim=latent_dim,
                         hidden_units=hidden_units, num_components=num_components,
                         pseudo_inputs_init_mean=pseudo_inputs_init_mean,
                         pseudo_inputs_init_std=pseudo_inputs_init_std,
                         pseudo_inputs_init_data=pseudo_inputs_init_data, seed=seed,
                         precision=precision, kernel_initializer=kernel_initializer, **kwargs)

    def get_config(self):
        return {**super().get_config(), "conv_filters": self.conv_filters}


@keras.saving.register_keras_serializable(package="tfvamp")
class ConvHVAE(ConvolutionalHVAE):
    """convHVAE (L = 2): the HVAE with gated-convolutional encoders and decoder."""

    def build_parts(self):
        """The networks: gated-convolutional encoders and decoder."""
        return networks.conv_hvae_parts(self.image_shape, self.latent_dim,
                                        self.likelihood.num_params, self.hidden_units,
                                        self.conv_filters)


@keras.saving.register_keras_serializable(package="tfvamp")
class PixelHVAE(ConvolutionalHVAE):
    """PixelHVAE (L = 2): the convHVAE with a PixelCNN ``p(x|z1,z2)``.

    The ELBO uses teacher forcing; ``sample``, ``decode`` and ``reconstruct``
    draw images pixel by pixel (XLA-compiled), so they return samples of
    ``p(x|z1,z2)``, not means.
    """

    rows_per_chunk = 200  # a PixelCNN pass per (sample, image) row is costly in memory

    def build_parts(self):
        """The networks: the convHVAE's encoders, a PixelCNN ``p(x|z1,z2)``."""
        return networks.pixel_hvae_parts(self.image_shape, self.latent_dim,
                                         self.likelihood.num_params, self.hidden_units,
                                         self.conv_filters)
