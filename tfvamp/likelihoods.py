"""Observation models p(x | z) as TFP distributions over whole images.

A likelihood turns the decoder's raw output (``num_params`` numbers per pixel,
stacked on the last axis) into a ``tfd.Distribution`` whose event is one image
of shape ``[H, W, C]``, so ``log_prob(x)`` returns one number per image. The
parameters are cast to float32 first: densities are float32 in every precision.
"""
import tensorflow as tf
import tensorflow_probability as tfp

from tfvamp.priors import as_float32

tfd = tfp.distributions

NUM_BINS = 256
# The authors bound the logistic's log-scale by hardtanh(-4.5, 0).
MIN_LOG_SCALE, MAX_LOG_SCALE = -4.5, 0.0


class BernoulliLikelihood:
    """Binary pixels: ``p(x|z) = prod_i Bernoulli(x_i | sigmoid(logit_i))``."""

    name = "bernoulli"
    num_params = 1

    def distribution(self, params):
        logits = as_float32(params[..., 0])
        return tfd.Independent(tfd.Bernoulli(logits=logits, dtype=tf.float32), 3)

    def log_prob(self, params, x):
        """``sum_i x_i log s_i + (1 - x_i) log(1 - s_i)`` with ``s = sigmoid(logit_i)``,
        written ``sum_i x_i logit_i - softplus(logit_i)``: the ``distribution``'s
        log-density in two elementwise passes, ``x`` broadcast without copies."""
        logits = as_float32(params[..., 0])
        x = tf.cast(x, tf.float32)
        return tf.reduce_sum(x * logits - tf.math.softplus(logits), axis=[-3, -2, -1])

    def mean(self, params):
        return tf.sigmoid(as_float32(params[..., 0]))

    def sample(self, params, seed=None):
        return self.distribution(params).sample(seed=seed)


class DiscretizedLogisticLikelihood:
    """Grey pixels in 256 bins: the logistic's mass on each bin (paper, Sec. 4).

    A pixel value ``x`` in [0, 1] falls in bin ``k = floor(256 x)``, which covers
    ``[k/256, (k+1)/256)``; the first and last bins also take the tails, so the
    256 probabilities sum to one. The decoder gives the logistic's mean
    (through a sigmoid) and log-scale (bounded by hardtanh(-4.5, 0)).
    """

    name = "discretized_logistic"
    num_params = 2

    def _loc_and_scale(self, params):
        params = as_float32(params)
        loc = tf.sigmoid(params[..., 0])
        log_scale = tf.clip_by_value(params[..., 1], MIN_LOG_SCALE, MAX_LOG_SCALE)
        return loc, tf.exp(log_scale)

    def distribution(self, params):
        """A distribution over bin indices 0..255 of every pixel."""
        loc, scale = self._loc_and_scale(params)
        # On the bin-index scale y = 256 x, QuantizedDistribution gives bin k the
        # mass F(k) - F(k - 1); shifting the logistic by one bin makes that
        # F_y(k + 1) - F_y(k), the mass of [k, k + 1).
        logistic = tfd.Logistic(loc=NUM_BINS * loc - 1.0, scale=NUM_BINS * scale)
        bins = tfd.QuantizedDistribution(logistic, low=0.0, high=NUM_BINS - 1.0)
        return tfd.Independent(bins, 3)

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


LIKELIHOODS = {
    "bernoulli": BernoulliLikelihood,
    "discretized_logistic": DiscretizedLogisticLikelihood,
}


def get_likelihood(name):
    try:
        return LIKELIHOODS[name]()
    except KeyError:
        raise ValueError(
            f"Unknown likelihood {name!r}; valid: {sorted(LIKELIHOODS)}"
        ) from None
