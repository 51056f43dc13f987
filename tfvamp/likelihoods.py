"""Observation models p(x | z) as TFP distributions over whole inputs.

A likelihood turns the decoder's raw output (``num_params`` numbers per input
value, stacked on a last axis: ``[B, *input_shape, num_params]``) into a
``tfd.Distribution`` whose event is one input (an image ``[H, W, C]``, or a
vector ``[D]``: ``event_ndims`` axes), so ``log_prob(x)`` returns one number
per input. The parameters are cast to float32 first: densities are float32 in
every precision.

``get_likelihood`` takes a name of ``LIKELIHOODS``, or any function mapping the
decoder's output to a ``tfd.Distribution`` over one input (register it with
``keras.saving.register_keras_serializable`` to save models that use it).
"""
import math

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfvamp.gaussians import as_float32, diagonal_gaussian
from tfvamp.serialization import deserialize

tfd = tfp.distributions

NUM_BINS = 256
# The authors bound the logistic's log-scale by hardtanh(-4.5, 0).
MIN_LOG_SCALE, MAX_LOG_SCALE = -4.5, 0.0


class Likelihood:
    """Base class: ``distribution(params)`` is p(x|z) for the decoder's output ``params``."""

    name = None
    num_params = None  # numbers per input value the decoder must output
    takes_logits = False  # whether its parameters are unbounded (a sigmoid before it misreads)
    takes_probabilities = False  # whether its parameters must lie in [0, 1]
    value_range = None  # (low, high) the data must lie in, or None for any real value

    def __init__(self, event_ndims=3):
        self.event_ndims = int(event_ndims)

    def distribution(self, params):
        """p(x|z) for the decoder's output ``params``: a ``tfd.Distribution``
        with one input as its event."""
        raise NotImplementedError

    def log_prob(self, params, x):
        """``log p(x|z)``, one number per input."""
        return self.distribution(params).log_prob(x)

    def mean(self, params):
        """The mean of p(x|z) (what ``decode`` and ``reconstruct`` return)."""
        return self.distribution(params).mean()

    def sample(self, params, seed=None):
        """One draw of x from p(x|z) (``seed``: a stateless seed)."""
        return self.distribution(params).sample(seed=seed)

    def get_config(self):
        """What ``get_likelihood`` rebuilds it from: its name."""
        return self.name


class BernoulliLikelihood(Likelihood):
    """Binary values: ``p(x|z) = prod_i Bernoulli(x_i | sigmoid(logit_i))``."""

    name = "bernoulli"
    num_params = 1
    takes_logits = True
    value_range = (0.0, 1.0)  # binary values, or probabilities of a dynamic binarisation

    def distribution(self, params):
        logits = as_float32(params[..., 0])
        return tfd.Independent(tfd.Bernoulli(logits=logits, dtype=tf.float32), self.event_ndims)

    def log_prob(self, params, x):
        """``sum_i x_i log s_i + (1 - x_i) log(1 - s_i)`` with ``s = sigmoid(logit_i)``,
        written ``sum_i x_i logit_i - softplus(logit_i)``: the ``distribution``'s
        log-density in two elementwise passes, ``x`` broadcast without copies."""
        logits = as_float32(params[..., 0])
        x = tf.cast(x, tf.float32)
        return tf.reduce_sum(x * logits - tf.math.softplus(logits),
                             axis=list(range(-self.event_ndims, 0)))

    def mean(self, params):
        return tf.sigmoid(as_float32(params[..., 0]))


class BernoulliProbabilitiesLikelihood(Likelihood):
    """Binary values from probabilities (a decoder ending in a sigmoid, as
    Keras' ``binary_crossentropy`` takes them by default):
    ``p(x|z) = prod_i Bernoulli(x_i | p_i)``, ``p_i`` clipped to
    ``[EPSILON, 1 - EPSILON]`` as Keras clips them (``keras.config.epsilon()``)."""

    name = "bernoulli_probs"
    num_params = 1
    takes_probabilities = True
    value_range = (0.0, 1.0)
    EPSILON = 1e-7

    def _probs(self, params):
        return tf.clip_by_value(as_float32(params[..., 0]), self.EPSILON, 1.0 - self.EPSILON)

    def distribution(self, params):
        return tfd.Independent(tfd.Bernoulli(probs=self._probs(params), dtype=tf.float32),
                               self.event_ndims)

    def log_prob(self, params, x):
        """``sum_i x_i log p_i + (1 - x_i) log(1 - p_i)``."""
        probs = self._probs(params)
        x = tf.cast(x, tf.float32)
        return tf.reduce_sum(x * tf.math.log(probs) + (1.0 - x) * tf.math.log1p(-probs),
                             axis=list(range(-self.event_ndims, 0)))

    def mean(self, params):
        return self._probs(params)


