"""What every model of the paper shares: training and evaluation of the ELBO,
the importance-sampled log-likelihood, generation and reconstruction.

A model differs from another only in its parts: subclasses build their networks
and implement ``log_terms`` (the paper's densities at S posterior samples),
``encode``, ``decode`` and ``generate_from_top``.
"""
import contextlib
import inspect

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfvamp import objectives
from tfvamp.callbacks import StopOnNonFiniteLoss
from tfvamp.layers import kernel_initializer_scope
from tfvamp.likelihoods import get_likelihood
from tfvamp.models import inputs
from tfvamp.models.inputs import images as _images
from tfvamp.names import PRECISIONS
from tfvamp.priors import Prior, VampPrior, make_prior
from tfvamp.serialization import deserialize


class LatentVariableModel(keras.Model):
    """Base class of the paper's VAEs.

    ``rows_per_chunk`` is how many (sample, image) pairs ``log_likelihood``
    decodes at once: it bounds memory, and about 1000 measured fastest on a
    CPU (``bench/``).

    Args:
      input_shape: shape of one input: an image ``(H, W, C)``, or ``(D,)``.
      likelihood: ``"bernoulli"``, ``"discretized_logistic"``, ``"gaussian"``,
        or a function from the decoder's output to a ``tfd.Distribution``
        over one input (``tfvamp.likelihoods.get_likelihood``).
      prior: ``"standard"``, ``"mog"`` or ``"vamp"``, or a prior layer of
        ``tfvamp.priors`` (a ``VampPrior`` built on this model's encoder).
      latent_dim: size of each latent level (40 in the paper).
      hidden_units: width of the gated layers (300 in the paper).
      num_components: K, for the MoG prior and the VampPrior.
      pseudo_inputs_init_mean: mean of the VampPrior's ``N(mean, std)``
        initialisation of the pseudo-inputs.
      pseudo_inputs_init_std: its standard deviation.
      pseudo_inputs_init_data: optional training images to initialise the
        pseudo-inputs from instead (not part of the config).
      seed: seed of the model's sampling.
      precision: ``"float32"``, or ``"bfloat16"`` for the networks' matmuls
        and convolutions in bfloat16 (Keras' ``mixed_bfloat16`` policy: float32
        variables); the densities, the ELBO and the importance weights are
        float32 in both. Default: Keras' global policy when the model is built
        (``keras.mixed_precision.set_global_policy("mixed_bfloat16")`` gives
        ``"bfloat16"``).
      kernel_initializer: initializer of the paper's networks' Dense kernels:
        ``"glorot_uniform"`` (Keras' default) or ``"he_normal"`` (the authors'
        ``he_init``), or any Keras initializer name. Convolutions keep Keras'
        default, as the authors' convolutions keep PyTorch's.

    Inputs are checked (``check_inputs``, on by default): ``fit``,
    ``evaluate``, ``log_likelihood``, ``reconstruct`` and the ELBO raise one
    ``ValueError`` for inputs not of shape ``[batch, *input_shape]`` (a
    static check, free in a compiled step), and ``fit`` raises a
    ``NonFiniteInputError`` naming the first batch with a NaN or infinity,
    and a ``ValueError`` naming the first with values outside the
    likelihood's ``value_range`` ([0, 1] for the Bernoulli and the
    discretised logistic: e.g. uint8 images of 0-255), before that batch is
    trained on (arrays are checked before training, a ``tf.data.Dataset``, a
    Python generator or a ``keras.utils.PyDataset`` as it yields each
    batch); ``evaluate``, ``log_likelihood`` and ``reconstruct`` check the
    values of an array or eager tensor the same way (``check_input_values``),
    and ``evaluate`` a generator's or a PyDataset's as it yields them.
    ``fit`` also stops at a non-finite loss with a ``NonFiniteLossError``
    unless given a ``StopOnNonFiniteLoss`` callback of its own.
    """

    rows_per_chunk = 1000
    check_inputs = True
    # Whether trainers XLA-compile the train step unless told: on CPU it was
    # faster for the dense models and slower for the convolutional ones (bench/).
    xla_train_step = True

    def __init__(
        self,
        input_shape,
        likelihood="bernoulli",
        prior="vamp",
        latent_dim=40,
        hidden_units=300,
        num_components=500,
        pseudo_inputs_init_mean=0.05,
        pseudo_inputs_init_std=0.01,
        pseudo_inputs_init_data=None,
        seed=None,
        precision=None,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.precision = resolve_precision(precision)
        keras.initializers.get(kernel_initializer)  # a clear error for an unknown name
        self.kernel_initializer = kernel_initializer
        self.image_shape = tuple(int(d) for d in input_shape)
        self.likelihood = get_likelihood(likelihood, event_ndims=len(self.image_shape))
        self.prior_name = prior if isinstance(prior, str) else None
        object.__setattr__(self, "_prior_argument", prior)  # build_prior's (untracked)
        self.latent_dim = int(latent_dim)
        self.hidden_units = int(hidden_units)
        self.num_components = int(num_components)
        self.pseudo_inputs_init_mean = float(pseudo_inputs_init_mean)
        self.pseudo_inputs_init_std = float(pseudo_inputs_init_std)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="sampling_seed")
        self.beta = keras.Variable(1.0, trainable=False, name="beta")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")

    def get_config(self):
        return {
            "input_shape": self.image_shape,
            "likelihood": self.likelihood.get_config(),
            "prior": (self.prior_name if self.prior_name is not None
                      else keras.saving.serialize_keras_object(self.prior)),
            "latent_dim": self.latent_dim,
            "hidden_units": self.hidden_units,
            "num_components": self.num_components,
            "pseudo_inputs_init_mean": self.pseudo_inputs_init_mean,
            "pseudo_inputs_init_std": self.pseudo_inputs_init_std,
            "seed": self.seed,
            "precision": self.precision,
            "kernel_initializer": self.kernel_initializer,
            "name": self.name,
        }

    @contextlib.contextmanager
    def network_scope(self):
        """While the model builds its networks: Keras' dtype policy of
        ``precision`` and the Dense kernels' ``kernel_initializer``."""
        with dtype_policy_scope(self.precision), kernel_initializer_scope(self.kernel_initializer):
            yield

    def build_prior(self, encoder, init_data=None, posterior_outputs=None):
        """The prior layer of the top latent: the one given to the constructor
        (a VampPrior must use ``encoder``; a saved one is rebuilt on it), or
        the one its name says, built on ``encoder`` (which the VampPrior reads
        through ``posterior_outputs``)."""
        prior = self._prior_argument
        if isinstance(prior, dict):  # a saved prior: rebuilt on this model's encoder
            if "encoder" in prior["config"]:
                prior = {**prior, "config": {**prior["config"], "encoder": encoder}}
            prior = deserialize(prior, f"the {type(self).__name__}'s prior")
        if isinstance(prior, Prior):
            if isinstance(prior, VampPrior) and prior.encoder is not encoder:
                raise ValueError("The VampPrior given as prior was built on another encoder "
                                 "than the model's: build it on the model's encoder.")
            if prior.latent_dim != self.latent_dim:
                raise ValueError(f"The prior is over {prior.latent_dim} latents, the model "
                                 f"has latent_dim={self.latent_dim}")
            return prior
        return make_prior(
            prior, self.latent_dim, self.num_components, encoder=encoder,
            input_shape=self.image_shape, init_mean=self.pseudo_inputs_init_mean,
            init_std=self.pseudo_inputs_init_std, init_data=init_data, seed=self.seed,
            posterior_outputs=posterior_outputs,
        )

    # -- what a model must provide -------------------------------------------
    def log_terms(self, x, prior, num_samples=1, training=False):
        """``LogTerms`` (each ``[S, B]``) of ``S = num_samples`` posterior samples,
        with ``prior`` the distribution of the top latent; ``training`` is
        passed to the networks (dropout, batch normalisation)."""
        raise NotImplementedError

    def encode(self, x):
        """Mean and log-variance of the top latent's posterior (float32)."""
        raise NotImplementedError

    def decode(self, z):
        """Image means from (top) latents ``z``."""
        raise NotImplementedError

    def generate_from_top(self, z_top, seed):
        """Images generated from top latents drawn from the prior; ``seed`` (a
        stateless seed) drives any further sampling, so the images are a
        function of ``z_top`` and ``seed``."""
        raise NotImplementedError

    # -- shared by every model -------------------------------------------------
    def next_seed(self):
        """A fresh stateless seed for TFP's ``sample``, different on every
        replica of a ``tf.distribute`` strategy; inside ``sampling_seed(seed)``,
        the next seed split from ``seed`` instead."""
        if self._seed_stream is not None:
            seed, count = self._seed_stream
            object.__setattr__(self, "_seed_stream", (seed, count + 1))
            return tf.random.experimental.stateless_fold_in(seed, count)
        seed = tf.cast(self.seed_generator.next(), tf.int32)
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            seed = tf.random.experimental.stateless_fold_in(seed, context.replica_id_in_sync_group)
        return seed

    _seed_stream = None  # (stateless seed, seeds split from it so far) inside sampling_seed

    @contextlib.contextmanager
    def sampling_seed(self, seed):
        """Inside the block, the model's draws (``next_seed``) come from the
        stateless ``seed`` (shape ``[2]``), the k-th one from
        ``stateless_fold_in(seed, k)``: what the block computes is a function
        of ``seed`` alone, on any device and replica (per-image seeds of
        ``tfvamp.evaluate``). In a ``tf.function``, enter it while tracing."""
        seed = tf.convert_to_tensor(seed)
        if not seed.dtype.is_integer or (seed.shape.is_fully_defined() and seed.shape.as_list() != [2]):
            raise ValueError(f"sampling_seed takes a stateless seed: 2 integers, got a {seed.dtype.name} "
                             f"tensor of shape {seed.shape}")
        previous = self._seed_stream
        object.__setattr__(self, "_seed_stream", (tf.cast(seed, tf.int32), 0))  # int64 seeds wrap
        try:
            yield
        finally:
            object.__setattr__(self, "_seed_stream", previous)

    def prior_distribution(self):
        """p(z) of the top latent; for the VampPrior this encodes the K
        pseudo-inputs, so call it once per step or evaluation."""
        return self.prior.distribution()

    def check_input_shape(self, x):
        """Raises a ``ValueError`` unless ``x`` has shape ``[batch, *input_shape]``
        (read from the static shape: nothing runs in a traced step)."""
        if self.check_inputs:
            inputs.check_shape(x, self.image_shape, self.name)

    def check_input_values(self, x, batch_size=None):
        """Raises a ``NonFiniteInputError`` for a NaN or infinity in ``x``, and a
        ``ValueError`` for values outside the likelihood's ``value_range``,
        naming the first bad row (and with ``batch_size``, as ``fit`` gives it,
        its batch). Only values at hand are checked (an array, an eager
        tensor): in a traced step it does nothing."""
        if self.check_inputs:
            inputs.check_values(x, self.likelihood, batch_size)

    def call(self, x, training=False):
        """The negative ELBO per image with beta = 1."""
        self.check_input_shape(x)
        terms = self.log_terms(x, self.prior_distribution(), training=training)
        return objectives.negative_elbo(terms).loss

    def elbo_terms(self, x, beta=1.0, num_samples=1, training=False):
        """``ElboTerms`` (each ``[B]``) of the negative ELBO with ``beta`` and S samples."""
        self.check_input_shape(x)
        terms = self.log_terms(x, self.prior_distribution(), num_samples, training=training)
        return objectives.negative_elbo(terms, beta)

    def fit(self, *args, **kwargs):
        """Keras' ``fit``, with the same arguments, and with the training data
        checked (``check_inputs``): its shape, and no NaN or infinity
        (``NonFiniteInputError`` naming the first bad batch, raised before that
        batch is trained on), and its values within the likelihood's
        ``value_range`` (a ``ValueError``, the same way); and, unless
        ``callbacks`` has a ``StopOnNonFiniteLoss``, training stops at the
        first non-finite loss with a ``NonFiniteLossError``."""
        if not self.check_inputs:
            return super().fit(*args, **kwargs)
        arguments = inspect.signature(super().fit).bind(*args, **kwargs)
        given = arguments.arguments
        given["x"] = inputs.checked_training_data(given.get("x"), given.get("batch_size"),
                                                  self.image_shape, self.likelihood, self.name)
        callbacks = list(given.get("callbacks") or [])
        if not any(isinstance(c, StopOnNonFiniteLoss) for c in callbacks):
            callbacks.append(StopOnNonFiniteLoss(raise_error=True))
        given["callbacks"] = callbacks
        with inputs.training_data_errors(self.likelihood):
            return super().fit(*arguments.args, **arguments.kwargs)

    def evaluate(self, *args, **kwargs):
        """Keras' ``evaluate``, with the same arguments, and with an array
        ``x``'s values checked first (``check_input_values``), and a Python
        generator's or a ``keras.utils.PyDataset``'s batches as they are
        evaluated (``inputs.checked_batches``)."""
        arguments = inspect.signature(super().evaluate).bind(*args, **kwargs)
        x = arguments.arguments.get("x")
        if hasattr(x, "shape"):  # an array or tensor, not a dataset
            self.check_input_values(x)
        elif self.check_inputs and inputs.gives_python_batches(x):
            arguments.arguments["x"] = inputs.checked_batches(x, self.image_shape, self.likelihood,
                                                              self.name, training=False)
        with inputs.data_errors():
            return super().evaluate(*arguments.args, **arguments.kwargs)

    def train_step(self, data):
        """One Adam step on the batch-mean negative ELBO with the current beta.

        Under a ``tf.distribute`` strategy every replica sees part of the
        global batch and the optimizer sums the replicas' gradients, so each
        replica divides its sum of losses by the global number of images:
        2 replicas then compute the same loss and gradients as 1.
        """
        x = _images(data)
        self.check_input_shape(x)
        with tf.GradientTape() as tape:
            terms = self.elbo_terms(x, beta=self.beta, training=True)
            loss = tf.reduce_sum(terms.loss) / _global_batch_size(terms.loss)
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return self._update_metrics(terms)

    def test_step(self, data):
        """The ELBO (beta = 1) of a batch, with the prior computed once for
        the whole batch (the VampPrior's K pseudo-inputs encoded once).

        A batch of static size (e.g. a whole validation set from
        ``ImageDataset.pipeline(split, batch_size=None)``) is evaluated in
        chunks of ``rows_per_chunk`` images, so memory stays bounded.
        """
        self.check_input_shape(_images(data))
        prior = self.prior_distribution()
        terms = _negative_elbo_in_chunks(lambda x: self.log_terms(x, prior), _images(data),
                                         self.rows_per_chunk)
        return self._update_metrics(terms)

    def _update_metrics(self, terms):
        """Updates the running means; returns them over all replicas."""
        self.loss_tracker.update_state(terms.loss)
        self.reconstruction_tracker.update_state(terms.reconstruction)
        self.kl_tracker.update_state(terms.kl)
        # Each replica's trackers hold its own images only: sum totals and counts.
        results = {m.name: _sum_over_replicas(tf.convert_to_tensor(m.total))
                   / _sum_over_replicas(tf.convert_to_tensor(m.count)) for m in self.metrics}
        strategy = tf.distribute.get_strategy()
        if (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
                and strategy.extended._in_multi_worker_mode()):
            # Keras reduces a multi-worker step's outputs with reduce(MEAN, axis=0),
            # which needs an axis: give each (already global) value one.
            results = {name: tf.reshape(value, [1]) for name, value in results.items()}
        return results

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_tracker, self.kl_tracker]

    def log_likelihood(self, x, num_samples=5000, chunk_size=None, prior=None):
        """Importance-sampled ``log p(x)`` per image (paper, Sec. 4).

        Pass ``prior`` (from ``prior_distribution()``) to reuse encoded
        pseudo-inputs across batches. ``chunk_size`` samples are drawn at a
        time (default: ``rows_per_chunk / batch size``).
        """
        self.check_input_shape(x)
        self.check_input_values(x)
        prior = self.prior_distribution() if prior is None else prior
        if chunk_size is None:
            chunk_size = default_chunk_size(tf.shape(x)[0], self.rows_per_chunk)
        return objectives.importance_sampled_log_likelihood(
            lambda n: self.log_terms(x, prior, n), num_samples, chunk_size
        )

    def sample(self, num_images, seed=None):
        """Images generated from the prior: ``z ~ p(z)``, then the decoder.

        The same stateless ``seed`` (shape ``[2]``) gives the same images."""
        seed = self.next_seed() if seed is None else seed
        prior_seed, generation_seed = tfp.random.split_seed(seed, n=2)
        z_top = self.prior_distribution().sample(num_images, seed=prior_seed)
        return self.generate_from_top(z_top, generation_seed)

    def reconstruct(self, x):
        """Image means decoded from the posterior mean of ``x``."""
        self.check_input_shape(x)
        self.check_input_values(x)
        mean, _ = self.encode(x)
        return self.decode(mean)


