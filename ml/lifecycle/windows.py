"""Which spans a job may use at a given time: the one definition the loop (idempotency key),
the job runner (what to ingest and train on) and the simulation share.

Span N covers span_days days from history_start + N * span_days (ml.synthetic.spans); a span
is complete once its last day is over. A job trains on the last max(1, data_window_days //
span_days) complete spans.
"""
from __future__ import annotations

import datetime as dt
from typing import List

from ml.lifecycle.settings import ContinuousSettings
from ml.synthetic.spans import parse_history_start, span_window


def last_complete_span(now: float, settings: ContinuousSettings) -> int:
    """The newest span whose last day is over at `now` (-1 when none is complete yet)."""
    start = parse_history_start(settings.history_start).replace(tzinfo=dt.timezone.utc)
    days = int((now - start.timestamp()) // 86400)
    return days // settings.span_days - 1 if days >= 0 else -1


def window_end(now: float, settings: ContinuousSettings) -> str:
    """The last day (YYYY-MM-DD) of the last complete span: a job's window end and idempotency key."""
    span = last_complete_span(now, settings)
    if span < 0:
        day_before = parse_history_start(settings.history_start) - dt.timedelta(days=1)
        return day_before.strftime("%Y-%m-%d")
    return span_window(span, settings.history_start, settings.span_days)[1].strftime("%Y-%m-%d")


def span_ending(window_end_day: str, settings: ContinuousSettings) -> int:
    """The span whose last day is window_end_day (-1 for the day before history_start)."""
    end = dt.datetime.strptime(window_end_day, "%Y-%m-%d")
    days = (end - parse_history_start(settings.history_start)).days + 1
    if days % settings.span_days:
        raise ValueError(f"window_end {window_end_day} is not the last day of a "
                         f"{settings.span_days}-day span from {settings.history_start}")
    return days // settings.span_days - 1


def training_spans(last_span: int, data_window_days: int, settings: ContinuousSettings) -> List[int]:
    """The spans a job ending at last_span trains on (oldest first; empty before the first)."""
    count = max(1, data_window_days // settings.span_days)
    return list(range(max(0, last_span - count + 1), last_span + 1)) if last_span >= 0 else []
