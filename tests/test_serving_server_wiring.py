"""The server as `etrm serve` starts it: a home's own signing key is trusted by default (so
`make run`'s signed pushes are verified), a refused config keeps the current one, writers'
stale temporaries are cleaned at start, and start-up errors are one line, not a traceback."""
import os
import subprocess
import sys
import time

import grpc
import pytest

from ml.core.home import Home
from ml.serving import manifest
from ml.serving.options import ServerOptions
from tests.serving_fixtures import RISK_MODEL, push_version, start_server, wait_for

pytestmark = pytest.mark.network


def _status(server, model=RISK_MODEL):
    return server.manager.status(model)[0]


def test_a_home_with_a_key_pair_serves_only_versions_signed_by_it(tmp_path):
    home = Home(tmp_path / "home")
    private_path, _ = manifest.generate_signing_key(home.signing_keys_dir, "model_signing")
    assert ServerOptions(home=str(home.root)).signing_public_key_path() == \
        home.model_signing_public_key
    target = push_version(home.root, RISK_MODEL, 1)
    server = start_server(home.root)
    try:
        status = _status(server)
        assert status.error_code == grpc.StatusCode.DATA_LOSS and "not signed" in status.error_message
        manifest.sign_manifest(target, manifest.load_private_key(private_path), version=1)
        wait_for(lambda: _status(server).state == "AVAILABLE", timeout=120)
    finally:
        server.stop()


def test_without_any_key_digest_manifests_are_served_as_before(tmp_path):
    assert ServerOptions(home=str(tmp_path)).signing_public_key_path() is None
    push_version(tmp_path, RISK_MODEL, 1)
    server = start_server(tmp_path)
    try:
        assert _status(server).state == "AVAILABLE"
    finally:
        server.stop()


def test_a_refused_config_at_start_is_an_error_and_later_keeps_the_current_one(tmp_path):
    push_version(tmp_path, RISK_MODEL, 1)
    config_path = Home(tmp_path).models_config_path
    without_base_path = "\n".join(line for line in config_path.read_text().splitlines()
                                  if "base_path" not in line)
    server = start_server(tmp_path)
    try:
        config_path.write_text(without_base_path)
        assert server.reload_from_file() == []
        assert _status(server).state == "AVAILABLE"
        assert server.manager.resolve(RISK_MODEL).version == 1
    finally:
        server.stop()
    with pytest.raises(ValueError, match="is refused.*base_path"):
        start_server(tmp_path)


def test_stale_temporaries_are_removed_at_start_and_fresh_ones_kept(tmp_path):
    push_version(tmp_path, RISK_MODEL, 1)
    config_dir = Home(tmp_path).models_config_path.parent
    model_dir = Home(tmp_path).serving_base(RISK_MODEL)
    stale = [config_dir / ".models.config.abc123.tmp", model_dir / ".MANIFEST.x1y2.tmp"]
    fresh = config_dir / ".models.config.fresh1.tmp"
    for path in stale + [fresh]:
        path.write_text("half")
    old = time.time() - 3600
    for path in stale:
        os.utime(path, (old, old))
    server = start_server(tmp_path)
    try:
        assert [path.exists() for path in stale] == [False, False] and fresh.exists()
    finally:
        server.stop()


def test_a_bad_ssl_config_is_one_line_on_stderr_and_exit_code_2(tmp_path):
    bad = tmp_path / "ssl.config"
    bad.write_text("server_key: 'not a key'")
    result = subprocess.run(
        [sys.executable, "-m", "ml.serving", "--home", str(tmp_path), "--port", "0",
         "--rest_api_port", "0", "--ssl_config_file", str(bad)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "TF_USE_LEGACY_KERAS": "1"})
    assert result.returncode == 2, result.stderr[-2000:]
    assert "etrm serve: error:" in result.stderr and "Traceback" not in result.stderr
