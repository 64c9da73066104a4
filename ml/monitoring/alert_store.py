"""SQLite store of alerts and their deliveries: alerts are written before anything is sent.

Each alert gets one delivery row per channel. A delivery stays 'pending' until a channel
accepts it, so a crash or an unreachable endpoint loses nothing: the next dispatch (or the
next start of the service) sends it. Each delivery keeps its own retry schedule
(next_attempt_at), so one alert a channel refuses never holds up the others, and after the
retry limit it becomes 'dead' (a dead letter, kept for inspection and requeue). A dispatcher
claims a delivery in one transaction before sending it (claim_owner, claim_expires_at), so
dispatchers sharing the store send each delivery once; a crashed dispatcher's claim expires.
A repeat of the same condition within the cool-down is stored but its deliveries are
'suppressed', so one condition does not page every minute.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Iterable, List, Optional, Tuple

from ml.monitoring.alerts import DriftAlert, strict_json

PENDING, SENT, SUPPRESSED, DEAD = "pending", "sent", "suppressed", "dead"

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
CREATE INDEX IF NOT EXISTS alerts_dedup ON alerts(dedup_key, created_at);
CREATE TABLE IF NOT EXISTS acknowledgements (
    alert_id INTEGER PRIMARY KEY REFERENCES alerts(id),
    acknowledged_by TEXT NOT NULL,
    acknowledged_at TEXT NOT NULL
);
"""
# Columns added after the first release; an existing alerts.sqlite gets them on open.
# Times are Unix seconds, so the due and claim tests are plain comparisons in SQL.
_ADDED_COLUMNS = {
    "next_attempt_at": "REAL NOT NULL DEFAULT 0",
    "claim_owner": "TEXT",
    "claim_expires_at": "REAL",
}
_INDEXES = """
DROP INDEX IF EXISTS deliveries_status;
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(status, channel, next_attempt_at);
CREATE INDEX IF NOT EXISTS deliveries_alert ON deliveries(alert_id);
CREATE INDEX IF NOT EXISTS alerts_model ON alerts(model_name, id);
"""
_MAX_ERROR = 1000


@dataclass(frozen=True)
class Delivery:
    """One alert waiting for (or done with) one channel."""

    delivery_id: int
    alert_id: int
    channel: str
    status: str
    attempts: int
    alert: DriftAlert
    last_error: Optional[str] = None


_DELIVERY_COLUMNS = ("d.id, d.alert_id, d.channel, d.status, d.attempts, a.payload, "
                     "d.last_error FROM deliveries d JOIN alerts a ON a.id = d.alert_id")


def _delivery(row) -> Delivery:
    return Delivery(row[0], row[1], row[2], row[3], row[4],
                    DriftAlert.from_dict(json.loads(row[5])), row[6])


