"""Issue 3 end to end: blessing against the serving model, refusal of a bad candidate.

One module, two runs in order on one home (the drift gate is tested on its own): a first model
is blessed and pushed as version 1; a candidate trained on shuffled labels is refused with
version 1 as baseline. A good candidate warm-starting from version 1 and pushed as version 2 is
the continuous-learning job's second run (test_continuous_retraining_e2e).
"""
import json

import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from ml.serving.manifest import verify_manifest
from tests.pipeline_helpers import run_small, store_for

pytestmark = pytest.mark.e2e
MODEL = "etrm_risk_model"


@pytest.fixture(scope="module")
def home(risk_home):
    return risk_home[0]


@pytest.fixture(scope="module")
def first_run(risk_home):
    return risk_home[1]


def _models_config(home):
    text = (home / "serving_config" / "models.config").read_text()
    return text_format.Parse(text, model_server_config_pb2.ModelServerConfig())


def _version_dirs(home):
    return sorted(int(p.name) for p in (home / "serving_models" / MODEL).iterdir() if p.name.isdigit())


def test_first_model_is_blessed_and_pushed_as_version_1(home, first_run):
    model = first_run["model"]
    assert model["baseline"] is None
    assert model["blessed"] is True and model["pushed_version"] == 1
    assert model["canary"]["blessed"] is True and model["canary"]["errors"] == []
    assert model["canary"]["latency_p99_ms"] <= model["canary"]["latency_budget_ms"]
    assert 0.5 < model["bayes_optimal_auc"] <= 1.0
    assert model["metrics"]["overall"]["auc"] > 0.65
    assert {"commodity", "region"} == {key.split("=")[0] for key in model["metrics"]["slices"]}
    assert _version_dirs(home) == [1]
    assert verify_manifest(home / "serving_models" / MODEL / "1") == []
    config = _models_config(home).model_config_list.config
    assert [c.name for c in config] == [MODEL]
    assert dict(config[0].version_labels) == {"stable": 1, "canary": 1}


def test_candidate_on_shuffled_labels_is_refused_against_version_1(home, first_run):
    summary = run_small(home, train=True, shuffle_labels=True, drift_gate=False)
    model = summary["model"]
    assert model["blessed"] is False and model["pushed_version"] is None
    assert model["canary"]["blessed"] is False and "not bless" in model["canary"]["reason"]
    assert model["baseline"]["serving_version"] == 1
    assert any("below the lower bound" in failure for failure in model["validation_failures"])
    assert len(model["validation_failures"]) <= 2, "thresholds judge the overall slice only"
    assert _version_dirs(home) == [1]
    store = store_for(home)
    evaluator_runs = [row for row in summary["components"] if row["component"] == "Evaluator"]
    inputs = store.get_events_by_execution_ids([evaluator_runs[0]["execution_id"]])
    baseline_ids = [e.artifact_id for e in inputs
                    if e.path.steps and e.path.steps[0].key == "baseline_model"]
    assert baseline_ids == [first_run_model_id(store, 1)]


def first_run_model_id(store, version):
    for pushed in store.get_artifacts_by_type("PushedModel"):
        if pushed.custom_properties["pushed_version"].string_value == str(version):
            events = store.get_events_by_artifact_ids([pushed.id])
            execution_id = events[0].execution_id
            inputs = store.get_events_by_execution_ids([execution_id])
            return [e.artifact_id for e in inputs if e.path.steps[0].key == "model"][0]
    raise AssertionError(f"no PushedModel for version {version}")


def _example(**features) -> bytes:
    feature = {}
    for name, value in features.items():
        if isinstance(value, str):
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
        elif isinstance(value, int):
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
        else:
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def test_saved_model_answers_partial_examples_and_unseen_categories(home, first_run):
    version_dir = home / "serving_models" / MODEL / "1"
    loaded = tf.saved_model.load(str(version_dir))
    serve = loaded.signatures["serving_default"]
    examples = tf.constant([
        _example(volume=1000.0, price=75.5),
        _example(volume=1000.0, price=75.5, volatility=0.25, commodity="hydrogen", region="mars"),
    ])
    out = serve(examples=examples)
    scores = out["risk_score"].numpy()
    assert scores.shape == (2,) and ((0 < scores) & (scores < 1)).all()
    assert set(out["risk_level"].numpy()) <= {b"LOW", b"MEDIUM", b"HIGH"}
    classified = loaded.signatures["classification"](inputs=examples)
    assert classified["scores"].numpy() == pytest.approx(
        tf.stack([1 - scores, scores], axis=1).numpy(), abs=1e-6)
    defaults = json.loads((version_dir / "assets" / "feature_defaults.json").read_text())
    assert {"volume", "price", "volatility", "commodity", "region"} <= set(defaults)
    filled = loaded.signatures["feature_defaults"](examples=tf.constant([_example(volume=5.0)]))
    assert filled["volume"].numpy()[0] == 5.0
    assert filled["tenor_months"].dtype == tf.int64
    assert filled["tenor_months"].numpy()[0] == defaults["tenor_months"]["default"]
    assert filled["commodity"].numpy()[0].decode() == defaults["commodity"]["default"]

    from tensorflow.core.protobuf import saved_model_pb2
    saved = saved_model_pb2.SavedModel.FromString((version_dir / "saved_model.pb").read_bytes())
    assert saved.meta_graphs[0].signature_def["classification"].method_name == "tensorflow/serving/classify"


