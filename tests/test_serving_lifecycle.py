"""Model lifecycle edge cases: a failing warmup file, a vanishing config file, unloading."""
import logging
import shutil
import time

import pytest

from ml.serving.manifest import write_manifest
from ml.serving.model_config import (find_model_config, read_model_server_config,
                                     write_model_server_config)
from ml.serving.warmup import WARMUP_FILE
from tests.serving_fixtures import (REPORT_LM, RISK_MODEL, pristine_models, push_version,
                                    start_server, wait_for)

pytestmark = pytest.mark.network


def _states(server, model=RISK_MODEL):
    return {status.version: status.state for status in server.manager.status(model)}


def test_failing_warmup_refuses_the_version_and_keeps_the_old_one(tmp_path):
    home = tmp_path / "home"
    push_version(home, RISK_MODEL, 1)
    bad = tmp_path / "bad"
    shutil.copytree(pristine_models()[RISK_MODEL], bad)
    (bad / WARMUP_FILE).write_bytes(b"this is not a TFRecord of PredictionLogs")
    (bad / "etrm_manifest.json").unlink()
    write_manifest(bad)
    server = start_server(home, model_config_file_poll_wait_seconds=0.2)
    try:
        push_version(home, RISK_MODEL, 2, source=bad)
        failed = wait_for(lambda: [s for s in server.manager.status(RISK_MODEL)
                                   if s.version == 2 and s.state == "END"])
        assert "Failed to load version 2" in failed[0].error_message
        assert server.manager.resolve(RISK_MODEL).version == 1
        assert server.manager.resolve(RISK_MODEL, label="canary").version == 1
    finally:
        server.stop()


def test_missing_config_file_keeps_models_and_policy_changes_unload(tmp_path):
    home = tmp_path / "home"
    push_version(home, RISK_MODEL, 1)
    push_version(home, REPORT_LM, 1)
    server = start_server(home, model_config_file_poll_wait_seconds=0.1)
    try:
        config = home / "serving_config" / "models.config"
        saved = config.read_text()
        config.unlink()
        time.sleep(0.5)
        assert _states(server) == {1: "AVAILABLE"}
        assert _states(server, REPORT_LM) == {1: "AVAILABLE"}
        # Dropping the LM from the config unloads it; the risk model is untouched.
        config.write_text(saved.replace(f'name: "{REPORT_LM}"', 'name: "etrm_other_model"')
                          .replace(f"/{REPORT_LM}\"", "/etrm_other_model\""))
        wait_for(lambda: REPORT_LM not in server.manager.model_names())
        assert _states(server) == {1: "AVAILABLE"}
        assert "etrm_other_model" in server.manager.model_names()
    finally:
        server.stop()


def test_a_models_config_with_a_label_outside_its_policy_is_refused_on_file_reload(tmp_path,
                                                                                 caplog):
    home = tmp_path / "home"
    push_version(home, RISK_MODEL, 1)
    push_version(home, RISK_MODEL, 2)
    server = start_server(home, model_config_file_poll_wait_seconds=0)
    try:
        assert server.manager.labels(RISK_MODEL) == {"stable": 1, "canary": 2}
        config_path = home / "serving_config" / "models.config"
        config = read_model_server_config(config_path)
        find_model_config(config, RISK_MODEL).model_version_policy.specific.versions.append(2)
        write_model_server_config(config_path, config)
        caplog.set_level(logging.ERROR, logger="ml.serving.server")
        assert server.reload_from_file() == []
        message = " ".join(record.getMessage() for record in caplog.records
                           if "is refused, keeping the current one" in record.getMessage())
        assert f"model '{RISK_MODEL}'" in message and "label 'stable'" in message
        assert "version 1" in message and "current config keeps serving" in message
        assert server.manager.labels(RISK_MODEL) == {"stable": 1, "canary": 2}
        assert _states(server) == {1: "AVAILABLE", 2: "AVAILABLE"}
        assert server.manager.resolve(RISK_MODEL, label="stable").version == 1
    finally:
        server.stop()
