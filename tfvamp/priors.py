"""Priors p(z) over a latent vector, each handing out a real ``tfd.Distribution``.

Every prior is a Keras layer that owns its trainable parameters; its
``distribution()`` builds a distribution with ``batch_shape == []`` and
``event_shape == [latent_dim]``, so ``log_prob(z)`` works for any leading
sample/batch shape of ``z`` and ``sample(n)`` draws ``[n, latent_dim]``.
"""
import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfvamp.layers import hardtanh

tfd = tfp.distributions


def as_float32(tensor):
    """``tensor`` in float32: every density is computed in float32, also when
    the networks compute in bfloat16 (a ``mixed_bfloat16`` policy)."""
    return tf.cast(tensor, tf.float32)


def diagonal_gaussian(mean, log_variance):
    """``N(mean, diag(exp(log_variance)))`` with the last axis as its event (float32)."""
    mean, log_variance = as_float32(mean), as_float32(log_variance)
    return tfd.Independent(
        tfd.Normal(loc=mean, scale=tf.exp(0.5 * log_variance)),
        reinterpreted_batch_ndims=1,
    )


class DiagonalGaussianMixture(tfd.MixtureSameFamily):
    """``(1/K) sum_k N(z | loc_k, diag(exp(log_variance_k)))``: the one mixture
    density of the MoG prior and the VampPrior (paper, Eq. 9).

    A ``tfd.MixtureSameFamily`` of ``diagonal_gaussian(loc, log_variance)``
    components (``loc`` and ``log_variance`` are ``[K, d]``) with uniform
    weights: mean, variance and the rest are TFP's. ``sample`` picks
    components, then draws from them (``sample_components`` draws from given
    ones). ``log_prob`` is one matmul instead of a ``[N, K, d]`` broadcast:
    with precisions ``P = exp(-log_variance)``,
    ``sum_j (z_j - m_kj)^2 P_kj = [z^2, z] . [P_k, -2 m_k P_k] + sum_j m_kj^2 P_kj``.
    In float32 this expansion loses about ``1e-7 * sum_j z_j^2 P_kj`` nats to
    cancellation (below 1e-3 nats for the paper's bounded log-variances).
    """

    def __init__(self, loc, log_variance, validate_args=False, allow_nan_stats=True,
                 name="DiagonalGaussianMixture"):
        parameters = dict(locals())
        with tf.name_scope(name) as name:
            self._loc = as_float32(loc)
            self._log_variance = as_float32(log_variance)
            if self._loc.shape.rank != 2 or self._log_variance.shape.rank != 2:
                raise ValueError(
                    "loc and log_variance must be [num_components, latent_dim] matrices, "
                    f"got shapes {self._loc.shape} and {self._log_variance.shape}")
            num_components = tf.shape(self._loc)[0]
            super().__init__(
                tfd.Categorical(logits=tf.zeros([num_components], self._loc.dtype)),
                diagonal_gaussian(self._loc, self._log_variance),
                validate_args=validate_args, allow_nan_stats=allow_nan_stats, name=name)
        self._parameters = parameters

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        return dict(loc=tfp.util.ParameterProperties(event_ndims=2),
                    log_variance=tfp.util.ParameterProperties(event_ndims=2))

    @property
    def loc(self):
        return self._loc

    @property
    def log_variance(self):
        return self._log_variance

    def _sample_n(self, n, seed=None):
        """``n`` draws: a component ``k ~ Categorical(weights)``, then ``q_k``.

        (Drawn with int64 indices: TFP's own categorical sampler runs int32
        ops that oneDNN declines with a misleading error line.)"""
        component_seed, noise_seed = tfp.random.split_seed(seed, n=2)
        logits = self.mixture_distribution.logits_parameter()
        components = tf.random.stateless_categorical(
            logits[None], n, seed=component_seed, dtype=tf.int64)[0]
        return self.sample_components(components, seed=noise_seed)

    def sample_components(self, components, seed=None):
        """One draw from each chosen component ``k`` of ``components`` (any
        shape of integer indices): ``loc_k + exp(log_variance_k / 2) * eps``,
        shape ``components.shape + [latent_dim]``."""
        chosen = diagonal_gaussian(tf.gather(self._loc, components),
                                   tf.gather(self._log_variance, components))
        return chosen.sample(seed=seed)

    def _log_prob(self, z):
        loc, log_variance = self._loc, self._log_variance
        latent_dim = tf.shape(loc)[-1]
        precision = tf.exp(-log_variance)  # [K, d]
        flat = tf.reshape(z, [-1, latent_dim])  # [N, d]
        quadratic = tf.matmul(
            tf.concat([tf.square(flat), flat], axis=-1),
            tf.concat([precision, -2.0 * loc * precision], axis=-1),
            transpose_b=True,
        ) + tf.reduce_sum(tf.square(loc) * precision + log_variance, axis=-1)  # [N, K]
        log_2pi = tf.math.log(2.0 * np.pi) * tf.cast(latent_dim, z.dtype)
        log_weights = tf.math.log_softmax(self.mixture_distribution.logits_parameter())
        log_prob = tf.reduce_logsumexp(-0.5 * (quadratic + log_2pi) + log_weights, axis=-1)
        return tf.reshape(log_prob, tf.shape(z)[:-1])


