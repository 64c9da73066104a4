"""Deployment state of each pushed version, in the home's lifecycle.sqlite beside the job queue.

Why stored: a canary analysis and a post-promotion guard span days of intervals; a loop killed
and restarted must continue them where they were (intervals already analysed, the reference
figures of the previous stable), and `etrm continuous promote` from another process must see
the verdict. One row per (model, version); each change is one transaction, and phase changes
are compare-and-swap on the phase so two loops cannot both act on one deployment.

Phases: canary (under analysis) -> promoted (stable; guarded for a while) -> superseded (a newer
version promoted) or rolled_back; canary -> withdrawn, or superseded by a newer push.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
import sqlite3
from typing import Any, Dict, List, Optional

from ml.core import sqlite_db

PHASES = ("canary", "promoted", "withdrawn", "rolled_back", "superseded")

SCHEMA = """
CREATE TABLE IF NOT EXISTS deployments (
    id INTEGER PRIMARY KEY AUTOINCREMENT, model TEXT NOT NULL, version INTEGER NOT NULL,
    job_id INTEGER, phase TEXT NOT NULL, previous_stable INTEGER, started_at REAL NOT NULL,
    promoted_at REAL, finished_at REAL, intervals TEXT NOT NULL DEFAULT '[]', verdict TEXT,
    figures TEXT NOT NULL DEFAULT '{}', reference TEXT NOT NULL DEFAULT '{}',
    guard_checks TEXT NOT NULL DEFAULT '[]', guard_verdict TEXT, updated_at REAL NOT NULL,
    UNIQUE (model, version));
"""
_COLUMNS = ("id", "model", "version", "job_id", "phase", "previous_stable", "started_at",
            "promoted_at", "finished_at", "intervals", "verdict", "figures", "reference",
            "guard_checks", "guard_verdict", "updated_at")
_JSON_COLUMNS = ("intervals", "figures", "reference", "guard_checks")


@dataclasses.dataclass(frozen=True)
class Deployment:
    """One pushed version's way through canary, promotion and guard."""

    id: int
    model: str
    version: int
    job_id: Optional[int]
    phase: str
    previous_stable: Optional[int]
    started_at: float
    promoted_at: Optional[float]
    finished_at: Optional[float]
    intervals: List[Dict[str, Any]]
    verdict: Optional[str]
    figures: Dict[str, Any]
    reference: Dict[str, Any]
    guard_checks: List[Dict[str, Any]]
    guard_verdict: Optional[str]
    updated_at: float


def _json(value: Any) -> str:
    return json.dumps(value, allow_nan=False, sort_keys=True)


