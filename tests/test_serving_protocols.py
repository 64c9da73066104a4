"""REST and gRPC routes of the local model server, in TF Serving's JSON and proto formats."""
import base64
import math

import grpc
import pytest
import requests
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2,
                                     get_model_status_pb2, inference_pb2, model_management_pb2,
                                     model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc, regression_pb2)

from ml.core.request_log import FINISHED_SUFFIX
from tests.serving_fixtures import (REPORT_LM, RISK_MODEL, push_version, serialized_trade,
                                    start_server, trade_example, wait_for)

pytestmark = pytest.mark.network

TRADE = dict(volume=1000.0, price=75.5, volatility=0.25, commodity="gas")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("protocols-home")
    push_version(home, RISK_MODEL, 1)
    push_version(home, RISK_MODEL, 2)
    push_version(home, REPORT_LM, 1)
    return home


@pytest.fixture(scope="module")
def server(home):
    server = start_server(home, request_log_sampling_rate=1.0, request_log_max_records_per_file=4)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def rest(server):
    session = requests.Session()
    base = f"http://127.0.0.1:{server.rest_api_port}"

    def call(method, path, **kwargs):
        return session.request(method, base + path, timeout=30, **kwargs)
    yield call
    session.close()


@pytest.fixture(scope="module")
def stubs(server):
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    yield (prediction_service_pb2_grpc.PredictionServiceStub(channel),
           model_service_pb2_grpc.ModelServiceStub(channel))
    channel.close()


def _b64(data: bytes) -> dict:
    return {"b64": base64.b64encode(data).decode()}


def test_rest_status_by_model_version_and_label(rest):
    everything = rest("GET", f"/v1/models/{RISK_MODEL}").json()
    assert everything == {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}},
        {"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    assert [s["version"] for s in rest("GET", f"/v1/models/{RISK_MODEL}/versions/1").json()[
        "model_version_status"]] == ["1"]
    assert [s["version"] for s in rest("GET", f"/v1/models/{RISK_MODEL}/labels/canary").json()[
        "model_version_status"]] == ["2"]
    listing = rest("GET", "/v1/models").json()
    assert sorted(model["name"] for model in listing["models"]) == [REPORT_LM, RISK_MODEL]


def test_rest_metadata_lists_signatures(rest):
    payload = rest("GET", f"/v1/models/{RISK_MODEL}/metadata").json()
    assert payload["model_spec"] == {"name": RISK_MODEL, "signature_name": "", "version": "2"}
    signatures = payload["metadata"]["signature_def"]["signature_def"]
    assert set(signatures) == {"serving_default", "classification", "regression", "feature_defaults"}
    assert signatures["classification"]["method_name"] == "tensorflow/serving/classify"
    examples = signatures["serving_default"]["inputs"]["examples"]
    assert examples["dtype"] == "DT_STRING"
    assert examples["tensor_shape"]["dim"][0]["size"] == "-1"
    assert set(signatures["serving_default"]["outputs"]) == {"risk_score", "risk_level"}
    stable = rest("GET", f"/v1/models/{RISK_MODEL}/labels/stable/metadata").json()
    assert stable["model_spec"]["version"] == "1"


def test_rest_predict_row_and_columnar_formats_agree(rest):
    trade = serialized_trade(**TRADE)
    path = f"/v1/models/{RISK_MODEL}:predict"
    rows = rest("POST", path, json={"instances": [_b64(trade), _b64(trade)]})
    named_rows = rest("POST", path, json={"instances": [{"examples": _b64(trade)}]})
    columns = rest("POST", path, json={"signature_name": "serving_default",
                                       "inputs": {"examples": [_b64(trade)]}})
    bare_columns = rest("POST", path, json={"inputs": [_b64(trade)]})
    assert rows.status_code == 200, rows.text
    predictions = rows.json()["predictions"]
    assert len(predictions) == 2 and set(predictions[0]) == {"risk_score", "risk_level"}
    score = predictions[0]["risk_score"]
    assert 0.0 < score < 1.0
    assert predictions[0]["risk_level"] == ("LOW" if score < 0.33 else "MEDIUM" if score < 0.66
                                            else "HIGH")
    assert named_rows.json()["predictions"][0]["risk_score"] == pytest.approx(score)
    assert columns.json()["outputs"]["risk_score"] == [pytest.approx(score)]
    assert bare_columns.json()["outputs"]["risk_level"] == [predictions[0]["risk_level"]]
    assert rows.headers["X-Model-Version"] == "2"


