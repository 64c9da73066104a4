"""Every monitoring window's figures, kept so trends can be drawn: per-feature drift scores
with the floor each was judged against, the served scores' distribution, realised and
estimated performance, the serving version and the traffic.

Why a store: a check's result lived only in its HTML page and in the alerts it raised, so a
question like "how did PSI of volatility move over the last ten windows" had no answer. One
row per window in <home>/monitoring/checks.sqlite (WAL, one transaction a row), written by
`check_served_model` at the window's own time (the simulation's clock included) and read by
the dashboard.
"""
from __future__ import annotations

import json
import math
import pathlib
from typing import Any, Dict, List, Optional

from ml.core.sqlite_db import connect, enable_wal, transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS checks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model_name TEXT NOT NULL,
    checked_at REAL NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS checks_model ON checks(model_name, checked_at)
"""
SCORE_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def _finite(value) -> Optional[float]:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars to floats, non-finite to None, keys to text."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, (bool, str)) or value is None:
        return value
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, int):
        return value
    return _finite(value)


def feature_rows(features) -> List[Dict[str, Any]]:
    """The drift table's figures a trend needs, one dict per feature."""
    rows = []
    for row in features.itertuples():
        rows.append({"feature": str(row.feature), "psi": _finite(row.psi),
                     "psi_floor": _finite(getattr(row, "psi_floor", None)),
                     "adjusted_p_value": _finite(getattr(row, "adjusted_p_value", None)),
                     "drifted": bool(row.drifted)})
    return rows


def score_summary(scores) -> Optional[Dict[str, Any]]:
    """Mean and quantiles of the served scores (None without any)."""
    import numpy as np

    values = np.asarray(scores, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    quantiles = np.quantile(values, SCORE_QUANTILES)
    return {"mean": float(values.mean()), "count": int(values.size),
            "quantiles": {f"p{round(q * 100):02d}": float(v)
                          for q, v in zip(SCORE_QUANTILES, quantiles)}}


class CheckHistory:
    """The monitoring windows of every model, oldest first when read."""

    def __init__(self, path):
        self.path = pathlib.Path(path)

    def _ready(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        enable_wal(self.path)
        with transaction(self.path) as connection:
            for statement in _SCHEMA.split(";"):
                connection.execute(statement)

    def record(self, model_name: str, checked_at: float, window: Dict[str, Any]) -> int:
        """Store one window's figures; returns its id."""
        self._ready()
        text = json.dumps(_plain(window), allow_nan=False, sort_keys=True)
        with transaction(self.path) as connection:
            return connection.execute(
                "INSERT INTO checks (model_name, checked_at, payload) VALUES (?, ?, ?)",
                (str(model_name), float(checked_at), text)).lastrowid

    def windows(self, model_name: str, limit: int = 500) -> List[Dict[str, Any]]:
        """The model's last `limit` windows, oldest first, each with checked_at (Unix s)."""
        if not self.path.exists():
            return []
        connection = connect(self.path)
        try:
            rows = connection.execute(
                "SELECT id, checked_at, payload FROM checks WHERE model_name = ? "
                "ORDER BY checked_at DESC, id DESC LIMIT ?", (str(model_name), int(limit))
            ).fetchall()
        finally:
            connection.close()
        return [{"id": row_id, "checked_at": checked_at, **json.loads(payload)}
                for row_id, checked_at, payload in reversed(rows)]