class DeploymentStore:
    """The deployments table of one lifecycle database (created on first use)."""

    def __init__(self, path: pathlib.Path):
        self.path = pathlib.Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        sqlite_db.enable_wal(self.path)
        with self._transaction() as connection:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    connection.execute(statement)

    def _transaction(self):
        return sqlite_db.transaction(self.path)

    @staticmethod
    def _row(connection: sqlite3.Connection, where: str, values: tuple) -> Optional[Deployment]:
        row = connection.execute(f"SELECT {', '.join(_COLUMNS)} FROM deployments WHERE {where} "
                                 "ORDER BY id DESC LIMIT 1", values).fetchone()
        if row is None:
            return None
        fields = dict(zip(_COLUMNS, row))
        for name in _JSON_COLUMNS:
            fields[name] = json.loads(fields[name])
        return Deployment(**fields)

    def open(self, model: str, version: int, phase: str, now: float,
             job_id: Optional[int] = None, previous_stable: Optional[int] = None
             ) -> Deployment:
        """The version's deployment, created in `phase` unless it exists (a replayed push).

        A new canary supersedes the model's older canary still under analysis: the push moved
        the label away from it."""
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
        with self._transaction() as connection:
            existing = self._row(connection, "model = ? AND version = ?", (model, int(version)))
            if existing is not None:
                return existing
            if phase == "canary":
                connection.execute(
                    "UPDATE deployments SET phase = 'superseded', finished_at = ?, updated_at = ? "
                    "WHERE model = ? AND phase = 'canary'", (now, now, model))
            connection.execute(
                "INSERT INTO deployments (model, version, job_id, phase, previous_stable, "
                "started_at, promoted_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (model, int(version), job_id, phase, previous_stable, now,
                 now if phase == "promoted" else None, now))
            return self._row(connection, "model = ? AND version = ?", (model, int(version)))

    def get(self, model: str, version: int) -> Optional[Deployment]:
        with self._transaction() as connection:
            return self._row(connection, "model = ? AND version = ?", (model, int(version)))

    def in_phase(self, model: str, phase: str) -> Optional[Deployment]:
        """The model's newest deployment in `phase`."""
        with self._transaction() as connection:
            return self._row(connection, "model = ? AND phase = ?", (model, phase))

    def guarded(self, model: str) -> Optional[Deployment]:
        """The promoted version whose guard has not concluded yet."""
        with self._transaction() as connection:
            return self._row(connection, "model = ? AND phase = 'promoted' AND "
                             "guard_verdict IS NULL", (model,))

    def all(self, model: str) -> List[Deployment]:
        """Oldest first."""
        with self._transaction() as connection:
            ids = connection.execute("SELECT id FROM deployments WHERE model = ? ORDER BY id",
                                     (model,)).fetchall()
            return [self._row(connection, "id = ?", (row_id,)) for (row_id,) in ids]

    def add_interval(self, deployment_id: int, analysed: int, figures: Dict[str, Any],
                     now: float) -> bool:
        """Appends interval number `analysed` (0-based); False if another loop was first."""
        with self._transaction() as connection:
            row = self._row(connection, "id = ?", (deployment_id,))
            if row is None or len(row.intervals) != analysed or row.phase != "canary":
                return False
            connection.execute("UPDATE deployments SET intervals = ?, updated_at = ? WHERE id = ?",
                               (_json(row.intervals + [figures]), now, deployment_id))
            return True

    def set_verdict(self, deployment_id: int, verdict: str, figures: Dict[str, Any],
                    now: float) -> None:
        with self._transaction() as connection:
            connection.execute(
                "UPDATE deployments SET verdict = ?, figures = ?, updated_at = ? WHERE id = ?",
                (verdict, _json(figures), now, deployment_id))

    def set_phase(self, deployment_id: int, phase: str, now: float,
                  expected: Optional[str] = None) -> bool:
        """Moves the deployment to `phase` (only from `expected` when given)."""
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
        finished = now if phase in ("withdrawn", "rolled_back", "superseded") else None
        with self._transaction() as connection:
            return connection.execute(
                "UPDATE deployments SET phase = ?, finished_at = COALESCE(?, finished_at), "
                "updated_at = ? WHERE id = ? AND (? IS NULL OR phase = ?)",
                (phase, finished, now, deployment_id, expected, expected)).rowcount == 1

    def promoted(self, model: str, version: int, now: float, previous_stable: Optional[int],
                 reference: Optional[Dict[str, Any]] = None, guard: bool = True,
                 job_id: Optional[int] = None) -> Deployment:
        """Records `version` as the model's stable: its row promoted (created when the version
        was never a tracked canary, e.g. `promote --version`), the previous promoted row
        superseded. `guard=False` (a rollback target, the first version) starts no guard."""
        with self._transaction() as connection:
            connection.execute(
                "UPDATE deployments SET phase = 'superseded', finished_at = ?, updated_at = ? "
                "WHERE model = ? AND phase = 'promoted' AND version != ?",
                (now, now, model, int(version)))
            existing = self._row(connection, "model = ? AND version = ?", (model, int(version)))
            verdict = None if guard else "not_guarded"
            if existing is None:
                connection.execute(
                    "INSERT INTO deployments (model, version, job_id, phase, previous_stable, "
                    "started_at, promoted_at, reference, guard_verdict, updated_at) "
                    "VALUES (?, ?, ?, 'promoted', ?, ?, ?, ?, ?, ?)",
                    (model, int(version), job_id, previous_stable, now, now,
                     _json(reference or {}), verdict, now))
            else:
                connection.execute(
                    "UPDATE deployments SET phase = 'promoted', previous_stable = ?, "
                    "promoted_at = ?, finished_at = NULL, reference = ?, guard_checks = '[]', "
                    "guard_verdict = ?, updated_at = ? WHERE id = ?",
                    (previous_stable, now, _json(reference or {}), verdict, now, existing.id))
            return self._row(connection, "model = ? AND version = ?", (model, int(version)))

    def set_reference(self, deployment_id: int, reference: Dict[str, Any], now: float) -> None:
        with self._transaction() as connection:
            connection.execute("UPDATE deployments SET reference = ?, updated_at = ? WHERE id = ?",
                               (_json(reference), now, deployment_id))

    def add_guard_check(self, deployment_id: int, checked: int, figures: Dict[str, Any],
                        now: float) -> bool:
        """Appends guard check number `checked`; False if another loop was first."""
        with self._transaction() as connection:
            row = self._row(connection, "id = ?", (deployment_id,))
            if row is None or len(row.guard_checks) != checked or row.guard_verdict is not None:
                return False
            connection.execute(
                "UPDATE deployments SET guard_checks = ?, updated_at = ? WHERE id = ?",
                (_json(row.guard_checks + [figures]), now, deployment_id))
            return True

    def set_guard_verdict(self, deployment_id: int, verdict: str, now: float) -> bool:
        """Concludes the guard once (False when it had concluded already)."""
        with self._transaction() as connection:
            return connection.execute(
                "UPDATE deployments SET guard_verdict = ?, updated_at = ? WHERE id = ? AND "
                "guard_verdict IS NULL", (verdict, now, deployment_id)).rowcount == 1

    def mark_job_rolled_back(self, job_id: int) -> bool:
        """Marks a succeeded job rolled_back in the jobs table, for stores that have no
        `mark_rolled_back` of their own (the column and status belong to LifecycleStore)."""
        with self._transaction() as connection:
            return connection.execute(
                "UPDATE jobs SET status = 'rolled_back' WHERE id = ? AND status = 'succeeded'",
                (job_id,)).rowcount == 1
