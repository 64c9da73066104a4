"""Continuous learning's durable state: registrations, one job queue, the audit log (SQLite).

Why SQLite in the home: the loop, `etrm continuous status` and the dashboard run in different
processes and must see the same jobs; a loop killed with -9 must find its job again. Each
change is one transaction (WAL journal, so readers never block the loop):

- a trigger for a model with a pending or running job is merged into it (its reason recorded),
  so there is one job per model at a time; a job's idempotency key (model, window end) makes a
  second job for the same window impossible;
- a worker claims a job by writing its lease (owner, expiry) in the same UPDATE that checks no
  live lease exists, and renews it by heartbeat; a job whose lease expired (its worker died) is
  claimable again, with its attempt count kept; a worker that stops on request releases the
  job without spending the attempt, and its checkpoints (job.result) stay for the next one;
- one loop per home holds the loop lease (compare-and-swap on owner and expiry);
- a model's cron state (the last slot fired) and the monitoring-alert cursor change in the
  same transaction as the trigger they produce, so a loop killed in between neither fires
  twice nor drops an alert.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
import sqlite3
from typing import Any, Dict, List, Optional

from ml.core import sqlite_db
from ml.lifecycle.config import SPEC_SCHEDULE, RetrainingConfig

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
CREATE TABLE IF NOT EXISTS loop_lease (
    name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL, acquired_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS schedules (model TEXT PRIMARY KEY, last_slot REAL NOT NULL);
CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS loop_settings (
    name TEXT PRIMARY KEY, settings TEXT NOT NULL, recorded_at REAL NOT NULL);
"""
# Columns added after the first release; an existing lifecycle.sqlite gets them on open.
ADDED_JOB_COLUMNS = {"failures": "INTEGER NOT NULL DEFAULT 0"}
LOOP_LEASE = "loop"
ALERT_CURSOR = "monitoring_alerts"


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
    failures: int = 0             # attempts that raised (what max_attempts and backoff count)


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


def registered_schedule(home, model: str) -> str:
    """The retrain_schedule of the RetrainingConfig registered for model (a serving name) in
    the home, else SPEC_SCHEDULE; a home without a lifecycle database is not given one."""
    if not home.lifecycle_db.is_file():
        return SPEC_SCHEDULE
    config = LifecycleStore(home.lifecycle_db).registrations().get(model)
    return config.retrain_schedule if config is not None else SPEC_SCHEDULE


