"""Exports a trained model as a SavedModel for TensorFlow Serving.

``export_model`` writes ``EXPORT_DIR/<model_name>/<version>/`` (tag ``serve``),
the layout TensorFlow Serving watches. Its signatures, with plain named
tensors in and out, are the contract a client (``tfvamp.serving``) codes
against; they are listed in ``SIGNATURES`` and in the serving guide:

* ``serving_default``: ``images`` -> ``log_likelihood`` (importance sampling
  with ``DEFAULT_NUM_SAMPLES`` samples, paper Sec. 4) and ``elbo`` (one
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
from typing import NamedTuple

import tensorflow as tf

from tfvamp.evaluation import log_likelihood_and_elbo
from tfvamp.models import MODELS

MODEL_CONFIG_FILE = "tfvamp_model.json"
# TF Serving replays this file's PredictionLog records when it loads a version, before serving
# it, so the first client request does not pay for the graph's first run.
WARMUP_FILE = "tf_serving_warmup_requests"
# The inputs of the warm-up requests: one all-zero image or latent, a few samples, seed 0.
WARMUP_SCALARS = {"num_samples": 2, "seed": 0}
MODELS_CONFIG_FILE = "models.config"

# dtype of each input name; images and latents are batches, the rest scalars.
INPUT_DTYPES = {"images": "float32", "latents": "float32", "num_samples": "int32", "seed": "int64"}
BATCHED_INPUTS = ("images", "latents")
# Importance samples per image of the serving_default signature.
DEFAULT_NUM_SAMPLES = 5000


class Signature(NamedTuple):
    inputs: tuple  # input names, keys of INPUT_DTYPES
    outputs: tuple  # output names, float32 tensors
    description: str


SIGNATURES = {
    "serving_default": Signature(
        ("images",), ("log_likelihood", "elbo"),
        f"log p(x) by importance sampling with {DEFAULT_NUM_SAMPLES} samples, and the ELBO, "
        "nats per image"),
    "log_prob": Signature(
        ("images", "num_samples"), ("log_likelihood", "elbo"),
        "log p(x) by importance sampling with num_samples samples, and the ELBO"),
    "encode": Signature(
        ("images",), ("mean", "log_variance"), "q(z|x) of the top latent"),
    "decode": Signature(("latents",), ("images",), "means of p(x|z) for top latents z"),
    "reconstruct": Signature(("images",), ("images",), "images decoded from the posterior mean"),
    "sample": Signature(
        ("num_samples", "seed"), ("images",),
        "images generated from the prior; the same seed gives the same images"),
}


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

    # -- input checks and output shapes ----------------------------------------
    def _checked_batch(self, name, tensor, event_shape):
        """``tensor``, once checked to have the shape ``[N, *event_shape]``, N >= 1.

        The check compares the shape as text: TensorFlow Serving feeds tensors
        of any shape, while checks on the rank or on slices of the shape would
        be folded away from the signature's declared shape.
        """
        pattern = r"[1-9][0-9]*" + "".join(f", {d}" for d in event_shape)
        expected = f"[N, {', '.join(str(d) for d in event_shape)}] with N >= 1"
        return _checked_shape(name, tensor, pattern, expected)

    def _checked_positive(self, name, tensor):
        """``tensor`` (a scalar), once checked to be positive. (A non-scalar
        fails in the check with TensorFlow's "should be a scalar" error.)"""
        check = tf.debugging.assert_positive(tensor, message=f"`{name}` must be >= 1")
        with tf.control_dependencies([check]):
            return tf.identity(tensor)

    def _checked_images(self, images):
        return self._checked_batch("images", images, self.image_shape)

    def _images_out(self, images):
        return tf.ensure_shape(images, (None,) + self.image_shape)

    # -- signatures -----------------------------------------------------------
    @tf.function
    def log_prob(self, images, num_samples):
        images = self._checked_images(images)
        num_samples = self._checked_positive("num_samples", num_samples)
        prior = self.model.prior_distribution()
        log_likelihood, elbo, _, _ = log_likelihood_and_elbo(self.model, images, prior, num_samples)
        return {"log_likelihood": tf.ensure_shape(log_likelihood, [None]),
                "elbo": tf.ensure_shape(elbo, [None])}

    @tf.function
    def log_prob_default(self, images):
        return self.log_prob(images, tf.constant(DEFAULT_NUM_SAMPLES, tf.int32))

    @tf.function
    def encode(self, images):
        mean, log_variance = self.model.encode(self._checked_images(images))
        return {"mean": tf.ensure_shape(mean, [None, self.latent_dim]),
                "log_variance": tf.ensure_shape(log_variance, [None, self.latent_dim])}

    @tf.function
    def decode(self, latents):
        latents = self._checked_batch("latents", latents, (self.latent_dim,))
        return {"images": self._images_out(self.model.decode(latents))}

    @tf.function
    def reconstruct(self, images):
        return {"images": self._images_out(self.model.reconstruct(self._checked_images(images)))}

    @tf.function
    def sample(self, num_samples, seed):
        num_samples = self._checked_positive("num_samples", num_samples)
        # An int64 seed is two int32 words, the stateless seed TFP takes; every
        # draw on the way to the images derives from it, so requests are independent.
        stateless_seed = tf.bitcast(tf.cast(seed, tf.int64), tf.int32)
        return {"images": self._images_out(self.model.sample(num_samples, seed=stateless_seed))}


def _checked_shape(name, tensor, pattern, expected):
    """``tensor``, once its shape written ``"d0, d1, ..."`` fully matches ``pattern``."""
    shape = tf.strings.reduce_join(tf.strings.as_string(tf.shape(tensor)), separator=", ")
    message = tf.strings.join([f"`{name}` must have shape {expected}, got [", shape, "]"])
    check = tf.debugging.Assert(tf.strings.regex_full_match(shape, pattern), [message])
    with tf.control_dependencies([check]):
        return tf.identity(tensor)


def variables_module(model):
    """A ``tf.Module`` that tracks exactly the model's variables: what an
    export saves and what ``load_model`` restores (not the optimizer's)."""
    module = tf.Module(name="tfvamp_model")
    module.model_variables = [v.value for v in model.variables]  # the tf.Variables of Keras 3
    return module


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
    Serving ignores that folder), for ``load_model``, with TF Serving's warm-up
    requests (``write_warmup_requests``); ``export_dir/models.config`` is
    rewritten to list every model exported there (``write_models_config``).
    Returns the path.
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
    save_serving_model(model, path)
    write_models_config(export_dir)
    return path


