"""The home's small SQLite databases (lifecycle jobs, deployments): one way to open them.

Each change is one `BEGIN IMMEDIATE` transaction on a fresh connection (processes share the
file: the loop, `etrm continuous status`, a promotion by hand), in WAL mode so readers never
block the writer.
"""
from __future__ import annotations

import contextlib
import pathlib
import sqlite3
import time
from typing import Iterator


def connect(path: pathlib.Path) -> sqlite3.Connection:
    """A connection that waits up to 30 s for another writer and leaves transactions to us."""
    return sqlite3.connect(path, timeout=30.0, isolation_level=None)


def enable_wal(path: pathlib.Path, patience: float = 30.0) -> None:
    """WAL journal, retried: SQLite answers 'database is locked' at once, without its busy
    wait, to a process switching a new file to WAL while another one does the same."""
    deadline = time.monotonic() + patience
    while True:
        connection = connect(path)
        try:
            if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        finally:
            connection.close()
        time.sleep(0.02)


@contextlib.contextmanager
def transaction(path: pathlib.Path) -> Iterator[sqlite3.Connection]:
    """One write transaction: committed when the block ends, rolled back if it raises."""
    connection = connect(path)
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