def test_rest_predict_addressed_by_version_and_label(rest):
    body = {"instances": [_b64(serialized_trade(**TRADE))]}
    assert rest("POST", f"/v1/models/{RISK_MODEL}/versions/1:predict", json=body).headers[
        "X-Model-Version"] == "1"
    assert rest("POST", f"/v1/models/{RISK_MODEL}/labels/stable:predict", json=body).headers[
        "X-Model-Version"] == "1"
    assert rest("POST", f"/v1/models/{RISK_MODEL}/labels/canary:predict", json=body).headers[
        "X-Model-Version"] == "2"


def test_rest_predict_generic_signatures_of_the_language_model(rest):
    generated = rest("POST", f"/v1/models/{REPORT_LM}:predict", json={
        "signature_name": "generate",
        "inputs": {"prompt": ["Summarise gas exposure"], "max_new_tokens": 12,
                   "temperature": 0.7, "top_k": 5}})
    assert generated.status_code == 200, generated.text
    assert generated.json() == {"outputs": [
        "Summarise gas exposure -- risk summary (12 tokens, T=0.70, k=5)"]}
    scored = rest("POST", f"/v1/models/{REPORT_LM}/labels/stable:predict", json={
        "signature_name": "score", "instances": [{"text": "a b c"}, {"text": "d"}]})
    assert scored.json() == {"predictions": [{"log_likelihood": -1.5, "num_tokens": 3},
                                             {"log_likelihood": -0.5, "num_tokens": 1}]}


def test_rest_classify_and_regress_with_context(rest):
    body = {"signature_name": "classification", "context": {"commodity": "gas"},
            "examples": [{"volume": 1000.0, "price": 75.5}, {"volume": 1.0, "price": 1.0,
                                                               "volatility": 0.01}]}
    classified = rest("POST", f"/v1/models/{RISK_MODEL}:classify", json=body)
    assert classified.status_code == 200, classified.text
    results = classified.json()["results"]
    assert [[label for label, _ in row] for row in results] == [["NOT_HIGH", "HIGH"]] * 2
    assert all(math.isclose(sum(score for _, score in row), 1.0, rel_tol=1e-5) for row in results)
    body["signature_name"] = "regression"
    regressed = rest("POST", f"/v1/models/{RISK_MODEL}/versions/1:regress", json=body).json()
    assert regressed["results"][0] == pytest.approx(results[0][1][1], rel=1e-5)
    predicted = rest("POST", f"/v1/models/{RISK_MODEL}:predict", json={"instances": [
        _b64(serialized_trade(volume=1000.0, price=75.5, commodity="gas"))]}).json()
    assert predicted["predictions"][0]["risk_score"] == pytest.approx(regressed["results"][0])


@pytest.mark.parametrize("path, status, message", [
    ("/v1/models/unknown_model", 404, "Could not find any versions"),
    (f"/v1/models/{RISK_MODEL}/versions/9", 404, "Could not find version 9"),
    (f"/v1/models/{RISK_MODEL}/labels/nope", 404, "Unrecognized servable version label"),
])
def test_rest_status_errors(rest, path, status, message):
    response = rest("GET", path)
    assert response.status_code == status
    assert message in response.json()["error"]


def _predict_request(version=None, label=None, signature_name="", examples=None):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = RISK_MODEL
    if version is not None:
        request.model_spec.version.value = version
    if label:
        request.model_spec.version_label = label
    request.model_spec.signature_name = signature_name
    request.inputs["examples"].CopyFrom(tf.make_tensor_proto(
        examples or [serialized_trade(**TRADE)], dtype=tf.string))
    return request


def test_grpc_predict_by_latest_version_and_label(stubs, rest):
    prediction, _ = stubs
    latest = prediction.Predict(_predict_request(), timeout=30)
    assert latest.model_spec.version.value == 2
    assert latest.model_spec.signature_name == "serving_default"
    score = tf.make_ndarray(latest.outputs["risk_score"])
    assert score.shape == (1,)
    rest_score = rest("POST", f"/v1/models/{RISK_MODEL}:predict", json={
        "instances": [_b64(serialized_trade(**TRADE))]}).json()["predictions"][0]["risk_score"]
    assert float(score[0]) == pytest.approx(rest_score)
    assert prediction.Predict(_predict_request(version=1), timeout=30).model_spec.version.value == 1
    stable = prediction.Predict(_predict_request(label="stable"), timeout=30)
    assert stable.model_spec.version.value == 1
    filtered = _predict_request()
    filtered.output_filter.append("risk_level")
    assert list(prediction.Predict(filtered, timeout=30).outputs) == ["risk_level"]


