"""Exports a trained model as a SavedModel for TensorFlow Serving.

``export_model`` writes ``EXPORT_DIR/<model_name>/<version>/`` (tag ``serve``),
the layout TensorFlow Serving watches. Its signatures, with plain named
tensors in and out, are the contract a client codes against; they are listed
in ``tfvamp.serving.SIGNATURES`` and in the README:

* ``serving_default``: ``images`` -> ``log_likelihood`` (importance sampling
  with ``DEFAULT_NUM_SAMPLES`` samples, paper Sec. 5) and ``elbo`` (one
  posterior sample, as in ``results.json``), nats per image;
* ``log_prob``: the same with the number of samples as an input ``num_samples``;
* ``encode``: ``images`` -> ``mean``, ``log_variance`` of q(z|x) of the top latent;
* ``decode``: ``latents`` -> ``images`` (means of p(x|z));
* ``reconstruct``: ``images`` -> ``images`` decoded from the posterior mean;
* ``sample``: ``num_samples``, ``seed`` -> ``images`` generated from the prior,
  the same images for the same seed.

Every input is checked in the graph: a wrong rank or size fails with an
``InvalidArgument`` error naming the input and the shape it must have.
"""
import json
import os
import re
import shutil
import tempfile

import tensorflow as tf

from tfvamp.models import MODELS
from tfvamp.objectives import negative_elbo
from tfvamp.serving import INPUT_DTYPES, SIGNATURES

DEFAULT_NUM_SAMPLES = 5000
# Latents decoded at once by the importance sampler, as in evaluation.
ROWS_PER_CHUNK = 10_000
MODEL_CONFIG_FILE = "tfvamp_model.json"