class ClampedBernoulliLikelihood(BernoulliLikelihood):
    """The authors' Bernoulli: the probabilities ``sigmoid(logit_i)`` clamped to
    ``[EPSILON, 1 - EPSILON]`` (their code's ``torch.clamp(x_mean, 1e-5, 1 - 1e-5)``),
    which bounds each pixel's log-probability by ``log(EPSILON)`` and stops the
    gradient of a pixel predicted beyond the bounds. The clamp is applied to the
    logits, ``|logit_i| <= log((1 - EPSILON) / EPSILON)``: the same probabilities."""

    name = "clamped_bernoulli"
    EPSILON = 1e-5
    MAX_LOGIT = math.log((1.0 - EPSILON) / EPSILON)

    def _clamped(self, params):
        return tf.clip_by_value(as_float32(params[..., :1]), -self.MAX_LOGIT, self.MAX_LOGIT)

    def distribution(self, params):
        return super().distribution(self._clamped(params))

    def log_prob(self, params, x):
        return super().log_prob(self._clamped(params), x)

    def mean(self, params):
        return super().mean(self._clamped(params))


class DiscretizedLogisticLikelihood(Likelihood):
    """Grey values in 256 bins: the logistic's mass on each bin (paper, Sec. 4).

    A value ``x`` in [0, 1] falls in bin ``k = floor(256 x)``, which covers
    ``[k/256, (k+1)/256)``; the first and last bins also take the tails, so the
    256 probabilities sum to one. The decoder gives the logistic's mean
    (through a sigmoid) and log-scale (bounded by hardtanh(-4.5, 0)).
    """

    name = "discretized_logistic"
    num_params = 2
    takes_logits = True  # the mean goes through its own sigmoid
    value_range = (0.0, 1.0)  # grey values scaled to [0, 1]

    def _loc_and_scale(self, params):
        params = as_float32(params)
        loc = tf.sigmoid(params[..., 0])
        log_scale = tf.clip_by_value(params[..., 1], MIN_LOG_SCALE, MAX_LOG_SCALE)
        return loc, tf.exp(log_scale)

    def distribution(self, params):
        """A distribution over bin indices 0..255 of every value."""
        loc, scale = self._loc_and_scale(params)
        # On the bin-index scale y = 256 x, QuantizedDistribution gives bin k the
        # mass F(k) - F(k - 1); shifting the logistic by one bin makes that
        # F_y(k + 1) - F_y(k), the mass of [k, k + 1).
        logistic = tfd.Logistic(loc=NUM_BINS * loc - 1.0, scale=NUM_BINS * scale)
        bins = tfd.QuantizedDistribution(logistic, low=0.0, high=NUM_BINS - 1.0)
        return tfd.Independent(bins, self.event_ndims)

    @staticmethod
    def to_bins(x):
        return tf.clip_by_value(tf.floor(x * NUM_BINS), 0.0, NUM_BINS - 1.0)

    @staticmethod
    def from_bins(bins):
        return (bins + 0.5) / NUM_BINS

    def log_prob(self, params, x):
        return self.distribution(params).log_prob(self.to_bins(x))

    def mean(self, params):
        return self._loc_and_scale(params)[0]

    def sample(self, params, seed=None):
        return self.from_bins(self.distribution(params).sample(seed=seed))


