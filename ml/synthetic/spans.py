"""A span request: everything needed to regenerate one span (a week by default) of a dataset.

The one definition of the generator settings a span is made from. ETRMExampleGen takes it,
its executor reads it back from execution properties, it is recorded on the Examples artifact
(etrm_* properties), and monitoring regenerates outcomes from that record; all of them go
through this class, which validates once.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Dict, List, Mapping

import pandas as pd

from ml.core import registry

ID_COLUMNS = {"trades": "trade_id", "reports": "record_id"}
OPENING_PORTFOLIO_SPANS = 2
DRIFT_SPEC_HELP = "KIND@YYYY-MM-DD:MAGNITUDE[,KIND@YYYY-MM-DD:MAGNITUDE...]"


@dataclasses.dataclass(frozen=True)
class SpanRequest:
    """Everything needed to regenerate one span exactly; recorded on the Examples artifact."""

    dataset: str
    span: int
    records_per_span: int
    seed: int = 42
    history_start: str = "2024-01-01"
    period_days: int = 7
    drift_scenarios: str = ""
    shuffle_labels: bool = False

    def __post_init__(self):
        if self.dataset not in registry.DATASETS:
            raise ValueError(f"dataset must be one of {list(registry.DATASETS)}, got {self.dataset!r}")
        if self.span < 0:
            raise ValueError(f"span must be >= 0, got {self.span}")
        if self.records_per_span <= 0:
            raise ValueError(f"records_per_span must be > 0, got {self.records_per_span}")
        if self.period_days <= 0:
            raise ValueError(f"period_days must be > 0, got {self.period_days}")
        parse_history_start(self.history_start)
        parse_drift_scenarios(self.drift_scenarios)

    @classmethod
    def generator_fields(cls) -> Dict[str, type]:
        """The generator settings beyond dataset and span, with their types: the ExampleGen's
        execution parameters and the etrm_* properties recorded on each Examples artifact."""
        return {field.name: (int if field.type in ("bool", bool) else
                             {"int": int, "str": str}.get(field.type, field.type))
                for field in dataclasses.fields(SpanRequest) if field.name not in ("dataset", "span")}

    def generator_properties(self) -> Dict[str, Any]:
        """generator_fields() as execution-property values (booleans as 0/1)."""
        return {name: (int(getattr(self, name)) if isinstance(getattr(self, name), bool)
                       else getattr(self, name)) for name in self.generator_fields()}

    @staticmethod
    def from_properties( dataset: str, span: int, properties: Mapping[str, Any]) -> "SpanRequest":
        """The request from execution properties or recorded etrm_* settings (missing optional
        settings take their defaults; booleans may arrive as 0/1)."""
        values = {}
        for field in dataclasses.fields(SpanRequest):
            if field.name in ("dataset", "span") or properties.get(field.name) in (None, ""):
                continue
            raw = properties[field.name]
            values[field.name] = (bool(int(raw)) if field.type in ("bool", bool) else
                                  int(raw) if field.type in ("int", int) else str(raw))
        return SpanRequest(dataset=dataset, span=int(span), **values)

    def window(self) -> tuple[dt.datetime, dt.datetime]:
        """First and last day (inclusive) of this span."""
        return span_window(self.span, self.history_start, self.period_days)

    def generator_config(self):
        """The ETRMDataConfig that produces this span's records."""
        from ml.synthetic.generator import ETRMDataConfig

        from ml.synthetic.config import trading_days

        start, end = self.window()
        books = ETRMDataConfig.num_books
        return ETRMDataConfig(
            num_trades=self.records_per_span,
            # Books open each span holding two spans of earlier trading.
            num_positions=OPENING_PORTFOLIO_SPANS * self.records_per_span,
            # One daily risk report per book and trading day of the span.
            num_risk_reports=len(trading_days(start, end)) * books,
            num_books=books,
            start_date=start,
            end_date=end,
            seed=self.seed,
            # A scenario that starts after this span cannot affect it.
            drift_scenarios=[s for s in parse_drift_scenarios(self.drift_scenarios)
                             if s.start_date <= end] or None,
            shuffle_labels=self.shuffle_labels,
        )


def parse_history_start(value: str) -> dt.datetime:
    try:
        return dt.datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        raise ValueError(f"history_start must be a date YYYY-MM-DD, got {value!r}") from None


def span_window(span: int, history_start: str, period_days: int) -> tuple[dt.datetime, dt.datetime]:
    """Span N covers period_days days starting history_start + N * period_days."""
    start = parse_history_start(history_start) + dt.timedelta(days=span * period_days)
    return start, start + dt.timedelta(days=period_days - 1)


def span_for_date(date: dt.datetime, history_start: str, period_days: int) -> int:
    """The span whose window contains `date` (dates before history_start are rejected)."""
    days = (date - parse_history_start(history_start)).days
    if days < 0:
        raise ValueError(f"date {date:%Y-%m-%d} is before history_start {history_start}")
    return days // period_days


def parse_drift_scenarios(spec: str) -> List:
    """Parses 'price_shift@2024-03-01:1.5,new_category@2024-04-01:0.2' into DriftScenarios."""
    if not spec or not spec.strip():
        return []
    from ml.synthetic.generator import DriftScenario

    scenarios = []
    for item in spec.split(","):
        try:
            kind, rest = item.strip().split("@", 1)
            date_text, magnitude_text = rest.split(":", 1)
            start = dt.datetime.strptime(date_text, "%Y-%m-%d")
            magnitude = float(magnitude_text)
        except ValueError:
            raise ValueError(
                f"drift scenario {item!r} is not of the form {DRIFT_SPEC_HELP}") from None
        scenarios.append(DriftScenario(kind=kind, start_date=start, magnitude=magnitude))
    return scenarios


def generate_table(request: SpanRequest) -> pd.DataFrame:
    """The span's records as a table: trades with labels, or the texts the report language
    model learns (risk summaries conditioned on their records)."""
    from ml.synthetic.generator import SyntheticETRMDataGenerator

    generator = SyntheticETRMDataGenerator(request.generator_config())
    if request.dataset == "trades":
        return generator.generate_trades()
    return generator.generate_training_texts()