class ServingSignatures:
    """The signatures of ``model`` (a ``LatentVariableModel``) as ``tf.function``s."""

    def __init__(self, model):
        self.model = model
        self.image_shape = tuple(model.image_shape)
        self.latent_dim = int(model.latent_dim)

    def input_specs(self):
        """``tf.TensorSpec`` of every input name of the signatures."""
        shapes = {
            "images": (None,) + self.image_shape,
            "latents": (None, self.latent_dim),
            "num_samples": (),
            "seed": (),
        }
        return {name: tf.TensorSpec(shapes[name], dtype, name=name)
                for name, dtype in INPUT_DTYPES.items()}

    def concrete_functions(self):
        """Concrete functions keyed by signature name, for ``tf.saved_model.save``."""
        specs = self.input_specs()
        functions = {
            "serving_default": self.log_prob_default,
            "log_prob": self.log_prob,
            "encode": self.encode,
            "decode": self.decode,
            "reconstruct": self.reconstruct,
            "sample": self.sample,
        }
        return {name: functions[name].get_concrete_function(
                    **{i: specs[i] for i in SIGNATURES[name].inputs})
                for name in SIGNATURES}

    # -- input checks ---------------------------------------------------------
    def _check_batch(self, name, tensor, event_shape):
        expected = "[N, " + ", ".join(str(d) for d in event_shape) + "]"
        tf.debugging.assert_rank(tensor, 1 + len(event_shape),
                                 message=f"`{name}` must have shape {expected}")
        shape = tf.shape(tensor)
        tf.debugging.assert_equal(shape[1:], tf.constant(event_shape, tf.int32),
                                  message=f"`{name}` must have shape {expected}")
        tf.debugging.assert_positive(shape[0], message=f"`{name}` must hold at least one row")

    def _check_positive_scalar(self, name, tensor):
        tf.debugging.assert_rank(tensor, 0, message=f"`{name}` must be a scalar")
        tf.debugging.assert_positive(tensor, message=f"`{name}` must be >= 1")

    def _check_images(self, images):
        self._check_batch("images", images, self.image_shape)

    # -- signatures -----------------------------------------------------------
    @tf.function
    def log_prob(self, images, num_samples):
        self._check_images(images)
        self._check_positive_scalar("num_samples", num_samples)
        prior = self.model.prior_distribution()
        chunk_size = tf.maximum(1, ROWS_PER_CHUNK // tf.shape(images)[0])
        log_likelihood = self.model.log_likelihood(images, num_samples, chunk_size, prior=prior)
        elbo = -_negative_elbo(self.model, images, prior)
        return {"log_likelihood": log_likelihood, "elbo": elbo}

    @tf.function
    def log_prob_default(self, images):
        return self.log_prob(images, tf.constant(DEFAULT_NUM_SAMPLES, tf.int32))

    @tf.function
    def encode(self, images):
        self._check_images(images)
        mean, log_variance = self.model.encode(images)
        return {"mean": mean, "log_variance": log_variance}

    @tf.function
    def decode(self, latents):
        self._check_batch("latents", latents, (self.latent_dim,))
        return {"images": self.model.decode(latents)}

    @tf.function
    def reconstruct(self, images):
        self._check_images(images)
        return {"images": self.model.reconstruct(images)}

    @tf.function
    def sample(self, num_samples, seed):
        self._check_positive_scalar("num_samples", num_samples)
        tf.debugging.assert_rank(seed, 0, message="`seed` must be a scalar")
        # An int64 seed is two int32 words, the stateless seed TFP takes. The
        # model's own seed state is set from it too, so that any further
        # sampling on the way to the images (hierarchical models) repeats.
        stateless_seed = tf.bitcast(tf.cast(seed, tf.int64), tf.int32)
        state = self.model.seed_generator.state
        state.assign(tf.cast(stateless_seed, state.dtype))
        return {"images": self.model.sample(num_samples, seed=stateless_seed)}


def variables_module(model):
    """A ``tf.Module`` that tracks exactly the model's variables: what an
    export saves and what ``load_model`` restores (not the optimizer's)."""
    module = tf.Module(name="tfvamp_model")
    module.model_variables = [v.value for v in model.variables]  # the tf.Variables of Keras 3
    return module


def _negative_elbo(model, images, prior):
    return negative_elbo(model.log_terms(images, prior)).loss


def versions(model_dir):
    """The integer versions already exported under ``model_dir``, sorted."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(n) for n in os.listdir(model_dir)
                  if re.fullmatch(r"[0-9]+", n) and os.path.isdir(os.path.join(model_dir, n)))


def registry_name(model):
    """The key of ``model``'s class in ``tfvamp.models.MODELS``."""
    for name, model_class in MODELS.items():
        if type(model) is model_class:
            return name
    raise ValueError(f"{type(model).__name__} is not a model of tfvamp.models.MODELS")


def export_model(model, export_dir, model_name=None, version=None):
    """Saves ``model``'s serving signatures to ``export_dir/model_name/version``.

    ``model_name`` defaults to the model's name in ``tfvamp.models.MODELS``.
    ``version`` defaults to one more than the newest version there (1 for
    the first). An explicit version that already exists is refused, so an
    export a server may be serving is never overwritten. The SavedModel is
    written next to its final place and renamed into it, so a server watching
    ``export_dir/model_name`` never sees half a version. The model's class
    and configuration go to ``assets.extra/tfvamp_model.json`` (TensorFlow
    Serving ignores that folder), for ``load_model``. Returns the path.
    """
    model_key = registry_name(model)
    model_name = model_key if model_name is None else model_name
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", model_name):
        raise ValueError(f"model_name must be letters, digits, '_', '.' or '-', got {model_name!r}")
    model_dir = os.path.join(export_dir, model_name)
    existing = versions(model_dir)
    next_version = existing[-1] + 1 if existing else 1
    version = next_version if version is None else int(version)
    if version < 1:
        raise ValueError(f"version must be a positive integer, got {version}")
    path = os.path.join(model_dir, str(version))
    if os.path.exists(path):
        raise FileExistsError(f"{path} already exists; choose another version or leave it out "
                              f"to export as version {next_version}")
    os.makedirs(model_dir, exist_ok=True)
    signatures = ServingSignatures(model).concrete_functions()
    staging = tempfile.mkdtemp(prefix=f".{version}-", dir=model_dir)
    try:
        tf.saved_model.save(variables_module(model), staging, signatures=signatures)
        os.makedirs(os.path.join(staging, "assets.extra"))
        with open(os.path.join(staging, "assets.extra", MODEL_CONFIG_FILE), "w") as f:
            json.dump({"model": model_key, "config": model.get_config()}, f, indent=2)
        os.rename(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def load_model(path):
    """The Keras model saved in the export at ``path``, rebuilt with its
    weights (for re-exporting it, or evaluating it in Python)."""
    config_path = os.path.join(path, "assets.extra", MODEL_CONFIG_FILE)
    if not os.path.exists(config_path):
        raise FileNotFoundError(f"{config_path} is missing: {path} is not an export of tfvamp.export")
    with open(config_path) as f:
        saved = json.load(f)
    model = MODELS[saved["model"]].from_config(saved["config"])
    checkpoint = tf.train.Checkpoint(variables_module(model))
    checkpoint.read(os.path.join(path, "variables", "variables")).assert_existing_objects_matched()
    return model