def save_serving_model(model, path):
    """Saves ``model``'s serving signatures as a SavedModel at ``path`` (a
    directory that must not exist), written beside it and renamed into place.
    Returns ``path``. (Keras' own ``model.export(path)`` writes Keras'
    ``serve`` endpoint instead, without these signatures.)"""
    if os.path.exists(path):
        raise FileExistsError(f"{path} already exists: export to a new directory")
    model_key = registry_name(model)
    model = _with_plain_variables(model, model_key)
    serving = ServingSignatures(model)
    signatures = serving.concrete_functions()
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}-", dir=parent)
    try:
        tf.saved_model.save(variables_module(model), staging, signatures=signatures)
        os.makedirs(os.path.join(staging, "assets.extra"))
        with open(os.path.join(staging, "assets.extra", MODEL_CONFIG_FILE), "w") as f:
            json.dump({"model": model_key, "config": model.get_config()}, f, indent=2)
        write_warmup_requests(os.path.join(staging, "assets.extra", WARMUP_FILE), serving.input_specs())
        os.rename(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def _with_plain_variables(model, model_key):
    """``model`` itself, so that the export computes exactly what it does; for a
    model built under a ``tf.distribute`` strategy, whose variables are mirrored
    (a SavedModel with signatures cannot be saved from them), a copy with plain
    variables rebuilt from its config (a subclassed network of yours then
    computes in the dtype its config gives, not in the Keras dtype policy it
    was built under). Call outside a strategy scope."""
    if tf.distribute.in_cross_replica_context() and tf.distribute.has_strategy():
        raise RuntimeError("export_model must be called outside a tf.distribute strategy scope")
    if not any(isinstance(v.value, tf.distribute.DistributedValues) for v in model.variables):
        return model
    copy = MODELS[model_key].from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy


def load_model(path):
    """The Keras model saved in the export at ``path``, rebuilt with its
    weights (for re-exporting it, or evaluating it in Python)."""
    config_path = os.path.join(path, "assets.extra", MODEL_CONFIG_FILE)
    if not os.path.exists(config_path):
        raise FileNotFoundError(f"{config_path} is missing: {path} is not an export of tfvamp.export")
    try:
        with open(config_path) as f:
            saved = json.load(f)
        model = MODELS[saved["model"]].from_config(saved["config"])
    except (ValueError, KeyError, TypeError) as error:  # JSONDecodeError is a ValueError
        raise ExportError(f"{config_path} is corrupt ({type(error).__name__}: {error}); "
                          f"export the model again") from None
    checkpoint = tf.train.Checkpoint(variables_module(model))
    prefix = os.path.join(path, "variables", "variables")
    try:
        checkpoint.read(prefix).assert_existing_objects_matched()
    except (tf.errors.OpError, ValueError, AssertionError, IndexError) as error:
        # A truncated variables.data gives IndexError, a missing or corrupt index an OpError.
        message = (error.message if isinstance(error, tf.errors.OpError) else str(error)).splitlines()[0]
        raise ExportError(f"The weights of the export {path} cannot be read ({type(error).__name__}: "
                          f"{message}): its variables/ files are truncated or corrupt; "
                          "export the model again, or use another version") from None
    return model


class ExportError(Exception):
    """An export is corrupt or incomplete (the message names its path)."""


def write_warmup_requests(path, input_specs, model_name="model"):
    """Writes TF Serving's warm-up file ``path`` (``assets.extra/tf_serving_warmup_requests``):
    one ``PredictionLog`` record a signature, each a ``PredictRequest`` of one all-zero image
    or latent (the shapes of ``input_specs``, ``ServingSignatures.input_specs()``) and the
    scalars of ``WARMUP_SCALARS``. TF Serving ignores the model name of a warm-up request."""
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2  # export time only

    with tf.io.TFRecordWriter(path) as writer:
        for name, signature in SIGNATURES.items():
            request = predict_pb2.PredictRequest()
            request.model_spec.name = model_name
            request.model_spec.signature_name = name
            for input_name in signature.inputs:
                spec = input_specs[input_name]
                value = (tf.zeros([1, *spec.shape[1:]], spec.dtype) if spec.shape.rank
                         else tf.constant(WARMUP_SCALARS[input_name], spec.dtype))
                request.inputs[input_name].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())


def write_models_config(export_dir, base_path="/models"):
    """Writes ``export_dir/models.config``, TF Serving's ``--model_config_file`` for every model
    exported under ``export_dir`` (one ``config`` a model folder, its ``base_path``
    ``base_path/NAME``: where the folder is mounted in the server's container), and returns
    its path. The text is a ``ModelServerConfig`` protocol buffer in text format."""
    names = sorted(n for n in os.listdir(export_dir) if versions(os.path.join(export_dir, n)))
    entries = "".join(
        f'  config {{\n    name: "{name}"\n    base_path: "{base_path.rstrip("/")}/{name}"\n'
        f'    model_platform: "tensorflow"\n  }}\n' for name in names)
    path = os.path.join(export_dir, MODELS_CONFIG_FILE)
    with open(path + ".tmp", "w") as f:
        f.write(f"model_config_list {{\n{entries}}}\n")
    os.replace(path + ".tmp", path)
    return path
