"""What an export carries for TF Serving beside its signatures, and a broken export:
the warm-up requests (replayed here against the reloaded SavedModel), models.config (parsed
with tensorflow-serving-api's protos), and one line naming a truncated export."""
import os

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.config import model_server_config_pb2

from tfvamp import export, models

TINY = dict(latent_dim=4, hidden_units=16, num_components=5)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = models.build_model("hvae", input_shape=(8, 6, 1), prior="vamp", seed=0, **TINY)
    base = tmp_path_factory.mktemp("exports")
    return model, export.export_model(model, str(base)), base


def test_the_warmup_requests_cover_every_signature_and_replay_against_the_saved_model(exported):
    _, path, _ = exported
    loaded = tf.saved_model.load(path)
    replayed = []
    for record in tf.data.TFRecordDataset(os.path.join(path, "assets.extra", export.WARMUP_FILE)):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        request = log.predict_log.request
        inputs = {name: tf.constant(tf.make_ndarray(proto)) for name, proto in request.inputs.items()}
        outputs = loaded.signatures[request.model_spec.signature_name](**inputs)
        assert set(outputs) == set(export.SIGNATURES[request.model_spec.signature_name].outputs)
        assert all(np.all(np.isfinite(value.numpy())) for value in outputs.values())
        replayed.append(request.model_spec.signature_name)
    assert sorted(replayed) == sorted(export.SIGNATURES)


def test_models_config_lists_every_exported_model_and_parses(exported, tmp_path):
    model, _, _ = exported
    export.export_model(model, str(tmp_path))
    os.makedirs(tmp_path / "not_a_model")
    export.export_model(model, str(tmp_path), model_name="hvae_copy")  # rewrites models.config
    path = str(tmp_path / export.MODELS_CONFIG_FILE)
    with open(path) as f:
        config = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
    entries = [(c.name, c.base_path, c.model_platform) for c in config.model_config_list.config]
    assert entries == [("hvae", "/models/hvae", "tensorflow"), ("hvae_copy", "/models/hvae_copy", "tensorflow")]


@pytest.mark.parametrize("damage", ["truncate_data", "truncate_index", "corrupt_config"])
def test_a_broken_export_is_one_line_naming_it(exported, tmp_path, damage):
    model, _, _ = exported
    path = export.export_model(model, str(tmp_path))
    if damage == "corrupt_config":
        target = os.path.join(path, "assets.extra", export.MODEL_CONFIG_FILE)
    else:
        target = os.path.join(path, "variables", "variables.data-00000-of-00001"
                              if damage == "truncate_data" else "variables.index")
    with open(target, "r+b") as f:
        f.truncate(os.path.getsize(target) // 2)
    with pytest.raises(export.ExportError) as error:
        export.load_model(path)
    assert path in str(error.value) and "\n" not in str(error.value)
    assert "export the model again" in str(error.value)
