"""ServingPusher's filesystem side: integer versions, atomic publish, manifest written."""

import pytest

from components.serving_pusher import versions
from ml.core.serving_layout import next_version
from ml.serving.manifest import verify_manifest


def _saved_model(tmp_path):
    model = tmp_path / "candidate"
    (model / "variables").mkdir(parents=True)
    (model / "saved_model.pb").write_bytes(b"graph")
    (model / "variables" / "variables.index").write_bytes(b"index")
    return model


def test_versions_increase_from_the_serving_folder(tmp_path):
    base = tmp_path / "etrm_risk_model"
    assert next_version(base) == 1
    (base / "1").mkdir(parents=True)
    (base / ".staging-9-1").mkdir()
    assert next_version(base) == 2
    (base / "7").mkdir()
    assert next_version(base) == 8


def test_publish_copies_with_a_verifiable_manifest(tmp_path):
    base = tmp_path / "serving" / "etrm_risk_model"
    target = versions.publish_version(str(_saved_model(tmp_path)), base, 1)
    assert target == base / "1"
    assert verify_manifest(target) == []
    assert [p.name for p in base.iterdir()] == ["1"]
    (target / "saved_model.pb").write_bytes(b"tampered")
    assert verify_manifest(target)


def test_publish_never_overwrites_a_version(tmp_path):
    base = tmp_path / "etrm_risk_model"
    versions.publish_version(str(_saved_model(tmp_path)), base, 1)
    with pytest.raises(FileExistsError):
        versions.publish_version(str(_saved_model(tmp_path)), base, 1)


def test_the_component_passes_the_signing_key_and_the_executor_signs(tmp_path):
    """ServingPusher(signing_key_path=...) reaches the executor, whose push is signed."""
    import json

    from tfx import types
    from tfx.types import standard_artifacts

    from components.serving_pusher import executor
    from components.serving_pusher.component import ServingPusher
    from ml.serving import manifest

    private_path, public_path = manifest.generate_signing_key(tmp_path / "keys")
    pusher = ServingPusher(model=types.Channel(type=standard_artifacts.Model),
                           model_blessing=types.Channel(type=standard_artifacts.ModelBlessing),
                           model_name="etrm_risk_model",
                           serving_base_dir=str(tmp_path / "serving_models"),
                           models_config_path=str(tmp_path / "models.config"),
                           signing_key_path=str(private_path))
    config = json.loads(pusher.exec_properties["custom_config"])
    assert config[executor.SIGNING_KEY_KEY] == str(private_path)
    target = versions.push_model(str(_saved_model(tmp_path)), tmp_path / "serving_models",
                                 "etrm_risk_model", tmp_path / "models.config",
                                 signing_key=config[executor.SIGNING_KEY_KEY])
    verified = manifest.verify_signed_version(target, manifest.load_public_keys(public_path),
                                              version=1)
    manifest.remove_verified_copy(verified.path)


def test_a_push_key_already_published_is_not_pushed_again(tmp_path):
    from ml.serving.model_config import read_model_server_config

    serving, config = tmp_path / "serving", tmp_path / "models.config"
    model = str(_saved_model(tmp_path))
    first = versions.push_model(model, serving, "etrm_risk_model", config,
                                push_key="etrm_risk_model@2024-01-05#job3")
    again = versions.push_model(model, serving, "etrm_risk_model", config,
                                push_key="etrm_risk_model@2024-01-05#job3")
    other = versions.push_model(model, serving, "etrm_risk_model", config,
                                push_key="etrm_risk_model@2024-01-12#job4")
    assert (first.name, again.name, other.name) == ("1", "1", "2")
    assert sorted(p.name for p in (serving / "etrm_risk_model").iterdir()) == ["1", "2"]
    assert verify_manifest(first) == []
    labels = read_model_server_config(config).model_config_list.config[0].version_labels
    assert dict(labels) == {"stable": 1, "canary": 2}


def test_a_retried_push_whose_config_step_died_moves_canary_to_the_published_version(tmp_path):
    from ml.serving.model_config import read_model_server_config

    serving, config = tmp_path / "serving", tmp_path / "models.config"
    model = str(_saved_model(tmp_path))
    versions.push_model(model, serving, "etrm_risk_model", config)
    base = serving / "etrm_risk_model"
    versions.publish_version(model, base, 2, push_key="job-7")
    labels = read_model_server_config(config).model_config_list.config[0].version_labels
    assert labels["canary"] == 1
    assert versions.pushed_under_key(base, "job-7") == 2
    assert versions.push_model(model, serving, "etrm_risk_model", config,
                               push_key="job-7").name == "2"
    labels = read_model_server_config(config).model_config_list.config[0].version_labels
    assert dict(labels) == {"stable": 1, "canary": 2}


def test_the_pushed_model_records_the_models_name_and_uri(tmp_path):
    """Kubeflow's stable-model query finds a serving version's Model through these two
    properties of its PushedModel (pipeline/kubeflow_resolvers.py)."""
    import json
    import shutil

    from tfx import types
    from tfx.types import standard_artifacts

    from components.serving_pusher import executor
    from components.serving_pusher.component import ServingPusher

    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "model")
    shutil.copytree(_saved_model(tmp_path), tmp_path / "model" / "Format-Serving")
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "blessing")
    blessing.set_int_custom_property("blessed", 1)
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "pushed")
    pusher = ServingPusher(model=types.Channel(type=standard_artifacts.Model),
                           model_blessing=types.Channel(type=standard_artifacts.ModelBlessing),
                           model_name="etrm_risk_model",
                           serving_base_dir=str(tmp_path / "serving_models"),
                           models_config_path=str(tmp_path / "models.config"))
    properties = {"custom_config": pusher.exec_properties["custom_config"],
                  "push_destination": None}
    executor.Executor().Do({"model": [model], "model_blessing": [blessing]},
                           {"pushed_model": [pushed]}, properties)
    assert pushed.get_int_custom_property("pushed") == 1
    assert pushed.get_string_custom_property("pushed_version") == "1"
    assert pushed.get_string_custom_property("model_name") == "etrm_risk_model"
    assert pushed.get_string_custom_property("model_uri") == model.uri
    assert json.loads(pusher.exec_properties["custom_config"])[executor.MODEL_NAME_KEY] == "etrm_risk_model"
