"""Gaussian distributions: the diagonal Gaussian of every posterior and
decoder, and the two mixtures of Gaussians the priors hand out.

All of them compute in float32 (``as_float32``), also when the networks
compute in bfloat16. The mixtures are ``tfd.MixtureSameFamily`` subclasses
whose ``log_prob`` is their own (one float64 matmul instead of TFP's
``[N, K, d]`` broadcast)::

    mixture = DiagonalGaussianMixture(loc, log_variance)   # [K, d], [K, d]
    mixture.log_prob(z)                                    # z [..., d] -> [...]
"""
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from tensorflow_probability.python.internal import samplers

tfd = tfp.distributions


def as_float32(tensor):
    """``tensor`` in float32: every density is computed in float32, also when
    the networks compute in bfloat16 (a ``mixed_bfloat16`` policy)."""
    return tf.cast(tensor, tf.float32)


class PhiloxNormal(tfd.Normal):
    """``tfd.Normal`` whose draws ``loc + scale * eps`` take ``eps`` from the
    Philox generator by name.

    TFP's draws use TensorFlow's ``alg="auto_select"``: Philox in a
    ``tf.function``, but XLA's default bit generator inside an XLA-compiled
    train step, which is slow on CPU (bench/README.md). Outside XLA the draws
    are the same numbers as ``tfd.Normal``'s.
    """

    def _sample_n(self, n, seed=None):
        loc, scale = tf.convert_to_tensor(self.loc), tf.convert_to_tensor(self.scale)
        shape = tf.concat([[n], self._batch_shape_tensor(loc=loc, scale=scale)], 0)
        eps = tf.random.stateless_normal(shape, samplers.sanitize_seed(seed), dtype=self.dtype, alg="philox")
        return loc + scale * eps


def diagonal_gaussian(mean, log_variance):
    """``N(mean, diag(exp(log_variance)))`` with the last axis as its event (float32)."""
    mean, log_variance = as_float32(mean), as_float32(log_variance)
    return tfd.Independent(
        PhiloxNormal(loc=mean, scale=tf.exp(0.5 * log_variance)),
        reinterpreted_batch_ndims=1,
    )


def diagonal_parameters(distribution):
    """``(mean, log_variance)`` (float32, ``[..., d]``) of a diagonal Gaussian
    ``tfd.Normal``, ``tfd.Independent(tfd.Normal)`` or ``tfd.MultivariateNormalDiag``;
    None for any other distribution."""
    if (isinstance(distribution, tfd.Independent) and isinstance(distribution.distribution, tfd.Normal)
            and distribution.event_shape.rank == 1):
        distribution = distribution.distribution
    if isinstance(distribution, tfd.Normal):
        return as_float32(distribution.loc), 2.0 * tf.math.log(as_float32(distribution.scale))
    if isinstance(distribution, tfd.MultivariateNormalDiag):
        return (as_float32(distribution.loc),
                2.0 * tf.math.log(tf.abs(as_float32(distribution.scale.diag_part()))))
    return None