def test_a_replayed_request_log_scores_as_the_version_that_served_it(home, first_run):
    """The guard's shadow replay (ml.lifecycle.shadow): the request log's records, request
    features plus the log's own columns (which the model's parsing must ignore), give the
    version's own scores through the server's verified loader in this process."""
    import numpy as np

    from ml.core.home import Home
    from ml.core.request_log import build_log_examples
    from ml.lifecycle.shadow import ShadowScorer

    examples = [_example(volume=500.0 * (i + 1), price=60.0 + 7 * i, volatility=0.1 + 0.1 * i,
                         commodity=("power", "natural_gas", "crude_oil")[i % 3])
                for i in range(6)]
    served = tf.saved_model.load(str(home / "serving_models" / MODEL / "1")).signatures[
        "serving_default"](examples=tf.constant(examples))["risk_score"].numpy()
    records = [record for example, score in zip(examples, served)
               for record in build_log_examples(MODEL, 1, "serving_default",
                                                {"examples": np.array([example], dtype=object)},
                                                {"risk_score": np.array([score], np.float32)},
                                                1_700_000_000_000_000)]
    scorer = ShadowScorer(Home(home))
    try:
        assert scorer(MODEL, 1, records) == pytest.approx(served, abs=1e-6)
    finally:
        scorer.close()


def test_monitor_checks_logged_requests_against_the_pushed_models_training_span(home, first_run, capsys):
    """`etrm monitor` with nothing substituted: requests logged by the model server, the pushed
    model and its training Examples found in ML Metadata, the reference scored by the SavedModel,
    outcomes regenerated from the recorded generator settings."""
    from components.etrm_example_gen import span_data
    from ml.synthetic import spans
    from ml import cli
    from ml.tensorflow_serving_client import TensorFlowServingClient
    from models.risk.features import LABEL_KEY
    from tests.pipeline_helpers import SMALL_TRADES
    from tests.serving_fixtures import start_server

    week = spans.generate_table(spans.SpanRequest(
        dataset="trades", span=3, records_per_span=SMALL_TRADES)).head(400)
    week["price"] = week["price"] * 3.0
    requests = week.drop(columns=[LABEL_KEY, "high_risk_probability"])
    records = [r for batch in span_data.table_to_record_batches(requests)
               for r in span_data.encode_record_batch(batch)]
    server = start_server(home, request_log_sampling_rate=1.0)
    try:
        for protocol in ("rest", "grpc"):
            client = TensorFlowServingClient(host="127.0.0.1", rest_port=server.rest_api_port,
                                             grpc_port=server.grpc_port, protocol=protocol)
            half = records[:200] if protocol == "rest" else records[200:]
            for start in range(0, len(half), 50):
                client.predict(MODEL, {"examples": half[start:start + 50]})
            client.close()
    finally:
        server.stop()

    assert cli.main(["monitor", "--home", str(home), "--reference-rows", "1000"]) == 0
    out = capsys.readouterr().out
    assert f"{MODEL} v1: 400 logged requests" in out and "against training span 0" in out
    assert "price" in out.split("drifted features:")[1].splitlines()[0]
    assert "performance: checked on realised outcomes" in out
    report = out.split("report: ")[1].strip()
    assert "data:image/png;base64" in open(report).read()
    from ml.core.home import Home
    from ml.monitoring.check_history import CheckHistory

    [window] = CheckHistory(Home.resolve(home).monitoring_checks_db).windows(MODEL)
    assert window["serving_version"] == 1 and window["requests"] == 400
    drifted = {row["feature"] for row in window["features"] if row["drifted"]}
    assert "price" in drifted and window["scores"]["count"] == 400
    assert 0.0 < window["realised"]["roc_auc"] <= 1.0
    assert cli.main(["monitor", "--home", str(home)]) == 0
    assert "no new serving logs" in capsys.readouterr().out
    assert len(CheckHistory(Home.resolve(home).monitoring_checks_db).windows(MODEL)) == 1
