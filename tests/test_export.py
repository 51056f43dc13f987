"""The TensorFlow Serving export (tfvamp.export, trainers.export) and its client (tfvamp.serving).

Every model of ``tfvamp.models.MODELS`` with every prior is exported (tiny and
untrained: the signatures' behaviour does not depend on training) and checked
in a fresh Python process that does not import tfvamp, as a server would run it.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from conftest import REPO_ROOT
from tfvamp import datasets, export, models, priors, serving
from tfvamp.objectives import log_importance_weights

SAVED_MODEL_CLI = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
TINY = dict(latent_dim=4, hidden_units=16, num_components=3)
# The default suite exports the VAE and the HVAE with the VampPrior (the serving code is the
# same for every model and prior); the other pairs (the convHVAE's export alone takes ~1 min,
# the PixelHVAE's ~1-2 min) are marked slow.
DEFAULT_EXPORTS = {("vae", "vamp"), ("hvae", "vamp")}
COMBINATIONS = [
    pytest.param(m, p, marks=[] if (m, p) in DEFAULT_EXPORTS else [pytest.mark.slow])
    for m in sorted(models.MODELS) for p in priors.PRIORS]


@pytest.fixture(scope="module")
def caltech_test():
    return datasets.load_dataset("caltech").test


@pytest.fixture(scope="module")
def export_of(tmp_path_factory):
    """``export_of(model_name, prior)``: a tiny model and the path of its export."""
    cache = {}

    def get(model_name, prior):
        if (model_name, prior) not in cache:
            model = models.build_model(model_name, input_shape=(28, 28, 1), prior=prior,
                                       seed=1, **TINY)
            base = tmp_path_factory.mktemp(f"{model_name}_{prior}")
            cache[model_name, prior] = model, export.export_model(model, str(base))
        return cache[model_name, prior]

    return get


def run(*args, **kwargs):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=600, cwd=REPO_ROOT,
                          **kwargs)


# What a fresh process sees: plain TensorFlow on the SavedModel, no tfvamp.
FRESH_PROCESS = r"""
import json, sys
import numpy as np
import tensorflow as tf

path, images_path, out_path = sys.argv[1:]
images = np.load(images_path)
loaded = tf.saved_model.load(path)
sig = loaded.signatures
results = {"signatures": sorted(sig)}
results["mean"] = sig["encode"](images=tf.constant(images))["mean"].numpy().tolist()
ll = sig["log_prob"](images=tf.constant(images[:2]), num_samples=tf.constant(500))
results["log_likelihood"] = ll["log_likelihood"].numpy().tolist()
results["elbo"] = ll["elbo"].numpy().tolist()
results["default_log_likelihood"] = sig["serving_default"](
    images=tf.constant(images[:1]))["log_likelihood"].numpy().tolist()

def sample(seed):
    return sig["sample"](num_samples=tf.constant(3), seed=tf.constant(seed, tf.int64))["images"].numpy()

a, b, c = sample(7), sample(7), sample(8)
results["sample_shape"] = list(a.shape)
results["sample_range"] = [float(a.min()), float(a.max())]
results["same_seed_equal"] = bool(np.array_equal(a, b))
results["other_seed_differs"] = bool(not np.array_equal(a, c))
results["reconstruct_shape"] = list(sig["reconstruct"](images=tf.constant(images))["images"].shape)
latent_dim = len(results["mean"][0])
results["decode_shape"] = list(sig["decode"](latents=tf.zeros([2, latent_dim]))["images"].shape)
errors = {}
bad = {
    "wrong_size": ("encode", dict(images=tf.zeros([2, 27, 28, 1]))),
    "wrong_rank": ("reconstruct", dict(images=tf.zeros([28, 28, 1]))),
    "empty": ("encode", dict(images=tf.zeros([0, 28, 28, 1]))),
    "wrong_latents": ("decode", dict(latents=tf.zeros([2, latent_dim + 1]))),
    "zero_samples": ("log_prob", dict(images=tf.constant(images[:1]), num_samples=tf.constant(0))),
    "vector_samples": ("sample", dict(num_samples=tf.constant([2, 2]), seed=tf.constant(1, tf.int64))),
}
for name, (signature, inputs) in bad.items():
    try:
        sig[signature](**inputs)
        errors[name] = None
    except tf.errors.InvalidArgumentError as error:
        errors[name] = error.message
results["errors"] = errors
results["tfvamp_imported"] = any(m.startswith("tfvamp") for m in sys.modules)
with open(out_path, "w") as f:
    json.dump(results, f)
