"""ContinuousSettings: how continuous-learning jobs run, beyond the spec's RetrainingConfig.

RetrainingConfig says what a model needs (schedule, window, thresholds); these settings say
how this installation produces data and runs the loop (span size, canary share, leases,
retries), so one registration works in production and in the day-by-day simulation.

serving_metrics_url is the model server's Prometheus page (`etrm serve
--monitoring_config_file serving_config/monitoring.config` serves it at
/monitoring/prometheus/metrics of the REST port, as TF Serving does). Canary analysis and the
guard read request counts, errors and latency per version from it; empty, they see only the
request logs, which hold no errors or latency, so those two checks cannot fail a canary.
"""
from __future__ import annotations

import dataclasses
import urllib.parse
from typing import Optional

from ml.synthetic.spans import parse_drift_scenarios, parse_history_start


@dataclasses.dataclass(frozen=True)
class ContinuousSettings:
    """Job and loop settings; every field is checked on construction (ValueError naming it)."""

    records_per_span: int = 2000
    span_days: int = 7
    seed: int = 42
    history_start: str = "2024-01-01"
    drift_scenarios: str = ""
    train_steps: Optional[int] = None
    canary_share: float = 0.2
    canary_intervals: int = 3
    interval_seconds: float = 86400.0
    guard_intervals: int = 3
    max_attempts: int = 3
    retry_base_seconds: float = 60.0
    lease_seconds: float = 120.0
    poll_seconds: float = 30.0
    min_auc: float = 0.6
    serving_metrics_url: str = ""

    def __post_init__(self):
        for name in ("records_per_span", "span_days", "canary_intervals", "guard_intervals",
                     "max_attempts"):
            _positive_int(name, getattr(self, name))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be a whole number, got {self.seed!r}")
        if self.train_steps is not None:
            _positive_int("train_steps", self.train_steps)
        if not isinstance(self.history_start, str):
            raise ValueError(f"history_start must be a date YYYY-MM-DD, got {self.history_start!r}")
        parse_history_start(self.history_start)
        if not isinstance(self.drift_scenarios, str):
            raise ValueError(f"drift_scenarios must be a string, got {self.drift_scenarios!r}")
        try:
            parse_drift_scenarios(self.drift_scenarios)
        except ValueError as exc:
            raise ValueError(f"drift_scenarios: {exc}") from None
        for name in ("interval_seconds", "retry_base_seconds", "lease_seconds", "poll_seconds"):
            value = getattr(self, name)
            if not _number(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if not _number(self.canary_share) or not 0 < self.canary_share < 1:
            raise ValueError(f"canary_share must be a fraction in (0, 1), got {self.canary_share!r}")
        if not _number(self.min_auc) or not 0 <= self.min_auc <= 1:
            raise ValueError(f"min_auc must be a number in [0, 1], got {self.min_auc!r}")
        if not isinstance(self.serving_metrics_url, str) or (
                self.serving_metrics_url
                and urllib.parse.urlsplit(self.serving_metrics_url).scheme not in ("http", "https")):
            raise ValueError("serving_metrics_url must be an http(s) URL of the model server's "
                             f"Prometheus page, or empty, got {self.serving_metrics_url!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "ContinuousSettings":
        """Settings stored by another release: fields it did not have take their defaults,
        fields this one does not know are ignored (ValueError if a value is invalid)."""
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{name: value for name, value in values.items() if name in known})


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive whole number, got {value!r}")
