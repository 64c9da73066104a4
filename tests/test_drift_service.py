"""ModelMonitoringService: the spec's snippets as written, false alarms, drift types, restarts."""
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.drift_detection_service import DriftType, ModelMonitoringService

SPEC = Path(__file__).resolve().parents[2] / "shared" / "spec" / "ml-pipeline-documentation.md"

# Verbatim from the spec's "Start Drift Detection".
QUICK_START = '''from ml.drift_detection_service import ModelMonitoringService
import numpy as np

# Initialize monitoring service
monitoring = ModelMonitoringService()

# Register a model
reference_data = np.random.normal(0, 1, (1000, 5))
monitoring.register_model("risk_model", reference_data)

# Detect drift on new data
new_data = np.random.normal(0.5, 1.5, (200, 5))  # Shifted data
alerts = monitoring.detect_drift("risk_model", new_data)

for alert in alerts:
    print(f"Alert: {alert.message}")
'''


@pytest.fixture(autouse=True)
def project_home(tmp_path, monkeypatch):
    """The service's default state lives under $ETRM_HOME; keep it inside the test's folder."""
    monkeypatch.setenv("ETRM_HOME", str(tmp_path / "home"))
    logging.getLogger("ml.monitoring.alerts").setLevel(logging.CRITICAL)
    return tmp_path / "home"


# Verbatim from the spec's "Integration Tests".
def test_drift_detection_integration():
    monitoring = ModelMonitoringService()
    reference_data = np.random.normal(0, 1, (1000, 5))
    monitoring.register_model("test_model", reference_data)
    
    # No drift data
    new_data = np.random.normal(0, 1, (200, 5))
    alerts = monitoring.detect_drift("test_model", new_data)
    assert len(alerts) == 0
    
    # Drift data
    drift_data = np.random.normal(2, 1, (200, 5))
    alerts = monitoring.detect_drift("test_model", drift_data)
    assert len(alerts) > 0


