"""Alert rules: the spec's configuration, the safe evaluator, and routing in the service."""
import logging

import numpy as np
import pytest

from ml.drift_detection_service import DriftType, ModelMonitoringService
from ml.monitoring.alert_rules import KNOWN_VARIABLES, AlertRule, load_alert_rules
from ml.monitoring.expressions import ExpressionError, parse_condition

# Verbatim from the spec's "Alert Configuration".
alert_rules = {
    'high_drift': {
        'condition': 'psi_score > 0.25',
        'severity': 'warning',
        'notification': ['email', 'slack']
    },
    'performance_drop': {
        'condition': 'accuracy < baseline_accuracy - 0.05',
        'severity': 'critical',
        'notification': ['email', 'slack', 'pager']
    }
}


class Recorder:
    """A notifier that keeps what it was sent."""

    def __init__(self, channel):
        self.channel, self.sent = channel, []

    def send(self, alert):
        self.sent.append(alert)


def test_spec_rules_load_and_evaluate():
    high_drift, performance_drop = load_alert_rules(alert_rules)
    assert (high_drift.name, high_drift.severity, high_drift.channels) == (
        "high_drift", "warning", ("email", "slack"))
    assert high_drift.matches({"psi_score": 0.3}) and not high_drift.matches({"psi_score": 0.2})
    assert performance_drop.matches({"accuracy": 0.80, "baseline_accuracy": 0.86})
    assert not performance_drop.matches({"accuracy": 0.82, "baseline_accuracy": 0.86})
    assert not performance_drop.applies_to({"psi_score": 0.3})
    assert performance_drop.observed({"accuracy": 0.8, "baseline_accuracy": 0.86}) == pytest.approx(
        ("accuracy", 0.8, 0.81))
    assert performance_drop.drift_type_for(DriftType.DATA_DRIFT) is DriftType.PERFORMANCE_DRIFT


@pytest.mark.parametrize("condition, variables, expected", [
    ("psi_score > 0.25 and ks_p_value < 0.05", {"psi_score": 0.3, "ks_p_value": 0.01}, True),
    ("psi_score > 0.25 and ks_p_value < 0.05", {"psi_score": 0.3, "ks_p_value": 0.2}, False),
    ("not drifted == 1 or max_psi >= 1", {"drifted": 1.0, "max_psi": 1.0}, True),
    ("0.1 < psi < 0.25", {"psi": 0.2}, True),
    ("-accuracy + 1 > 2 * (1 - baseline_accuracy) / 1", {"accuracy": 0.5, "baseline_accuracy": 0.9}, True),
    ("f1 / 0 > 1", {"f1": 0.5}, False),
])
def test_conditions_evaluate_arithmetic_comparisons_and_logic(condition, variables, expected):
    assert parse_condition(condition, KNOWN_VARIABLES).evaluate(variables) is expected


@pytest.mark.parametrize("hostile, reason", [
    ("__import__('os').system('true')", "unknown name '__import__'|function call"),
    ("psi_score.__class__ > 0", "attribute access"),
    ("psi_score.real > 0", "attribute access"),
    ("abs(psi_score) > 0", "function call|unknown name 'abs'"),
    ("(lambda: 1)() > 0", "lambda|function call"),
    ("[psi_score][0] > 0", "subscripting|List"),
    ("psi_score[0] > 0", "subscripting"),
    ("9 ** 9 ** 9 > psi_score", "operator '\\*\\*'"),
    ("psi_score > 1e999", "out of range"),
    ("psi_score > 10000000000000000000000", "out of range"),
    ("psi_scor > 0.25", "unknown name 'psi_scor'"),
    ("open > 0", "unknown name 'open'"),
    ("psi_score > 'a'", "only numbers"),
    ("psi_score > True", "only numbers"),
    ("(x := 1) > 0", "assignment|unknown name"),
    ("psi_score if psi_score else 1 > 0", "conditional expression"),
    ("psi_score in (1, 2)", "comparisons|Tuple"),
    ("psi_score << 2 > 0", "operator '<<'"),
    ("psi_score", "must be a comparison"),
    ("psi_score > 0.25; import os", "not a valid expression"),
    ("", "empty"),
    ("(" * 300 + "psi_score > 0" + ")" * 300, "longer than"),
    ("-" * 250 + "psi_score > 0", "too complex"),
    ("psi_score > " + " + ".join(["1"] * 300), "too complex|longer than"),
    ("f'{psi_score}' > 0", "f-string|only numbers"),
])
def test_hostile_or_unsupported_conditions_are_rejected_at_load_time(hostile, reason):
    with pytest.raises(ExpressionError, match=reason):
        parse_condition(hostile, KNOWN_VARIABLES)
    with pytest.raises(ValueError, match="alert rule 'bad'"):
        load_alert_rules({"bad": {"condition": hostile}})


