"""A client for the models ``tfvamp.export`` writes, served by TensorFlow Serving.

``tfvamp.export.SIGNATURES`` is the serving contract: the name, inputs and
outputs of every signature of an export. ``ServingClient`` builds the requests TensorFlow
Serving takes for them (the REST ``:predict`` JSON body and the gRPC
``PredictRequest``), sends them, and parses the responses into NumPy arrays::

    client = ServingClient("vae", host="localhost")
    encodings = client.predict_rest("encode", images=test_images[:8])
    samples = client.predict_grpc("sample", num_samples=16, seed=1234)["images"]
"""
import json
import urllib.error
import urllib.request
import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tfvamp.export import BATCHED_INPUTS, INPUT_DTYPES, SIGNATURES

class ServingError(RuntimeError):
    """A request failed: the server answered with an error, could not be reached, or did not
    answer in TF Serving's format (the message names the URL or address)."""


def _signature(name):
    try:
        return SIGNATURES[name]
    except KeyError:
        raise ValueError(f"Unknown signature {name!r}; valid: {sorted(SIGNATURES)}") from None


def _input_arrays(signature_name, inputs):
    """The inputs as NumPy arrays of their serving dtypes, checked by name."""
    expected = _signature(signature_name).inputs
    if set(inputs) != set(expected):
        raise ValueError(f"Signature {signature_name!r} takes inputs {list(expected)}, "
                         f"got {sorted(inputs)}")
    return {name: np.asarray(inputs[name], dtype=INPUT_DTYPES[name]) for name in expected}


def rest_body(signature_name, row_format=None, **inputs):
    """The JSON body (a dict) of a REST ``:predict`` request.

    The row format (``instances``: one entry per image) is used when every
    input is a batch, unless ``row_format=False``; signatures with scalar
    inputs (``log_prob``, ``sample``) need the columnar format (``inputs``).
    """
    arrays = _input_arrays(signature_name, inputs)
    batched = all(name in BATCHED_INPUTS for name in arrays)
    if row_format is None:
        row_format = batched
    if not row_format:
        return {"signature_name": signature_name,
                "inputs": {name: value.tolist() for name, value in arrays.items()}}
    if not batched:
        raise ValueError(f"Signature {signature_name!r} has scalar inputs; "
                         "the row format needs batches, use row_format=False")
    if len(arrays) == 1:
        (value,) = arrays.values()
        instances = value.tolist()
    else:
        rows = {name: value.tolist() for name, value in arrays.items()}
        instances = [dict(zip(rows, row)) for row in zip(*rows.values())]
    return {"signature_name": signature_name, "instances": instances}


def parse_rest_response(signature_name, body):
    """Output name -> NumPy array from a REST response body (dict or JSON text)."""
    if isinstance(body, (str, bytes)):
        try:
            body = json.loads(body)
        except ValueError:
            text = body.decode(errors="replace") if isinstance(body, bytes) else body
            raise ServingError(f"The answer is not TF Serving's JSON: {text[:200]!r}") from None
    if "error" in body:
        raise ServingError(body["error"])
    outputs = _signature(signature_name).outputs
    if "predictions" in body:  # row format: a list of rows
        rows = body["predictions"]
        if len(outputs) == 1:
            return {outputs[0]: np.asarray(rows, np.float32)}
        return {name: np.asarray([row[name] for row in rows], np.float32) for name in outputs}
    if "outputs" in body:  # columnar format
        values = body["outputs"]
        if len(outputs) == 1:
            return {outputs[0]: np.asarray(values, np.float32)}
        return {name: np.asarray(values[name], np.float32) for name in outputs}
    raise ServingError(f"A predict response has 'predictions' or 'outputs', got {sorted(body)}")


def grpc_request(model_name, signature_name, version=None, **inputs):
    """A ``tensorflow.serving.PredictRequest`` for ``signature_name``."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = int(version)
    for name, value in _input_arrays(signature_name, inputs).items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request


def parse_grpc_response(signature_name, response):
    """Output name -> NumPy array from a ``PredictResponse``."""
    outputs = _signature(signature_name).outputs
    missing = [name for name in outputs if name not in response.outputs]
    if missing:
        raise ServingError(f"The response lacks the outputs {missing} of {signature_name!r}")
    return {name: tf.make_ndarray(response.outputs[name]) for name in outputs}


class ServingClient:
    """Requests to one model on a TensorFlow Serving server.

    ``version=None`` asks for the newest version the server has loaded.
    8501 and 8500 are TensorFlow Serving's default REST and gRPC ports.
    """

    def __init__(self, model_name, version=None, host="localhost", rest_port=8501, grpc_port=8500):
        self.model_name = model_name
        self.version = version
        self.host = host
        self.rest_port = rest_port
        self.grpc_port = grpc_port

    @property
    def rest_url(self):
        version = "" if self.version is None else f"/versions/{int(self.version)}"
        return f"http://{self.host}:{self.rest_port}/v1/models/{self.model_name}{version}:predict"

    def rest_body(self, signature_name, row_format=None, **inputs):
        return rest_body(signature_name, row_format, **inputs)

    def grpc_request(self, signature_name, **inputs):
        return grpc_request(self.model_name, signature_name, self.version, **inputs)

    def predict_rest(self, signature_name, timeout=600.0, **inputs):
        """POSTs the request to the REST API; output name -> NumPy array."""
        data = json.dumps(self.rest_body(signature_name, **inputs)).encode()
        request = urllib.request.Request(
            self.rest_url, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as error:  # the server's {"error": ...}
            body = error.read()
        except (urllib.error.URLError, OSError) as error:  # refused, unknown host, timed out
            reason = getattr(error, "reason", error)
            raise ServingError(f"No answer from {self.rest_url} ({reason}): is TensorFlow Serving "
                               f"running there with model {self.model_name!r}?") from None
        try:
            return parse_rest_response(signature_name, body)
        except ServingError as error:
            raise ServingError(f"{self.rest_url}: {error}") from None

    def predict_grpc(self, signature_name, timeout=600.0, **inputs):
        """Calls ``PredictionService.Predict``; output name -> NumPy array."""
        address = f"{self.host}:{self.grpc_port}"
        try:
            with grpc.insecure_channel(address) as channel:
                stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
                response = stub.Predict(self.grpc_request(signature_name, **inputs), timeout=timeout)
        except grpc.RpcError as error:  # unavailable, deadline exceeded, the server's own errors
            raise ServingError(f"gRPC Predict at {address} (model {self.model_name!r}) failed: "
                               f"{error.code().name}: {error.details()}") from None
        return parse_grpc_response(signature_name, response)

