"""Serving configuration: manifest, models.config editing, and the shipped TF Serving configs."""
import json
import pathlib
import re

import pytest
import yaml
from google.protobuf import text_format

from ml.serving import config_protos, manifest, model_config
from ml.serving.batching import BatchingOptions
from ml.core.serving_layout import list_version_dirs
from ml.serving.version_policy import aspired_versions
from tensorflow_serving.config import model_server_config_pb2

from tests.serving_fixtures import fake_version_dir

SERVING_CONFIG = pathlib.Path(__file__).resolve().parents[1] / "serving_config"


def test_manifest_round_trip_lists_every_file(tmp_path):
    version = fake_version_dir(tmp_path)
    path = manifest.write_manifest(version)
    content = json.loads(path.read_text())
    assert content["algorithm"] == "sha256"
    assert sorted(content["files"]) == ["assets/feature_defaults.json", "saved_model.pb",
                                        "variables/variables.index"]
    assert manifest.verify_manifest(version) == []
    assert not list(version.glob("*.tmp"))


def _outside(version: pathlib.Path) -> pathlib.Path:
    """A folder beside the version holding the same bytes (and one more file)."""
    outside = version.parent / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "saved_model.pb").write_bytes(b"graph")
    (outside / "payload.bin").write_bytes(b"evil")
    return outside


@pytest.mark.parametrize("tamper, problem", [
    (lambda v: (v / manifest.MANIFEST_NAME).unlink(), "missing manifest"),
    (lambda v: (v / "variables" / "variables.index").unlink(), "missing file variables/variables.index"),
    (lambda v: (v / "extra.bin").write_bytes(b"x"), "extra file extra.bin"),
    (lambda v: (v / "saved_model.pb").write_bytes(b"evil"), "digest mismatch for saved_model.pb"),
    (lambda v: (v / manifest.MANIFEST_NAME).write_text("{not json"), "unreadable manifest"),
    (lambda v: (v / "linked").symlink_to(_outside(v), target_is_directory=True), "symlink linked"),
    (lambda v: ((v / "saved_model.pb").unlink(),
                (v / "saved_model.pb").symlink_to(_outside(v) / "saved_model.pb")),
     "symlink saved_model.pb"),
])
def test_manifest_reports_each_kind_of_tampering(tmp_path, tamper, problem):
    version = fake_version_dir(tmp_path)
    manifest.write_manifest(version)
    tamper(version)
    problems = manifest.verify_manifest(version)
    assert any(problem in entry for entry in problems), problems


def _push(base: pathlib.Path, version: int) -> None:
    (base / str(version)).mkdir(parents=True)


def test_register_pushed_version_follows_the_label_rules(tmp_path):
    config_path = tmp_path / "serving_config" / "models.config"
    base = tmp_path / "serving_models" / "etrm_risk_model"
    _push(base, 1)
    config = model_config.register_pushed_version(config_path, "etrm_risk_model", base, 1)
    model = model_config.find_model_config(config, "etrm_risk_model")
    assert model.model_platform == "tensorflow"
    assert model.model_version_policy.latest.num_versions == 2
    assert dict(model.version_labels) == {"stable": 1, "canary": 1}

    _push(base, 2)
    model_config.register_pushed_version(config_path, "etrm_risk_model", base, 2)
    model = model_config.find_model_config(model_config.read_model_server_config(config_path),
                                           "etrm_risk_model")
    assert dict(model.version_labels) == {"stable": 1, "canary": 2}
    assert model.model_version_policy.WhichOneof("policy_choice") == "latest"

    # Latest 2 would drop version 1 while `stable` still points at it: the policy pins both.
    _push(base, 3)
    model_config.register_pushed_version(config_path, "etrm_risk_model", base, 3)
    model = model_config.find_model_config(model_config.read_model_server_config(config_path),
                                           "etrm_risk_model")
    assert dict(model.version_labels) == {"stable": 1, "canary": 3}
    assert list(model.model_version_policy.specific.versions) == [1, 3]
    assert model_config.served_versions(model) == [1, 3]

    with pytest.raises(ValueError, match="policy serves versions \\[1, 3\\]"):
        model_config.promote(config_path, "etrm_risk_model", "stable", 2)
    model_config.promote(config_path, "etrm_risk_model", "stable", 3)
    model = model_config.find_model_config(model_config.read_model_server_config(config_path),
                                           "etrm_risk_model")
    assert model.version_labels["stable"] == 3
    assert not list(config_path.parent.glob("*.tmp"))


def test_promote_unknown_model_is_a_key_error(tmp_path):
    with pytest.raises(KeyError):
        model_config.promote(tmp_path / "models.config", "nope", "stable", 1)