def _classification_input(request):
    request.model_spec.name = RISK_MODEL
    request.input.example_list_with_context.context.CopyFrom(trade_example(commodity="gas"))
    request.input.example_list_with_context.examples.add().CopyFrom(
        trade_example(volume=1000.0, price=75.5))
    return request


def test_grpc_classify_regress_and_multi_inference(stubs):
    prediction, _ = stubs
    classify = _classification_input(classification_pb2.ClassificationRequest())
    classify.model_spec.signature_name = "classification"
    classified = prediction.Classify(classify, timeout=30)
    classes = classified.result.classifications[0].classes
    assert [entry.label for entry in classes] == ["NOT_HIGH", "HIGH"]
    regress = _classification_input(regression_pb2.RegressionRequest())
    regress.model_spec.signature_name = "regression"
    regress.model_spec.version_label = "stable"
    regressed = prediction.Regress(regress, timeout=30)
    assert regressed.model_spec.version.value == 1
    assert regressed.result.regressions[0].value == pytest.approx(classes[1].score, rel=1e-5)
    multi = inference_pb2.MultiInferenceRequest()
    multi.input.CopyFrom(classify.input)
    for signature, method in (("classification", "tensorflow/serving/classify"),
                              ("regression", "tensorflow/serving/regress")):
        task = multi.tasks.add(method_name=method)
        task.model_spec.name = RISK_MODEL
        task.model_spec.signature_name = signature
    results = prediction.MultiInference(multi, timeout=30).results
    assert results[0].classification_result.classifications[0].classes[1].score == \
        pytest.approx(classes[1].score)
    assert results[1].regression_result.regressions[0].value == pytest.approx(classes[1].score)


def test_grpc_metadata_and_status(stubs):
    prediction, model = stubs
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = RISK_MODEL
    request.model_spec.version_label = "stable"
    metadata = prediction.GetModelMetadata(request, timeout=30)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    metadata.metadata["signature_def"].Unpack(signatures)
    assert metadata.model_spec.version.value == 1
    assert signatures.signature_def["regression"].method_name == "tensorflow/serving/regress"
    assert set(signatures.signature_def["feature_defaults"].outputs) >= {"volume", "commodity"}
    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = REPORT_LM
    status = model.GetModelStatus(status_request, timeout=30)
    assert [(entry.version, entry.state) for entry in status.model_version_status] == [
        (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)]


@pytest.mark.parametrize("mutate, code, message", [
    (lambda r: setattr(r.model_spec, "name", "unknown"), grpc.StatusCode.NOT_FOUND, "Servable not found"),
    (lambda r: r.model_spec.version.__setattr__("value", 7), grpc.StatusCode.NOT_FOUND, "Specific"),
    (lambda r: setattr(r.model_spec, "version_label", "nope"), grpc.StatusCode.NOT_FOUND, "label"),
    (lambda r: setattr(r.model_spec, "signature_name", "nope"), grpc.StatusCode.FAILED_PRECONDITION,
     "signature key"),
    (lambda r: r.inputs["examples"].CopyFrom(tf.make_tensor_proto([1.0])),
     grpc.StatusCode.INVALID_ARGUMENT, "to be string"),
    (lambda r: r.inputs["extra"].CopyFrom(tf.make_tensor_proto([1.0])),
     grpc.StatusCode.INVALID_ARGUMENT, "Sent extra: {extra}"),
    (lambda r: r.inputs["examples"].CopyFrom(tf.make_tensor_proto([[b"x"]])),
     grpc.StatusCode.INVALID_ARGUMENT, "expects shape"),
    (lambda r: r.inputs["examples"].CopyFrom(tf.make_tensor_proto([b"not an example"])),
     grpc.StatusCode.INVALID_ARGUMENT, "parse"),
])
def test_grpc_errors_use_tf_serving_codes(stubs, mutate, code, message):
    prediction, _ = stubs
    request = _predict_request()
    mutate(request)
    with pytest.raises(grpc.RpcError) as raised:
        prediction.Predict(request, timeout=30)
    assert raised.value.code() == code
    assert message.lower() in raised.value.details().lower()


