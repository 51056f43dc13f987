"""The posterior q(z|x) of any encoder, and mixtures of posteriors.

An encoder is any callable (a Keras model, say) from a batch of inputs to
``q(z|x)`` as users write it (``ENCODER_CONVENTIONS``): the mean and
log-variance of a diagonal Gaussian (two outputs; more outputs or a dict, the
two found by name or chosen by ``posterior_outputs``), or a
``tfd.Distribution`` over ``[latent_dim]``. ``check_encoder`` reads which
convention an encoder follows, once; ``encoder_posterior`` then turns its
outputs into a ``tfd.Distribution`` (batch ``[B]``, events ``[d]``), and
``posterior_mixture`` makes the mixture of K posteriors the VampPrior is::

    latent_dim, selection = check_encoder(encoder, (28, 28, 1))
    q = encoder_posterior(encoder, x, selection)          # q(z|x)
    p = posterior_mixture(encoder_posterior(encoder, u, selection))  # (1/K) sum_k q(z|u_k)
"""
import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfvamp.gaussians import (DiagonalGaussianMixture, FullCovarianceGaussianMixture, as_float32,
                              diagonal_gaussian, diagonal_parameters)

tfd = tfp.distributions


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


# Keras' mixed precision (the mixed_bfloat16 policy) keeps a model's outputs in float32 by
# giving the layers that compute them dtype="float32"; TFP's distributions need that.
FLOAT32_OUTPUTS = ('TensorFlow Probability\'s distributions compute in float32: give the layers '
                   'that output its parameters dtype="float32" (e.g. keras.layers.Dense(units, '
                   'dtype="float32")), as Keras\' mixed precision does for a model\'s outputs')
HALF_PRECISION = (tf.bfloat16, tf.float16)


def check_float32_distribution(distribution, who):
    """Raises a ``ValueError`` naming ``who`` (e.g. "The encoder") if
    ``distribution`` holds bfloat16 or float16 parameters, as one that layers
    build under Keras' ``mixed_bfloat16`` policy does: its densities and draws
    would fail on the model's float32 latents and inputs."""
    half = sorted({t.dtype.name for t in tf.nest.flatten(distribution, expand_composites=True)
                   if t.dtype in HALF_PRECISION})
    if half:
        raise ValueError(f"{who} returns tfd.{type(distribution).__name__} with {half[0]} parameters "
                         f"(its layers compute in {half[0]}, as under Keras' mixed_{half[0]} policy); "
                         f"{FLOAT32_OUTPUTS}")


def _compute_dtype(layer):
    policy = getattr(layer, "dtype_policy", None)
    return getattr(policy, "compute_dtype", None)


def check_encoder(encoder, input_shape, latent_dim=None, posterior_outputs=None):
    """Checks that ``encoder`` maps inputs of ``input_shape`` to a posterior
    ``q(z|x)`` over latent vectors, in one of the conventions of
    ``ENCODER_CONVENTIONS`` (a distribution with float32 parameters:
    ``check_float32_distribution``); returns ``(latent_dim, selection)``
    (``selection`` for ``encoder_posterior``) or raises a ``ValueError``
    saying what was expected and what came."""
    probe = tf.zeros((1,) + tuple(input_shape))
    try:
        outputs = _call_encoder(encoder, probe, False)
    except Exception as error:
        dtype = _compute_dtype(encoder)
        hint = (f" (it computes in {dtype}: if its distribution is built from {dtype} tensors, "
                f"{FLOAT32_OUTPUTS})" if dtype in ("bfloat16", "float16") else "")
        raise ValueError(f"The encoder failed on an input of shape {tuple(probe.shape)} "
                         f"(1 x input_shape {tuple(input_shape)}){hint}: {error}") from error
    selection = _selection(encoder, outputs, posterior_outputs)
    if selection is None:
        check_float32_distribution(outputs, "The encoder")
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