def test_version_policies(tmp_path):
    for version in (1, 2, 5):
        _push(tmp_path, version)
    (tmp_path / ".staging-6").mkdir()
    assert list_version_dirs(tmp_path) == [1, 2, 5]
    model = model_server_config_pb2.ModelConfig(name="m", base_path=str(tmp_path))
    assert aspired_versions(model, [1, 2, 5]) == [5]
    model.model_version_policy.latest.num_versions = 2
    assert aspired_versions(model, [1, 2, 5]) == [2, 5]
    model.model_version_policy.all.SetInParent()
    assert aspired_versions(model, [1, 2, 5]) == [1, 2, 5]
    model.model_version_policy.specific.versions.extend([1, 4])
    assert aspired_versions(model, [1, 2, 5]) == [1]


def test_shipped_models_config_parses_with_tf_serving_protos():
    config = model_config.read_model_server_config(SERVING_CONFIG / "models.config")
    names = [model.name for model in config.model_config_list.config]
    assert names == ["etrm_risk_model", "etrm_report_lm"]
    for model in config.model_config_list.config:
        assert model.base_path == f"/models/{model.name}"
        assert model.model_platform == "tensorflow"
        assert model.model_version_policy.latest.num_versions == 2
        assert dict(model.version_labels) == {"stable": 1}


def test_shipped_batching_and_monitoring_configs_parse():
    params = config_protos.read_batching_parameters(SERVING_CONFIG / "batching.config")
    assert params.DESCRIPTOR.full_name == "tensorflow.serving.BatchingParameters"
    options = BatchingOptions.from_proto(params)
    assert options.max_batch_size == 32 and options.allowed_batch_sizes[-1] == 32
    monitoring = config_protos.read_monitoring_config(SERVING_CONFIG / "monitoring.config")
    assert monitoring.prometheus_config.enable
    assert monitoring.prometheus_config.path == "/monitoring/prometheus/metrics"
    with pytest.raises(text_format.ParseError):
        text_format.Parse("max_batch_size: 3", config_protos.BatchingParameters())


def test_batching_options_reject_inconsistent_allowed_sizes():
    with pytest.raises(ValueError, match="allowed_batch_sizes"):
        BatchingOptions(max_batch_size=32, allowed_batch_sizes=(8, 16)).validate()
    assert BatchingOptions(max_batch_size=32, allowed_batch_sizes=(8, 32)).padded_size(9) == 32


def test_docker_compose_mounts_every_file_the_flags_name():
    compose = yaml.safe_load((SERVING_CONFIG / "docker-compose.yml").read_text())
    service = compose["services"]["tensorflow-serving"]
    assert service["image"].startswith("tensorflow/serving:")
    flags = dict(flag.lstrip("-").split("=", 1) for flag in service["command"])
    assert flags["port"] == "8500" and flags["rest_api_port"] == "8501"
    assert flags["enable_batching"] == "true"
    assert float(flags["model_config_file_poll_wait_seconds"]) > 0
    mounts = {}
    for volume in service["volumes"]:
        source, target = re.fullmatch(r"(.+):(/[^:]*)(?::r[ow])?", volume).groups()
        mounts[target] = source
    for flag in ("model_config_file", "batching_parameters_file", "monitoring_config_file"):
        source = mounts[flags[flag]]
        assert (SERVING_CONFIG / source).is_file(), (flag, source)
    # Loopback only (ModelService is unauthenticated); README's "Exposing the server" says how.
    assert set(service["ports"]) == {"127.0.0.1:8500:8500", "127.0.0.1:8501:8501"}
    # Every base_path of the mounted models.config lives under the mounted model root.
    config = model_config.read_model_server_config(SERVING_CONFIG / mounts[flags["model_config_file"]])
    assert mounts["/models"].endswith("/serving_models")
    for model in config.model_config_list.config:
        assert model.base_path.startswith("/models/")


def test_security_and_limit_flags_reach_the_server_options():
    import argparse

    from ml.cli.serve import add_arguments, options_from_args

    args = add_arguments(argparse.ArgumentParser()).parse_args([
        "--ssl_config_file", "/etc/ssl.config", "--allow_remote_reload",
        "--model_signing_public_key_file", "/etc/keys.pem", "--rest_max_connections", "64",
        "--rest_idle_timeout_seconds", "5", "--rest_body_timeout_seconds", "7"])
    options = options_from_args(args)
    assert (options.ssl_config_file, options.allow_remote_reload,
            options.model_signing_public_key_file) == ("/etc/ssl.config", True, "/etc/keys.pem")
    assert (options.rest_max_connections, options.rest_idle_timeout_seconds,
            options.rest_body_timeout_seconds) == (64, 5.0, 7.0)
    defaults = options_from_args(add_arguments(argparse.ArgumentParser()).parse_args([]))
    assert not defaults.allow_remote_reload and defaults.ssl_config_file is None
