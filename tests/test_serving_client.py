"""ml.tensorflow_serving_client against the local model server, over REST and gRPC."""
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

import pytest
import tensorflow as tf

from ml.tensorflow_serving_client import (ABSplit, ETRMModelClient, TensorFlowServingClient,
                                          TensorFlowServingError, encode_example)
from tests.serving_fixtures import (FEATURE_DEFAULTS, REPORT_LM, RISK_MODEL, push_version,
                                    start_server)

pytestmark = pytest.mark.network

SPEC_DIR = "/work/shared/spec"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("client-home")
    push_version(home, RISK_MODEL, 1)
    push_version(home, RISK_MODEL, 2)  # stable -> 1, canary -> 2
    push_version(home, REPORT_LM, 1)
    server = start_server(home)
    yield server
    server.stop()


@pytest.fixture(scope="module", params=["rest", "grpc"])
def serving_client(request, server):
    client = TensorFlowServingClient(host="127.0.0.1", rest_port=server.rest_api_port,
                                     grpc_port=server.grpc_port, protocol=request.param)
    yield client
    client.close()


def _predict_count(server, entrypoint):
    pattern = (r':tensorflow:serving:request_count\{API="predict",entrypoint="%s",'
               r'model_name="%s",model_version="\d+",status="OK"\} (\d+)' % (entrypoint, RISK_MODEL))
    return sum(int(count) for count in re.findall(pattern, server.metrics.render()))


def test_defaults_follow_tf_serving_and_the_environment(monkeypatch):
    client = TensorFlowServingClient()
    assert (client.host, client.rest_port, client.grpc_port) == ("localhost", 8501, 8500)
    monkeypatch.setenv("ETRM_SERVING_REST_PORT", "9601")
    assert TensorFlowServingClient().rest_port == 9601
    with pytest.raises(ValueError, match="protocol"):
        TensorFlowServingClient(protocol="soap")


def test_encode_example_matches_tensorflow():
    serialized = encode_example({"volume": ("float", [1000.0]), "tenor_days": ("int", [-3, 7]),
                                 "commodity": ("string", ["gas", b"\xff"])})
    example = tf.train.Example.FromString(serialized)
    feature = example.features.feature
    assert list(feature["volume"].float_list.value) == [1000.0]
    assert list(feature["tenor_days"].int64_list.value) == [-3, 7]
    assert list(feature["commodity"].bytes_list.value) == [b"gas", b"\xff"]
    assert encode_example({}) == b""


def test_predict_risk_score_reports_version_and_filled_defaults(serving_client):
    client = ETRMModelClient(serving_client)
    result = client.predict_risk_score({"volume": 1000, "price": 75.5})
    assert set(result) >= {"risk_score", "risk_level", "model_version", "defaults_filled"}
    assert 0.0 < result["risk_score"] < 1.0
    assert result["risk_level"] in ("LOW", "MEDIUM", "HIGH")
    assert result["model_version"] == 2
    expected = {name: info["default"] for name, info in FEATURE_DEFAULTS.items()
                if name not in ("volume", "price")}
    assert result["defaults_filled"] == pytest.approx(expected)
    schema = client.feature_schema()
    assert {name: info.type for name, info in schema.items()} == {
        name: info["type"] for name, info in FEATURE_DEFAULTS.items()}


def test_explicit_values_equal_to_defaults_score_the_same(serving_client):
    client = ETRMModelClient(serving_client)
    partial = client.predict_risk_score({"volume": 1000.0, "price": 75.5})
    full = client.predict_risk_score(dict({"volume": 1000.0, "price": 75.5},
                                          **partial["defaults_filled"]))
    assert full["defaults_filled"] == {}
    assert full["risk_score"] == pytest.approx(partial["risk_score"])


def test_predict_risk_scores_is_one_batched_call(server, serving_client):
    client = ETRMModelClient(serving_client, label="stable")
    client.feature_schema(label="stable")
    entrypoint = serving_client.protocol.upper()
    before = _predict_count(server, entrypoint)
    trades = [{"volume": 10.0 * (i + 1), "price": 50.0, "commodity": "power"} for i in range(5)]
    results = client.predict_risk_scores(trades)
    assert _predict_count(server, entrypoint) == before + 1
    assert [r["model_version"] for r in results] == [1] * 5
    assert [r["model_label"] for r in results] == ["stable"] * 5
    assert results[0]["risk_score"] < results[-1]["risk_score"]


