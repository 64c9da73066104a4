"""Scrapes of the server's Prometheus page, kept in the home's lifecycle.sqlite.

Why stored: request and error counts of an interval are the difference of the scrapes at its
two ends, so a loop restarted in the middle of a canary analysis needs the scrapes its
predecessor took (the baseline); kept in memory they died with it, and every interval begun
before the restart got no counts. One row per (model, scrape time) holding the parsed
per-version counters as JSON; each scrape is one transaction that also prunes what no analysis
can reach any more.
"""
from __future__ import annotations

import json
import pathlib
from typing import Dict, List, Optional

from ml.core import sqlite_db

SCHEMA = """
CREATE TABLE IF NOT EXISTS metric_snapshots (
    model TEXT NOT NULL, scraped_at REAL NOT NULL, versions TEXT NOT NULL,
    PRIMARY KEY (model, scraped_at));
"""

Counters = Dict[int, Dict]


def encode(versions: Counters) -> str:
    """Strict JSON: versions and bucket bounds as text keys (the +Inf bound is 'inf')."""
    return json.dumps({str(int(version)): {"requests": float(entry["requests"]),
                                           "errors": float(entry["errors"]),
                                           "buckets": {repr(float(bound)): float(count)
                                                       for bound, count in entry["buckets"].items()}}
                       for version, entry in versions.items()}, allow_nan=False, sort_keys=True)


def decode(text: str) -> Counters:
    return {int(version): {"requests": entry["requests"], "errors": entry["errors"],
                           "buckets": {float(bound): count
                                       for bound, count in entry["buckets"].items()}}
            for version, entry in json.loads(text).items()}


class MetricSnapshots:
    """The metric_snapshots table of one lifecycle database (created on first use)."""

    def __init__(self, path: pathlib.Path):
        self.path = pathlib.Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        sqlite_db.enable_wal(self.path)
        with sqlite_db.transaction(self.path) as connection:
            connection.execute(SCHEMA)

    def add(self, model: str, scraped_at: float, versions: Counters,
            retention_seconds: float) -> None:
        """Stores one scrape and drops the model's scrapes older than the newest one taken at
        or before scraped_at - retention_seconds (that one stays: it is the baseline of an
        interval starting just after the cut). Scrapes stored later than this one belong to
        another timeline (a simulation replayed on the home restarts its clock) and go too."""
        with sqlite_db.transaction(self.path) as connection:
            connection.execute("DELETE FROM metric_snapshots WHERE model = ? AND scraped_at > ?",
                               (model, float(scraped_at)))
            connection.execute("INSERT OR REPLACE INTO metric_snapshots (model, scraped_at, "
                               "versions) VALUES (?, ?, ?)",
                               (model, float(scraped_at), encode(versions)))
            connection.execute(
                "DELETE FROM metric_snapshots WHERE model = ? AND scraped_at < (SELECT "
                "MAX(scraped_at) FROM metric_snapshots WHERE model = ? AND scraped_at <= ?)",
                (model, model, float(scraped_at) - float(retention_seconds)))

    def at(self, model: str, moment: float) -> Optional[Counters]:
        """The model's last scrape taken at or before `moment` (None before the first)."""
        with sqlite_db.transaction(self.path) as connection:
            row = connection.execute(
                "SELECT versions FROM metric_snapshots WHERE model = ? AND scraped_at <= ? "
                "ORDER BY scraped_at DESC LIMIT 1", (model, float(moment))).fetchone()
        return None if row is None else decode(row[0])

    def times(self, model: str) -> List[float]:
        """Scrape times kept for the model, oldest first."""
        with sqlite_db.transaction(self.path) as connection:
            return [time for (time,) in connection.execute(
                "SELECT scraped_at FROM metric_snapshots WHERE model = ? ORDER BY scraped_at",
                (model,))]
