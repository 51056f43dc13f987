"""What a mixture prior's components and the posterior are doing while a model trains: the
statistics, and the Keras callback that logs them.

For a mixture prior p(z) = sum_k w_k p_k(z) (the VampPrior: p_k = q(z | u_k), w_k = 1/K), the
responsibility of component k for a latent z is

    q(k | z) = w_k p_k(z) / sum_j w_j p_j(z),

and over a sample of images, each counted once at its posterior mean z = E_q[z | x], a
component's **usage** is its average responsibility (a ``[K]`` vector summing to 1). The
**effective number of components** is exp(H(usage)), H the entropy: K when every component is
used alike, 1 when one takes all. A component is **unused** below ``UNUSED_SHARE / K``. A latent
dimension is **active** (Burda et al. 2016) when Cov_x(E_q[z | x]) > ``ACTIVE_UNIT_THRESHOLD``;
a posterior that has collapsed onto the prior has none, and a KL near 0.
"""
import os
import warnings

import keras
import numpy as np
import tensorflow as tf

ACTIVE_UNIT_THRESHOLD = 0.01
UNUSED_SHARE = 0.01  # a component is unused below 1% of the uniform share 1/K
COLLAPSE_KL = 0.1  # nats: a KL this small after the warm-up is a collapsed posterior


def responsibilities(prior_distribution, z):
    """q(k | z) of a ``tfd.MixtureSameFamily`` prior for latents ``z [N, latent_dim]``: ``[N, K]``."""
    logits = prior_distribution.mixture_distribution.logits_parameter()
    log_joint = logits + prior_distribution.components_distribution.log_prob(z[:, None, :])
    return tf.nn.softmax(log_joint, axis=-1)


def posterior_means(model, images, batch_size=500):
    """E_q[z | x] of the (top) latent for ``images``, ``batch_size`` at a time: ``[N, latent_dim]``."""
    return np.concatenate([model.encode(tf.convert_to_tensor(images[start:start + batch_size]))[0].numpy()
                           for start in range(0, len(images), batch_size)])


def mixture_usage(prior_distribution, z, batch_size=500):
    """The average of q(k | z) over latents ``z [N, latent_dim]``: ``[K]``, summing to 1."""
    total = tf.zeros_like(prior_distribution.mixture_distribution.logits_parameter())
    for start in range(0, len(z), batch_size):
        total += tf.reduce_sum(responsibilities(prior_distribution, z[start:start + batch_size]), axis=0)
    return total.numpy() / len(z)


def component_usage(model, images, batch_size=500):
    """Each component's share of the posterior mass of ``images`` (``[K]``, summing to 1): the
    average over the images of q(k | z) at the image's posterior mean z; ``batch_size`` images
    are encoded at once. ``model.prior_distribution()`` must be a mixture."""
    return mixture_usage(model.prior_distribution(), posterior_means(model, images, batch_size), batch_size)


def effective_components(usage):
    """exp of the entropy of ``usage`` (nats): between 1 and K."""
    usage = np.asarray(usage, np.float64)
    used = usage[usage > 0]
    return float(np.exp(-np.sum(used * np.log(used))))


def unused_components(usage, share=UNUSED_SHARE):
    """How many of the K components carry less than ``share / K`` of the mass."""
    usage = np.asarray(usage)
    return int(np.sum(usage < share / len(usage)))


def active_units(posterior_means, threshold=ACTIVE_UNIT_THRESHOLD):
    """How many latent dimensions vary with the data: Cov_x(E_q[z | x]) > ``threshold``, from
    ``posterior_means [N, latent_dim]`` of N images."""
    return int(np.sum(np.var(np.asarray(posterior_means, np.float64), axis=0) > threshold))


