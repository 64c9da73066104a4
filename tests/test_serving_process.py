"""`python -m ml.serving` as a process: flags, readiness, graceful SIGTERM; the pre-push serving
check."""
import base64
import pathlib
import signal
import subprocess
import sys
import threading

import pytest
import requests

from components.canary_validator.serving_check import _exercise, read_ready_line, run_serving_check
from ml.serving_client.client import TensorFlowServingClient
from tests.serving_fixtures import (REPORT_LM, RISK_MODEL, SERVING_CONFIG_DIR, pristine_models,
                                    push_version, serialized_trade)

pytestmark = pytest.mark.network

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
TRADE = serialized_trade(volume=100.0, price=60.0)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    home = tmp_path_factory.mktemp("process-home")
    push_version(home, RISK_MODEL, 1)
    push_version(home, REPORT_LM, 1)
    slow_batching = home / "slow_batching.config"
    # A long batch timeout keeps a lone request in flight long enough to send SIGTERM.
    slow_batching.write_text("max_batch_size { value: 8 }\nbatch_timeout_micros { value: 2000000 }\n"
                             "num_batch_threads { value: 1 }\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "ml.serving", "--home", str(home), "--port", "0",
         "--rest_api_port", "0", "--enable_batching", "true",
         "--batching_parameters_file", str(slow_batching),
         "--monitoring_config_file", str(SERVING_CONFIG_DIR / "monitoring.config"),
         "--request_log_sampling_rate", "0", "--log_level", "WARNING"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        ready = read_ready_line(process, 240)
        yield process, ready
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def test_process_serves_with_tf_serving_flags(served):
    _, ready = served
    base = f"http://127.0.0.1:{ready['rest_api_port']}"
    status = requests.get(f"{base}/v1/models/{RISK_MODEL}/labels/stable", timeout=30).json()
    assert status["model_version_status"][0]["state"] == "AVAILABLE"
    assert requests.get(f"{base}/monitoring/prometheus/metrics", timeout=30).status_code == 200
    assert ready["host"] == "127.0.0.1"


def test_serving_check_counts_failed_requests_per_protocol(served):
    _, ready = served
    for protocol in ("rest", "grpc"):
        client = TensorFlowServingClient(host="127.0.0.1", rest_port=ready["rest_api_port"],
                                         grpc_port=ready["grpc_port"], protocol=protocol,
                                         max_retries=0)
        summary = _exercise(client, RISK_MODEL, [b"\x0a\xff"], "serving_default", "examples")
        client.close()
        assert (summary["ok"], summary["errors"]) == (0, 1)
        assert "parse" in summary["error_messages"][0].lower()


def test_sigterm_finishes_in_flight_requests_then_exits(served):
    process, ready = served
    url = f"http://127.0.0.1:{ready['rest_api_port']}/v1/models/{RISK_MODEL}:predict"
    outcome = {}

    def in_flight():
        outcome["response"] = requests.post(
            url, json={"instances": [{"b64": base64.b64encode(TRADE).decode()}]}, timeout=60)
    thread = threading.Thread(target=in_flight)
    thread.start()
    threading.Event().wait(0.7)
    process.send_signal(signal.SIGTERM)
    thread.join(timeout=60)
    assert outcome["response"].status_code == 200, outcome["response"].text
    assert len(outcome["response"].json()["predictions"]) == 1
    assert process.wait(timeout=60) == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{ready['rest_api_port']}/v1/models/{RISK_MODEL}", timeout=5)


def test_serving_check_blesses_a_healthy_candidate_and_stops_its_server():
    result = run_serving_check(pristine_models()[RISK_MODEL], RISK_MODEL, [TRADE] * 5,
                                latency_budget_ms=5000)
    assert result["blessed"], result
    assert result["rest"]["ok"] == 5 and result["grpc"]["ok"] == 5
    assert 0 < result["latency_p50_ms"] <= result["latency_p99_ms"] <= 5000
    assert result["server_exit_code"] == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{result['rest_api_port']}/v1/models/{RISK_MODEL}", timeout=5)


def test_serving_check_does_not_bless_a_candidate_that_cannot_load(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
    result = run_serving_check(broken, RISK_MODEL, [TRADE], latency_budget_ms=5000)
    assert not result["blessed"]
    assert result["model_status"][0]["state"] == "END"
    assert result["errors"] and "version 1" in result["errors"][0]
    assert result["server_exit_code"] == 0
