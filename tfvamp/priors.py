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
from tensorflow_probability.python.internal import samplers

from tfvamp.layers import hardtanh

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
    train step, which on CPU took 2.4 of a VAE step's 15 ms for its
    ``[100, 40]`` noise (bench/README.md). Outside XLA the draws are the
    same numbers as ``tfd.Normal``'s.
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


def diagonal_parameters(posterior):
    """``(mean, log_variance)`` (float32, ``[..., d]``) of a diagonal Gaussian
    ``tfd.Normal``, ``tfd.Independent(tfd.Normal)`` or ``tfd.MultivariateNormalDiag``;
    None for any other distribution."""
    if (isinstance(posterior, tfd.Independent) and isinstance(posterior.distribution, tfd.Normal)
            and posterior.event_shape.rank == 1):
        posterior = posterior.distribution
    if isinstance(posterior, tfd.Normal):
        return as_float32(posterior.loc), 2.0 * tf.math.log(as_float32(posterior.scale))
    if isinstance(posterior, tfd.MultivariateNormalDiag):
        return (as_float32(posterior.loc),
                2.0 * tf.math.log(tf.abs(as_float32(posterior.scale.diag_part()))))
    return None


def posterior_moments(posterior):
    """Mean and log-variance (float32) of a posterior: a diagonal Gaussian's
    parameters, or any other distribution's mean and log marginal variances."""
    diagonal = diagonal_parameters(posterior)
    if diagonal is not None:
        return diagonal
    return as_float32(posterior.mean()), tf.math.log(as_float32(posterior.variance()))


def as_posterior(distribution):
    """A posterior over latent vectors: a ``tfd.Normal`` of batch shape
    ``[B, d]`` becomes ``Independent`` (event ``[d]``); any other distribution
    must already have events ``[d]``."""
    if isinstance(distribution, tfd.Normal):
        return tfd.Independent(distribution, reinterpreted_batch_ndims=1)
    return distribution


def posterior_mixture(components, mixture_logits=None):
    """``sum_k w_k q_k(z)`` over the K posteriors ``components`` (batch shape
    ``[K]``, events ``[d]``), uniform weights unless ``mixture_logits``.

    Diagonal Gaussians give the fast, float64-accurate ``DiagonalGaussianMixture``,
    ``tfd.MultivariateNormalTriL`` the ``FullCovarianceGaussianMixture``; any
    other family (a mixture, a Student-t, ...) a ``tfd.MixtureSameFamily`` of
    the components as they are."""
    diagonal = diagonal_parameters(components)
    if diagonal is not None:
        return DiagonalGaussianMixture(*diagonal, mixture_logits)
    if type(components) is tfd.MultivariateNormalTriL:
        return FullCovarianceGaussianMixture(components.loc, components.scale.to_dense(),
                                             mixture_logits)
    if mixture_logits is None:
        mixture_logits = tf.zeros(components.batch_shape_tensor()[:1], components.dtype)
    return tfd.MixtureSameFamily(tfd.Categorical(logits=mixture_logits), components)


def sample_components(mixture, components, seed=None):
    """One draw from each chosen component (integer indices of any shape) of
    a ``tfd.MixtureSameFamily``: shape ``components.shape + [latent_dim]``."""
    if isinstance(mixture, DiagonalGaussianMixture):
        return mixture.sample_components(components, seed=seed)
    flat = tf.reshape(tf.cast(components, tf.int64), [-1])
    draws = mixture.components_distribution.sample(tf.shape(flat)[:1], seed=seed)  # [M, K, d]
    chosen = tf.gather(draws, flat, axis=1, batch_dims=1)  # [M, d]
    return tf.reshape(chosen, tf.concat([tf.shape(components), tf.shape(chosen)[-1:]], 0))


