"""Realised outcomes of logged trades: the generator regenerates each trade's span from the
settings recorded on the training Examples and the labels are joined on trade_id.

Outcomes arrive later than predictions in a real book; here they can be recomputed exactly,
because a span is a pure function of its SpanRequest.
"""
from __future__ import annotations

import datetime as dt
from typing import Mapping

import pandas as pd

from ml.synthetic.spans import SpanRequest, generate_table, span_for_date

TRADE_ID = "trade_id"
TRADE_DATE = "trade_date"
LABEL = "high_risk"


def realised_labels(trades: pd.DataFrame, recorded_settings: Mapping) -> pd.Series:
    """high_risk of each trade (by trade_id and trade_date), NaN where the trade is not found."""
    base = SpanRequest.from_properties("trades", 0, recorded_settings)
    spans = {span_for_date(dt.datetime.strptime(str(day)[:10], "%Y-%m-%d"),
                           base.history_start, base.period_days)
             for day in trades[TRADE_DATE].dropna().unique()}
    tables = [generate_table(SpanRequest.from_properties("trades", span, recorded_settings))
              [[TRADE_ID, LABEL]] for span in sorted(spans)]
    outcomes = pd.concat(tables) if tables else pd.DataFrame(columns=[TRADE_ID, LABEL])
    return trades[TRADE_ID].map(outcomes.set_index(TRADE_ID)[LABEL])
