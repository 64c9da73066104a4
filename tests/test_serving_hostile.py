"""Hostile clients: slow or truncated requests are dropped at their timeout, connections are
capped, every malformed input gets a JSON 4xx (gRPC: a proper code), and the metrics page stays
bounded whatever model names requests carry."""
import asyncio
import base64
import json
import logging
import socket
import threading
import time

import grpc
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import (model_management_pb2, predict_pb2,
                                     prediction_service_pb2_grpc)

from ml.serving import grpc_server
from ml.serving.metrics import UNKNOWN_MODEL, ServingMetrics
from ml.serving.options import ServerOptions
from tests.serving_fixtures import (REPORT_LM, RISK_MODEL, push_version, raw_exchange,
                                    raw_http_request, serialized_trade,
                                    split_http_responses, start_server)

pytestmark = pytest.mark.network

RISK = f"/v1/models/{RISK_MODEL}"
TIMEOUT = 1.5
TRADE_B64 = {"b64": base64.b64encode(serialized_trade(volume=10.0, price=2.0)).decode()}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("hostile-home")
    push_version(home, RISK_MODEL, 1)
    push_version(home, REPORT_LM, 1)
    return home


@pytest.fixture(scope="module")
def server(home):
    server = start_server(home, rest_idle_timeout_seconds=TIMEOUT,
                          rest_body_timeout_seconds=TIMEOUT)
    yield server
    server.stop()


def _healthy(server) -> bool:
    response = requests.post(f"http://127.0.0.1:{server.rest_api_port}{RISK}:predict",
                             json={"instances": [TRADE_B64]}, timeout=30)
    return response.status_code == 200