class PriorMonitor(keras.callbacks.Callback):
    """Every ``every`` epochs, the prior's component statistics and the posterior's active
    units on a fixed sample of ``images``; logged into ``logs`` (so into the History and
    TensorBoard callbacks after it), kept in ``history``, and written to TensorBoard under
    ``log_dir/prior`` when given: the pseudo-inputs as an image grid (most used first), the
    components' usage as a histogram, and the scalars ``effective_components``,
    ``unused_components``, ``pseudo_input_drift`` (the root-mean-square change of a pseudo-input
    pixel since the last log) and ``active_units``.

    Once the warm-up is over (``warmup_epochs``), a posterior with no active unit, or a KL
    (``logs["kl"]``) under ``COLLAPSE_KL`` nats, is a collapse: the callback warns once
    (a ``RuntimeWarning`` naming the epoch and what usually helps) and records the epoch in
    ``collapsed_at_epoch``. ``snapshots`` keeps the ``num_images`` most used pseudo-inputs of
    every log, for a figure of their drift.
    """

    def __init__(self, images, every=10, log_dir=None, warmup_epochs=0, num_images=64):
        super().__init__()
        self.images = np.asarray(images)
        self.every = int(every)
        self.log_dir = log_dir
        self.warmup_epochs = int(warmup_epochs)
        self.num_images = int(num_images)
        self.history, self.snapshots = [], []
        self.collapsed_at_epoch = None
        self._previous_pseudo_inputs = None
        self._writer = None

    def statistics(self):
        """The statistics now, as a dict of floats (and ``usage``, a ``[K]`` array, for a mixture)."""
        means = posterior_means(self.model, self.images)  # encoded once for both statistics
        stats = {"active_units": active_units(means)}
        prior = self.model.prior_distribution()  # the VampPrior: K pseudo-inputs encoded once
        if hasattr(prior, "mixture_distribution"):
            usage = mixture_usage(prior, means)
            stats.update(usage=usage, effective_components=effective_components(usage),
                         unused_components=unused_components(usage))
        return stats

    def on_epoch_end(self, epoch, logs=None):
        step = epoch + 1
        if not self.every or step % self.every:
            return
        stats = self.statistics()
        usage = stats.pop("usage", None)
        pseudo_inputs = self._pseudo_inputs()
        if pseudo_inputs is not None:
            if self._previous_pseudo_inputs is not None:
                stats["pseudo_input_drift"] = float(np.sqrt(np.mean(
                    (pseudo_inputs - self._previous_pseudo_inputs) ** 2)))
            self._previous_pseudo_inputs = pseudo_inputs
            order = np.argsort(-usage, kind="stable")[:self.num_images]
            self.snapshots.append({"epoch": step, "pseudo_inputs": pseudo_inputs[order],
                                   "usage": usage[order]})
        if logs is not None:
            logs.update(stats)
        self.history.append({"epoch": step, **stats})
        if self.log_dir is not None:
            self._write(step, stats, usage, pseudo_inputs)
        self._check_collapse(step, stats, logs or {})

    def _pseudo_inputs(self):
        prior = getattr(self.model, "prior", None)
        if not hasattr(prior, "pseudo_inputs"):
            return None
        return np.asarray(prior.pseudo_inputs())

    def _check_collapse(self, step, stats, logs):
        if (self.collapsed_at_epoch is not None or step < self.warmup_epochs
                or not np.isfinite(logs.get("loss", 0.0))):  # a diverged run is not a collapse
            return
        kl = logs.get("kl")
        if stats["active_units"] == 0 or (kl is not None and kl < COLLAPSE_KL):
            self.collapsed_at_epoch = step
            what = (f"no active latent unit (Cov_x E[z|x] > {ACTIVE_UNIT_THRESHOLD} in none)"
                    if stats["active_units"] == 0 else f"a KL of {kl:.3g} nats")
            warnings.warn(
                f"Epoch {step}: the posterior has collapsed onto the prior ({what}): the decoder "
                "models the data without z. What usually helps: a longer KL warm-up, a smaller K, "
                "pseudo-inputs started from the data's mean and spread, a weaker decoder.",
                RuntimeWarning, stacklevel=2)

    def _write(self, step, stats, usage, pseudo_inputs):
        from tfvamp.figures import image_grid  # matplotlib only when needed

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "prior"))
        with self._writer.as_default():
            for name, value in stats.items():
                tf.summary.scalar(name, value, step=step)
            if usage is not None:
                tf.summary.histogram("component_usage", usage, step=step)
            if pseudo_inputs is not None:
                grid = image_grid(self.snapshots[-1]["pseudo_inputs"])
                tf.summary.image("pseudo_inputs_most_used_first",
                                 grid[None, ..., None] if grid.ndim == 2 else grid[None], step=step)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