class LifecycleStore:
    """The lifecycle database of one project home (created on first use)."""

    def __init__(self, path: pathlib.Path):
        self.path = pathlib.Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._enable_wal()
        # Under the write lock: processes opening a new file at once (a loop and a status
        # query) must not both add a column.
        with self._transaction() as connection:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    connection.execute(statement)
            present = {row[1] for row in connection.execute("PRAGMA table_info(jobs)")}
            for column, declaration in ADDED_JOB_COLUMNS.items():
                if column not in present:
                    connection.execute(f"ALTER TABLE jobs ADD COLUMN {column} {declaration}")

    def _enable_wal(self) -> None:
        sqlite_db.enable_wal(self.path)

    def _connect(self) -> sqlite3.Connection:
        return sqlite_db.connect(self.path)

    def _transaction(self):
        return sqlite_db.transaction(self.path)

    # Registrations
    def register(self, model: str, config: RetrainingConfig, now: float) -> Optional[RetrainingConfig]:
        """Registers (or replaces) a model's RetrainingConfig under its serving name; returns
        the config it replaced. The cron baseline is set on first registration only, so a
        re-registration at every start (the spec's Quick Start) neither skips nor repeats a slot."""
        with self._transaction() as connection:
            before = connection.execute("SELECT config FROM registrations WHERE model = ?",
                                        (model,)).fetchone()
            connection.execute(
                "INSERT OR IGNORE INTO schedules (model, last_slot) VALUES (?, ?)", (model, now))
            connection.execute(
                "INSERT INTO registrations (model, config, registered_at) VALUES (?, ?, ?) "
                "ON CONFLICT (model) DO UPDATE SET config = excluded.config, "
                "registered_at = excluded.registered_at",
                (model, json.dumps(config.to_dict()), now))
        return RetrainingConfig.from_dict(json.loads(before[0])) if before else None

    def registrations(self) -> Dict[str, RetrainingConfig]:
        with self._transaction() as connection:
            rows = connection.execute("SELECT model, config FROM registrations ORDER BY model")
            return {model: RetrainingConfig.from_dict(json.loads(config)) for model, config in rows}

    # Jobs
    def trigger(self, model: str, kind: str, reason: str, window_end: str, now: float, *,
                schedule_slot: Optional[float] = None, alert_cursor: Optional[int] = None,
                figures: Optional[Dict[str, Any]] = None, reopen_failed: bool = False) -> Job:
        """Queues a job for the model, or merges the trigger into its pending or running job.

        A job already finished for the same window is returned as it is (the trigger is not
        added: that window was trained), except that reopen_failed (a manual trigger) puts a
        failed job for the window back in the queue with fresh retries. schedule_slot records
        the cron slot this trigger fires and alert_cursor the last monitoring alert it
        consumed, in the same transaction.
        """
        entry = {"kind": kind, "reason": reason, "time": now}
        if figures:
            entry["figures"] = figures
        with self._transaction() as connection:
            if schedule_slot is not None:
                self._set_schedule(connection, model, schedule_slot)
            if alert_cursor is not None:
                self._set_cursor(connection, ALERT_CURSOR, alert_cursor)
            open_job = connection.execute(
                "SELECT id, triggers FROM jobs WHERE model = ? AND status IN ('pending', 'running')",
                (model,)).fetchone()
            if open_job is not None:
                triggers = json.loads(open_job[1]) + [entry]
                connection.execute("UPDATE jobs SET triggers = ? WHERE id = ?",
                                   (json.dumps(triggers), open_job[0]))
                job_id = open_job[0]
            else:
                done = connection.execute("SELECT id, status, triggers FROM jobs "
                                          "WHERE idempotency_key = ?",
                                          (f"{model}@{window_end}",)).fetchone()
                if done is not None and reopen_failed and done[1] == "failed":
                    connection.execute(
                        "UPDATE jobs SET status = 'pending', triggers = ?, failures = 0, attempt = 0, "
                        "not_before = 0, finished_at = NULL WHERE id = ?",
                        (json.dumps(json.loads(done[2]) + [entry]), done[0]))
                    return self._job(connection, done[0])
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
                "not_before = ?, error = ?, failures = failures + 1 "
                "WHERE id = ? AND lease_owner = ? AND status = 'running'",
                (not_before, error, job_id, owner)).rowcount == 1

    def update_result(self, job_id: int, owner: str, result: Dict[str, Any]) -> bool:
        """Replaces the running job's result (checkpoints, progress); False without the lease."""
        text = json.dumps(result, allow_nan=False, sort_keys=True)
        with self._transaction() as connection:
            return connection.execute(
                "UPDATE jobs SET result = ? WHERE id = ? AND lease_owner = ? AND status = 'running'",
                (text, job_id, owner)).rowcount == 1

    def release(self, job_id: int, owner: str) -> bool:
        """Hands an interrupted job back to the queue: pending again, due at once, its attempt
        not spent (the claim's increment is undone) and its checkpoints kept."""
        with self._transaction() as connection:
            return connection.execute(
                "UPDATE jobs SET status = 'pending', lease_owner = NULL, lease_expires = NULL, "
                "not_before = 0, attempt = MAX(attempt - 1, 0) "
                "WHERE id = ? AND lease_owner = ? AND status = 'running'",
                (job_id, owner)).rowcount == 1

    def mark_rolled_back(self, job_id: int, now: Optional[float] = None) -> bool:
        """A succeeded job whose pushed version was rolled back; False for any other status."""
        with self._transaction() as connection:
            return connection.execute(
                "UPDATE jobs SET status = 'rolled_back', finished_at = COALESCE(?, finished_at) "
                "WHERE id = ? AND status = 'succeeded'", (now, job_id)).rowcount == 1

    def job(self, job_id: int) -> Optional[Job]:
        with self._transaction() as connection:
            if connection.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)).fetchone() is None:
                return None
            return self._job(connection, job_id)

    def open_job(self, model: str) -> Optional[Job]:
        """The model's pending or running job, if any (there is at most one)."""
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT id FROM jobs WHERE model = ? AND status IN ('pending', 'running')",
                (model,)).fetchone()
            return self._job(connection, row[0]) if row else None

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
            "not_before, created_at, started_at, finished_at, result, error, failures "
            "FROM jobs WHERE id = ?",
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

    # The loop lease: one live loop per home
    def acquire_loop_lease(self, owner: str, seconds: float, now: float) -> bool:
        """Takes (or renews) the loop lease when it is free, expired or already owner's."""
        with self._transaction() as connection:
            row = connection.execute("SELECT owner, expires FROM loop_lease WHERE name = ?",
                                     (LOOP_LEASE,)).fetchone()
            if row is not None and row[0] != owner and row[1] >= now:
                return False
            acquired_at = now if row is None or row[0] != owner else None
            connection.execute(
                "INSERT INTO loop_lease (name, owner, expires, acquired_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
                "expires = excluded.expires, acquired_at = COALESCE(?, loop_lease.acquired_at)",
                (LOOP_LEASE, owner, now + seconds, now, acquired_at))
            return True

    def renew_loop_lease(self, owner: str, seconds: float, now: float) -> bool:
        """Extends owner's lease; False when another loop took it (this one was presumed dead)."""
        with self._transaction() as connection:
            return connection.execute(
                "UPDATE loop_lease SET expires = ? WHERE name = ? AND owner = ?",
                (now + seconds, LOOP_LEASE, owner)).rowcount == 1

    def release_loop_lease(self, owner: str) -> bool:
        with self._transaction() as connection:
            return connection.execute("DELETE FROM loop_lease WHERE name = ? AND owner = ?",
                                      (LOOP_LEASE, owner)).rowcount == 1

    def record_loop_settings(self, settings: Dict[str, Any], now: float) -> None:
        """The settings of the loop that took the lease, so a status read from another process
        (which has its own defaults) computes intervals and deadlines as the loop does."""
        with self._transaction() as connection:
            connection.execute(
                "INSERT INTO loop_settings (name, settings, recorded_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET settings = excluded.settings, "
                "recorded_at = excluded.recorded_at",
                (LOOP_LEASE, json.dumps(settings, sort_keys=True, allow_nan=False), now))

    def loop_settings(self) -> Optional[Dict[str, Any]]:
        """What record_loop_settings stored last (None before a loop ever ran)."""
        with self._transaction() as connection:
            row = connection.execute("SELECT settings FROM loop_settings WHERE name = ?",
                                     (LOOP_LEASE,)).fetchone()
        return json.loads(row[0]) if row else None

    def loop_lease(self) -> Optional[Dict[str, Any]]:
        """Who holds the loop lease: {"owner", "expires", "acquired_at"}, or None."""
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT owner, expires, acquired_at FROM loop_lease WHERE name = ?",
                (LOOP_LEASE,)).fetchone()
        return {"owner": row[0], "expires": row[1], "acquired_at": row[2]} if row else None

    # Cron state and the monitoring-alert cursor
    def schedule_slot(self, model: str) -> Optional[float]:
        """The last cron slot fired for the model (its registration time before the first)."""
        with self._transaction() as connection:
            row = connection.execute("SELECT last_slot FROM schedules WHERE model = ?",
                                     (model,)).fetchone()
        return row[0] if row else None

    def set_schedule_slot(self, model: str, slot: float) -> None:
        with self._transaction() as connection:
            self._set_schedule(connection, model, slot)

    def alert_cursor(self) -> int:
        """The id of the last monitoring alert the loop has read (0 before the first)."""
        with self._transaction() as connection:
            row = connection.execute("SELECT value FROM cursors WHERE name = ?",
                                     (ALERT_CURSOR,)).fetchone()
        return row[0] if row else 0

    def set_alert_cursor(self, alert_id: int) -> None:
        with self._transaction() as connection:
            self._set_cursor(connection, ALERT_CURSOR, alert_id)

    @staticmethod
    def _set_schedule(connection: sqlite3.Connection, model: str, slot: float) -> None:
        connection.execute(
            "INSERT INTO schedules (model, last_slot) VALUES (?, ?) ON CONFLICT (model) "
            "DO UPDATE SET last_slot = MAX(last_slot, excluded.last_slot)", (model, slot))

    @staticmethod
    def _set_cursor(connection: sqlite3.Connection, name: str, value: int) -> None:
        connection.execute(
            "INSERT INTO cursors (name, value) VALUES (?, ?) ON CONFLICT (name) "
            "DO UPDATE SET value = MAX(value, excluded.value)", (name, int(value)))