class AlertStore:
    """Alerts and deliveries in one SQLite file (WAL journal); each write is one transaction.

    WAL with synchronous=NORMAL keeps every committed alert through a crash of the process,
    which is the failure that matters here, without an fsync per alert. Writes take the
    database's write lock first (BEGIN IMMEDIATE), so a claim's read and update are one step
    for every process sharing the file. secure_delete overwrites replaced text, so a redacted
    error leaves no copy in free pages.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False,
                                           isolation_level=None)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=NORMAL")
        self._connection.execute("PRAGMA secure_delete=ON")
        with self._transaction() as connection:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    connection.execute(statement)
            present = {row[1] for row in connection.execute("PRAGMA table_info(deliveries)")}
            for column, declaration in _ADDED_COLUMNS.items():
                if column not in present:
                    connection.execute(f"ALTER TABLE deliveries ADD COLUMN {column} {declaration}")
            for statement in _INDEXES.split(";"):
                if statement.strip():
                    connection.execute(statement)

    @contextmanager
    def _transaction(self):
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._connection
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

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
             alert.metric, alert.dedup_key, created, strict_json(alert.to_dict())))
        alert_id = cursor.lastrowid
        for channel in alert.channels:
            recent = connection.execute(
                "SELECT 1 FROM deliveries d JOIN alerts a ON a.id = d.alert_id "
                "WHERE a.dedup_key = ? AND d.channel = ? AND d.status IN (?, ?) "
                "AND a.created_at >= ? AND a.id != ? LIMIT 1",
                (alert.dedup_key, channel, SENT, PENDING, since, alert_id)).fetchone()
            connection.execute(
                "INSERT INTO deliveries (alert_id, channel, status, updated_at, next_attempt_at) "
                "VALUES (?, ?, ?, ?, 0)",
                (alert_id, channel, SUPPRESSED if recent else PENDING, created))
        return alert_id

    def pending(self, channels: Optional[Iterable[str]] = None) -> List[Delivery]:
        """Deliveries not yet accepted by their channel (due or waiting to retry), oldest first."""
        return self._select(f"SELECT {_DELIVERY_COLUMNS} WHERE d.status = ?", [PENDING],
                            channels)

    def dead_letters(self, channels: Optional[Iterable[str]] = None) -> List[Delivery]:
        """Deliveries given up on after the retry limit, with their last error, oldest first."""
        return self._select(f"SELECT {_DELIVERY_COLUMNS} WHERE d.status = ?", [DEAD], channels)

    def _select(self, query: str, parameters: list, channels) -> List[Delivery]:
        if channels is not None:
            channels = list(channels)
            query += f" AND d.channel IN ({','.join('?' * len(channels))})"
            parameters = parameters + channels
        with self._transaction() as connection:
            rows = connection.execute(query + " ORDER BY d.id", parameters).fetchall()
        return [_delivery(row) for row in rows]

    def claim_next(self, channel: str, owner: str, lease_seconds: float,
                   now: Optional[float] = None) -> Optional[Delivery]:
        """Claim the oldest due, unclaimed delivery of a channel for owner, or None.

        Due means pending with next_attempt_at reached; unclaimed means no claim or an
        expired one (its dispatcher died mid-send). The update and its condition run under
        the write lock, so two dispatchers never claim the same delivery.
        """
        now = time.time() if now is None else now
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT id FROM deliveries WHERE status = ? AND channel = ? "
                "AND next_attempt_at <= ? AND (claim_expires_at IS NULL OR claim_expires_at <= ?) "
                "ORDER BY next_attempt_at, id LIMIT 1", (PENDING, channel, now, now)).fetchone()
            if row is None:
                return None
            connection.execute(
                "UPDATE deliveries SET claim_owner = ?, claim_expires_at = ? WHERE id = ?",
                (owner, now + lease_seconds, row[0]))
            claimed = connection.execute(
                f"SELECT {_DELIVERY_COLUMNS} WHERE d.id = ?", (row[0],)).fetchone()
        return _delivery(claimed)

    def next_due_at(self, channel: str) -> Optional[float]:
        """When the channel's next pending delivery can be claimed (Unix seconds), or None."""
        with self._transaction() as connection:
            (due,) = connection.execute(
                "SELECT MIN(MAX(next_attempt_at, COALESCE(claim_expires_at, 0))) "
                "FROM deliveries WHERE status = ? AND channel = ?", (PENDING, channel)).fetchone()
        return due

    def mark_sent(self, delivery_id: int, owner: str) -> bool:
        """Record the channel's acceptance; False if owner no longer holds the claim."""
        return self._finish(delivery_id, owner, SENT, None, 0)

    def mark_failed(self, delivery_id: int, owner: str, error: str,
                    retry_at: Optional[float]) -> bool:
        """Record a failed attempt: retry at retry_at, or dead-letter it when retry_at is None."""
        status = PENDING if retry_at is not None else DEAD
        return self._finish(delivery_id, owner, status, error[:_MAX_ERROR], retry_at or 0)

    def _finish(self, delivery_id: int, owner: str, status: str, error: Optional[str],
                next_attempt_at: float) -> bool:
        with self._transaction() as connection:
            cursor = connection.execute(
                "UPDATE deliveries SET status = ?, attempts = attempts + 1, last_error = ?, "
                "next_attempt_at = ?, claim_owner = NULL, claim_expires_at = NULL, "
                "updated_at = ? WHERE id = ? AND claim_owner = ? AND status = ?",
                (status, error, next_attempt_at, _now_text(), delivery_id, owner, PENDING))
        return cursor.rowcount == 1

    def requeue_dead(self, channels: Optional[Iterable[str]] = None) -> int:
        """Make dead letters pending again (after fixing the channel); returns how many."""
        query = ("UPDATE deliveries SET status = ?, attempts = 0, next_attempt_at = 0, "
                 "updated_at = ? WHERE status = ?")
        parameters: list = [PENDING, _now_text(), DEAD]
        if channels is not None:
            channels = list(channels)
            query += f" AND channel IN ({','.join('?' * len(channels))})"
            parameters += channels
        with self._transaction() as connection:
            return connection.execute(query, parameters).rowcount

    def redact_errors(self, secrets: Iterable[str]) -> int:
        """Replace secrets in stored errors (written by older versions); returns rows changed.

        The WAL is checkpointed afterwards, so the old text is gone from the files too.
        """
        changed = 0
        with self._transaction() as connection:
            for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
                changed += connection.execute(
                    "UPDATE deliveries SET last_error = replace(last_error, ?, '***') "
                    "WHERE instr(last_error, ?) > 0", (secret, secret)).rowcount
        if changed:
            with self._lock:
                self._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return changed

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

    def since(self, after_id: int, limit: int = 1000) -> List[Tuple[int, DriftAlert]]:
        """Alerts with an id above after_id, oldest first, with their ids: a reader that keeps
        the last id it handled (the continuous-learning loop) sees each alert once."""
        with self._transaction() as connection:
            rows = connection.execute("SELECT id, payload FROM alerts WHERE id > ? ORDER BY id "
                                      "LIMIT ?", (int(after_id), int(limit))).fetchall()
        return [(row[0], DriftAlert.from_dict(json.loads(row[1]))) for row in rows]

    def acknowledge(self, alert_id: int, by: str, at: Optional[str] = None) -> bool:
        """Mark an alert seen by someone; False when no alert has that id. A second
        acknowledgement keeps the first (who saw it first is what a review asks)."""
        with self._transaction() as connection:
            if connection.execute("SELECT 1 FROM alerts WHERE id = ?",
                                  (int(alert_id),)).fetchone() is None:
                return False
            connection.execute(
                "INSERT OR IGNORE INTO acknowledgements (alert_id, acknowledged_by, "
                "acknowledged_at) VALUES (?, ?, ?)", (int(alert_id), str(by), at or _now_text()))
        return True

    def listing(self, model_name: Optional[str] = None, limit: int = 100,
                before_id: Optional[int] = None) -> List[dict]:
        """Most recent alerts first with their id, deliveries and acknowledgement, for status
        pages: one query for the alerts, one for their deliveries."""
        query = ("SELECT a.id, a.payload, k.acknowledged_by, k.acknowledged_at FROM alerts a "
                 "LEFT JOIN acknowledgements k ON k.alert_id = a.id WHERE 1 = 1")
        parameters: list = []
        if model_name is not None:
            query += " AND a.model_name = ?"
            parameters.append(model_name)
        if before_id is not None:
            query += " AND a.id < ?"
            parameters.append(int(before_id))
        query += " ORDER BY a.id DESC LIMIT ?"
        parameters.append(int(limit))
        with self._transaction() as connection:
            rows = connection.execute(query, parameters).fetchall()
            ids = [row[0] for row in rows]
            deliveries: dict = {alert_id: [] for alert_id in ids}
            if ids:
                for alert_id, channel, status, attempts, error in connection.execute(
                        "SELECT alert_id, channel, status, attempts, last_error FROM deliveries "
                        f"WHERE alert_id IN ({','.join('?' * len(ids))}) ORDER BY id", ids):
                    deliveries[alert_id].append({"channel": channel, "status": status,
                                                 "attempts": attempts, "last_error": error})
        return [{"id": alert_id, "alert": DriftAlert.from_dict(json.loads(payload)),
                 "deliveries": deliveries[alert_id],
                 "acknowledged": None if by is None else {"by": by, "at": at}}
                for alert_id, payload, by, at in rows]

    def counts_by_model(self) -> dict:
        """Per model: alerts in all, and those nobody has acknowledged."""
        with self._transaction() as connection:
            rows = connection.execute(
                "SELECT a.model_name, COUNT(*), SUM(k.alert_id IS NULL) FROM alerts a "
                "LEFT JOIN acknowledgements k ON k.alert_id = a.id GROUP BY a.model_name"
            ).fetchall()
        return {model: {"total": total, "open": int(open_count or 0)}
                for model, total, open_count in rows}

    def delivery_counts_by_model(self) -> dict:
        """Deliveries per (model, channel, status)."""
        with self._transaction() as connection:
            rows = connection.execute(
                "SELECT a.model_name, d.channel, d.status, COUNT(*) FROM deliveries d "
                "JOIN alerts a ON a.id = d.alert_id GROUP BY a.model_name, d.channel, d.status"
            ).fetchall()
        return {(model, channel, status): count for model, channel, status, count in rows}

    def delivery_counts(self) -> dict:
        """Deliveries per (channel, status), for status pages and tests."""
        with self._transaction() as connection:
            rows = connection.execute(
                "SELECT channel, status, COUNT(*) FROM deliveries GROUP BY channel, status"
            ).fetchall()
        return {(channel, status): count for channel, status, count in rows}


def _now_text() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