class Prior(keras.layers.Layer):
    """Base class: a layer whose ``distribution()`` is the prior p(z)."""

    def __init__(self, latent_dim, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = int(latent_dim)
        # Priors create their weights in __init__: nothing is left for build()
        # (else Keras warns when a model containing one is built).
        self.built = True

    def distribution(self):
        raise NotImplementedError

    def call(self, z):
        """``log p(z)`` for latents of shape ``[..., latent_dim]``."""
        return self.distribution().log_prob(z)

    def get_config(self):
        config = super().get_config()
        config.update(latent_dim=self.latent_dim)
        return config


@keras.saving.register_keras_serializable(package="tfvamp")
class StandardNormalPrior(Prior):
    """``p(z) = N(z | 0, I)``."""

    def distribution(self):
        zeros = tf.zeros([self.latent_dim])
        return diagonal_gaussian(zeros, zeros)


@keras.saving.register_keras_serializable(package="tfvamp")
class MixtureOfGaussiansPrior(Prior):
    """``p(z) = (1/K) sum_k N(z | m_k, diag(s_k^2))`` with trainable m_k, log s_k^2."""

    def __init__(self, latent_dim, num_components=500, **kwargs):
        super().__init__(latent_dim, **kwargs)
        self.num_components = int(num_components)
        shape = (self.num_components, self.latent_dim)
        self.means = self.add_weight(
            shape=shape, initializer=keras.initializers.RandomNormal(stddev=1.0), name="means"
        )
        self.log_variances = self.add_weight(shape=shape, initializer="zeros", name="log_variances")

    def distribution(self):
        return DiagonalGaussianMixture(self.means, self.log_variances)

    def get_config(self):
        config = super().get_config()
        config.update(num_components=self.num_components)
        return config


@keras.saving.register_keras_serializable(package="tfvamp")
class VampPrior(Prior):
    """The VampPrior (paper, Eq. 9): ``p(z) = (1/K) sum_k q(z | u_k)``.

    ``u_1..u_K`` are trainable pseudo-inputs, stored as a ``K x D`` matrix and
    squashed into [0, 1] by hardtanh, and ``q`` is the model's own encoder.
    ``encoder`` is any callable (e.g. a Keras model) mapping a batch of images
    of shape ``[K, *input_shape]`` to the mean and log-variance of a diagonal
    Gaussian, each ``[K, latent_dim]``.

    The pseudo-inputs are initialised ``N(init_mean, init_std)``, or, when
    ``init_data`` (an array of training images) is given, from K of those
    images chosen at random.
    """

    def __init__(
        self,
        encoder,
        input_shape,
        latent_dim,
        num_components=500,
        init_mean=0.05,
        init_std=0.01,
        init_data=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(latent_dim, **kwargs)
        self.encoder = encoder
        self.pseudo_input_shape = tuple(int(d) for d in input_shape)
        self.num_components = int(num_components)
        self.init_mean = float(init_mean)
        self.init_std = float(init_std)
        flat_dim = int(np.prod(self.pseudo_input_shape))
        if init_data is None:
            initializer = keras.initializers.RandomNormal(
                mean=self.init_mean, stddev=self.init_std, seed=seed
            )
        else:
            initializer = _random_rows_initializer(init_data, self.num_components, flat_dim, seed)
        self.pseudo_inputs_raw = self.add_weight(
            shape=(self.num_components, flat_dim), initializer=initializer, name="pseudo_inputs"
        )

    def pseudo_inputs(self):
        """The K pseudo-inputs as images, ``hardtanh(u, 0, 1)``."""
        u = hardtanh(self.pseudo_inputs_raw, 0.0, 1.0)
        return tf.reshape(u, (self.num_components,) + self.pseudo_input_shape)

    def distribution(self):
        mean, log_variance = self.encoder(self.pseudo_inputs())
        return DiagonalGaussianMixture(mean, log_variance)

    def get_config(self):
        """The prior's settings; ``encoder`` is shared with its model, which
        passes it again when it rebuilds the prior."""
        config = super().get_config()
        config.update(
            input_shape=self.pseudo_input_shape,
            num_components=self.num_components,
            init_mean=self.init_mean,
            init_std=self.init_std,
        )
        return config


def _random_rows_initializer(data, num_rows, flat_dim, seed):
    data = np.asarray(data, dtype=np.float32).reshape(len(data), -1)
    if data.shape[1] != flat_dim:
        raise ValueError(
            f"init_data has {data.shape[1]} values per image, pseudo-inputs need {flat_dim}"
        )
    rows = np.random.default_rng(seed).choice(len(data), size=num_rows, replace=len(data) < num_rows)
    chosen = data[rows]

    def initializer(shape, dtype=None):
        return tf.constant(chosen, dtype=dtype or tf.float32)

    return initializer


PRIORS = ("standard", "mog", "vamp")


def make_prior(name, latent_dim, num_components=500, encoder=None, input_shape=None,
               init_mean=0.05, init_std=0.01, init_data=None, seed=None):
    """Builds the prior called ``name`` (one of ``PRIORS``) over ``latent_dim`` latents.

    ``encoder`` and ``input_shape`` are needed by the VampPrior alone.
    """
    if name == "standard":
        return StandardNormalPrior(latent_dim, name="prior")
    if name == "mog":
        return MixtureOfGaussiansPrior(latent_dim, num_components, name="prior")
    if name == "vamp":
        return VampPrior(encoder, input_shape, latent_dim, num_components, init_mean,
                         init_std, init_data=init_data, seed=seed, name="prior")
    raise ValueError(f"Unknown prior {name!r}; valid: {list(PRIORS)}")