def test_rule_configuration_errors_are_reported_with_the_rule_name():
    with pytest.raises(ValueError, match="'r' names unknown channels \\['sms'\\]"):
        AlertRule.from_config("r", {"condition": "psi > 1", "notification": ["sms"]})
    with pytest.raises(ValueError, match="unknown severity 'urgent'"):
        AlertRule.from_config("r", {"condition": "psi > 1", "severity": "urgent"})
    with pytest.raises(ValueError, match="unknown keys \\['when'\\]"):
        AlertRule.from_config("r", {"condition": "psi > 1", "when": "now"})
    with pytest.raises(ValueError, match="no 'condition'"):
        AlertRule.from_config("r", {"severity": "info"})


def test_evaluating_without_a_needed_value_is_a_key_error():
    condition = parse_condition("accuracy < baseline_accuracy - 0.05", KNOWN_VARIABLES)
    with pytest.raises(KeyError, match="baseline_accuracy"):
        condition.evaluate({"accuracy": 0.5})


def test_service_requires_a_notifier_for_every_channel_its_rules_use(tmp_path):
    with pytest.raises(ValueError, match="'email' \\(used by alert rule 'high_drift', alert rule "
                                         "'performance_drop'\\); 'pager'"):
        ModelMonitoringService(tmp_path, alert_rules=alert_rules)


def test_rules_route_built_in_alerts_and_add_their_own(tmp_path):
    logging.getLogger("ml.monitoring.alerts").setLevel(logging.CRITICAL)
    notifiers = {name: Recorder(name) for name in ("email", "slack", "pager")}
    rules = dict(alert_rules)
    rules["watch_feature_2"] = {"condition": "js_distance > 0", "severity": "info",
                                "notification": ["log"], "drift_type": "data_drift"}
    service = ModelMonitoringService(tmp_path, alert_rules=rules, notifiers=notifiers,
                                     delivery_wait_seconds=60)
    rng = np.random.default_rng(0)
    features = rng.normal(size=(1000, 3))
    labels = (features[:, 0] > 0).astype(int)
    service.register_model("clf", features, labels, labels)
    current = rng.normal(size=(200, 3))
    current[:, 1] += 2
    current_labels = (current[:, 0] > 0).astype(int)
    predictions = np.where(rng.uniform(size=200) < 0.3, 1 - current_labels, current_labels)
    alerts = service.detect_drift("clf", current, predictions, current_labels)
    drift = next(a for a in alerts if a.feature == "feature_1")
    assert drift.rules == ("high_drift", "watch_feature_2")
    assert drift.channels == ("email", "slack", "log") and drift.severity == "warning"
    accuracy = next(a for a in alerts if a.metric == "accuracy")
    assert accuracy.rules == ("performance_drop",) and "pager" in accuracy.channels
    watched = [a for a in alerts if a.rules == ("watch_feature_2",)]
    assert {a.feature for a in watched} == {"feature_0", "feature_2"}
    assert all(a.severity == "info" and a.channels == ("log",) for a in watched)
    assert [a.metric for a in notifiers["pager"].sent] == ["accuracy"]
    assert {a.feature for a in notifiers["slack"].sent} == {"feature_1", None}
