"""A simulated trading day's traffic: the day's trades scored by the served model, A/B split.

The trades come from the generator exactly as the pipeline ingests them (the same SpanRequest:
seed, history start, span length, drift scenarios), so the outcomes of every logged trade can be
regenerated later (ml.synthetic.outcomes) and the spans the retraining jobs ingest hold the very
trades the server saw. They go through the real server (ETRMModelClient over REST), so it writes
its request log, which the daily served-model check reads.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import random
import time
from typing import Dict, List, Optional

import pandas as pd

from ml.serving_client.client import ABSplit, ETRMModelClient, TensorFlowServingError
from ml.synthetic.outcomes import TRADE_DATE, TRADE_ID

IDENTIFIERS = (TRADE_ID, TRADE_DATE)
DEFAULT_BATCH = 10
MAX_ERROR_SAMPLES = 5


@dataclasses.dataclass
class DayTraffic:
    """What one day's requests did: counts per label and per answering version, failures."""

    date: str
    sent: Dict[str, int] = dataclasses.field(default_factory=dict)
    answered_by_version: Dict[int, int] = dataclasses.field(default_factory=dict)
    errors: Dict[str, int] = dataclasses.field(default_factory=dict)
    error_samples: List[str] = dataclasses.field(default_factory=list)
    latencies_ms: Dict[str, List[float]] = dataclasses.field(default_factory=dict)

    @property
    def requests(self) -> int:
        return sum(self.sent.values())

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    def as_dict(self) -> dict:
        return {"date": self.date, "sent": dict(self.sent),
                "answered_by_version": {str(v): n for v, n in self.answered_by_version.items()},
                "errors": dict(self.errors), "error_samples": list(self.error_samples)}


def day_trades(day: dt.date, settings, records_per_span: Optional[int] = None) -> pd.DataFrame:
    """The trades dated `day`, from the span that holds it (as the pipeline generates it).

    settings: a ContinuousSettings (records_per_span, span_days, seed, history_start,
    drift_scenarios). No trading day (weekend, exchange holiday): an empty table.
    """
    from ml.synthetic.config import trading_days
    from ml.synthetic.spans import span_for_date

    moment = dt.datetime(day.year, day.month, day.day)
    span = span_for_date(moment, settings.history_start, settings.span_days)
    request = span_request(span, settings, records_per_span)
    start, end = request.window()
    if not len(trading_days(start, end)):
        return pd.DataFrame(columns=list(IDENTIFIERS))
    table = _span_table(request)
    return table[table[TRADE_DATE].astype(str).str[:10] == moment.strftime("%Y-%m-%d")]


def span_request(span: int, settings, records_per_span: Optional[int] = None):
    """The SpanRequest of the pipeline's ingestion for span (trades dataset)."""
    from ml.synthetic.spans import SpanRequest

    return SpanRequest(dataset="trades", span=span,
                       records_per_span=records_per_span or settings.records_per_span,
                       seed=settings.seed, history_start=settings.history_start,
                       period_days=settings.span_days, drift_scenarios=settings.drift_scenarios)


_SPAN_CACHE: Dict[object, pd.DataFrame] = {}


def _span_table(request) -> pd.DataFrame:
    """A week-long span is asked for on each of its days: generate it once."""
    from ml.synthetic.spans import generate_table

    if request not in _SPAN_CACHE:
        _SPAN_CACHE.clear()
        _SPAN_CACHE[request] = generate_table(request)
    return _SPAN_CACHE[request]


def send_day(client: ETRMModelClient, trades: pd.DataFrame, ab_split: ABSplit,
             batch_size: int = DEFAULT_BATCH, seed: int = 0, date: Optional[str] = None,
             features: Optional[List[str]] = None) -> DayTraffic:
    """Scores the trades through the server in batches, each to label_b with ab_split's share.

    client: an ETRMModelClient on the server (its TensorFlowServingClient and model name are
    used; the label of each batch comes from ab_split, drawn with `seed`). features: the trade
    columns sent beside trade_id and trade_date (default: those the stable version's
    feature_defaults signature lists). A failed batch counts each of its trades as an error of
    its label; nothing is retried beyond the client's own retries on transient errors.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be > 0, got {batch_size}")
    missing = [name for name in IDENTIFIERS if name not in trades.columns]
    if len(trades) and missing:
        raise ValueError(f"trades: columns {missing} are missing (outcomes are joined on them)")
    day = date or (str(trades[TRADE_DATE].iloc[0])[:10] if len(trades) else "")
    traffic = DayTraffic(date=day)
    if trades.empty:
        return traffic
    labels = {label: ETRMModelClient(client.client, risk_model_name=client.risk_model_name,
                                     label=label, identifier_features=IDENTIFIERS)
              for label in (ab_split.label_a, ab_split.label_b)}
    columns = features if features is not None else model_features(labels[ab_split.label_a],
                                                                     trades)
    rows = plain_rows(trades, columns + list(IDENTIFIERS))
    draw = random.Random(seed)
    for start in range(0, len(rows), batch_size):
        batch = rows[start:start + batch_size]
        label = ab_split.label_b if draw.random() < ab_split.fraction_b else ab_split.label_a
        traffic.sent[label] = traffic.sent.get(label, 0) + len(batch)
        began = time.perf_counter()
        try:
            results = labels[label].predict_risk_scores(batch)
        except (TensorFlowServingError, ValueError) as error:
            traffic.errors[label] = traffic.errors.get(label, 0) + len(batch)
            if len(traffic.error_samples) < MAX_ERROR_SAMPLES:
                traffic.error_samples.append(f"{label}: {error}")
            continue
        traffic.latencies_ms.setdefault(label, []).append((time.perf_counter() - began) * 1e3)
        for result in results:
            version = result["model_version"]
            if version is not None:
                traffic.answered_by_version[int(version)] = (
                    traffic.answered_by_version.get(int(version), 0) + 1)
    return traffic


def model_features(client: ETRMModelClient, trades: pd.DataFrame) -> List[str]:
    """The trade columns the served model reads (its feature_defaults signature)."""
    try:
        schema = client.feature_schema(label=client.label)
    except TensorFlowServingError as error:
        raise ValueError(f"the {client.label!r} version of {client.risk_model_name} cannot be "
                         f"asked for its features: {error}") from None
    if schema is None:
        from models.risk.features import RAW_FEATURES

        return [name for name in RAW_FEATURES if name in trades.columns]
    return [name for name in schema if name in trades.columns]


def plain_rows(trades: pd.DataFrame, columns: List[str]) -> List[Dict[str, object]]:
    """Plain Python values per trade (numpy scalars become int, float or str)."""
    rows = []
    for record in trades[columns].to_dict("records"):
        rows.append({name: (value.item() if hasattr(value, "item") else value)
                     for name, value in record.items() if value is not None
                     and not (isinstance(value, float) and value != value)})
    return rows
