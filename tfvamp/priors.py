"""Priors p(z) over a latent vector, each handing out a real ``tfd.Distribution``.

Every prior is a Keras layer that owns its trainable parameters; its
``distribution()`` builds a distribution with ``batch_shape == []`` and
``event_shape == [latent_dim]``, so ``log_prob(z)`` works for any leading
sample/batch shape of ``z`` and ``sample(n)`` draws ``[n, latent_dim]``:
the standard normal, the mixture of Gaussians and the VampPrior (paper, Eq. 9).
The distributions themselves are in ``tfvamp.gaussians``, the encoder's
posterior the VampPrior mixes in ``tfvamp.posteriors``.
"""
import keras
import numpy as np
import tensorflow as tf

from tfvamp import monitoring
from tfvamp.gaussians import DiagonalGaussianMixture, diagonal_gaussian
from tfvamp.layers import hardtanh
from tfvamp.names import PRIORS
from tfvamp.posteriors import (check_encoder, encoder_posterior, posterior_mixture,
                               posterior_moments, sample_components)
from tfvamp.serialization import deserialize


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

    def responsibilities(self, z):
        """q(k | z) = w_k p_k(z) / sum_j w_j p_j(z) for latents ``z [N, latent_dim]``:
        ``[N, K]`` (``tfvamp.monitoring.responsibilities``)."""
        return monitoring.responsibilities(self.distribution(), z)

    def usage(self, z):
        """Each component's average responsibility over latents ``z [N, latent_dim]`` (for
        a sample of images, their posterior means): ``[K]``, summing to 1."""
        return tf.reduce_mean(self.responsibilities(z), axis=0)

    def effective_components(self, z):
        """exp of the entropy of ``usage(z)``: between 1 (one component takes all) and K."""
        return monitoring.effective_components(self.usage(z).numpy())

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
        the training images they started from (what this costs on Caltech
        101 Silhouettes: RESULTS.md).
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
            encoder = deserialize(encoder, "the VampPrior's encoder")
        if isinstance(pseudo_input_map, dict):
            pseudo_input_map = deserialize(pseudo_input_map, "the VampPrior's pseudo-input map")
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
