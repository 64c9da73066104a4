"""Typed settings of a pipeline run; the runners fill them from flags, never from import time."""
from __future__ import annotations

import dataclasses
from typing import Tuple

from components.etrm_example_gen import span_data


@dataclasses.dataclass(frozen=True)
class DataSettings:
    """Which span of which dataset to ingest, and how to split it."""

    dataset: str = "trades"
    span: int = 0
    records_per_span: int = 20000
    seed: int = 42
    history_start: str = "2024-01-01"
    period_days: int = 7
    drift_scenarios: str = ""
    shuffle_labels: bool = False
    split_ratios: Tuple[Tuple[str, int], ...] = (("train", 4), ("eval", 1))

    def __post_init__(self):
        span_data.SpanRequest(
            dataset=self.dataset, span=self.span, records_per_span=self.records_per_span,
            seed=self.seed, history_start=self.history_start, period_days=self.period_days,
            drift_scenarios=self.drift_scenarios, shuffle_labels=self.shuffle_labels)


@dataclasses.dataclass(frozen=True)
class ValidationSettings:
    """Whether anomalies stop the run (default) or are only logged."""

    fail_on_anomalies: bool = True