"""


def is_standard_error(model, x, num_samples):
    """Delta-method standard error of the IS estimate of log p(x), per image."""
    log_w = log_importance_weights(model.log_terms(x, model.prior_distribution(), num_samples))
    w = np.exp(log_w.numpy() - np.max(log_w.numpy(), axis=0))
    return np.std(w, axis=0) / (np.mean(w, axis=0) * np.sqrt(num_samples))


@pytest.mark.parametrize("model_name,prior", COMBINATIONS)
def test_fresh_process_serves_the_same_model(model_name, prior, export_of, caltech_test, tmp_path):
    model, path = export_of(model_name, prior)
    images = caltech_test[:4]
    np.save(tmp_path / "images.npy", images)
    result = run(sys.executable, "-c", FRESH_PROCESS, path, str(tmp_path / "images.npy"),
                 str(tmp_path / "out.json"), env={**os.environ, "PYTHONPATH": ""})
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads((tmp_path / "out.json").read_text())
    assert not out["tfvamp_imported"]
    assert out["signatures"] == sorted(export.SIGNATURES)
    np.testing.assert_allclose(out["mean"], model.encode(images)[0].numpy(), rtol=1e-5, atol=1e-5)
    # Two independent estimates with 500 samples: their difference is within
    # a few standard errors (plus float32 rounding of values near -500).
    in_process = model.log_likelihood(images[:2], num_samples=500).numpy()
    tolerance = 5 * np.sqrt(2) * is_standard_error(model, images[:2], 500) + 1e-3
    assert np.all(np.abs(np.array(out["log_likelihood"]) - in_process) < tolerance)
    # The ELBO output is a one-sample estimate: only its mean is below log p(x), so check it
    # is finite and of the right size (its value is the one results.json reports).
    assert np.isfinite(out["elbo"]).all() and len(out["elbo"]) == 2
    assert np.isfinite(out["default_log_likelihood"]).all()
    assert out["sample_shape"] == [3, 28, 28, 1]
    assert 0.0 <= out["sample_range"][0] <= out["sample_range"][1] <= 1.0
    assert out["same_seed_equal"] and out["other_seed_differs"]
    assert out["reconstruct_shape"] == [4, 28, 28, 1] and out["decode_shape"] == [2, 28, 28, 1]
    errors = out["errors"]
    must = "`images` must have shape [N, 28, 28, 1] with N >= 1, got ["
    assert must + "2, 27, 28, 1]" in errors["wrong_size"]
    assert must + "28, 28, 1]" in errors["wrong_rank"]
    assert must + "0, 28, 28, 1]" in errors["empty"]
    latent_dim = TINY["latent_dim"]
    assert (f"`latents` must have shape [N, {latent_dim}] with N >= 1, got [2, {latent_dim + 1}]"
            in errors["wrong_latents"])
    assert "`num_samples` must be >= 1" in errors["zero_samples"]
    assert "should be a scalar" in errors["vector_samples"]


@pytest.mark.parametrize("model_name", [
    pytest.param(m, marks=[] if m == "vae" else [pytest.mark.slow]) for m in sorted(models.MODELS)])
def test_saved_model_cli_shows_every_signature_with_shapes_and_dtypes(model_name, export_of):
    _, path = export_of(model_name, "vamp")
    result = run(SAVED_MODEL_CLI, "show", "--all", "--dir", path)
    assert result.returncode == 0, result.stderr[-3000:]
    shown = {}
    for block in result.stdout.split("signature_def['")[1:]:
        name, body = block.split("']", 1)
        shown[name] = " ".join(body.split())
    shapes = {"images": "(-1, 28, 28, 1)", "latents": f"(-1, {TINY['latent_dim']})",
              "num_samples": "()", "seed": "()", "log_likelihood": "(-1)", "elbo": "(-1)",
              "mean": f"(-1, {TINY['latent_dim']})", "log_variance": f"(-1, {TINY['latent_dim']})"}
    dtypes = {"float32": "DT_FLOAT", "int32": "DT_INT32", "int64": "DT_INT64"}
    for name, signature in export.SIGNATURES.items():
        body = shown[name]
        assert "Method name is: tensorflow/serving/predict" in body
        inputs, outputs = body.split("contains the following output(s):")
        assert inputs.count("inputs['") == len(signature.inputs)
        for key in signature.inputs:
            dtype = dtypes[export.INPUT_DTYPES[key]]
            assert f"inputs['{key}'] tensor_info: dtype: {dtype} shape: {shapes[key]}" in inputs
        assert outputs.count("outputs['") == len(signature.outputs)
        for key in signature.outputs:
            out_shape = "(-1, 28, 28, 1)" if key == "images" else shapes[key]
            assert f"outputs['{key}'] tensor_info: dtype: DT_FLOAT shape: {out_shape}" in outputs


def test_saved_model_cli_runs_encode_on_a_caltech_test_image(export_of, caltech_test, tmp_path):
    model, path = export_of("vae", "vamp")
    np.save(tmp_path / "image.npy", caltech_test[:1])
    result = run(SAVED_MODEL_CLI, "run", "--dir", path, "--tag_set", "serve",
                 "--signature_def", "encode", "--inputs", f"images={tmp_path / 'image.npy'}",
                 "--outdir", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr[-3000:]
    mean, log_variance = model.encode(caltech_test[:1])
    np.testing.assert_allclose(np.load(tmp_path / "out" / "mean.npy"), mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "out" / "log_variance.npy"), log_variance,
                               rtol=1e-5, atol=1e-5)


def test_versions_count_up_and_existing_ones_are_never_overwritten(tmp_path):
    model = models.build_model("vae", input_shape=(28, 28, 1), prior="standard", seed=0, **TINY)
    first = export.export_model(model, str(tmp_path))
    assert first == str(tmp_path / "vae" / "1")
    assert export.export_model(model, str(tmp_path), version=3) == str(tmp_path / "vae" / "3")
    assert export.export_model(model, str(tmp_path)) == str(tmp_path / "vae" / "4")
    before = (tmp_path / "vae" / "3" / "saved_model.pb").read_bytes()
    with pytest.raises(FileExistsError, match=r"vae/3 already exists.*version 5"):
        export.export_model(model, str(tmp_path), version=3)
    assert (tmp_path / "vae" / "3" / "saved_model.pb").read_bytes() == before
    assert sorted(os.listdir(tmp_path / "vae")) == ["1", "3", "4"]  # no staging folder left
    with pytest.raises(ValueError, match="model_name"):
        export.export_model(model, str(tmp_path), model_name="../elsewhere")


def test_load_model_restores_the_exported_weights(tmp_path):
    model = models.build_model("vae", input_shape=(28, 28, 1), prior="vamp", seed=0, **TINY)
    for variable in model.trainable_variables:
        variable.assign(variable + 0.5)
    path = export.export_model(model, str(tmp_path))
    restored = export.load_model(path)  # built with the same seed: differs unless restored
    for saved, loaded in zip(model.variables, restored.variables):
        np.testing.assert_array_equal(saved.numpy(), loaded.numpy(), err_msg=saved.path)


@pytest.mark.slow
def test_trainers_export_writes_the_next_version_of_a_run(export_of, tmp_path):
    model, _ = export_of("vae", "mog")
    export.export_model(model, str(tmp_path / "export"))
    (tmp_path / "results.json").write_text(json.dumps({"flags": {"model": "vae"}}))
    result = run(sys.executable, "-m", "trainers.export", f"--output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith(os.path.join("export", "vae", "2"))
    x = np.full((2, 28, 28, 1), 0.3, np.float32)
    loaded = tf.saved_model.load(str(tmp_path / "export" / "vae" / "2"))
    np.testing.assert_allclose(loaded.signatures["encode"](images=x)["mean"],
                               model.encode(x)[0], rtol=1e-5, atol=1e-5)
    result = run(sys.executable, "-m", "trainers.export", f"--output_dir={tmp_path}", "--version=1")
    assert result.returncode != 0 and "already exists" in result.stderr


# -- the client ---------------------------------------------------------------
IMAGES = np.random.default_rng(0).uniform(size=(2, 28, 28, 1)).astype(np.float32)


def test_rest_bodies_have_exactly_the_fields_of_the_rest_api():
    row = serving.rest_body("encode", images=IMAGES)
    assert set(row) == {"signature_name", "instances"} and row["signature_name"] == "encode"
    np.testing.assert_array_equal(np.array(row["instances"], np.float32), IMAGES)
    columnar = serving.rest_body("sample", num_samples=4, seed=9)
    assert columnar == {"signature_name": "sample", "inputs": {"num_samples": 4, "seed": 9}}
    log_prob = json.loads(json.dumps(serving.rest_body("log_prob", images=IMAGES, num_samples=50)))
    assert set(log_prob) == {"signature_name", "inputs"}
    assert set(log_prob["inputs"]) == {"images", "num_samples"}
    assert np.array(log_prob["inputs"]["images"]).shape == (2, 28, 28, 1)
    forced = serving.rest_body("decode", row_format=False, latents=np.zeros((3, 4)))
    assert set(forced) == {"signature_name", "inputs"} and set(forced["inputs"]) == {"latents"}
    with pytest.raises(ValueError, match="scalar inputs"):
        serving.rest_body("sample", row_format=True, num_samples=4, seed=9)
    with pytest.raises(ValueError, match=r"takes inputs \['images'\]"):
        serving.rest_body("encode", latents=IMAGES)
    with pytest.raises(ValueError, match="Unknown signature 'encoder'"):
        serving.rest_body("encoder", images=IMAGES)
    client = serving.ServingClient("vae", version=3, host="example.org")
    assert client.rest_url == "http://example.org:8501/v1/models/vae/versions/3:predict"
    assert serving.ServingClient("vae").rest_url == "http://localhost:8501/v1/models/vae:predict"


def test_rest_responses_are_parsed_in_row_and_columnar_form():
    rows = {"predictions": [{"mean": [1.0, 2.0], "log_variance": [0.0, 0.5]},
                            {"mean": [3.0, 4.0], "log_variance": [1.0, 1.5]}]}
    parsed = serving.parse_rest_response("encode", json.dumps(rows))
    np.testing.assert_array_equal(parsed["mean"], [[1, 2], [3, 4]])
    np.testing.assert_array_equal(parsed["log_variance"], [[0, 0.5], [1, 1.5]])
    single = serving.parse_rest_response("reconstruct", {"predictions": IMAGES.tolist()})
    np.testing.assert_array_equal(single["images"], IMAGES)
    columns = serving.parse_rest_response(
        "log_prob", {"outputs": {"log_likelihood": [-90.5, -80.0], "elbo": [-95.0, -84.0]}})
    np.testing.assert_array_equal(columns["elbo"], [-95.0, -84.0])
    sampled = serving.parse_rest_response("sample", {"outputs": IMAGES.tolist()})
    assert sampled["images"].shape == (2, 28, 28, 1)
    with pytest.raises(serving.ServingError, match="must have shape"):
        serving.parse_rest_response("encode", {"error": "`images` must have shape [N, 28, 28, 1]"})


def test_grpc_predict_request_and_response():
    request = serving.ServingClient("vae", version=2).grpc_request("log_prob", images=IMAGES,
                                                                   num_samples=100)
    request = predict_pb2.PredictRequest.FromString(request.SerializeToString())
    assert request.model_spec.name == "vae" and request.model_spec.signature_name == "log_prob"
    assert request.model_spec.version.value == 2
    assert set(request.inputs) == {"images", "num_samples"}
    assert request.inputs["images"].dtype == tf.float32.as_datatype_enum
    assert [d.size for d in request.inputs["images"].tensor_shape.dim] == [2, 28, 28, 1]
    np.testing.assert_array_equal(tf.make_ndarray(request.inputs["images"]), IMAGES)
    assert request.inputs["num_samples"].dtype == tf.int32.as_datatype_enum
    assert tf.make_ndarray(request.inputs["num_samples"]) == 100
    sample = serving.grpc_request("vae", "sample", num_samples=3, seed=5)
    assert not sample.model_spec.HasField("version")
    assert sample.inputs["seed"].dtype == tf.int64.as_datatype_enum

    response = predict_pb2.PredictResponse()
    response.model_spec.name = "vae"
    response.outputs["mean"].CopyFrom(tf.make_tensor_proto(np.ones((2, 4), np.float32)))
    response.outputs["log_variance"].CopyFrom(tf.make_tensor_proto(np.zeros((2, 4), np.float32)))
    parsed = serving.parse_grpc_response("encode", response)
    np.testing.assert_array_equal(parsed["mean"], np.ones((2, 4)))
    with pytest.raises(serving.ServingError, match="log_likelihood"):
        serving.parse_grpc_response("log_prob", response)


@pytest.mark.slow
def test_a_trained_run_exports_its_best_model(caltech_test, tmp_path):
    """trainers.train ends with an export; its log-likelihood in a fresh process
    agrees with the run's results within the IS noise."""
    result = run(sys.executable, "-m", "trainers.train", "--dataset=caltech", "--prior=vamp",
                 "--epochs=5", "--num_components=50", "--eval_samples=200", "--warmup_epochs=2",
                 f"--output_dir={tmp_path}", "--verbose=0")
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["export"] == str(tmp_path / "export" / "vae" / "1")
    per_image = np.load(tmp_path / "test_log_likelihoods.npy")
    model = export.load_model(results["export"])
    images = caltech_test[:20]
    np.save(tmp_path / "images.npy", images)
    result = run(sys.executable, "-c", FRESH_PROCESS, results["export"],
                 str(tmp_path / "images.npy"), str(tmp_path / "out.json"),
                 env={**os.environ, "PYTHONPATH": ""})
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads((tmp_path / "out.json").read_text())
    np.testing.assert_allclose(out["mean"], model.encode(images)[0], rtol=1e-4, atol=1e-4)
    se = np.sqrt(is_standard_error(model, images[:2], 500) ** 2
                 + is_standard_error(model, images[:2], 200) ** 2)
    assert np.all(np.abs(np.array(out["log_likelihood"]) - per_image[:2]) < 5 * se + 1e-2)
