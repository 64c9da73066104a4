"""Alert rules as the spec writes them: a condition, a severity and notification channels.

Rules are checked when they are loaded (unknown names, unsafe syntax, unknown channels or
severities fail then, not at 3 a.m.). At check time each rule is evaluated against every
context whose variables it reads: one context per feature, one per prediction column and one
for the model (metrics and baselines).
"""
from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Tuple

from ml.monitoring.alerts import DriftType, parse_drift_type, parse_severity
from ml.monitoring.expressions import Condition, parse_condition

CHANNELS = ("email", "slack", "pager", "log")

FEATURE_VARIABLES = {
    "psi_score": "population stability index of the feature",
    "psi": "same as psi_score",
    "ks_statistic": "two-sample statistic (KS D, or chi-square for categorical features)",
    "ks_p_value": "p-value of the feature's test, before correction",
    "adjusted_p_value": "p-value after the multiple-testing correction",
    "js_distance": "Jensen-Shannon distance (base 2, 0..1)",
    "drifted": "1 when the detector flagged the feature, else 0",
}
MODEL_VARIABLES = {
    **{f"{prefix}{metric}": f"{'reference ' if prefix else 'current '}{metric}"
       for prefix in ("", "baseline_") for metric in ("accuracy", "precision", "recall", "f1")},
    **{f"{metric}_drop": f"baseline minus current {metric}"
       for metric in ("accuracy", "precision", "recall", "f1")},
    "multivariate_p_value": "p-value of the joint (MMD) test",
    "drifted_features": "number of features flagged as drifted",
    "max_psi": "largest PSI over the features",
    "n_rows": "rows in the checked window",
}
KNOWN_VARIABLES = {**FEATURE_VARIABLES, **MODEL_VARIABLES}
_RULE_KEYS = {"condition", "severity", "notification", "drift_type", "description"}
_PERFORMANCE_NAMES = {n for n in MODEL_VARIABLES if any(
    m in n for m in ("accuracy", "precision", "recall", "f1"))}


@dataclass(frozen=True)
class AlertRule:
    """A named, validated rule; channels default to the log when none are given."""

    name: str
    condition: Condition
    severity: str
    channels: Tuple[str, ...]
    drift_type: Optional[DriftType] = None
    description: str = ""

    @classmethod
    def from_config(cls, name: str, config: Mapping) -> "AlertRule":
        if not isinstance(config, Mapping):
            raise ValueError(f"alert rule {name!r} must be a mapping, got {type(config).__name__}")
        unknown = sorted(set(config) - _RULE_KEYS)
        if unknown:
            raise ValueError(f"alert rule {name!r} has unknown keys {unknown}; allowed: "
                             f"{sorted(_RULE_KEYS)}")
        if "condition" not in config:
            raise ValueError(f"alert rule {name!r} has no 'condition'")
        try:
            condition = parse_condition(config["condition"], KNOWN_VARIABLES)
        except ValueError as error:
            raise ValueError(f"alert rule {name!r}: {error}") from None
        channels = config.get("notification", ["log"])
        if isinstance(channels, str):
            channels = [channels]
        bad = [c for c in channels if c not in CHANNELS]
        if bad:
            raise ValueError(f"alert rule {name!r} names unknown channels {bad}; known: "
                             f"{list(CHANNELS)}")
        drift_type = config.get("drift_type")
        return cls(name=str(name), condition=condition,
                   severity=parse_severity(config.get("severity", "warning")),
                   channels=tuple(dict.fromkeys(channels)),
                   drift_type=parse_drift_type(drift_type) if drift_type is not None else None,
                   description=str(config.get("description", "")))

    def applies_to(self, context: Mapping[str, float]) -> bool:
        """Whether the context has every variable the condition reads."""
        return self.condition.names <= set(context)

    def matches(self, context: Mapping[str, float]) -> bool:
        return self.applies_to(context) and self.condition.evaluate(context)

    def drift_type_for(self, context_kind: DriftType) -> DriftType:
        """The alert type: the rule's own, else performance for metric rules, else the context's."""
        if self.drift_type is not None:
            return self.drift_type
        if self.condition.names & _PERFORMANCE_NAMES:
            return DriftType.PERFORMANCE_DRIFT
        return context_kind

    def observed(self, context: Mapping[str, float]) -> Tuple[str, float, float]:
        """(metric, value, threshold) for the alert: 'x op expr' reports x against expr."""
        body = self.condition.tree.body
        if (isinstance(body, ast.Compare) and len(body.ops) == 1
                and isinstance(body.left, ast.Name)):
            threshold = self.condition.evaluate_operand(body.comparators[0], context)
            return body.left.id, float(context[body.left.id]), threshold
        return "rule", 1.0, math.nan


def load_alert_rules(config: Optional[Mapping[str, Mapping]]) -> List[AlertRule]:
    """Rules from the spec's alert_rules mapping (name -> {condition, severity, notification})."""
    if config is None:
        return []
    if not isinstance(config, Mapping):
        raise ValueError(f"alert_rules must be a mapping of name to rule, got "
                         f"{type(config).__name__}")
    return [AlertRule.from_config(name, rule) for name, rule in config.items()]


def matching_rules(rules: List[AlertRule], context: Mapping[str, float]) -> List[AlertRule]:
    return [rule for rule in rules if rule.matches(context)]


def describe_variables() -> Dict[str, str]:
    """Every name a condition may use, with its meaning (for error messages and docs)."""
    return dict(KNOWN_VARIABLES)