@pytest.mark.parametrize("features, message", [
    ({"volume": 1.0, "notional_usd": 5.0}, "unknown feature 'notional_usd'"),
    ({"volume": "a lot"}, "feature 'volume' must be a number"),
    ({"volume": True}, "feature 'volume' must be a number"),
    ({"commodity": 3}, "feature 'commodity' must be a string"),
    ({"tenor_days": 2.5}, "feature 'tenor_days' must be an integer"),
])
def test_bad_features_raise_value_error_naming_the_feature(serving_client, features, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        ETRMModelClient(serving_client).predict_risk_score(features)


def test_generate_report_and_score_text(serving_client):
    client = ETRMModelClient(serving_client)
    text = client.generate_report("Weekly gas desk summary", max_new_tokens=32, temperature=0.5,
                                  top_k=10)
    assert text == "Weekly gas desk summary -- risk summary (32 tokens, T=0.50, k=10)"
    assert client.score_text("one two three") == {"log_likelihood": -1.5, "num_tokens": 3,
                                                  "model_version": 1}


def test_ab_split_sends_a_fraction_to_the_canary(serving_client):
    client = ETRMModelClient(serving_client, ab_split=ABSplit("stable", "canary", 0.3), seed=7)
    versions = [client.predict_risk_score({"volume": 1.0})["model_version"] for _ in range(40)]
    assert set(versions) == {1, 2}
    assert 4 <= versions.count(2) <= 20
    never = ETRMModelClient(serving_client, ab_split=ABSplit("stable", "canary", 0.0))
    assert {never.predict_risk_score({"price": 2.0})["model_version"] for _ in range(5)} == {1}
    with pytest.raises(ValueError):
        ABSplit(fraction_b=1.5)


def test_generic_calls_agree_across_protocols(serving_client):
    statuses = serving_client.model_status(RISK_MODEL)
    assert [(s["version"], s["state"], s["error_code"]) for s in statuses] == [
        (1, "AVAILABLE", "OK"), (2, "AVAILABLE", "OK")]
    assert [s["version"] for s in serving_client.model_status(RISK_MODEL, label="stable")] == [1]
    metadata = serving_client.model_metadata(RISK_MODEL, version=1)
    assert metadata["model_version"] == 1
    assert metadata["signature_def"]["serving_default"]["inputs"] == {
        "examples": {"dtype": "DT_STRING", "shape": [-1]}}
    classified = serving_client.classify(RISK_MODEL, [{"volume": 1000.0, "price": 75.5}],
                                         context={"commodity": "gas"},
                                         signature_name="classification", label="canary")
    assert classified.model_version == 2
    assert [label for label, _ in classified.results[0]] == ["NOT_HIGH", "HIGH"]
    regressed = serving_client.regress(RISK_MODEL, [{"volume": 1000.0, "price": 75.5,
                                                     "commodity": "gas"}],
                                       signature_name="regression", version=2)
    assert regressed.results[0] == pytest.approx(classified.results[0][1][1], rel=1e-5)
    batch = serving_client.predict_batch(REPORT_LM, [{"text": b"a b"}, {"text": b"c"}],
                                         signature_name="score")
    assert list(batch.outputs["num_tokens"]) == [2, 1]
    with pytest.raises(TensorFlowServingError, match="Unrecognized servable version label"):
        serving_client.model_status(RISK_MODEL, label="nope")
    with pytest.raises(ValueError, match="version or by label"):
        serving_client.model_status(RISK_MODEL, version=1, label="stable")


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_connection_refused_is_retried_with_backoff_then_raised(protocol):
    port = _free_port()
    client = TensorFlowServingClient(host="127.0.0.1", rest_port=port, grpc_port=port,
                                     protocol=protocol, timeout_seconds=2, max_retries=2,
                                     backoff_seconds=0.2)
    started = time.monotonic()
    with pytest.raises(TensorFlowServingError) as raised:
        client.model_status(RISK_MODEL)
    assert "UNAVAILABLE" in raised.value.code
    assert time.monotonic() - started >= 0.2 * 0.5 + 0.4 * 0.5


class _ScriptedHandler(http.server.BaseHTTPRequestHandler):
    """Answers with the next scripted (status, body); counts requests."""
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - http.server naming
        self.server.calls += 1
        status, body = self.server.script.pop(0) if self.server.script else (200, {})
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        return


@pytest.fixture
def scripted_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ScriptedHandler)
    server.calls = 0
    server.script = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_503_is_retried_but_4xx_is_not(scripted_server):
    client = TensorFlowServingClient(host="127.0.0.1", rest_port=scripted_server.server_port,
                                     max_retries=3, backoff_seconds=0.01)
    available = {"model_version_status": [{"version": "4", "state": "AVAILABLE",
                                           "status": {"error_code": "OK", "error_message": ""}}]}
    scripted_server.script = [(503, {"error": "loading"}), (503, {"error": "loading"}),
                              (200, available)]
    assert client.model_status(RISK_MODEL)[0]["version"] == 4
    assert scripted_server.calls == 3
    scripted_server.calls = 0
    scripted_server.script = [(400, {"error": "bad request"}), (200, available)]
    with pytest.raises(TensorFlowServingError, match="bad request") as raised:
        client.model_status(RISK_MODEL)
    assert raised.value.http_status == 400
    assert scripted_server.calls == 1


def _spec_snippets():
    text = open(os.path.join(SPEC_DIR, "ml-pipeline-documentation.md")).read()
    quick_start = re.search(r'python -c "\n(.*?)\n"', text, re.S).group(1)
    detailed = re.search(r"\*\*Client Usage\*\*:\n```python\n(.*?)```", text, re.S).group(1)
    return {"quick_start": quick_start, "client_usage": detailed}


@pytest.mark.skipif(not os.path.isdir(SPEC_DIR), reason="the spec folder is not on this machine")
@pytest.mark.parametrize("name", ["quick_start", "client_usage"])
def test_spec_client_snippets_run_as_written(server, name):
    snippet = _spec_snippets()[name]
    env = dict(os.environ, ETRM_SERVING_HOST="127.0.0.1",
               ETRM_SERVING_REST_PORT=str(server.rest_api_port),
               ETRM_SERVING_GRPC_PORT=str(server.grpc_port))
    completed = subprocess.run([sys.executable, "-c", snippet], env=env, cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert re.search(r"Risk (prediction|Score|Level)", completed.stdout), completed.stdout
    assert re.search(r"HIGH|MEDIUM|LOW", completed.stdout)