class GaussianMixture(tfd.MixtureSameFamily):
    """``sum_k w_k N(z | loc_k, Sigma_k)``: K Gaussians over ``[d]``, with
    uniform weights (the paper's) unless ``mixture_logits`` (``[K]``) are given.

    The base of the two mixtures below: they differ in how ``Sigma_k`` is
    given (``COVARIANCE``, a ``[K, ...]`` tensor of rank ``COVARIANCE_RANK``)
    and in the quadratic forms ``(z - loc_k)^T Sigma_k^{-1} (z - loc_k)``
    (``_quadratic_forms``) and log-determinants (``_log_determinants``) of
    their ``log_prob``,
    ``log p(z) = logsumexp_k [log w_k - (quadratic_k + log det Sigma_k + d log 2 pi) / 2]``.
    Mean, variance and sampling are TFP's; inputs and outputs are float32.
    """

    COVARIANCE = None  # the covariance parameter's name
    COVARIANCE_RANK = None
    COVARIANCE_SHAPE = None  # its shape, in words

    def __init__(self, loc, covariance, mixture_logits, validate_args, allow_nan_stats, name,
                 parameters):
        with tf.name_scope(name) as name:
            self._loc = as_float32(loc)
            self._covariance = as_float32(covariance)
            if self._loc.shape.rank != 2 or self._covariance.shape.rank != self.COVARIANCE_RANK:
                raise ValueError(
                    f"loc and {self.COVARIANCE} must be [num_components, latent_dim] and "
                    f"{self.COVARIANCE_SHAPE}, got shapes {self._loc.shape} and "
                    f"{self._covariance.shape}")
            if mixture_logits is None:  # uniform weights, the paper's
                mixture_logits = tf.zeros(tf.shape(self._loc)[:1], self._loc.dtype)
            super().__init__(
                tfd.Categorical(logits=as_float32(mixture_logits)), self._components(),
                validate_args=validate_args, allow_nan_stats=allow_nan_stats, name=name)
        self._parameters = parameters

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        raise NotImplementedError  # each mixture's own: its parameters are its constructor's

    @classmethod
    def _mixture_parameter_properties(cls):
        """``loc``, the covariance parameter and ``mixture_logits``, each with
        the component axis ``[K]`` as part of its event."""
        return {"loc": tfp.util.ParameterProperties(event_ndims=2),
                cls.COVARIANCE: tfp.util.ParameterProperties(event_ndims=cls.COVARIANCE_RANK),
                "mixture_logits": tfp.util.ParameterProperties(event_ndims=1)}

    @property
    def loc(self):
        """The K means, ``[K, d]``."""
        return self._loc

    def _components(self):
        """The K Gaussians as one distribution of batch shape ``[K]``."""
        raise NotImplementedError

    def _quadratic_forms(self, z):
        """``(z_n - loc_k)^T Sigma_k^{-1} (z_n - loc_k)`` for latents ``z``
        (float64, ``[N, d]``): float32, ``[N, K]``."""
        raise NotImplementedError

    def _log_determinants(self):
        """``log det Sigma_k``, float32, ``[K]``."""
        raise NotImplementedError

    def _log_prob(self, z):
        latent_dim = tf.shape(self._loc)[-1]
        flat = tf.reshape(tf.cast(z, tf.float64), [-1, latent_dim])  # [N, d]
        log_normalizer = (self._log_determinants()
                          + tf.math.log(2.0 * np.pi) * tf.cast(latent_dim, tf.float32))  # [K]
        log_weights = tf.math.log_softmax(self.mixture_distribution.logits_parameter())
        log_joint = -0.5 * (self._quadratic_forms(flat) + log_normalizer) + log_weights
        return tf.reshape(tf.reduce_logsumexp(log_joint, axis=-1), tf.shape(z)[:-1])


class DiagonalGaussianMixture(GaussianMixture):
    """``(1/K) sum_k N(z | loc_k, diag(exp(log_variance_k)))``: the one mixture
    density of the MoG prior and the VampPrior (paper, Eq. 9).

    A ``tfd.MixtureSameFamily`` of ``diagonal_gaussian(loc, log_variance)``
    components (``loc`` and ``log_variance`` are ``[K, d]``) with uniform
    weights unless ``mixture_logits`` are given: mean, variance and the rest
    are TFP's. ``sample`` picks components, then draws from them
    (``sample_components`` draws from given ones). ``log_prob`` is one matmul
    instead of a ``[N, K, d]`` broadcast: with precisions ``P = exp(-log_variance)``,
    ``sum_j (z_j - m_kj)^2 P_kj = [z^2, z, 1] . [P_k, -2 m_k P_k, sum_j m_kj^2 P_kj]``.
    Its terms cancel next to a component far from the origin relative to its
    width, so the matmul runs in float64 and only the quadratic form is
    rounded to float32: the log-density is within 1e-3 nats of a float64
    reference, its gradients within 1e-3 relative, for d=40, K=500, means of
    scale 1 to 100 and log-variances in [-6, 2] (``tests/test_mixture_density.py``;
    the errors and the speed measured: ``bench/README.md``). Mixture
    weights are ``softmax(mixture_distribution.logits_parameter())``; inputs
    and outputs are float32.
    """

    COVARIANCE = "log_variance"
    COVARIANCE_RANK = 2
    COVARIANCE_SHAPE = "[num_components, latent_dim]"

    def __init__(self, loc, log_variance, mixture_logits=None, validate_args=False,
                 allow_nan_stats=True, name="DiagonalGaussianMixture"):
        parameters = dict(locals())
        super().__init__(loc, log_variance, mixture_logits, validate_args, allow_nan_stats, name,
                         parameters)

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        return cls._mixture_parameter_properties()

    @property
    def log_variance(self):
        """The K log-variances, ``[K, d]``."""
        return self._covariance

    def _components(self):
        return diagonal_gaussian(self._loc, self._covariance)

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
                                   tf.gather(self._covariance, components))
        return chosen.sample(seed=seed)

    def _quadratic_forms(self, z):
        # The expansion's three terms are each about sum_j z_j^2 P_kj, far
        # larger than their sum next to a far, narrow component: they are
        # formed and summed in float64 (one matmul, the constant term as its
        # third block), and only the quadratic form is rounded to float32.
        loc = tf.cast(self._loc, tf.float64)
        precision = tf.exp(-tf.cast(self._covariance, tf.float64))  # [K, d]
        quadratic = tf.matmul(
            tf.concat([tf.square(z), z, tf.ones_like(z[:, :1])], axis=-1),
            tf.concat([precision, -2.0 * loc * precision,
                       tf.reduce_sum(tf.square(loc) * precision, axis=-1, keepdims=True)], axis=-1),
            transpose_b=True,
        )  # [N, K]
        return tf.cast(quadratic, tf.float32)

    def _log_determinants(self):
        return tf.reduce_sum(self._covariance, axis=-1)


