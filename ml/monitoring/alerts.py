"""Drift alert vocabulary: alert types, severities, the alert record and default thresholds."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Dict, Mapping, Optional, Tuple


class DriftType(Enum):
    """What changed: the inputs, the input-output relation, the outputs, or the accuracy.

    The spec's four types, plus the accuracy expected from the model's own probabilities on
    unlabeled traffic (ml.monitoring.performance_estimation), which warns days before the
    outcomes that confirm a drop arrive.
    """

    DATA_DRIFT = "data_drift"
    CONCEPT_DRIFT = "concept_drift"
    PREDICTION_DRIFT = "prediction_drift"
    PERFORMANCE_DRIFT = "performance_drift"
    ESTIMATED_PERFORMANCE = "estimated_performance"


SEVERITIES = ("info", "warning", "critical")
DEFAULT_SEVERITY = {
    DriftType.DATA_DRIFT: "warning",
    DriftType.PREDICTION_DRIFT: "warning",
    DriftType.CONCEPT_DRIFT: "critical",
    DriftType.PERFORMANCE_DRIFT: "critical",
    DriftType.ESTIMATED_PERFORMANCE: "warning",
}

# The spec's thresholds plus the few the spec leaves implicit. Data and prediction drift need a
# significant test (after correction) and a material PSI; the joint test, which has no effect
# size, gets half of a 1% false-alarm budget; performance and concept drift need evidence that
# the drop or change exceeds its threshold at level p_value. The estimated-performance rule is off
# (an infinite allowed drop) until a caller sets roc_auc_drop, e.g. to a RetrainingConfig's
# performance_threshold: what drop is worth a retrain is the lifecycle's decision.
DEFAULT_DRIFT_THRESHOLDS: Dict[DriftType, Dict[str, float]] = {
    DriftType.DATA_DRIFT: {"psi": 0.25, "ks_p_value": 0.05, "multivariate_p_value": 0.005},
    DriftType.PREDICTION_DRIFT: {"psi": 0.25, "ks_p_value": 0.05},
    DriftType.PERFORMANCE_DRIFT: {"accuracy_drop": 0.05, "f1_drop": 0.1, "precision_drop": 0.1,
                                  "recall_drop": 0.1, "p_value": 0.05},
    DriftType.CONCEPT_DRIFT: {"correlation_change": 0.2, "p_value": 0.05},
    DriftType.ESTIMATED_PERFORMANCE: {"roc_auc_drop": math.inf, "p_value": 0.05},
}
_PROBABILITIES = {"ks_p_value", "multivariate_p_value", "p_value"}


def resolve_thresholds(overrides: Optional[Mapping] = None) -> Dict[DriftType, Dict[str, float]]:
    """Defaults overlaid with overrides shaped like the spec's drift_thresholds.

    Keys may be DriftType members or their values ('data_drift'); unknown types or names and
    out-of-range values raise ValueError.
    """
    merged = {kind: dict(values) for kind, values in DEFAULT_DRIFT_THRESHOLDS.items()}
    for kind, values in (overrides or {}).items():
        drift_type = parse_drift_type(kind)
        if not isinstance(values, Mapping):
            raise ValueError(f"drift_thresholds[{drift_type.name}] must be a mapping, got "
                             f"{type(values).__name__}")
        for name, value in values.items():
            if name not in merged[drift_type]:
                raise ValueError(f"unknown threshold {name!r} for {drift_type.name}; known: "
                                 f"{sorted(merged[drift_type])}")
            merged[drift_type][name] = _checked_threshold(drift_type, name, value)
    return merged


def _checked_threshold(drift_type: DriftType, name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"threshold {drift_type.name}.{name} must be a number, got {value!r}") from None
    if math.isnan(number) or number < 0:
        raise ValueError(f"threshold {drift_type.name}.{name} must be non-negative, got {value!r}")
    if name in _PROBABILITIES and not 0.0 < number < 1.0:
        raise ValueError(f"threshold {drift_type.name}.{name} must lie in (0, 1), got {value!r}")
    return number


def parse_drift_type(value: Any) -> DriftType:
    """A DriftType from a member, its value ('data_drift') or its name ('DATA_DRIFT')."""
    if isinstance(value, DriftType):
        return value
    text = str(value)
    for member in DriftType:
        if text in (member.value, member.name):
            return member
    raise ValueError(f"unknown drift type {value!r}; known: {[m.value for m in DriftType]}")


def parse_severity(value: Any) -> str:
    text = str(value).lower()
    if text not in SEVERITIES:
        raise ValueError(f"unknown severity {value!r}; known: {list(SEVERITIES)}")
    return text


def json_ready(value: Any) -> Any:
    """A copy with every non-finite float as the string 'NaN', 'Infinity' or '-Infinity'.

    Strict JSON has no NaN: a compound rule's threshold is NaN, and a strict endpoint refuses
    Python's bare NaN token, so the value is spelled out instead (float() reads it back).
    """
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Mapping):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    return value


def strict_json(value: Any, **options) -> str:
    """JSON that every parser accepts: non-finite numbers spelled out, never NaN tokens."""
    return json.dumps(json_ready(value), allow_nan=False, **options)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class DriftAlert:
    """One detected condition, with what crossed which threshold and where to send it."""

    drift_type: DriftType
    severity: str
    model_name: str
    feature: Optional[str]
    metric: str
    value: float
    threshold: float
    message: str
    timestamp: datetime = field(default_factory=utc_now)
    channels: Tuple[str, ...] = ("log",)
    rules: Tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def dedup_key(self) -> str:
        """Identity of the condition, so repeats within the cool-down are not re-sent."""
        return "|".join([self.model_name, self.drift_type.value, self.feature or "",
                         self.metric, ",".join(self.rules)])

    def with_routing(self, severity: str, channels: Tuple[str, ...], rules: Tuple[str, ...]):
        return replace(self, severity=severity, channels=channels, rules=rules)

    def to_dict(self) -> Dict[str, Any]:
        return {
            "drift_type": self.drift_type.value, "severity": self.severity,
            "model_name": self.model_name, "feature": self.feature, "metric": self.metric,
            "value": self.value, "threshold": self.threshold, "message": self.message,
            "timestamp": self.timestamp.isoformat(), "channels": list(self.channels),
            "rules": list(self.rules), "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "DriftAlert":
        return cls(drift_type=parse_drift_type(data["drift_type"]), severity=data["severity"],
                   model_name=data["model_name"], feature=data.get("feature"),
                   metric=data["metric"], value=float(data["value"]),
                   threshold=float(data["threshold"]), message=data["message"],
                   timestamp=datetime.fromisoformat(data["timestamp"]),
                   channels=tuple(data.get("channels", ("log",))),
                   rules=tuple(data.get("rules", ())), details=dict(data.get("details", {})))


def more_severe(first: str, second: str) -> str:
    return first if SEVERITIES.index(first) >= SEVERITIES.index(second) else second