class DiagonalGaussianMixture(tfd.MixtureSameFamily):
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
    width (in float32: 0.1 nats off at means of scale 5 and log-variance -6,
    ~40 at scale 100), so the matmul runs in float64 and only the quadratic
    form is rounded to float32: the log-density is within ~1e-5 nats of a
    float64 reference (d=40, K=500, means of scale 1 to 100, log-variances
    in [-6, 2]), its gradients within ~1e-7 relative, where a plain float32
    ``MixtureSameFamily`` is 1e-3 nats off at scale 100. On CPU the float64
    matmul takes ``log_prob`` to 1.8-2.8x the time of the float32 one (1.06x
    for the VampPrior's whole prior term of a train step), still 1.6-30x
    faster than the broadcast (``bench/mixture_density.py``). Mixture weights
    are ``softmax(mixture_distribution.logits_parameter())``; inputs and
    outputs are float32.
    """

    def __init__(self, loc, log_variance, mixture_logits=None, validate_args=False,
                 allow_nan_stats=True, name="DiagonalGaussianMixture"):
        parameters = dict(locals())
        with tf.name_scope(name) as name:
            self._loc = as_float32(loc)
            self._log_variance = as_float32(log_variance)
            if self._loc.shape.rank != 2 or self._log_variance.shape.rank != 2:
                raise ValueError(
                    "loc and log_variance must be [num_components, latent_dim] matrices, "
                    f"got shapes {self._loc.shape} and {self._log_variance.shape}")
            if mixture_logits is None:  # uniform weights, the paper's
                mixture_logits = tf.zeros(tf.shape(self._loc)[:1], self._loc.dtype)
            super().__init__(
                tfd.Categorical(logits=as_float32(mixture_logits)),
                diagonal_gaussian(self._loc, self._log_variance),
                validate_args=validate_args, allow_nan_stats=allow_nan_stats, name=name)
        self._parameters = parameters

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        return dict(loc=tfp.util.ParameterProperties(event_ndims=2),
                    log_variance=tfp.util.ParameterProperties(event_ndims=2),
                    mixture_logits=tfp.util.ParameterProperties(event_ndims=1))

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
        # The expansion's three terms are each about sum_j z_j^2 P_kj, far
        # larger than their sum next to a far, narrow component: they are
        # formed and summed in float64 (one matmul, the constant term as its
        # third block), and only the quadratic form is rounded to float32.
        loc = tf.cast(self._loc, tf.float64)
        latent_dim = tf.shape(loc)[-1]
        precision = tf.exp(-tf.cast(self._log_variance, tf.float64))  # [K, d]
        flat = tf.reshape(tf.cast(z, tf.float64), [-1, latent_dim])  # [N, d]
        quadratic = tf.matmul(
            tf.concat([tf.square(flat), flat, tf.ones_like(flat[:, :1])], axis=-1),
            tf.concat([precision, -2.0 * loc * precision,
                       tf.reduce_sum(tf.square(loc) * precision, axis=-1, keepdims=True)], axis=-1),
            transpose_b=True,
        )  # [N, K]
        log_normalizer = (tf.reduce_sum(self._log_variance, axis=-1)
                          + tf.math.log(2.0 * np.pi) * tf.cast(latent_dim, tf.float32))  # [K]
        log_weights = tf.math.log_softmax(self.mixture_distribution.logits_parameter())
        log_joint = -0.5 * (tf.cast(quadratic, tf.float32) + log_normalizer) + log_weights
        return tf.reshape(tf.reduce_logsumexp(log_joint, axis=-1), tf.shape(z)[:-1])


class FullCovarianceGaussianMixture(tfd.MixtureSameFamily):
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

    def __init__(self, loc, scale_tril, mixture_logits=None, validate_args=False,
                 allow_nan_stats=True, name="FullCovarianceGaussianMixture"):
        parameters = dict(locals())
        with tf.name_scope(name) as name:
            self._loc = as_float32(loc)
            self._scale_tril = as_float32(scale_tril)
            if self._loc.shape.rank != 2 or self._scale_tril.shape.rank != 3:
                raise ValueError(
                    "loc and scale_tril must be [num_components, latent_dim] and [num_components, "
                    f"latent_dim, latent_dim], got shapes {self._loc.shape} and "
                    f"{self._scale_tril.shape}")
            if mixture_logits is None:  # uniform weights, the paper's
                mixture_logits = tf.zeros(tf.shape(self._loc)[:1], self._loc.dtype)
            super().__init__(
                tfd.Categorical(logits=as_float32(mixture_logits)),
                tfd.MultivariateNormalTriL(self._loc, self._scale_tril),
                validate_args=validate_args, allow_nan_stats=allow_nan_stats, name=name)
        self._parameters = parameters

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        return dict(loc=tfp.util.ParameterProperties(event_ndims=2),
                    scale_tril=tfp.util.ParameterProperties(event_ndims=3),
                    mixture_logits=tfp.util.ParameterProperties(event_ndims=1))

    def _log_prob(self, z):
        loc = tf.cast(self._loc, tf.float64)
        scale_tril = tf.cast(self._scale_tril, tf.float64)
        num_components, latent_dim = tf.shape(loc)[0], tf.shape(loc)[1]
        inverse = tf.linalg.triangular_solve(
            scale_tril, tf.eye(latent_dim, batch_shape=[num_components], dtype=tf.float64))
        flat = tf.reshape(tf.cast(z, tf.float64), [-1, latent_dim])  # [N, d]
        whitened = tf.matmul(flat, tf.reshape(tf.transpose(inverse, [2, 0, 1]),
                                              [latent_dim, -1]))  # [N, K d]
        residual = (tf.reshape(whitened, [-1, num_components, latent_dim])
                    - tf.linalg.matvec(inverse, loc))  # [N, K, d]
        quadratic = tf.cast(tf.reduce_sum(tf.square(residual), axis=-1), tf.float32)  # [N, K]
        log_normalizer = (2.0 * tf.reduce_sum(tf.math.log(tf.abs(
            tf.linalg.diag_part(self._scale_tril))), axis=-1)
            + tf.math.log(2.0 * np.pi) * tf.cast(latent_dim, tf.float32))  # [K]
        log_weights = tf.math.log_softmax(self.mixture_distribution.logits_parameter())
        log_joint = -0.5 * (quadratic + log_normalizer) + log_weights
        return tf.reshape(tf.reduce_logsumexp(log_joint, axis=-1), tf.shape(z)[:-1])


class Prior(keras.layers.Layer):
    """Base class: a layer whose ``distribution()`` is the prior p(z).

    Calling the layer on latents ``z`` (``[..., latent_dim]``) returns
    ``log p(z)`` (``[...]``), so a prior also fits in a functional model.
    """

    def __init__(self, latent_dim, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = int(latent_dim)
        # Priors create their weights in __init__: nothing is left for build()
        # (else Keras warns when a model containing one is built).
        self.built = True

    def distribution(self):
        """The prior p(z) as a ``tfd.Distribution`` (batch shape ``[]``, event
        shape ``[latent_dim]``)."""
        raise NotImplementedError

    def call(self, z):
        """``log p(z)`` for latents of shape ``[..., latent_dim]``."""
        return self.distribution().log_prob(z)

    def compute_output_shape(self, z_shape):
        return tuple(z_shape[:-1])

    def get_config(self):
        config = super().get_config()
        config.update(latent_dim=self.latent_dim)
        return config


@keras.saving.register_keras_serializable(package="tfvamp")
class StandardNormalPrior(Prior):
    """``p(z) = N(z | 0, I)``."""

    def distribution(self):
        """``N(0, I)`` as a ``tfd.Independent`` normal."""
        zeros = tf.zeros([self.latent_dim])
        return diagonal_gaussian(zeros, zeros)


class _MixturePrior(Prior):
    """A prior that is a ``DiagonalGaussianMixture`` of ``num_components``
    components, with uniform weights (the paper's) or, with
    ``learnable_weights=True``, trainable mixture logits (initialised uniform)."""

    def __init__(self, latent_dim, num_components=500, learnable_weights=False, **kwargs):
        super().__init__(latent_dim, **kwargs)
        self.num_components = int(num_components)
        if self.num_components < 1:
            raise ValueError(f"num_components must be >= 1, got {num_components}")
        self.learnable_weights = bool(learnable_weights)
        self.mixture_logits = (self.add_weight(shape=(self.num_components,), initializer="zeros",
                                               name="mixture_logits")
                               if self.learnable_weights else None)

    def mixture_weights(self):
        """The K mixture weights (they sum to one)."""
        if self.mixture_logits is None:
            return tf.fill([self.num_components], 1.0 / self.num_components)
        return tf.nn.softmax(self.mixture_logits)

    def sample_components(self, components, seed=None):
        """One latent from each chosen component (integer indices of any
        shape), e.g. ``prior.sample_components(tf.fill([16], 3))``: 16 latents
        of what pseudo-input 3 encodes to."""
        return sample_components(self.distribution(), components, seed=seed)

    def get_config(self):
        config = super().get_config()
        config.update(num_components=self.num_components,
                      learnable_weights=self.learnable_weights)
        return config


@keras.saving.register_keras_serializable(package="tfvamp")
class MixtureOfGaussiansPrior(_MixturePrior):
    """``p(z) = (1/K) sum_k N(z | m_k, diag(s_k^2))`` with trainable m_k, log s_k^2
    (``learnable_weights=True``: trainable weights instead of 1/K)."""

    def __init__(self, latent_dim, num_components=500, learnable_weights=False, **kwargs):
        super().__init__(latent_dim, num_components, learnable_weights, **kwargs)
        shape = (self.num_components, self.latent_dim)
        self.means = self.add_weight(
            shape=shape, initializer=keras.initializers.RandomNormal(stddev=1.0), name="means"
        )
        self.log_variances = self.add_weight(shape=shape, initializer="zeros", name="log_variances")

    def distribution(self):
        """The mixture of the K trainable Gaussians (a ``DiagonalGaussianMixture``)."""
        return DiagonalGaussianMixture(self.means, self.log_variances, self.mixture_logits)


# The maps from the stored K x D matrix to the pseudo-inputs, by name, with the
# inverse used to start from data rows: the paper's hardtanh to [0, 1] for
# images, none for real-valued data, softplus for positive data (counts).
PSEUDO_INPUT_MAPS = {
    "hardtanh": (lambda u: hardtanh(u, 0.0, 1.0), lambda x: np.clip(x, 0.0, 1.0)),
    "none": (lambda u: u, lambda x: x),
    "softplus": (tf.math.softplus, lambda x: np.log(np.expm1(np.maximum(x, 1e-4)))),
}


@keras.saving.register_keras_serializable(package="tfvamp")
class VampPrior(_MixturePrior):
    """The VampPrior (paper, Eq. 9): ``p(z) = (1/K) sum_k q(z | u_k)``.

    ``q`` is the model's own encoder, the very object (never a copy): any
    callable (a Keras model, say) that maps a batch ``[K, *input_shape]`` to
    ``q(z|x)`` as users write it: the mean and log-variance of a diagonal
    Gaussian (two outputs; more outputs, e.g. ``[z_mean, z_log_var, z]``, or a
    dict, with the two found by name or chosen by ``posterior_outputs``; the
    others are ignored), or a ``tfd.Distribution`` over ``[latent_dim]``.
    Diagonal Gaussians (``Normal``, ``Independent(Normal)``,
    ``MultivariateNormalDiag``) give the fast ``DiagonalGaussianMixture``,
    full-covariance ``MultivariateNormalTriL`` the fast
    ``FullCovarianceGaussianMixture``, any other family (a mixture, ...) a
    ``tfd.MixtureSameFamily`` of the encoder's K distributions
    (``posterior_mixture``). The encoder is checked when the prior is built,
    with an error naming what came back otherwise. The prior does not own the
    encoder: its ``trainable_variables`` are its own parameters only (the
    pseudo-inputs, and the mixture logits if ``learnable_weights``), so every
    variable is trained once, however a model collects them.

    The pseudo-inputs are ``pseudo_input_map(U)`` for a trainable ``K x D``
    matrix ``U``: ``"hardtanh"`` (the paper's, into [0, 1], for images),
    ``"none"`` (real-valued data, e.g. standardised tabular data),
    ``"softplus"`` (positive data, e.g. counts), or any callable (registered
    with ``keras.saving.register_keras_serializable`` to be saved with a model).

    Args:
      encoder: the encoder ``q(z|x)``, shared with the model.
      input_shape: shape of one input (a pseudo-input), e.g. ``(28, 28, 1)`` or ``(13,)``.
      latent_dim: size of z; default: the encoder's. A different size is an error.
      num_components: K, the number of pseudo-inputs (500 in the paper).
      init_mean: ``U`` starts ``N(init_mean, init_std)``. The defaults, 0.05
        and 0.01, are the authors' values for (static) MNIST; ``trainers``
        use each dataset's own (``ImageDataset.pseudo_inputs_init``).
      init_std: see ``init_mean``.
      init_data: optional array of training inputs: ``U`` starts as K of its
        rows, chosen at random (with ``seed``) or given by ``init_indices``
        (put through the inverse of a named map, so the pseudo-inputs start as
        those rows). With ``"hardtanh"`` and binary rows every value starts
        on a bound of the clip, where training hardly moves it: a pixel pushed
        outward gets no gradient again, so such pseudo-inputs stay close to
        the training images they started from (on Caltech 101 Silhouettes
        this cost 9.2 nats of test log-likelihood, RESULTS.md).
      init_indices: the K rows of ``init_data`` to start from.
      pseudo_input_map: ``"hardtanh"``, ``"none"``, ``"softplus"`` or a callable.
      learnable_weights: trainable mixture weights instead of the paper's 1/K.
      encoder_training: the ``training`` argument the encoder gets when it
        encodes the pseudo-inputs: False (inference mode: dropout off, batch
        normalisation's moving statistics), True, or None (Keras' current
        phase, like the model's own call).
      seed: seed of the initialisation.
      posterior_outputs: for an encoder with more than two outputs or a dict:
        ``(mean, log_variance)``, their positions or names (dict keys, or a
        functional model's output names); default: the outputs named like
        ``z_mean`` and ``z_log_var`` (``MEAN_NAMES``, ``LOG_VARIANCE_NAMES``).
    """

    def __init__(
        self,
        encoder,
        input_shape,
        latent_dim=None,
        num_components=500,
        init_mean=0.05,
        init_std=0.01,
        init_data=None,
        seed=None,
        init_indices=None,
        pseudo_input_map="hardtanh",
        learnable_weights=False,
        encoder_training=False,
        posterior_outputs=None,
        **kwargs,
    ):
        if isinstance(encoder, dict):  # from a saved config
            encoder = keras.saving.deserialize_keras_object(encoder)
        if isinstance(pseudo_input_map, dict):
            pseudo_input_map = keras.saving.deserialize_keras_object(pseudo_input_map)
        if not callable(encoder):
            raise TypeError(f"encoder must be callable (e.g. a Keras model), got {encoder!r}")
        pseudo_input_shape = tuple(int(d) for d in input_shape)
        posterior_outputs = None if posterior_outputs is None else tuple(posterior_outputs)
        latent_dim, selection = check_encoder(encoder, pseudo_input_shape, latent_dim,
                                              posterior_outputs)
        super().__init__(latent_dim, num_components, learnable_weights, **kwargs)
        self.posterior_outputs = posterior_outputs
        self._selection = selection
        self.pseudo_input_shape = pseudo_input_shape
        # Not an attribute Keras tracks: the encoder's weights are the model's.
        object.__setattr__(self, "_encoder", encoder)
        self.init_mean = float(init_mean)
        self.init_std = float(init_std)
        self.encoder_training = encoder_training
        self.pseudo_input_map = pseudo_input_map
        self._map, inverse = _pseudo_input_map(pseudo_input_map)
        flat_dim = int(np.prod(self.pseudo_input_shape))
        if init_data is None:
            if init_indices is not None:
                raise ValueError("init_indices selects rows of init_data: give init_data too")
            initializer = keras.initializers.RandomNormal(
                mean=self.init_mean, stddev=self.init_std, seed=seed
            )
        else:
            rows = _initial_rows(init_data, self.num_components, flat_dim, init_indices, seed)
            initializer = keras.initializers.Constant(inverse(rows))
        self.pseudo_inputs_raw = self.add_weight(
            shape=(self.num_components, flat_dim), initializer=initializer, name="pseudo_inputs"
        )

    @property
    def encoder(self):
        """The encoder ``q(z|x)`` whose posteriors at the pseudo-inputs make the prior."""
        return self._encoder

    def pseudo_inputs(self):
        """The K pseudo-inputs, ``pseudo_input_map(U)``, shape ``[K, *input_shape]``."""
        u = self._map(self.pseudo_inputs_raw)
        return tf.reshape(u, (self.num_components,) + self.pseudo_input_shape)

    def posteriors(self):
        """The K posteriors ``q(z|u_k)``: one distribution of batch shape ``[K]``."""
        return encoder_posterior(self._encoder, self.pseudo_inputs(), self._selection,
                                 self.encoder_training)

    def encode_pseudo_inputs(self):
        """Mean and log-variance of ``q(z|u_k)`` for every k (float32, ``[K, latent_dim]``;
        for a non-diagonal family, the log of its marginal variances)."""
        return posterior_moments(self.posteriors())

    def distribution(self):
        """``(1/K) sum_k q(z|u_k)`` (``posterior_mixture``: a ``DiagonalGaussianMixture``
        for diagonal Gaussians); encodes the K pseudo-inputs, so call it once per
        step or evaluation."""
        return posterior_mixture(self.posteriors(), self.mixture_logits)

    def get_config(self):
        """The prior's settings and its encoder (within a model, Keras saves
        the encoder once and restores both as the same object)."""
        config = super().get_config()
        pseudo_input_map = self.pseudo_input_map
        if not isinstance(pseudo_input_map, str):
            pseudo_input_map = keras.saving.serialize_keras_object(pseudo_input_map)
        config.update(
            encoder=keras.saving.serialize_keras_object(self._encoder),
            input_shape=self.pseudo_input_shape,
            init_mean=self.init_mean,
            init_std=self.init_std,
            pseudo_input_map=pseudo_input_map,
            encoder_training=self.encoder_training,
            posterior_outputs=(None if self.posterior_outputs is None
                               else list(self.posterior_outputs)),
        )
        return config


def _call_encoder(encoder, x, training):
    if isinstance(encoder, keras.layers.Layer):
        return encoder(x, training=training)
    return encoder(x)


# Output names read as the mean and the log-variance when an encoder returns
# more than two tensors or a dict (the Keras examples' ``z_mean``, ``z_log_var``).
MEAN_NAMES = ("z_mean", "mean", "z_mu", "mu", "z_loc", "loc")
LOG_VARIANCE_NAMES = ("z_log_var", "log_var", "z_logvar", "logvar", "z_log_variance",
                      "log_variance")

ENCODER_CONVENTIONS = (
    "The encoder must return (mean, log_variance) of a diagonal Gaussian, each [batch, "
    "latent_dim]: as two outputs, as more outputs or a dict with those two named "
    f"(e.g. {MEAN_NAMES[0]!r}, {LOG_VARIANCE_NAMES[0]!r}) or chosen by "
    "posterior_outputs=(mean, log_variance) (positions or names), or return q(z|x) as a "
    "tfd.Distribution over [latent_dim]")


def encoder_posterior(encoder, x, selection, training=None):
    """``q(z|x)`` as a ``tfd.Distribution`` (batch ``[B]``, events ``[d]``):
    the distribution the encoder returns (``selection`` None), or the diagonal
    Gaussian of its outputs ``selection = (mean, log_variance)`` (positions or
    dict keys, from ``check_encoder``); the encoder's other outputs are ignored."""
    outputs = _call_encoder(encoder, x, training)
    if selection is None:
        return as_posterior(outputs)
    return diagonal_gaussian(outputs[selection[0]], outputs[selection[1]])


def _find_name(names, wanted):
    lowered = [str(n).lower() for n in names]
    for name in wanted:
        if name in lowered:
            return names[lowered.index(name)]
    return None


def _output_names(encoder):
    try:
        return list(encoder.output_names or [])
    except (AttributeError, ValueError, TypeError):
        return []


def _selection(encoder, outputs, posterior_outputs):
    """Where the mean and log-variance are in ``outputs``: a pair of positions
    (a list/tuple) or keys (a dict), or None for a distribution."""
    if isinstance(outputs, tfd.Distribution):
        if posterior_outputs is not None:
            raise ValueError("posterior_outputs chooses tensors among the encoder's outputs, "
                             "but the encoder returns a distribution: leave it out")
        return None
    if isinstance(outputs, dict):
        keys = list(outputs)
        if posterior_outputs is not None:
            missing = [k for k in posterior_outputs if k not in outputs]
            if missing:
                raise ValueError(f"posterior_outputs={tuple(posterior_outputs)}: the encoder "
                                 f"returned a dict with keys {sorted(keys)}, without {missing}")
            return tuple(posterior_outputs)
        found = (_find_name(keys, MEAN_NAMES), _find_name(keys, LOG_VARIANCE_NAMES))
        if None in found:
            raise ValueError(f"{ENCODER_CONVENTIONS}; it returned a dict with keys {sorted(keys)}")
        return found
    if not isinstance(outputs, (tuple, list)):
        raise ValueError(f"{ENCODER_CONVENTIONS}; it returned one tensor of shape "
                         f"{tuple(outputs.shape)}")
    shapes = [tuple(tf.convert_to_tensor(o).shape) for o in outputs]
    names = _output_names(encoder)
    if posterior_outputs is not None:
        positions = []
        for key in posterior_outputs:
            if isinstance(key, str):
                if key not in names:
                    raise ValueError(f"posterior_outputs={tuple(posterior_outputs)}: the "
                                     f"encoder's outputs are named {names}")
                key = names.index(key)
            if not 0 <= int(key) < len(outputs):
                raise ValueError(f"posterior_outputs={tuple(posterior_outputs)}: the encoder "
                                 f"returned {len(outputs)} outputs")
            positions.append(int(key))
        return tuple(positions)
    if len(outputs) == 2:
        return 0, 1
    if len(names) == len(outputs):
        found = (_find_name(names, MEAN_NAMES), _find_name(names, LOG_VARIANCE_NAMES))
        if None not in found:
            return tuple(names.index(n) for n in found)
    named = f" named {names}" if len(names) == len(outputs) else ""
    raise ValueError(f"{ENCODER_CONVENTIONS}; it returned {len(outputs)} outputs{named} of "
                     f"shapes {shapes}")


def check_encoder(encoder, input_shape, latent_dim=None, posterior_outputs=None):
    """Checks that ``encoder`` maps inputs of ``input_shape`` to a posterior
    ``q(z|x)`` over latent vectors, in one of the conventions of
    ``ENCODER_CONVENTIONS``; returns ``(latent_dim, selection)`` (``selection``
    for ``encoder_posterior``) or raises a ``ValueError`` saying what was
    expected and what came."""
    probe = tf.zeros((1,) + tuple(input_shape))
    try:
        outputs = _call_encoder(encoder, probe, False)
    except Exception as error:
        raise ValueError(f"The encoder failed on an input of shape {tuple(probe.shape)} "
                         f"(1 x input_shape {tuple(input_shape)}): {error}") from error
    selection = _selection(encoder, outputs, posterior_outputs)
    if selection is None:
        posterior = as_posterior(outputs)
        batch, event = tuple(posterior.batch_shape), tuple(posterior.event_shape)
        if batch != (1,) or len(event) != 1:
            raise ValueError(f"{ENCODER_CONVENTIONS}; for 1 input it returned a "
                             f"{type(outputs).__name__} of batch shape {batch} and event shape "
                             f"{event}, not batch (1,) and event (latent_dim,)")
        size = event[0]
    else:
        shapes = [tuple(tf.convert_to_tensor(outputs[k]).shape) for k in selection]
        if any(len(shape) != 2 or shape[0] != 1 for shape in shapes) or shapes[0] != shapes[1]:
            raise ValueError(f"{ENCODER_CONVENTIONS}; for 1 input the mean and log-variance "
                             f"(outputs {selection[0]!r}, {selection[1]!r}) have shapes "
                             f"{shapes[0]} and {shapes[1]}")
        size = shapes[0][1]
    if latent_dim is not None and int(latent_dim) != size:
        raise ValueError(f"latent_dim={latent_dim}, but the encoder returns latents of size {size}")
    return size, selection


def _pseudo_input_map(pseudo_input_map):
    """``(map, inverse)`` of a map's name or a callable (inverse: the identity)."""
    if callable(pseudo_input_map):
        return pseudo_input_map, lambda x: x
    try:
        return PSEUDO_INPUT_MAPS[pseudo_input_map]
    except (KeyError, TypeError):
        raise ValueError(f"pseudo_input_map must be one of {sorted(PSEUDO_INPUT_MAPS)} or a "
                         f"callable, got {pseudo_input_map!r}") from None


def _initial_rows(data, num_rows, flat_dim, indices, seed):
    """``num_rows`` rows of ``data`` (flattened): ``indices``, or drawn at random."""
    data = np.asarray(data, dtype=np.float32).reshape(len(data), -1)
    if data.shape[1] != flat_dim:
        raise ValueError(
            f"init_data has {data.shape[1]} values per input, pseudo-inputs need {flat_dim}"
        )
    if indices is None:
        indices = np.random.default_rng(seed).choice(
            len(data), size=num_rows, replace=len(data) < num_rows)
    indices = np.asarray(indices)
    if indices.shape != (num_rows,):
        raise ValueError(f"init_indices must give {num_rows} rows (num_components), "
                         f"got shape {indices.shape}")
    if indices.min() < 0 or indices.max() >= len(data):
        raise ValueError(f"init_indices must lie in [0, {len(data)}), got "
                         f"{indices.min()}..{indices.max()}")
    return data[indices]


PRIORS = ("standard", "mog", "vamp")


def make_prior(name, latent_dim, num_components=500, encoder=None, input_shape=None,
               init_mean=0.05, init_std=0.01, init_data=None, seed=None, posterior_outputs=None):
    """Builds the prior called ``name`` (one of ``PRIORS``) over ``latent_dim``
    latents, with the paper's settings.

    ``encoder`` and ``input_shape`` are needed by the VampPrior alone; build a
    ``VampPrior`` yourself for its other options.
    """
    if name == "standard":
        return StandardNormalPrior(latent_dim, name="prior")
    if name == "mog":
        return MixtureOfGaussiansPrior(latent_dim, num_components, name="prior")
    if name == "vamp":
        return VampPrior(encoder, input_shape, latent_dim, num_components, init_mean,
                         init_std, init_data=init_data, seed=seed,
                         posterior_outputs=posterior_outputs, name="prior")
    raise ValueError(f"Unknown prior {name!r}; valid: {list(PRIORS)}")
