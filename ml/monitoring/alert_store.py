"""SQLite store of alerts and their deliveries: alerts are written before anything is sent.

Each alert gets one delivery row per channel. A delivery stays 'pending' until a channel
accepts it, so a crash or an unreachable endpoint loses nothing: the next dispatch (or the
next start of the service) sends it. A repeat of the same condition within the cool-down is
stored but its deliveries are 'suppressed', so one condition does not page every minute.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterable, List, Optional

from ml.monitoring.alerts import DriftAlert

PENDING, SENT, SUPPRESSED = "pending", "sent", "suppressed"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model_name TEXT NOT NULL,
    drift_type TEXT NOT NULL,
    severity TEXT NOT NULL,
    feature TEXT,
    metric TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    created_at TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id INTEGER NOT NULL REFERENCES alerts(id),
    channel TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_status ON deliveries(status);
CREATE INDEX IF NOT EXISTS alerts_dedup ON alerts(dedup_key, created_at);
"""


@dataclass(frozen=True)
class Delivery:
    """One alert waiting for (or done with) one channel."""

    delivery_id: int
    alert_id: int
    channel: str
    status: str
    attempts: int
    alert: DriftAlert


class AlertStore:
    """Alerts and deliveries in one SQLite file (WAL journal); each write is one transaction.

    WAL with synchronous=NORMAL keeps every committed alert through a crash of the process,
    which is the failure that matters here, without an fsync per alert.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=NORMAL")
        with self._transaction() as connection:
            connection.executescript(_SCHEMA)

    @contextmanager
    def _transaction(self):
        with self._lock, self._connection:
            yield self._connection

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def record(self, alert: DriftAlert, cooldown_seconds: float) -> int:
        """Store one alert; see record_all."""
        return self.record_all([alert], cooldown_seconds)[0]

    def record_all(self, alerts, cooldown_seconds: float) -> List[int]:
        """Store alerts and their per-channel deliveries in one transaction; returns their ids.

        A channel that already sent (or is still sending) the same condition within the
        cool-down gets a 'suppressed' delivery instead of a pending one.
        """
        with self._transaction() as connection:
            return [self._insert(connection, alert, cooldown_seconds) for alert in alerts]

    @staticmethod
    def _insert(connection: sqlite3.Connection, alert: DriftAlert, cooldown_seconds: float) -> int:
        created = alert.timestamp.isoformat()
        since = (alert.timestamp - timedelta(seconds=cooldown_seconds)).isoformat()
        cursor = connection.execute(
            "INSERT INTO alerts (model_name, drift_type, severity, feature, metric, "
            "dedup_key, created_at, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (alert.model_name, alert.drift_type.value, alert.severity, alert.feature,
             alert.metric, alert.dedup_key, created, json.dumps(alert.to_dict())))
        alert_id = cursor.lastrowid
        for channel in alert.channels:
            recent = connection.execute(
                "SELECT 1 FROM deliveries d JOIN alerts a ON a.id = d.alert_id "
                "WHERE a.dedup_key = ? AND d.channel = ? AND d.status IN (?, ?) "
                "AND a.created_at >= ? AND a.id != ? LIMIT 1",
                (alert.dedup_key, channel, SENT, PENDING, since, alert_id)).fetchone()
            connection.execute(
                "INSERT INTO deliveries (alert_id, channel, status, updated_at) "
                "VALUES (?, ?, ?, ?)",
                (alert_id, channel, SUPPRESSED if recent else PENDING, created))
        return alert_id

    def pending(self, channels: Optional[Iterable[str]] = None) -> List[Delivery]:
        """Deliveries not yet accepted by their channel, oldest first."""
        query = ("SELECT d.id, d.alert_id, d.channel, d.status, d.attempts, a.payload "
                 "FROM deliveries d JOIN alerts a ON a.id = d.alert_id WHERE d.status = ?")
        parameters: list = [PENDING]
        if channels is not None:
            channels = list(channels)
            query += f" AND d.channel IN ({','.join('?' * len(channels))})"
            parameters += channels
        with self._transaction() as connection:
            rows = connection.execute(query + " ORDER BY d.id", parameters).fetchall()
        return [Delivery(r[0], r[1], r[2], r[3], r[4], DriftAlert.from_dict(json.loads(r[5])))
                for r in rows]

    def mark_sent(self, delivery_id: int, attempts: int) -> None:
        self._update(delivery_id, SENT, attempts, None)

    def mark_attempt_failed(self, delivery_id: int, attempts: int, error: str) -> None:
        """Keep the delivery pending, remembering how often and why it failed."""
        self._update(delivery_id, PENDING, attempts, error[:1000])

    def _update(self, delivery_id: int, status: str, attempts: int, error: Optional[str]) -> None:
        with self._transaction() as connection:
            connection.execute(
                "UPDATE deliveries SET status = ?, attempts = attempts + ?, last_error = ?, "
                "updated_at = ? WHERE id = ?",
                (status, attempts, error, datetime.utcnow().isoformat(), delivery_id))

    def history(self, model_name: Optional[str] = None, limit: int = 100) -> List[DriftAlert]:
        """Most recent alerts first, optionally for one model."""
        query = "SELECT payload FROM alerts"
        parameters: list = []
        if model_name is not None:
            query += " WHERE model_name = ?"
            parameters.append(model_name)
        query += " ORDER BY id DESC LIMIT ?"
        parameters.append(int(limit))
        with self._transaction() as connection:
            rows = connection.execute(query, parameters).fetchall()
        return [DriftAlert.from_dict(json.loads(r[0])) for r in rows]

    def delivery_counts(self) -> dict:
        """Deliveries per (channel, status), for status pages and tests."""
        with self._transaction() as connection:
            rows = connection.execute(
                "SELECT channel, status, COUNT(*) FROM deliveries GROUP BY channel, status"
            ).fetchall()
        return {(channel, status): count for channel, status, count in rows}
