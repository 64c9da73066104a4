"""A MariaDB server for the tests that keep ML Metadata on MySQL/MariaDB (conftest imports the
fixtures). The server is the one `.ci/run` started ($ETRM_TEST_MARIADB_DATADIR), else a
throwaway one this session starts and stops. Without MariaDB installed the tests fail under
CI=true (`.ci/run` installs it) and are skipped, saying so, elsewhere."""
from __future__ import annotations

import os
import pathlib
import re
import shutil

import pytest

from scripts import mariadb_server

DATADIR_ENV_VAR = "ETRM_TEST_MARIADB_DATADIR"


def _installed() -> bool:
    try:
        mariadb_server.binary("mariadbd")
        return True
    except FileNotFoundError:
        return False


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory):
    """The session's MariaDB server (scripts/mariadb_server.Server): `url(db)`, `password_file`,
    `environment(db)` (ETRM_METADATA and ETRM_METADATA_PASSWORD_FILE for a database)."""
    given = os.environ.get(DATADIR_ENV_VAR)
    if given:
        server = mariadb_server.running(pathlib.Path(given))
        if server is None:
            pytest.fail(f"${DATADIR_ENV_VAR}={given} names no running server "
                        "(scripts/mariadb_server.py start DATADIR)")
        yield server
        return
    if not _installed():
        message = mariadb_server.INSTALL_HINT
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message + " (these tests fail instead of skipping under CI=true)")
    datadir = pathlib.Path(tmp_path_factory.mktemp("mariadb"))
    server = mariadb_server.start(datadir)
    try:
        yield server
    finally:
        mariadb_server.stop(datadir)
        shutil.rmtree(datadir, ignore_errors=True)


@pytest.fixture
def mariadb_metadata(mariadb, request, monkeypatch):
    """A database of its own for one test, named after it, chosen through the environment as a
    user would ($ETRM_METADATA + $ETRM_METADATA_PASSWORD_FILE); yields its URL."""
    database = "etrm_" + re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:50]
    for name, value in mariadb.environment(database).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("ETRM_METADATA_PASSWORD", raising=False)
    return mariadb.url(database)


def mariadb_password(server) -> str:
    return server.password_file.read_text().strip()
