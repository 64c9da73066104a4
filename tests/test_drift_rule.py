"""ml.monitoring.drift_rule: one rule for the monitoring service and the pipeline's drift gate,
its location/scale tests in the same Holm family, and the one settings-to-thresholds mapping."""
import logging

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from components.drift_gate.verdict import window_verdict
from ml.drift_detection_service import DriftType, ModelMonitoringService
from ml.monitoring import drift_rule
from ml.monitoring.drift_rule import DriftThresholds, judge
from ml.monitoring.feature_drift import compare_tables
from ml.monitoring.statistics import SpreadSummary, location_scale_tests
from pipeline.config import DriftSettings


def _frame(rng, rows, shift=0.0, spread=1.0, mix=(0.5, 0.3, 0.2)):
    return pd.DataFrame({"x": rng.normal(shift, 1.0, rows), "y": rng.normal(0.0, spread, rows),
                         "z": rng.lognormal(3, 1, rows),
                         "commodity": rng.choice(["power", "gas", "oil"], rows, p=list(mix)),
                         "region": rng.choice(["EU", "US"], rows)})


@pytest.fixture
def judged_by(monkeypatch):
    """Counts the calls of drift_rule.judge, so a path that stops using it is caught."""
    calls = []
    original = drift_rule.judge

    def spy(*args, **kwargs):
        calls.append(args[2])
        return original(*args, **kwargs)

    monkeypatch.setattr(drift_rule, "judge", spy)
    return calls


def _service_flags(tmp_path, reference, current, psi, p_value):
    logging.getLogger("ml.monitoring.alerts").setLevel(logging.CRITICAL)
    service = ModelMonitoringService(
        tmp_path, drift_thresholds={DriftType.DATA_DRIFT: {"psi": psi, "ks_p_value": p_value}})
    service.register_model("m", reference)
    alerts = service.detect_drift("m", current)
    return sorted({a.feature for a in alerts if a.drift_type == DriftType.DATA_DRIFT and a.feature})


@pytest.mark.parametrize("psi, p_value", [(0.25, 0.05), (0.25, 0.01), (0.1, 0.01)])
def test_service_and_drift_gate_flag_the_same_features(tmp_path, judged_by, psi, p_value):
    rng = np.random.default_rng(7)
    reference = _frame(rng, 2000)
    pairs = {"unchanged": _frame(rng, 400),
             "drifted": _frame(rng, 400, shift=0.5, spread=1.6, mix=(0.2, 0.3, 0.5))}
    limits = DriftThresholds(psi=psi, p_value=p_value)
    for name, current in pairs.items():
        judged_by.clear()
        gate = sorted(window_verdict(reference, current, limits).flagged)
        service = _service_flags(tmp_path / name, reference, current, psi, p_value)
        assert len(judged_by) == 2, "both paths must judge with ml.monitoring.drift_rule"
        assert judged_by[0] == judged_by[1] == limits
        assert service == gate, name
        if name == "drifted":
            assert gate == ["commodity", "x", "y"]
        else:
            assert gate == []


def test_location_and_scale_tests_match_scipy_with_ties():
    rng = np.random.default_rng(3)
    for reference, current in ((rng.normal(size=900), rng.normal(0.2, 1.3, 250)),
                               (rng.integers(0, 5, 900).astype(float),
                                rng.integers(0, 6, 250).astype(float))):
        ordered = np.sort(reference)
        location_p, location_effect, scale_p, scale_effect = location_scale_tests(
            ordered, SpreadSummary(ordered), current)
        assert location_p == pytest.approx(
            stats.mannwhitneyu(current, reference, method="asymptotic").pvalue, rel=1e-9)
        assert scale_p == pytest.approx(stats.levene(reference, current, center="median").pvalue,
                                        rel=1e-9)
        assert location_effect > 0 and scale_effect > 0


def test_one_holm_family_covers_distribution_location_scale_and_relations():
    table = pd.DataFrame({"feature": ["a", "b"], "test": ["ks", "chi2"], "p_value": [0.5, 0.5],
                          "psi": [0.0, 0.0], "bins": [12, 3],
                          "location_p_value": [0.0004, np.nan], "location_effect": [0.6, np.nan],
                          "scale_p_value": [0.9, np.nan], "scale_effect": [0.0, np.nan]})
    relations = pd.DataFrame({"feature": ["a"], "term": ["a"], "change": [0.0],
                              "threshold": [0.2], "p_value": [0.9]})
    judged, related = judge(table, relations, DriftThresholds(), 2000, 2000)
    assert judged.loc[0, "adjusted_location_p_value"] == pytest.approx(0.0004 * 5)
    assert np.isnan(judged.loc[1, "adjusted_location_p_value"])
    assert judged["drifted"].tolist() == [True, False]
    assert judged["location_drifted"].tolist() == [True, False]
    market, _ = judge(table, relations, DriftThresholds(feature_psi={"a": 1.0}), 2000, 2000)
    assert not market["drifted"].any(), "a feature with its own PSI floor is judged on PSI alone"


def test_small_location_and_scale_changes_are_found_at_the_calibrated_false_alarm_rate():
    rng = np.random.default_rng(11)
    windows = 60

    def alarms(change, p_value):
        count = 0
        for _ in range(windows):
            reference, current = rng.normal(size=(1000, 5)), rng.normal(size=(200, 5))
            change(current)
            count += bool(compare_tables(reference, current,
                                         {"ks_p_value": p_value})["drifted"].any())
        return count

    assert alarms(lambda c: None, 0.05) <= 2
    assert alarms(lambda c: c.__setitem__((slice(None), 0), c[:, 0] + 0.4), 0.01) >= 52
    assert alarms(lambda c: c.__setitem__((slice(None), 0), c[:, 0] * 1.5), 0.01) >= 55


def test_settings_and_component_parameters_map_through_one_function():
    settings = DriftSettings(psi_threshold=0.3, feature_psi_thresholds=(("price", 1.5),),
                             skew_js_threshold=0.5)
    component = DriftThresholds.from_properties(0.3, 0.01, 0.4, 0.1, 0.2, "price=1.5")
    assert settings.gate_thresholds() == component
    assert settings.gate_thresholds(skew=True) == DriftThresholds.from_properties(
        0.3, 0.01, 0.5, 0.1, 0.2, "price=1.5")
    assert component.psi_floor("price") == 1.5 and component.shift_floor("price") == np.inf
    service = DriftThresholds.from_limits({"psi": 0.25, "ks_p_value": 0.05})
    assert (service.psi, service.p_value, service.shift) == (0.25, 0.05, DriftThresholds.shift)