def test_quick_start_snippet_runs_as_written(capsys, project_home):
    if SPEC.exists():
        assert QUICK_START in SPEC.read_text(encoding="utf-8")
    exec(compile(QUICK_START, "quick_start", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert printed and all(line.startswith("Alert: Data drift on risk_model/") for line in printed)
    assert (project_home / "monitoring" / "references" / "risk_model.npz").exists()


@pytest.mark.slow
def test_integration_scenario_over_200_seeds_keeps_false_alarms_at_most_one_in_a_hundred(tmp_path):
    service = ModelMonitoringService(tmp_path / "state")
    false_alarms = misses_mean_shift = misses_spread_shift = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        service.register_model("m", rng.normal(0, 1, (1000, 5)))
        false_alarms += bool(service.detect_drift("m", rng.normal(0, 1, (200, 5))))
        misses_mean_shift += not service.detect_drift("m", rng.normal(2, 1, (200, 5)))
        misses_spread_shift += not service.detect_drift("m", rng.normal(0.5, 1.5, (200, 5)))
    assert false_alarms <= 2, f"{false_alarms} of 200 same-distribution windows alerted"
    assert misses_mean_shift == 0 and misses_spread_shift == 0


def test_alerts_carry_type_severity_model_feature_metric_value_threshold_and_time(tmp_path):
    service = ModelMonitoringService(tmp_path)
    rng = np.random.default_rng(0)
    service.register_model("risk", rng.normal(size=(1000, 3)))
    shifted = rng.normal(size=(200, 3))
    shifted[:, 1] += 2
    (alert,) = service.detect_drift("risk", shifted)
    assert alert.drift_type is DriftType.DATA_DRIFT and alert.severity == "warning"
    assert (alert.model_name, alert.feature, alert.metric) == ("risk", "feature_1", "psi")
    assert alert.value > alert.threshold == 0.25
    assert alert.timestamp.tzinfo is not None
    assert alert.details["adjusted_p_value"] < 0.05


def test_drift_types_exist_as_in_the_spec():
    # The spec's four, plus the estimated-performance type continuous learning triggers on.
    assert {t.name for t in DriftType} == {"DATA_DRIFT", "CONCEPT_DRIFT", "PREDICTION_DRIFT",
                                          "PERFORMANCE_DRIFT", "ESTIMATED_PERFORMANCE"}
    service_thresholds = ModelMonitoringService().drift_thresholds
    assert service_thresholds[DriftType.DATA_DRIFT]["psi"] == 0.25
    assert service_thresholds[DriftType.DATA_DRIFT]["ks_p_value"] == 0.05
    assert service_thresholds[DriftType.PERFORMANCE_DRIFT]["accuracy_drop"] == 0.05
    assert service_thresholds[DriftType.PERFORMANCE_DRIFT]["f1_drop"] == 0.1


def test_spec_shaped_threshold_overrides_and_their_validation(tmp_path):
    drift_thresholds = {DriftType.DATA_DRIFT: {"psi": 0.1, "ks_p_value": 0.01},
                        "performance_drift": {"accuracy_drop": 0.02}}
    service = ModelMonitoringService(tmp_path, drift_thresholds=drift_thresholds)
    assert service.drift_thresholds[DriftType.DATA_DRIFT]["psi"] == 0.1
    assert service.drift_thresholds[DriftType.PERFORMANCE_DRIFT]["f1_drop"] == 0.1
    with pytest.raises(ValueError, match="unknown threshold 'psi_score'"):
        ModelMonitoringService(tmp_path, drift_thresholds={DriftType.DATA_DRIFT: {"psi_score": 1}})
    with pytest.raises(ValueError, match="must lie in \\(0, 1\\)"):
        ModelMonitoringService(tmp_path, drift_thresholds={DriftType.DATA_DRIFT: {"ks_p_value": 5}})
    with pytest.raises(ValueError, match="correction"):
        ModelMonitoringService(tmp_path, correction="magic")


def test_bad_input_raises_errors_naming_the_problem(tmp_path):
    service = ModelMonitoringService(tmp_path)
    reference = np.random.default_rng(0).normal(size=(100, 3))
    service.register_model("risk", reference)
    with pytest.raises(KeyError, match="'unknown' is not registered.*\\['risk'\\]"):
        service.detect_drift("unknown", reference)
    with pytest.raises(ValueError, match="new_data has 2 feature columns, the reference has 3"):
        service.detect_drift("risk", reference[:, :2])
    with pytest.raises(ValueError, match="new_data must be 2-D"):
        service.detect_drift("risk", reference[:, 0])
    nan_data = reference.copy()
    nan_data[4, 2] = np.nan
    with pytest.raises(ValueError, match="new_data column 'feature_2' has 1 NaN"):
        service.detect_drift("risk", nan_data)
    with pytest.raises(ValueError, match="model name"):
        service.register_model("../escape", reference)
    with pytest.raises(ValueError, match="reference_data needs at least 2 rows"):
        service.register_model("tiny", reference[:1])
    with pytest.raises(ValueError, match="predictions were given"):
        service.detect_drift("risk", reference, predictions=np.zeros(100))
    with pytest.raises(ValueError, match="predictions has 99 rows but the data has 100"):
        service.detect_drift("risk", reference, predictions=np.zeros(99))


def test_references_and_alert_history_survive_a_restart(tmp_path):
    rng = np.random.default_rng(1)
    first = ModelMonitoringService(tmp_path)
    reference = pd.DataFrame({"price": rng.normal(70, 5, 1000),
                              "hub": rng.choice(["TTF", "NBP", "HH"], 1000)})
    first.register_model("gas", reference)
    shifted = pd.DataFrame({"price": rng.normal(80, 5, 200), "hub": rng.choice(["TTF", "NBP"], 200)})
    before = first.check("gas", shifted)
    del first
    restarted = ModelMonitoringService(tmp_path)
    assert restarted.registered_models() == ["gas"]
    after = restarted.check("gas", shifted)
    pd.testing.assert_frame_equal(before.features, after.features)
    assert {a.feature for a in after.alerts} == {"price", "hub"}
    assert len(restarted.alert_history("gas")) == 4


def test_correlation_appearing_raises_a_joint_data_drift_alert(tmp_path):
    rng = np.random.default_rng(2)
    service = ModelMonitoringService(tmp_path)
    service.register_model("m", rng.normal(size=(1000, 5)))
    covariance = np.eye(5)
    covariance[2, 3] = covariance[3, 2] = 0.7
    (alert,) = service.detect_drift("m", rng.multivariate_normal(np.zeros(5), covariance, 200))
    assert alert.drift_type is DriftType.DATA_DRIFT
    assert alert.feature is None and alert.metric == "multivariate_p_value"
    assert alert.value <= alert.threshold == 0.005


def _classification_window(rng, rows, flip=0.0, shift=0.0):
    """x0 drives the label; the model predicts from x0. flip breaks the x0-label relation."""
    features = rng.normal(size=(rows, 3))
    features[:, 0] += shift
    labels = (features[:, 0] + 0.5 * rng.normal(size=rows) > 0).astype(int)
    flipped = rng.uniform(size=rows) < flip
    labels[flipped] = 1 - labels[flipped]
    scores = 1 / (1 + np.exp(-3 * features[:, 0]))
    return features, scores, labels


def test_healthy_labelled_windows_raise_nothing(tmp_path):
    rng = np.random.default_rng(3)
    service = ModelMonitoringService(tmp_path)
    service.register_model("clf", *_classification_window(rng, 1000))
    for _ in range(5):
        assert service.detect_drift("clf", *_classification_window(rng, 200)) == []


def test_performance_drop_without_input_drift_is_performance_and_concept_drift(tmp_path):
    rng = np.random.default_rng(4)
    service = ModelMonitoringService(tmp_path)
    service.register_model("clf", *_classification_window(rng, 1000))
    result = service.check("clf", *_classification_window(rng, 200, flip=0.4))
    kinds = {a.drift_type for a in result.alerts}
    assert kinds == {DriftType.PERFORMANCE_DRIFT, DriftType.CONCEPT_DRIFT}
    accuracy = next(a for a in result.alerts if a.metric == "accuracy")
    assert accuracy.severity == "critical" and accuracy.value < accuracy.details["baseline"] - 0.05
    assert any(a.metric == "performance_without_input_drift" for a in result.alerts)
    assert result.performance.set_index("metric").loc["accuracy", "drifted"]


def test_feature_label_relation_reversal_is_concept_drift(tmp_path):
    rng = np.random.default_rng(5)
    service = ModelMonitoringService(tmp_path)
    service.register_model("clf", *_classification_window(rng, 1000))
    features, scores, labels = _classification_window(rng, 200, flip=1.0)
    alerts = service.detect_drift("clf", features, scores, labels)
    relation = [a for a in alerts if a.metric == "label_correlation_change"]
    assert [a.feature for a in relation] == ["feature_0"]
    assert relation[0].drift_type is DriftType.CONCEPT_DRIFT


def test_shifted_outputs_are_prediction_drift(tmp_path):
    rng = np.random.default_rng(6)
    service = ModelMonitoringService(tmp_path)
    features, scores, labels = _classification_window(rng, 1000)
    service.register_model("clf", features, scores, labels)
    shifted_features, shifted_scores, _ = _classification_window(rng, 200, shift=1.5)
    alerts = service.detect_drift("clf", shifted_features, shifted_scores)
    assert {(a.drift_type, a.feature) for a in alerts} >= {
        (DriftType.PREDICTION_DRIFT, "prediction"), (DriftType.DATA_DRIFT, "feature_0")}


def test_class_label_predictions_and_probability_matrices_are_accepted(tmp_path):
    rng = np.random.default_rng(7)
    service = ModelMonitoringService(tmp_path)
    features, scores, labels = _classification_window(rng, 600)
    service.register_model("labels", features, (scores > 0.5).astype(int), labels)
    service.register_model("proba", features, np.c_[1 - scores, scores], labels)
    window = _classification_window(rng, 200)
    assert service.detect_drift("labels", window[0], (window[1] > 0.5).astype(int), window[2]) == []
    assert service.detect_drift("proba", window[0], np.c_[1 - window[1], window[1]], window[2]) == []
    with pytest.raises(ValueError, match="unexpected \\['prediction_2'\\]"):
        service.detect_drift("proba", window[0], np.c_[window[1], window[1], window[1]], window[2])


def test_report_of_the_last_check(tmp_path):
    rng = np.random.default_rng(8)
    service = ModelMonitoringService(tmp_path)
    service.register_model("m", rng.normal(size=(500, 3)))
    with pytest.raises(KeyError, match="not been checked"):
        service.write_report("m")
    service.detect_drift("m", rng.normal(1.5, 1, size=(200, 3)))
    page = service.write_report("m", tmp_path / "report.html")
    assert (tmp_path / "report.html").read_text(encoding="utf-8") == page
    assert page.count("data:image/png;base64,") == 4  # scores + three drifted features
