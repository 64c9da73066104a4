"""Continuous learning's durable state: registrations, one job queue, the audit log (SQLite).

Why SQLite in the home: the loop, `etrm continuous status` and the dashboard run in different
processes and must see the same jobs; a loop killed with -9 must find its job again. Each
change is one transaction (WAL journal, so readers never block the loop):

- a trigger for a model with a pending or running job is merged into it (its reason recorded),
  so there is one job per model at a time; a job's idempotency key (model, window end) makes a
  second job for the same window impossible;
- a worker claims a job by writing its lease (owner, expiry) in the same UPDATE that checks no
  live lease exists, and renews it by heartbeat; a job whose lease expired (its worker died) is
  claimable again, with its attempt count kept.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import pathlib
import sqlite3
from typing import Any, Dict, Iterator, List, Optional

from ml.lifecycle.config import RetrainingConfig

STATUSES = ("pending", "running", "succeeded", "skipped", "failed", "rolled_back", "cancelled")
OPEN_STATUSES = ("pending", "running")

SCHEMA = """
CREATE TABLE IF NOT EXISTS registrations (
    model TEXT PRIMARY KEY, config TEXT NOT NULL, registered_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, model TEXT NOT NULL, status TEXT NOT NULL,
    triggers TEXT NOT NULL, window_end TEXT NOT NULL, idempotency_key TEXT NOT NULL UNIQUE,
    attempt INTEGER NOT NULL DEFAULT 0, lease_owner TEXT, lease_expires REAL,
    not_before REAL NOT NULL DEFAULT 0, created_at REAL NOT NULL, started_at REAL,
    finished_at REAL, result TEXT NOT NULL DEFAULT '{}', error TEXT);
CREATE INDEX IF NOT EXISTS jobs_by_model ON jobs (model, status);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, model TEXT NOT NULL,
    action TEXT NOT NULL, reason TEXT NOT NULL, figures TEXT NOT NULL, job_id INTEGER);
