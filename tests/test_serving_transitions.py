"""Version transitions lose no request: a label keeps its version loaded until the new target
is available, an impossible config is refused whole, and the Pusher's two steps never show a
poll a label on a version the policy drops. Unit tests use a stand-in loader (no TensorFlow);
the end-to-end test pushes under real REST + gRPC traffic."""
import pathlib
import threading
import types

import grpc
import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from ml.serving.errors import ServingError
from ml.serving.model_config import (find_model_config, read_model_server_config,
                                     write_model_server_config)
from ml.serving.model_manager import ModelManager
from ml.serving.version_policy import aspired_versions


class _Loader:
    """Loads instantly, or when a version's gate opens; refuses a folder holding `broken`."""

    def __init__(self):
        self.gates = {}
        self.calls = []

    def block(self, version):
        self.gates[version] = threading.Event()
        return self.gates[version]

    def __call__(self, name, version, path):
        self.calls.append(version)
        gate = self.gates.get(version)
        if gate is not None:
            assert gate.wait(30), f"version {version} was never released"
        if (pathlib.Path(path) / "broken").exists():
            raise ServingError(grpc.StatusCode.DATA_LOSS, f"Refused version {version} of "
                               f"model {name}: integrity manifest check failed")
        return types.SimpleNamespace(model_name=name, version=version)


def _config(base, policy, labels, name="m", extra=""):
    label_text = " ".join(f'version_labels {{ key: "{label}" value: {version} }}'
                          for label, version in labels.items())
    base_text = f'base_path: "{base}"' if base is not None else ""
    return text_format.Parse(
        f'model_config_list {{ config {{ name: "{name}" {base_text} model_platform: "tensorflow" '
        f'model_version_policy {{ {policy} }} {label_text} }} {extra} }}',
        model_server_config_pb2.ModelServerConfig())


@pytest.fixture
def store(tmp_path):
    base = tmp_path / "models" / "m"
    loader = _Loader()
    manager = ModelManager(tmp_path / "home", loader=loader)

    def versions(*numbers):
        for number in numbers:
            (base / str(number)).mkdir(parents=True, exist_ok=True)
    yield types.SimpleNamespace(base=base, loader=loader, manager=manager, versions=versions)
    for gate in loader.gates.values():
        gate.set()
    manager.close()


def _states(manager):
    return {status.version: status.state for status in manager.status("m")}


def test_moving_stable_to_a_loading_version_keeps_the_old_one_serving(store):
    store.versions(1, 2, 3)
    store.manager.apply_config(_config(store.base, "specific { versions: [1, 2] }",
                                       {"stable": 1, "canary": 2}))
    gate = store.loader.block(3)
    # stable's old version leaves the policy while its new target is still loading.
    problems = store.manager.apply_config(_config(store.base, "specific { versions: [2, 3] }",
                                                  {"stable": 3, "canary": 2}))
    assert any("label stable to version 3" in problem and "stays on version 1" in problem
               for problem in problems), problems
    assert store.manager.resolve("m", label="stable").version == 1
    assert _states(store.manager)[1] == "AVAILABLE"
    gate.set()
    assert store.manager.wait_until_idle(30)
    assert store.manager.resolve("m", label="stable").version == 3
    assert _states(store.manager) == {1: "END", 2: "AVAILABLE", 3: "AVAILABLE"}


def test_push_under_latest_two_without_a_config_reread_keeps_stable(store):
    store.versions(1, 2)
    store.manager.apply_config(_config(store.base, "latest { num_versions: 2 }",
                                       {"stable": 1, "canary": 2}))
    store.versions(3)  # the file-system poll finds it; models.config is not re-read
    store.manager.poll_filesystem()
    assert store.manager.wait_until_idle(30)
    store.manager.poll_filesystem()
    assert store.manager.resolve("m").version == 3
    assert store.manager.resolve("m", label="stable").version == 1
    assert store.manager.resolve("m", label="canary").version == 2
    assert _states(store.manager) == {1: "AVAILABLE", 2: "AVAILABLE", 3: "AVAILABLE"}


def test_rollback_to_an_unloaded_version_keeps_the_current_one_until_it_loads(store):
    store.versions(1, 2)
    store.manager.apply_config(_config(store.base, "specific { versions: [2] }", {"stable": 2}))
    gate = store.loader.block(1)
    store.manager.apply_config(_config(store.base, "specific { versions: [1] }", {"stable": 1}))
    assert store.manager.resolve("m", label="stable").version == 2
    gate.set()
    assert store.manager.wait_until_idle(30)
    assert store.manager.resolve("m", label="stable").version == 1
    assert _states(store.manager) == {1: "AVAILABLE", 2: "END"}


def test_a_label_never_moves_to_a_refused_version(store):
    store.versions(1, 2)
    (store.base / "2" / "broken").write_text("x")
    store.manager.apply_config(_config(store.base, "specific { versions: [1] }", {"stable": 1}))
    problems = store.manager.apply_config(_config(store.base, "specific { versions: [1, 2] }",
                                                  {"stable": 1, "canary": 2}))
    assert store.manager.wait_until_idle(30)
    assert any("canary" in problem for problem in problems)
    assert store.manager.labels("m") == {"stable": 1}
    assert _states(store.manager) == {1: "AVAILABLE", 2: "END"}


