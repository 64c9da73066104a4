"""Malformed requests of every kind get a 4xx and a clear message; the server keeps serving."""
import base64
import json
import socket

import grpc
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2, inference_pb2,
                                     model_management_pb2, model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc, regression_pb2)

from tests.serving_fixtures import (REPORT_LM, RISK_MODEL, SERVING_CONFIG_DIR, push_version,
                                    raw_exchange, serialized_trade, start_server)

pytestmark = pytest.mark.network

MAX_REQUEST_BYTES = 64 * 1024
TRADE_B64 = {"b64": base64.b64encode(serialized_trade(volume=10.0, price=2.0)).decode()}
RISK = f"/v1/models/{RISK_MODEL}"
LM = f"/v1/models/{REPORT_LM}"
GENERATE = {"prompt": ["hi"], "max_new_tokens": 4, "temperature": 0.5, "top_k": 3}


def _generate(**changes):
    inputs = dict(GENERATE)
    inputs.update(changes)
    return {"signature_name": "generate", "inputs": {k: v for k, v in inputs.items() if v != "drop"}}


def _nested(depth):
    value = "x"
    for _ in range(depth):
        value = [value]
    return value


# (method, path, body: bytes | JSON-able, expected status, fragment of the error message)
REST_CASES = [
    ("POST", f"{RISK}:predict", b"{bad", 400, "JSON Parse error"),
    ("POST", f"{RISK}:predict", b"", 400, "body is empty"),
    ("POST", f"{RISK}:predict", b"\xff\xfe\x00", 400, "JSON Parse error"),
    ("POST", f"{RISK}:predict", [], 400, "must be a JSON object"),
    ("POST", f"{RISK}:predict", None, 400, "must be a JSON object"),
    ("POST", f"{RISK}:predict", "text", 400, "must be a JSON object"),
    ("POST", f"{RISK}:predict", 123, 400, "must be a JSON object"),
    ("POST", f"{RISK}:predict", {}, 400, "Missing 'inputs' or 'instances'"),
    ("POST", f"{RISK}:predict", {"instances": [TRADE_B64], "inputs": [TRADE_B64]}, 400,
     "either 'instances' or 'inputs'"),
    ("POST", f"{RISK}:predict", {"instances": []}, 400, "non-empty JSON list"),
    ("POST", f"{RISK}:predict", {"instances": "x"}, 400, "non-empty JSON list"),
    ("POST", f"{RISK}:predict", {"instances": {}}, 400, "non-empty JSON list"),
    ("POST", f"{RISK}:predict", {"instances": [1.5]}, 400, "expects strings"),
    ("POST", f"{RISK}:predict", {"instances": [True]}, 400, "expects strings"),
    ("POST", f"{RISK}:predict", {"instances": [None]}, 400, "expects strings"),
    ("POST", f"{RISK}:predict", {"instances": [[TRADE_B64]]}, 400, "expects shape"),
    ("POST", f"{RISK}:predict", {"instances": [{"b64": "!!notbase64"}]}, 400, "invalid base64"),
    ("POST", f"{RISK}:predict", {"instances": [{"b64": 5}]}, 400, "expects strings"),
    ("POST", f"{RISK}:predict", {"instances": [{"volume": 1.0}]}, 400, "unknown input 'volume'"),
    ("POST", f"{RISK}:predict", {"instances": [{"examples": TRADE_B64}, {"other": 1}]}, 400,
     "same inputs"),
    ("POST", f"{RISK}:predict", {"instances": [TRADE_B64, {"examples": TRADE_B64}]}, 400,
     "mix JSON objects and bare values"),
    ("POST", f"{RISK}:predict", {"instances": [{"b64": base64.b64encode(b"\x0a\xff").decode()}]}, 400,
     "parse"),
    ("POST", f"{RISK}:predict", {"inputs": {"examples": 5}}, 400, "expects strings"),
    ("POST", f"{RISK}:predict", {"inputs": {"nope": []}}, 400, "unknown input 'nope'"),
    ("POST", f"{RISK}:predict", {"inputs": {"examples": [[TRADE_B64], [TRADE_B64]]}}, 400,
     "expects shape"),
    ("POST", f"{RISK}:predict", {"inputs": {"examples": [["a"], "b"]}}, 400, "ragged"),
    ("POST", f"{RISK}:predict", {"inputs": {"examples": _nested(40)}}, 400, "nested too deeply"),
    ("POST", f"{RISK}:predict", {"signature_name": 5, "instances": [TRADE_B64]}, 400,
     "'signature_name' must be a string"),
    ("POST", f"{RISK}:predict", {"signature_name": "nope", "instances": [TRADE_B64]}, 400,
     'signature key "nope" not found'),
    ("POST", f"{LM}:predict", _generate(max_new_tokens="ten"), 400, "expects numbers"),
    ("POST", f"{LM}:predict", _generate(max_new_tokens=1.5), 400, "expects integers"),
    ("POST", f"{LM}:predict", _generate(max_new_tokens=2 ** 40), 400, "out of range"),
    ("POST", f"{LM}:predict", _generate(temperature=[0.5, 0.6]), 400, "expects shape []"),
    ("POST", f"{LM}:predict", _generate(top_k="drop"), 400, "Missing but required: {top_k}"),
    ("POST", f"{LM}:predict", _generate(prompt=[1, 2]), 400, "expects strings"),
    ("POST", f"{LM}:predict", _generate(prompt=[["a"], ["b"]]), 400, "expects shape"),
    ("POST", f"{LM}:predict", {"signature_name": "generate", "instances": [{"prompt": "a"}]}, 400,
     "Missing but required"),
    ("POST", f"{LM}:predict", {"signature_name": "generate", "instances": ["a"]}, 400,
     "must be a JSON object naming them"),
    ("POST", f"{RISK}:classify", {"examples": [{"volume": 1.0}]}, 400,
     "Expected classification signature"),
    ("POST", f"{RISK}:classify", {"signature_name": "classification"}, 400,
     "'examples' must be a non-empty list"),
    ("POST", f"{RISK}:classify", {"signature_name": "classification", "examples": "x"}, 400,
     "'examples' must be a non-empty list"),
    ("POST", f"{RISK}:classify", {"signature_name": "classification", "examples": [1]}, 400,
     "each example must be a JSON object"),
    ("POST", f"{RISK}:classify", {"signature_name": "classification",
                                  "examples": [{"volume": [1, "a"]}]}, 400,
     "all numbers or all strings"),
    ("POST", f"{RISK}:classify", {"signature_name": "classification",
                                  "examples": [{"region": {"b64": "%%"}}]}, 400, "invalid base64"),
    ("POST", f"{RISK}:classify", {"signature_name": "classification",
                                  "examples": [{"volume": "high"}]}, 400, "volume"),
    ("POST", f"{RISK}:classify", {"signature_name": "classification", "context": "x",
                                  "examples": [{"volume": 1.0}]}, 400,
     "each example must be a JSON object"),
    ("POST", f"{RISK}:regress", {"signature_name": "classification",
                                 "examples": [{"volume": 1.0}]}, 400,
     "Expected regression signature"),
    ("POST", f"{RISK}:regress", {"signature_name": "regression", "examples": []}, 400,
     "'examples' must be a non-empty list"),
    ("POST", f"{RISK}:explain", {"instances": [TRADE_B64]}, 404, "unknown method :explain"),
    ("POST", "/v1/models/no_such_model:predict", {"instances": [TRADE_B64]}, 404,
     "Servable not found for request: Latest(no_such_model)"),
    ("POST", f"{RISK}/versions/abc:predict", {"instances": [TRADE_B64]}, 400,
     "Failed to convert version: abc"),
    ("POST", f"{RISK}/versions/99:predict", {"instances": [TRADE_B64]}, 404,
     f"Specific({RISK_MODEL}, 99)"),
    ("POST", f"{RISK}/labels/nope:predict", {"instances": [TRADE_B64]}, 404,
     "Unrecognized servable version label: nope"),
    ("GET", f"{RISK}/metadata/extra", None, 404, "Malformed request"),
    ("GET", "/v2/anything", None, 404, "Malformed request"),
    ("POST", f"{RISK}/metadata", {"x": 1}, 404, "Malformed request"),
    ("GET", f"{RISK}:predict", None, 404, "Malformed request"),
    ("POST", f"{RISK}:predict", {"instances": ["x" * (MAX_REQUEST_BYTES + 10)]}, 413,
     "exceeds the limit"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("malformed-home")
    push_version(home, RISK_MODEL, 1)
    push_version(home, REPORT_LM, 1)
    server = start_server(home, enable_batching=True,
                          batching_parameters_file=str(SERVING_CONFIG_DIR / "batching.config"),
                          max_request_bytes=MAX_REQUEST_BYTES)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def session():
    with requests.Session() as session:
        yield session


def _healthy(server, session):
    response = session.post(f"http://127.0.0.1:{server.rest_api_port}{RISK}:predict",
                            json={"instances": [TRADE_B64]}, timeout=30)
    return response.status_code == 200 and len(response.json()["predictions"]) == 1


@pytest.mark.parametrize("method, path, body, status, message", REST_CASES,
                         ids=[f"{index}-{case[1].rsplit('/', 1)[-1]}"
                              for index, case in enumerate(REST_CASES)])
def test_malformed_rest_request_gets_clear_4xx(server, session, method, path, body, status,
                                               message):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = session.request(method, f"http://127.0.0.1:{server.rest_api_port}{path}",
                               data=data if method == "POST" else None, timeout=30)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert message.lower() in error.lower(), error
    assert _healthy(server, session)


def test_missing_content_length_gets_411(server, session):
    with socket.create_connection(("127.0.0.1", server.rest_api_port), timeout=10) as raw:
        raw.sendall(f"POST {RISK}:predict HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        reply = raw.recv(4096).decode()
    assert reply.startswith("HTTP/1.1 411")
    assert "Content-Length header is required" in reply
    assert _healthy(server, session)


def _raw_exchange(port: int, request: bytes) -> str:
    return raw_exchange(port, request, timeout=10).decode("latin-1")


# aiohttp's parser (llhttp) refuses these; the server answers each in JSON and closes. The
# status line is HTTP/1.0 for a request line it could not read (aiohttp's default).
RAW_HTTP_CASES = [
    (b"POST\r\n\r\n", "400", "Malformed HTTP request"),
    (b"GET /v1/models/x HTTP/1.1 extra\r\n\r\n", "400", "Malformed HTTP request"),
    (b"GET /v1/models/x HTTX/1.1\r\n\r\n", "400", "Malformed HTTP request"),
    (b"GET /v1/models/x HTTP/2.0\r\n\r\n", "505", "HTTP version 2.0 is not supported"),
    (b"GET /v1/models/x HTTP/1.1\r\nno colon here\r\n\r\n", "400", "Malformed HTTP request"),
    (b"GET /v1/models/x HTTP/1.1\r\nHost : x\r\n\r\n", "400", "Malformed HTTP request"),
    (b"GET /v1/models/x HTTP/1.1\r\nHost: x\r\n folded: value\r\n\r\n", "400",
     "Malformed HTTP request"),
    (b"GET /v1/models/x HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(101))
     + b"\r\n", "431", "Too many headers"),
    (b"GET /v1/models/x HTTP/1.1\r\nX: " + b"a" * 65532 + b"\r\n", "431", "more than 16384 bytes"),
]


@pytest.mark.parametrize("request_bytes, status, message", RAW_HTTP_CASES,
                         ids=[f"raw-{index}" for index in range(len(RAW_HTTP_CASES))])
def test_unparseable_http_gets_json_error_and_close(server, session, request_bytes, status,
                                                    message):
    reply = _raw_exchange(server.rest_api_port, request_bytes)
    head, _, body = reply.partition("\r\n\r\n")
    assert head.split(" ", 2)[:2] in (["HTTP/1.1", status], ["HTTP/1.0", status]), reply[:200]
    assert "Connection: close" in head or head.startswith("HTTP/1.0")
    assert "application/json" in head
    assert message.lower() in json.loads(body)["error"].lower()
    assert _healthy(server, session)


def test_expect_100_continue_is_answered_before_the_body(server):
    body = json.dumps({"instances": [TRADE_B64]}).encode()
    with socket.create_connection(("127.0.0.1", server.rest_api_port), timeout=10) as raw:
        raw.sendall(f"POST {RISK}:predict HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n".encode())
        interim = raw.recv(4096).decode()
        assert interim.startswith("HTTP/1.1 100"), interim
        raw.sendall(body)
        final = raw.recv(65536).decode()
    assert final.startswith("HTTP/1.1 200"), final
    assert "risk_score" in final


def test_keep_alive_follows_the_http_version_and_connection_header(server):
    status = f"GET {RISK} HTTP/1.0\r\n\r\n".encode()
    assert _raw_exchange(server.rest_api_port, status).startswith("HTTP/1.0 200")
    with socket.create_connection(("127.0.0.1", server.rest_api_port), timeout=10) as raw:
        for _ in range(3):
            raw.sendall(f"GET {RISK} HTTP/1.1\r\nhost: x\r\n\r\n".encode())
            assert raw.recv(65536).startswith(b"HTTP/1.1 200")
    closing = f"GET {RISK} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    assert _raw_exchange(server.rest_api_port, closing).startswith("HTTP/1.1 200")


def _spec(message, name=RISK_MODEL, signature=""):
    message.model_spec.name = name
    message.model_spec.signature_name = signature
    return message


def _predict(**inputs):
    request = _spec(predict_pb2.PredictRequest())
    for alias, proto in inputs.items():
        request.inputs[alias].CopyFrom(proto)
    return request


def _classification(signature, request_type=classification_pb2.ClassificationRequest, examples=1):
    request = _spec(request_type(), signature=signature)
    for _ in range(examples):
        request.input.example_list.examples.add().features.feature["volume"].float_list.value \
            .append(1.0)
    return request


def _multi(*names):
    request = inference_pb2.MultiInferenceRequest()
    request.input.example_list.examples.add()
    for name in names:
        task = request.tasks.add(method_name="tensorflow/serving/regress")
        task.model_spec.name = name
        task.model_spec.signature_name = "regression"
    return request


GRPC_CASES = [
    ("Predict", lambda: _spec(predict_pb2.PredictRequest(), name=""), "INVALID_ARGUMENT",
     "no name specified"),
    ("Predict", lambda: _predict(examples=tf.make_tensor_proto([1, 2])), "INVALID_ARGUMENT",
     "to be string"),
    ("Predict", lambda: _predict(), "INVALID_ARGUMENT", "Missing but required: {examples}"),
    ("Predict", lambda: _predict(examples=tf.make_tensor_proto([b"x" * (MAX_REQUEST_BYTES + 1)])),
     "RESOURCE_EXHAUSTED", "larger than max"),
    ("GetModelMetadata", lambda: _spec(get_model_metadata_pb2.GetModelMetadataRequest(
        metadata_field=["weights"])), "INVALID_ARGUMENT", "Metadata field weights is not supported"),
    ("GetModelMetadata", lambda: _spec(get_model_metadata_pb2.GetModelMetadataRequest()),
     "INVALID_ARGUMENT", "Metadata field (none)"),
    ("Classify", lambda: _classification("classification", examples=0), "INVALID_ARGUMENT",
     "Input is empty"),
    ("Classify", lambda: _classification("serving_default"), "INVALID_ARGUMENT",
     "Expected classification signature"),
    ("Regress", lambda: _classification("classification", regression_pb2.RegressionRequest),
     "INVALID_ARGUMENT", "Expected regression signature"),
    ("MultiInference", lambda: _multi(), "INVALID_ARGUMENT", "has no tasks"),
    ("MultiInference", lambda: _multi(RISK_MODEL, REPORT_LM), "INVALID_ARGUMENT", "one model"),
]


@pytest.fixture(scope="module")
def stubs(server):
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    yield (prediction_service_pb2_grpc.PredictionServiceStub(channel),
           model_service_pb2_grpc.ModelServiceStub(channel))
    channel.close()


@pytest.mark.parametrize("rpc, build, code, message", GRPC_CASES,
                         ids=[f"{index}-{case[0]}" for index, case in enumerate(GRPC_CASES)])
def test_malformed_grpc_request_gets_clear_error(server, session, stubs, rpc, build, code, message):
    with pytest.raises(grpc.RpcError) as raised:
        getattr(stubs[0], rpc)(build(), timeout=30)
    assert raised.value.code().name == code
    assert message.lower() in raised.value.details().lower(), raised.value.details()
    assert _healthy(server, session)


def test_bad_reload_config_is_refused_and_keeps_the_models(server, session, stubs):
    request = model_management_pb2.ReloadConfigRequest()
    request.config.model_config_list.config.add(name=RISK_MODEL)
    with pytest.raises(grpc.RpcError) as raised:
        stubs[1].HandleReloadConfigRequest(request, timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "base_path" in raised.value.details()
    assert _healthy(server, session)


def test_the_server_still_answers_normally_after_all_of_that(server, session):
    base = f"http://127.0.0.1:{server.rest_api_port}"
    assert len(REST_CASES) + len(GRPC_CASES) + len(RAW_HTTP_CASES) + 2 >= 50
    assert _healthy(server, session)
    generated = session.post(f"{base}{LM}:predict", json=_generate(), timeout=30)
    assert generated.status_code == 200, generated.text
    metrics = session.get(f"{base}/monitoring/prometheus/metrics", timeout=30).text
    assert 'status="INVALID_ARGUMENT"' in metrics and 'status="OK"' in metrics