class FullCovarianceGaussianMixture(GaussianMixture):
    """``sum_k w_k N(z | loc_k, L_k L_k^T)``: the VampPrior over full-covariance
    posteriors (an encoder returning ``tfd.MultivariateNormalTriL``).

    A ``tfd.MixtureSameFamily`` of ``tfd.MultivariateNormalTriL(loc, scale_tril)``
    (``[K, d]``, ``[K, d, d]``); only ``log_prob`` is its own. TFP's broadcasts
    every latent against every component's triangular solve (``[N, K, d, d]``);
    here the K inverses ``A_k = L_k^{-1}`` are formed once and the whitened
    residuals ``A_k z - A_k loc_k`` of all latents and components are one
    ``[N, d] x [d, K d]`` matmul, in float64 (as ``DiagonalGaussianMixture``),
    only the quadratic forms rounded to float32.
    """

    COVARIANCE = "scale_tril"
    COVARIANCE_RANK = 3
    COVARIANCE_SHAPE = "[num_components, latent_dim, latent_dim]"

    def __init__(self, loc, scale_tril, mixture_logits=None, validate_args=False,
                 allow_nan_stats=True, name="FullCovarianceGaussianMixture"):
        parameters = dict(locals())
        super().__init__(loc, scale_tril, mixture_logits, validate_args, allow_nan_stats, name,
                         parameters)

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        return cls._mixture_parameter_properties()

    @property
    def scale_tril(self):
        """The K lower-triangular scales ``L_k``, ``[K, d, d]``."""
        return self._covariance

    def _components(self):
        return tfd.MultivariateNormalTriL(self._loc, self._covariance)

    def _quadratic_forms(self, z):
        loc = tf.cast(self._loc, tf.float64)
        scale_tril = tf.cast(self._covariance, tf.float64)
        num_components, latent_dim = tf.shape(loc)[0], tf.shape(loc)[1]
        inverse = tf.linalg.triangular_solve(
            scale_tril, tf.eye(latent_dim, batch_shape=[num_components], dtype=tf.float64))
        whitened = tf.matmul(z, tf.reshape(tf.transpose(inverse, [2, 0, 1]),
                                           [latent_dim, -1]))  # [N, K d]
        residual = (tf.reshape(whitened, [-1, num_components, latent_dim])
                    - tf.linalg.matvec(inverse, loc))  # [N, K, d]
        return tf.cast(tf.reduce_sum(tf.square(residual), axis=-1), tf.float32)  # [N, K]

    def _log_determinants(self):
        return 2.0 * tf.reduce_sum(tf.math.log(tf.abs(tf.linalg.diag_part(self._covariance))),
                                   axis=-1)