def resolve_precision(precision=None):
    """``precision`` checked, or, if None, the compute dtype of Keras' global
    dtype policy (``"float32"`` or ``"bfloat16"``)."""
    if precision is None:
        precision = keras.config.dtype_policy().compute_dtype
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    return precision


@contextlib.contextmanager
def dtype_policy_scope(precision):
    """Keras' global dtype policy set to ``precision``'s (``"float32"`` or
    ``"mixed_bfloat16"``) inside the block, restored after it."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32" if precision == "float32" else f"mixed_{precision}")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def default_chunk_size(batch_size, rows_per_chunk):
    """Samples per chunk so that one chunk decodes about ``rows_per_chunk``
    latents; a tensor when the batch size is only known when the graph runs."""
    static = batch_size if isinstance(batch_size, int) else tf.get_static_value(batch_size)
    if static is None:
        return tf.maximum(1, rows_per_chunk // batch_size)
    return max(1, rows_per_chunk // max(1, int(static)))


def map_rows(fn, *tensors, event_ranks=None):
    """Applies ``fn`` (one positional argument per tensor) to tensors with the same leading axes (e.g. ``[S, B]``).

    ``event_ranks`` gives each tensor's number of trailing (per-row) axes,
    1 by default. The leading axes are flattened into one batch axis for the
    network and restored on each of ``fn``'s outputs.
    """
    event_ranks = event_ranks or (1,) * len(tensors)
    leading = tf.shape(tensors[0])[:tf.rank(tensors[0]) - event_ranks[0]]
    flat = [tf.reshape(t, tf.concat([[-1], tf.shape(t)[tf.rank(t) - r:]], 0))
            for t, r in zip(tensors, event_ranks)]
    outputs = fn(*flat)
    return tf.nest.map_structure(
        lambda out: tf.reshape(out, tf.concat([leading, tf.shape(out)[1:]], 0)), outputs)


def _global_batch_size(per_image):
    """Images in this step over all replicas (as a float)."""
    return _sum_over_replicas(tf.cast(tf.shape(per_image)[0], per_image.dtype))


def _sum_over_replicas(value):
    """``value`` summed over the replicas of the current strategy."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    if not value.device:  # MultiWorkerMirroredStrategy may set no device scope
        with tf.device(context.strategy.extended.worker_devices[0]):
            value = tf.identity(value)
    return context.all_reduce("sum", value)


def _negative_elbo_in_chunks(log_terms_fn, x, chunk_size):
    """``negative_elbo(log_terms_fn(x))``, on chunks of ``chunk_size`` rows
    when the first dimension ``N`` of ``x`` is static and larger: the equal
    chunks one after the other through one ``tf.map_fn``, then the remainder."""
    def elbo(images):
        return objectives.negative_elbo(log_terms_fn(images))

    n = x.shape[0]
    if n is None or n <= chunk_size:
        return elbo(x)
    whole = n - n % chunk_size
    chunks = tf.reshape(x[:whole], [whole // chunk_size, chunk_size, *x.shape[1:]])
    row_spec = tf.TensorSpec([chunk_size], tf.float32)
    terms = tf.map_fn(elbo, chunks, fn_output_signature=objectives.ElboTerms(row_spec, row_spec, row_spec),
                      parallel_iterations=1)
    terms = [tf.reshape(t, [whole]) for t in terms]
    if whole < n:
        terms = [tf.concat([a, b], 0) for a, b in zip(terms, elbo(x[whole:]))]
    return objectives.ElboTerms(*terms)