"""


@dataclasses.dataclass(frozen=True)
class Job:
    """One retraining job as stored."""

    id: int
    model: str
    status: str
    triggers: List[Dict[str, Any]]
    window_end: str
    attempt: int
    lease_owner: Optional[str]
    lease_expires: Optional[float]
    not_before: float
    created_at: float
    started_at: Optional[float]
    finished_at: Optional[float]
    result: Dict[str, Any]
    error: Optional[str]


@dataclasses.dataclass(frozen=True)
class AuditEntry:
    """One decision: what was done to which model, why, and the figures behind it."""

    id: int
    time: float
    model: str
    action: str
    reason: str
    figures: Dict[str, Any]
    job_id: Optional[int]


class LifecycleStore:
    """The lifecycle database of one project home (created on first use)."""

    def __init__(self, path: pathlib.Path):
        self.path = pathlib.Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = self._connect()
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(SCHEMA)
        finally:
            connection.close()

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30.0, isolation_level=None)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        connection = self._connect()
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        finally:
            connection.close()

    # Registrations
    def register(self, model: str, config: RetrainingConfig, now: float) -> None:
        """Registers (or replaces) a model's RetrainingConfig under its serving name."""
        with self._transaction() as connection:
            connection.execute(
                "INSERT INTO registrations (model, config, registered_at) VALUES (?, ?, ?) "
                "ON CONFLICT (model) DO UPDATE SET config = excluded.config, "
                "registered_at = excluded.registered_at",
                (model, json.dumps(config.to_dict()), now))

    def registrations(self) -> Dict[str, RetrainingConfig]:
        with self._transaction() as connection:
            rows = connection.execute("SELECT model, config FROM registrations ORDER BY model")
            return {model: RetrainingConfig.from_dict(json.loads(config)) for model, config in rows}

    # Jobs
    def trigger(self, model: str, kind: str, reason: str, window_end: str, now: float) -> Job:
        """Queues a job for the model, or merges the trigger into its pending or running job."""
        entry = {"kind": kind, "reason": reason, "time": now}
        with self._transaction() as connection:
            open_job = connection.execute(
                "SELECT id, triggers FROM jobs WHERE model = ? AND status IN ('pending', 'running')",
                (model,)).fetchone()
            if open_job is not None:
                triggers = json.loads(open_job[1]) + [entry]
                connection.execute("UPDATE jobs SET triggers = ? WHERE id = ?",
                                   (json.dumps(triggers), open_job[0]))
                job_id = open_job[0]
            else:
                done = connection.execute("SELECT id FROM jobs WHERE idempotency_key = ?",
                                          (f"{model}@{window_end}",)).fetchone()
                if done is not None:
                    return self._job(connection, done[0])
                job_id = connection.execute(
                    "INSERT INTO jobs (model, status, triggers, window_end, idempotency_key, "
                    "created_at) VALUES (?, 'pending', ?, ?, ?, ?)",
                    (model, json.dumps([entry]), window_end, f"{model}@{window_end}", now)).lastrowid
            return self._job(connection, job_id)

    def claim(self, owner: str, lease_seconds: float, now: float) -> Optional[Job]:
        """The oldest job that is pending (and due) or whose lease expired, now leased to owner."""
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT id FROM jobs WHERE not_before <= ? AND (status = 'pending' OR "
                "(status = 'running' AND lease_expires < ?)) ORDER BY id LIMIT 1",
                (now, now)).fetchone()
            if row is None:
                return None
            connection.execute(
                "UPDATE jobs SET status = 'running', lease_owner = ?, lease_expires = ?, "
                "attempt = attempt + 1, started_at = COALESCE(started_at, ?) WHERE id = ?",
                (owner, now + lease_seconds, now, row[0]))
            return self._job(connection, row[0])

    def heartbeat(self, job_id: int, owner: str, lease_seconds: float, now: float) -> bool:
        """Renews the lease; False when the job is no longer this owner's (lost the lease)."""
        with self._transaction() as connection:
            changed = connection.execute(
                "UPDATE jobs SET lease_expires = ? WHERE id = ? AND lease_owner = ? AND "
                "status = 'running'", (now + lease_seconds, job_id, owner)).rowcount
            return changed == 1

    def retry_later(self, job_id: int, owner: str, error: str, not_before: float) -> bool:
        """Puts a failed attempt back in the queue, not to be claimed before not_before."""
        with self._transaction() as connection:
            return connection.execute(
                "UPDATE jobs SET status = 'pending', lease_owner = NULL, lease_expires = NULL, "
                "not_before = ?, error = ? WHERE id = ? AND lease_owner = ? AND status = 'running'",
                (not_before, error, job_id, owner)).rowcount == 1

    def finish(self, job_id: int, owner: str, status: str, now: float,
               result: Optional[Dict[str, Any]] = None, error: Optional[str] = None) -> bool:
        """Ends the owner's job with a final status; False when it holds no lease on it."""
        if status in OPEN_STATUSES or status not in STATUSES:
            raise ValueError(f"a job finishes as one of {STATUSES[2:]}, got {status!r}")
        with self._transaction() as connection:
            return connection.execute(
                "UPDATE jobs SET status = ?, finished_at = ?, result = ?, error = ?, "
                "lease_owner = NULL, lease_expires = NULL WHERE id = ? AND lease_owner = ? "
                "AND status = 'running'",
                (status, now, json.dumps(result or {}), error, job_id, owner)).rowcount == 1

    def jobs(self, model: Optional[str] = None, limit: int = 50) -> List[Job]:
        """Newest first."""
        with self._transaction() as connection:
            ids = connection.execute(
                "SELECT id FROM jobs WHERE (? IS NULL OR model = ?) ORDER BY id DESC LIMIT ?",
                (model, model, limit)).fetchall()
            return [self._job(connection, job_id) for (job_id,) in ids]

    @staticmethod
    def _job(connection: sqlite3.Connection, job_id: int) -> Job:
        row = connection.execute(
            "SELECT id, model, status, triggers, window_end, attempt, lease_owner, lease_expires, "
            "not_before, created_at, started_at, finished_at, result, error FROM jobs WHERE id = ?",
            (job_id,)).fetchone()
        values = list(row)
        values[3] = json.loads(values[3])
        values[12] = json.loads(values[12])
        return Job(*values)

    # Audit log
    def record(self, model: str, action: str, reason: str, now: float,
               figures: Optional[Dict[str, Any]] = None, job_id: Optional[int] = None) -> None:
        """Appends a decision (figures must be JSON: strict, no NaN)."""
        text = json.dumps(figures or {}, allow_nan=False, sort_keys=True)
        with self._transaction() as connection:
            connection.execute(
                "INSERT INTO audit (time, model, action, reason, figures, job_id) "
                "VALUES (?, ?, ?, ?, ?, ?)", (now, model, action, reason, text, job_id))

    def history(self, model: Optional[str] = None, limit: int = 100) -> List[AuditEntry]:
        """Oldest first, the last `limit` decisions."""
        with self._transaction() as connection:
            rows = connection.execute(
                "SELECT id, time, model, action, reason, figures, job_id FROM audit "
                "WHERE (? IS NULL OR model = ?) ORDER BY id DESC LIMIT ?",
                (model, model, limit)).fetchall()
        return [AuditEntry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6])
                for r in reversed(rows)]