class AuthorsDiscretizedLogisticLikelihood(DiscretizedLogisticLikelihood):
    """The authors' discretised logistic (their code's ``log_Logistic_256``), for
    comparing with their grey-image numbers:

        log p(x_i|z) = log(sigmoid((b_i + 1/256 - m_i) / s_i) - sigmoid((b_i - m_i) / s_i) + 1e-7),
        b_i = floor(256 x_i) / 256,

    with the mean ``m_i = sigmoid(.)`` clamped to ``[1/512, 1 - 1/512]`` (their
    decoder's ``torch.clamp``) and the scale ``s_i = exp(hardtanh(., -4.5, 0))``
    as ``discretized_logistic``. Unlike ``discretized_logistic`` the first and
    last bins do not take the tails (the masses of the 256 bins sum to less
    than one), ``1e-7`` is added inside the log, and a value of exactly 1 falls
    in a 257th bin ``[1, 1 + 1/256)`` as in their code (the datasets here scale
    grey values to bin centres, ``(k + 0.5) / 256``, so no value is 1). At an
    edge bin the two differ by up to several nats per pixel (the lost tail);
    inside, by the clamp and the ``1e-7`` only.

    Not a normalised density, so ``sample`` (and ``distribution``) use the
    clamped mean and scale in ``discretized_logistic``'s distribution, tails in
    the edge bins; ``log_prob`` (the ELBO, the log-likelihood) is the authors'.
    """

    name = "authors_discretized_logistic"
    MIN_MEAN, MAX_MEAN = 0.5 / NUM_BINS, 1.0 - 0.5 / NUM_BINS
    EPSILON = 1e-7

    def _loc_and_scale(self, params):
        loc, scale = super()._loc_and_scale(params)
        return tf.clip_by_value(loc, self.MIN_MEAN, self.MAX_MEAN), scale

    def log_prob(self, params, x):
        loc, scale = self._loc_and_scale(params)
        low = tf.floor(tf.cast(x, tf.float32) * NUM_BINS) / NUM_BINS
        mass = (tf.sigmoid((low + 1.0 / NUM_BINS - loc) / scale) - tf.sigmoid((low - loc) / scale))
        return tf.reduce_sum(tf.math.log(mass + self.EPSILON), axis=list(range(-self.event_ndims, 0)))


class GaussianLikelihood(Likelihood):
    """Real values: ``p(x|z) = prod_i N(x_i | mean_i, exp(log_variance_i))``,
    the log-variance bounded to ``[-6, 2]`` (as the posteriors' in the paper)
    so that the density stays bounded; for standardised data."""

    name = "gaussian"
    num_params = 2
    MIN_LOG_VARIANCE, MAX_LOG_VARIANCE = -6.0, 2.0

    def distribution(self, params):
        log_variance = tf.clip_by_value(as_float32(params[..., 1]), self.MIN_LOG_VARIANCE,
                                        self.MAX_LOG_VARIANCE)
        normal = diagonal_gaussian(params[..., 0], log_variance).distribution
        return tfd.Independent(normal, self.event_ndims)


class DistributionLikelihood(Likelihood):
    """A likelihood given as a function: ``make_distribution(decoder_output)``
    returns a ``tfd.Distribution`` whose event is one input."""

    def __init__(self, make_distribution, event_ndims=3):
        super().__init__(event_ndims)
        self.make_distribution = make_distribution
        self.name = getattr(make_distribution, "__name__", type(make_distribution).__name__)

    def distribution(self, params):
        return self.make_distribution(params)

    def get_config(self):
        return keras.saving.serialize_keras_object(self.make_distribution)


class DecoderDistribution(Likelihood):
    """The decoder's own likelihood: a decoder that returns a ``tfd.Distribution``
    over one input per latent (batch ``[B]``, event ``input_shape``) is p(x|z)."""

    name = "decoder"

    def distribution(self, params):
        return params


LIKELIHOODS = {
    "authors_discretized_logistic": AuthorsDiscretizedLogisticLikelihood,
    "bernoulli": BernoulliLikelihood,
    "bernoulli_probs": BernoulliProbabilitiesLikelihood,
    "decoder": DecoderDistribution,
    "clamped_bernoulli": ClampedBernoulliLikelihood,
    "discretized_logistic": DiscretizedLogisticLikelihood,
    "gaussian": GaussianLikelihood,
}


def get_likelihood(likelihood, event_ndims=3):
    """A ``Likelihood`` from a name of ``LIKELIHOODS``, a function returning a
    ``tfd.Distribution`` (or its saved config), or a ``Likelihood`` itself;
    ``event_ndims``: the number of axes of one input (3 for images)."""
    if isinstance(likelihood, Likelihood):
        return likelihood
    if isinstance(likelihood, dict):  # a saved function
        likelihood = deserialize(likelihood, "the likelihood")
    if callable(likelihood):
        return DistributionLikelihood(likelihood, event_ndims)
    try:
        return LIKELIHOODS[likelihood](event_ndims)
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown likelihood {likelihood!r}; valid: {sorted(LIKELIHOODS)} or a function "
            "returning a tfd.Distribution"
        ) from None
