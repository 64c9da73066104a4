"""ml.monitoring.served_check: the served-model check as a library, the estimated-performance
rule (off by default, an alert of type estimated_performance once a threshold is set) and
outcomes that arrive after their delay. Logs are hand-written in the server's format and the
reference is a real Examples folder, as in test_monitor_cli."""
import numpy as np
import pytest

from ml.core import metadata
from ml.drift_detection_service import DriftType, ModelMonitoringService
from ml.monitoring.served_check import check_served_model
from tests.test_monitor_cli import SETTINGS, _span_table, _write_examples, _write_logs

MODEL = "etrm_risk_model"


@pytest.fixture
def home(tmp_path, monkeypatch):
    _write_examples(tmp_path / "examples", _span_table(0))
    reference = metadata.TrainingReference(
        model_dir="unused", serving_version=1, examples_uri=str(tmp_path / "examples"), span=0,
        generator_settings=SETTINGS)
    monkeypatch.setattr(metadata, "training_reference", lambda store, name, **_: reference)
    monkeypatch.setattr("models.risk.scoring.risk_scores",
                        lambda model_dir, records: np.linspace(0.02, 0.98, len(records)))
    return tmp_path


def _log(home, table, name, scores):
    _write_logs(home / "serving_logs" / MODEL, table, name, scores)


def test_no_logs_is_an_unchecked_result(home):
    check = check_served_model(home, MODEL)
    assert not check.checked
    assert check.summary_lines() == [f"{MODEL}: no new serving logs since the last check"]


def test_estimated_auc_drop_is_an_alert_only_once_a_threshold_is_set(home):
    week = _span_table(1).head(400)
    _log(home, week, "requests-20240108T000000-1-00001.tfrecord", np.full(len(week), 0.3))
    quiet = check_served_model(home, MODEL, reference_rows=800)
    assert quiet.checked and quiet.estimated_auc == pytest.approx(0.5)
    assert quiet.estimated_drop is None
    assert not [a for a in quiet.alerts if a.drift_type is DriftType.ESTIMATED_PERFORMANCE]
    assert "estimated AUC 0.500" in "\n".join(quiet.summary_lines())

    _log(home, week, "requests-20240108T000000-1-00002.tfrecord", np.full(len(week), 0.3))
    loud = check_served_model(home, MODEL, reference_rows=800, estimated_drop_threshold=0.05)
    (alert,) = [a for a in loud.alerts if a.drift_type is DriftType.ESTIMATED_PERFORMANCE]
    assert alert.metric == "estimated_roc_auc" and alert.value == pytest.approx(0.5)
    assert loud.estimated_drop["dropped"] and loud.estimated_drop["drop"] > 0.05
    stored = ModelMonitoringService(home=home).alert_history(MODEL)
    assert any(a.drift_type is DriftType.ESTIMATED_PERFORMANCE for a in stored)


def test_outcomes_arrive_after_their_delay(home):
    week = _span_table(1)
    monday = week[week["trade_date"].astype(str).str[:10] == "2024-01-08"].head(200)
    scores = np.clip(monday["high_risk_probability"].to_numpy(), 0.01, 0.99)
    _log(home, monday, "requests-20240108T000000-1-00001.tfrecord", scores)

    early = check_served_model(home, MODEL, reference_rows=800,
                               labels_available_before="2024-01-08")
    assert early.checked and not early.performance_checked and early.waiting == len(monday)
    assert "waiting for outcomes" in "\n".join(early.summary_lines())

    tuesday = week[week["trade_date"].astype(str).str[:10] == "2024-01-09"].head(100)
    _log(home, tuesday, "requests-20240109T000000-1-00001.tfrecord",
         np.clip(tuesday["high_risk_probability"].to_numpy(), 0.01, 0.99))
    later = check_served_model(home, MODEL, reference_rows=800,
                               labels_available_before="2024-01-09")
    assert later.performance_checked and later.labelled == len(monday)
    assert later.waiting == len(tuesday)
    assert later.realised_auc > 0.6 and later.realised_by_version == {1: later.realised_auc}
    assert "realised AUC" in "\n".join(later.summary_lines())


def test_service_rule_is_off_by_default_and_validated(tmp_path):
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(500, 2))
    scores = np.linspace(0.02, 0.98, 500)
    labels = (rng.random(500) < scores).astype(int)
    for thresholds, expected in ((None, 0), ({"estimated_performance": {"roc_auc_drop": 0.05}}, 1)):
        service = ModelMonitoringService(tmp_path / str(expected), drift_thresholds=thresholds)
        service.register_model("risk", reference, reference_predictions=scores,
                               reference_labels=labels)
        result = service.check("risk", rng.normal(size=(300, 2)), predictions=np.full(300, 0.4))
        found = [a for a in result.alerts if a.drift_type is DriftType.ESTIMATED_PERFORMANCE]
        assert len(found) == expected
        service.close()
    with pytest.raises(ValueError, match="roc_auc_drop"):
        ModelMonitoringService(tmp_path / "bad", drift_thresholds={
            "estimated_performance": {"roc_auc_drop": -1}})


def test_only_identified_leaves_probe_requests_out(home):
    week = _span_table(1)
    _log(home, week.head(300), "requests-20240108T000000-1-00001.tfrecord", np.full(300, 0.3))
    probes = week.head(20).drop(columns=["trade_id", "trade_date"])
    _log(home, probes, "requests-20240108T000000-1-00002.tfrecord", np.full(20, 0.3))
    check = check_served_model(home, MODEL, reference_rows=800, only_identified=True,
                               labels_available_before="2024-01-01")
    assert check.requests == 300 and check.files == 2 and check.waiting == 300


def test_feature_psi_floors_leave_market_movement_to_their_own_threshold(home):
    shifted = _span_table(1, drift="price_shift@2024-01-08:1.3").head(400)
    _log(home, shifted, "requests-20240108T000000-1-00001.tfrecord", np.full(400, 0.3))
    plain = check_served_model(home, MODEL, reference_rows=800)
    assert "price" in plain.drifted_features
    _log(home, shifted, "requests-20240108T000000-1-00002.tfrecord", np.full(400, 0.3))
    floored = check_served_model(home, MODEL, reference_rows=800,
                                 feature_psi={"price": 50.0, "notional": 50.0,
                                              "notional_usd": 50.0, "forward_price": 50.0,
                                              "premium": 50.0, "strike": 50.0})
    assert "price" not in floored.drifted_features
    with pytest.raises(ValueError, match="feature_psi"):
        ModelMonitoringService(home / "bad", feature_psi={"price": 0})