@pytest.mark.parametrize("method", ["HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_get_a_json_405(server, method):
    [(status, head, body)] = split_http_responses(
        raw_exchange(server.rest_api_port, raw_http_request(method, RISK)))
    assert status == 405
    assert "application/json" in head and "Allow: GET, POST" in head
    if method != "HEAD":
        assert "use GET or POST" in json.loads(body)["error"]
    assert _healthy(server)


NESTED = b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
HOSTILE_REST = [
    ("POST", f"{RISK}/versions/{'9' * 5000}:predict", b'{"instances": []}', 400,
     "Failed to convert version"),
    ("GET", f"{RISK}/versions/{'1' * 20}", b"", 400, "Failed to convert version"),
    ("GET", f"{RISK}/versions/%D9%A1", b"", 400, "Failed to convert version"),
    ("GET", f"{RISK}/versions/-1", b"", 400, "Failed to convert version"),
    ("POST", f"{RISK}:predict", NESTED, 400, "nested too deeply"),
    ("POST", f"{RISK}:predict", b'{"instances": [' + b"1" * 5000 + b"]}", 400, "JSON Parse error"),
    ("POST", f"{RISK}:classify", json.dumps({"signature_name": "classification", "examples": [
        {"tenor_days": 2 ** 64}]}).encode(), 400, "int64"),
    ("POST", f"{RISK}:regress", json.dumps({"signature_name": "regression", "examples": [
        {"tenor_days": -10 ** 30}]}).encode(), 400, "int64"),
]


@pytest.mark.parametrize("method, path, body, status, message", HOSTILE_REST,
                         ids=[f"hostile-{index}" for index in range(len(HOSTILE_REST))])
def test_hostile_rest_inputs_get_json_4xx(server, method, path, body, status, message):
    [(answered, head, payload)] = split_http_responses(
        raw_exchange(server.rest_api_port, raw_http_request(method, path, body)))
    assert answered == status, payload[:200]
    assert "application/json" in head
    assert message.lower() in json.loads(payload)["error"].lower()
    assert _healthy(server)


def test_400_digit_float_is_answered_in_json(server):
    body = (b'{"signature_name": "generate", "inputs": {"prompt": ["x"], "max_new_tokens": 2, '
            b'"top_k": 1, "temperature": 1' + b"0" * 400 + b'.5}}')
    [(status, head, payload)] = split_http_responses(raw_exchange(
        server.rest_api_port, raw_http_request("POST", f"/v1/models/{REPORT_LM}:predict", body)))
    assert status in (200, 400) and "application/json" in head
    json.loads(payload)


@pytest.mark.parametrize("length", ["abc", "9" * 5000, "-1", "1, 2"])
def test_bad_content_length_gets_a_json_4xx(server, length):
    data = (f"POST {RISK}:predict HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n{{}}"
            .encode())
    [(status, head, payload)] = split_http_responses(raw_exchange(server.rest_api_port, data))
    assert 400 <= status < 500 and "application/json" in head
    assert json.loads(payload)["error"]
    assert _healthy(server)


def test_get_with_a_body_is_answered_once(server):
    smuggled = f"GET /v1/models/{REPORT_LM} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    data = (f"GET {RISK} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(smuggled)}\r\n\r\n".encode()
            + smuggled)
    with socket.create_connection(("127.0.0.1", server.rest_api_port), timeout=10) as raw:
        raw.sendall(data)
        time.sleep(0.5)
        raw.sendall(f"GET {RISK} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while True:
            chunk = raw.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    answers = split_http_responses(b"".join(chunks))
    assert [status for status, _, _ in answers] == [200, 200]
    assert all(RISK_MODEL not in body.decode() or "model_version_status" in body.decode()
               for _, _, body in answers)


def _closed_within(sock: socket.socket, seconds: float) -> bytes:
    """What the server sent before closing the connection; fails if it stays open."""
    sock.settimeout(seconds)
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            raise AssertionError(f"connection still open after {seconds}s") from None
        if not chunk:
            return received
        received += chunk


def test_partial_headers_are_dropped_at_the_timeout(server):
    sockets = [socket.create_connection(("127.0.0.1", server.rest_api_port), timeout=10)
               for _ in range(20)]
    try:
        for sock in sockets:
            sock.sendall(f"GET {RISK} HTTP/1.1\r\nHost: x\r\nX-Slow: ".encode())
        assert _healthy(server)
        started = time.monotonic()
        for sock in sockets:
            _closed_within(sock, TIMEOUT + 15)
        assert time.monotonic() - started < TIMEOUT + 15
    finally:
        for sock in sockets:
            sock.close()


def test_a_body_shorter_than_its_content_length_is_dropped_at_the_timeout(server):
    with socket.create_connection(("127.0.0.1", server.rest_api_port), timeout=10) as sock:
        sock.sendall(f"POST {RISK}:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n{{}}"
                     .encode())
        reply = _closed_within(sock, TIMEOUT + 15)
    [(status, head, payload)] = split_http_responses(reply)
    assert status == 408 and "did not arrive" in json.loads(payload)["error"]


def test_connections_above_the_cap_get_503_json(home):
    capped = start_server(home, rest_max_connections=3)
    held = []
    try:
        held = [socket.create_connection(("127.0.0.1", capped.rest_api_port), timeout=10)
                for _ in range(3)]
        time.sleep(0.3)
        with socket.create_connection(("127.0.0.1", capped.rest_api_port), timeout=10) as extra:
            reply = _closed_within(extra, 15)
        [(status, _, payload)] = split_http_responses(reply)
        assert status == 503 and "too many connections" in json.loads(payload)["error"]
        for sock in held:
            sock.close()
        held = []
        time.sleep(0.3)
        assert _healthy(capped)
    finally:
        for sock in held:
            sock.close()
        capped.stop()


def test_metrics_name_only_configured_models(server):
    base = f"http://127.0.0.1:{server.rest_api_port}"
    long_name = "m" * 8000
    for index in range(20):
        requests.post(f"{base}/v1/models/{long_name}{index}:predict", json={"instances": [1]},
                      timeout=30)
    page = requests.get(f"{base}/monitoring/prometheus/metrics", timeout=30).text
    assert long_name not in page
    assert f'model_name="{UNKNOWN_MODEL}"' in page and f'model_name="{RISK_MODEL}"' in page
    assert len(page) < 200_000


def test_metrics_keep_one_series_for_every_unknown_name():
    metrics = ServingMetrics()
    metrics.set_model_names(["known"])
    for index in range(500):
        metrics.record_request(f"stranger-{index}", 3, "predict", "REST", "NOT_FOUND", 0.001)
    metrics.record_request("known", 3, "predict", "REST", "OK", 0.001)
    page = metrics.render()
    assert "stranger" not in page
    assert (':tensorflow:serving:request_count{API="predict",entrypoint="REST",'
            f'model_name="{UNKNOWN_MODEL}",model_version="",status="NOT_FOUND"}} 500') in page
    assert 'model_name="known",model_version="3",status="OK"} 1' in page
    assert "_total" not in page and "_created" not in page


@pytest.fixture(scope="module")
def prediction_stub(server):
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    yield prediction_service_pb2_grpc.PredictionServiceStub(channel)
    channel.close()


def _predict_request(proto):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = RISK_MODEL
    request.inputs["examples"].CopyFrom(proto)
    return request


def test_grpc_tensor_too_large_is_resource_exhausted(server, prediction_stub, monkeypatch):
    def refuse(proto):
        raise grpc_server.tensor_codec.TensorTooLarge("claims 2147483648 elements")
    monkeypatch.setattr(grpc_server, "tensor_proto_to_array", refuse)
    with pytest.raises(grpc.RpcError) as raised:
        prediction_stub.Predict(_predict_request(tf.make_tensor_proto([b"x"])), timeout=30)
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "too large" in raised.value.details()


@pytest.mark.parametrize("size", [1, 200_000])
def test_grpc_undecodable_tensor_is_invalid_argument(server, prediction_stub, size):
    proto = tf.make_tensor_proto([b"\xff" * size])
    proto.dtype = tf.string.as_datatype_enum
    proto.tensor_shape.dim[0].size = 3  # claims 3 strings, holds 1
    with pytest.raises(grpc.RpcError) as raised:
        prediction_stub.Predict(_predict_request(proto), timeout=30)
    assert raised.value.code() in (grpc.StatusCode.INVALID_ARGUMENT,
                                   grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert _healthy(server)


class _Context:
    def __init__(self, peer):
        self._peer = peer

    def peer(self):
        return self._peer

    async def abort(self, code, details):
        raise grpc.aio.AbortError(code, details)


@pytest.mark.parametrize("peer, allowed", [("ipv4:10.1.2.3:5000", False),
                                           ("ipv6:[2001:db8::1]:5000", False),
                                           ("ipv4:127.0.0.1:5000", True),
                                           ("ipv6:[::1]:5000", True)])
def test_reload_rpc_only_from_loopback_unless_allowed(peer, allowed):
    applied = []
    request = model_management_pb2.ReloadConfigRequest()

    def run(servicer):
        return asyncio.run(servicer.HandleReloadConfigRequest(request, _Context(peer)))

    with __import__("concurrent.futures").futures.ThreadPoolExecutor(1) as executor:
        strict = grpc_server.ModelServicer(None, lambda config: applied.append(config) or [],
                                           executor)
        if allowed:
            assert run(strict).status.error_code == 0
        else:
            with pytest.raises(grpc.aio.AbortError) as raised:
                run(strict)
            assert raised.value.args[0] == grpc.StatusCode.PERMISSION_DENIED
            assert "--allow_remote_reload" in raised.value.args[1]
            assert not applied
        remote_ok = grpc_server.ModelServicer(None, lambda config: applied.append(config) or [],
                                              executor, allow_remote_reload=True)
        assert run(remote_ok).status.error_code == 0


def test_pollers_survive_exceptions_and_log_each_error_once(tmp_path, caplog):
    from ml.serving.server import ModelServer

    server = ModelServer(ServerOptions(home=str(tmp_path), request_log_sampling_rate=0.0))
    calls, recovered = [], threading.Event()

    def flaky():
        calls.append(1)
        if len(calls) <= 5:
            raise PermissionError(13, "Permission denied", str(tmp_path / "serving_models"))
        recovered.set()
    try:
        with caplog.at_level(logging.ERROR, logger="ml.serving.server"):
            server._start_poller("test-poll", 0.02, flaky)
            assert recovered.wait(20), "the poller stopped after an exception"
    finally:
        server.stop()
    errors = [record for record in caplog.records if "test-poll failed" in record.getMessage()]
    assert len(errors) == 1 and "Permission denied" in errors[0].getMessage()


def test_large_grpc_requests_are_decoded_off_the_event_loop(server, prediction_stub, monkeypatch):
    threads = []
    decode = grpc_server._decode_inputs

    def recording(request, spec):
        threads.append(threading.current_thread().name)
        return decode(request, spec)
    monkeypatch.setattr(grpc_server, "_decode_inputs", recording)
    small = [serialized_trade(volume=1.0, price=2.0)]
    large = small * (2 * grpc_server.INLINE_REQUEST_BYTES // len(small[0]))
    for examples in (small, large):
        prediction_stub.Predict(_predict_request(tf.make_tensor_proto(examples)), timeout=60)
    assert threads[0] == "serving-loop"
    assert threads[1].startswith("serving_")