def test_prometheus_metrics_per_model_and_version(rest):
    rest("GET", f"/v1/models/{RISK_MODEL}/versions/1/metadata")
    response = rest("GET", "/monitoring/prometheus/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = response.text
    assert "# TYPE :tensorflow:serving:request_count counter" in text
    assert (':tensorflow:serving:request_count{API="predict",entrypoint="GRPC",'
            f'model_name="{RISK_MODEL}",model_version="1",status="OK"}}') in text
    assert ':tensorflow:serving:request_latency_bucket{API="metadata",entrypoint="REST",' in text
    assert 'status="NOT_FOUND"' in text


def test_request_log_has_features_predictions_and_version(server, home, rest):
    for _ in range(4):
        rest("POST", f"/v1/models/{RISK_MODEL}/versions/1:predict",
             json={"instances": [_b64(serialized_trade(**TRADE))]})
    server.request_logger.flush()
    files = wait_for(lambda: sorted((home / "serving_logs" / RISK_MODEL).glob("*" + FINISHED_SUFFIX)))
    records = [tf.train.Example.FromString(raw.numpy())
               for raw in tf.data.TFRecordDataset([str(path) for path in files])]
    logged = [record.features.feature for record in records
              if record.features.feature["model_version"].int64_list.value[0] == 1
              and "volume" in record.features.feature]
    assert logged, "no logged risk predictions of version 1"
    feature = logged[-1]
    assert feature["volume"].float_list.value[0] == pytest.approx(1000.0)
    assert feature["commodity"].bytes_list.value[0] == b"gas"
    assert 0.0 < feature["prediction/risk_score"].float_list.value[0] < 1.0
    assert feature["prediction/risk_level"].bytes_list.value[0] in (b"LOW", b"MEDIUM", b"HIGH")
    assert feature["signature_name"].bytes_list.value[0] == b"serving_default"
    assert feature["timestamp_micros"].int64_list.value[0] > 1_600_000_000_000_000
    assert not list((home / "serving_logs" / RISK_MODEL).glob("*.tmp"))


def _reload(model_stub, text):
    request = model_management_pb2.ReloadConfigRequest()
    text_format.Parse(text, request.config)
    return model_stub.HandleReloadConfigRequest(request, timeout=60)


def _risk_config(home, policy, stable):
    return f"""model_config_list {{ config {{
        name: "{RISK_MODEL}" base_path: "{home / 'serving_models' / RISK_MODEL}"
        model_platform: "tensorflow" model_version_policy {{ {policy} }}
        version_labels {{ key: "stable" value: {stable} }} }}
      config {{ name: "{REPORT_LM}" base_path: "{home / 'serving_models' / REPORT_LM}"
        model_platform: "tensorflow" }} }}"""


def test_label_moves_in_tf_servings_two_steps(home, stubs, rest):
    _, model = stubs
    push_version(home, RISK_MODEL, 3, register=False)
    with pytest.raises(grpc.RpcError) as raised:
        _reload(model, _risk_config(home, "specific { versions: 1 versions: 2 }", 3))
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "not currently available" in raised.value.details()
    assert rest("GET", f"/v1/models/{RISK_MODEL}/labels/stable").json()[
        "model_version_status"][0]["version"] == "1"

    # Step one: serve version 3 next to the labelled version 1.
    assert _reload(model, _risk_config(home, "specific { versions: 1 versions: 3 }", 1)) \
        .status.error_code == 0
    wait_for(lambda: {s["version"] for s in rest("GET", f"/v1/models/{RISK_MODEL}").json()[
        "model_version_status"] if s["state"] == "AVAILABLE"} >= {"1", "3"})
    # Step two: move the label to the now available version.
    _reload(model, _risk_config(home, "specific { versions: 1 versions: 3 }", 3))
    moved = rest("POST", f"/v1/models/{RISK_MODEL}/labels/stable:predict",
                 json={"instances": [_b64(serialized_trade(**TRADE))]})
    assert moved.headers["X-Model-Version"] == "3"
    states = {s["version"]: s["state"] for s in rest(
        "GET", f"/v1/models/{RISK_MODEL}").json()["model_version_status"]}
    assert states == {"1": "AVAILABLE", "2": "END", "3": "AVAILABLE"}
    assert rest("GET", "/v1/models/canary").status_code == 404