PRECONDITION, INVALID = grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("config, code, expected", [
    (lambda base: _config(base, "specific { versions: [2] }", {"stable": 1}), PRECONDITION,
     ["model 'm'", "label 'stable'", "version 1", "specific {versions: [2]}"]),
    (lambda base: _config(base, "latest { num_versions: 1 }", {"stable": 1}), PRECONDITION,
     ["model 'm'", "label 'stable'", "version 1", "latest {num_versions: 1}", "[2]"]),
    (lambda base: _config(None, "latest { num_versions: 1 }", {}), INVALID,
     ["model 'm' has no base_path"]),
    (lambda base: _config(base, "latest {}", {},
                          extra=f'config {{ name: "m" base_path: "{base}" }}'),
     INVALID, ["model 'm' is listed twice"]),
    (lambda base: _config(base, "latest {}", {}, name="../../x"), INVALID,
     ["invalid model name", "../../x"]),
], ids=["label-outside-specific", "label-older-than-latest", "no-base-path", "duplicate",
        "bad-name"])
def test_impossible_configs_are_refused_and_the_current_one_keeps_serving(store, config, code,
                                                                          expected):
    store.versions(1, 2)
    store.manager.apply_config(_config(store.base, "specific { versions: [1, 2] }",
                                       {"stable": 1}))
    with pytest.raises(ServingError) as refused:
        store.manager.apply_config(config(store.base))
    assert refused.value.code == code
    for text in expected:
        assert text in refused.value.message, refused.value.message
    assert store.manager.model_names() == ["m"]
    assert store.manager.resolve("m", label="stable").version == 1
    assert _states(store.manager) == {1: "AVAILABLE", 2: "AVAILABLE"}


def test_a_label_on_a_not_yet_pushed_newer_version_only_waits(store):
    store.versions(1)
    problems = store.manager.apply_config(_config(store.base, "latest { num_versions: 1 }",
                                                  {"stable": 1, "canary": 2}))
    assert any("label canary to version 2" in problem for problem in problems)
    assert store.manager.labels("m") == {"stable": 1}


def test_a_refused_version_is_retried_only_when_its_folder_changes(store):
    store.versions(1)
    broken = store.base / "1" / "broken"
    broken.write_text("x")
    store.manager.apply_config(_config(store.base, "latest {}", {}))
    assert _states(store.manager) == {1: "END"}
    store.manager.poll_filesystem()
    assert store.manager.wait_until_idle(30)
    assert store.loader.calls == [1], "an unchanged refused version must not be reloaded"
    broken.unlink()
    store.manager.poll_filesystem()
    assert store.manager.wait_until_idle(30)
    assert store.loader.calls == [1, 1]
    assert _states(store.manager) == {1: "AVAILABLE"}


def test_the_pushers_two_steps_never_show_a_label_outside_the_policy(tmp_path, monkeypatch):
    from components.serving_pusher import versions

    serving, config_path = tmp_path / "serving_models", tmp_path / "models.config"
    source = tmp_path / "candidate"
    (source / "variables").mkdir(parents=True)
    (source / "saved_model.pb").write_bytes(b"graph")
    for _ in range(2):
        versions.push_model(str(source), serving, "m", config_path)
    model = find_model_config(read_model_server_config(config_path), "m")
    model.version_labels["stable"] = 1
    write_model_server_config(config_path, model_server_config_pb2.ModelServerConfig(
        model_config_list=model_server_config_pb2.ModelConfigList(config=[model])))

    seen = []
    publish = versions.publish_version

    def observed_publish(model_dir, base_dir, version, signing_key=None, push_key=""):
        seen.append(("before", find_model_config(read_model_server_config(config_path), "m")))
        target = publish(model_dir, base_dir, version, signing_key=signing_key, push_key=push_key)
        seen.append(("after", find_model_config(read_model_server_config(config_path), "m")))
        return target
    monkeypatch.setattr(versions, "publish_version", observed_publish)
    versions.push_model(str(source), serving, "m", config_path)
    final = find_model_config(read_model_server_config(config_path), "m")
    # Whatever the server reads while the folder appears, every label's version is served.
    for moment, model, disks in [(moment, model, ([1, 2], [1, 2, 3])) for moment, model in seen] \
            + [("final", final, ([1, 2, 3],))]:
        for on_disk in disks:
            served = aspired_versions(model, on_disk)
            assert set(model.version_labels.values()) <= set(served), (moment, on_disk, served)
    assert dict(seen[0][1].version_labels) == {"stable": 1, "canary": 2}
    assert dict(final.version_labels) == {"stable": 1, "canary": 3}
    assert list(final.model_version_policy.specific.versions) == [1, 3]


@pytest.mark.network
@pytest.mark.slow
def test_a_push_under_latest_two_with_the_config_poll_off_fails_no_request(tmp_path):
    """Real server, REST + gRPC clients on stable, canary and latest while the Pusher's steps
    land version 3; models.config is not re-read (the default), the file-system poll is."""
    from benchmarks.bench_transitions import Traffic
    from components.serving_pusher.versions import push_model
    from tests.serving_fixtures import (RISK_MODEL, pristine_models, push_version, start_server,
                                        wait_for)

    home = tmp_path / "home"
    for version in (1, 2):
        push_version(home, RISK_MODEL, version)
    server = start_server(home, model_config_file_poll_wait_seconds=0.0,
                          file_system_poll_wait_seconds=0.2)
    try:
        with Traffic(server, clients=8) as traffic:
            wait_for(lambda: traffic.count > 100)
            push_model(str(pristine_models()[RISK_MODEL]), home / "serving_models", RISK_MODEL,
                       home / "serving_config" / "models.config", num_versions=2)
            wait_for(lambda: any(status.version == 3 and status.state == "AVAILABLE"
                                 for status in server.manager.status(RISK_MODEL)))
            after = traffic.count
            wait_for(lambda: traffic.count > after + 200)
        assert traffic.failures == [] and sum(traffic.failed.values()) == 0
        assert traffic.versions["stable"] == [1]
        assert 3 in traffic.versions[None]
        assert traffic.switched_back() == 0
    finally:
        server.stop()
