"""ML Metadata on MariaDB without a pipeline run: the hand-built lineage store
(tests/lineage_fixtures) written to MariaDB reads back through `etrm lineage`, `etrm models`
and `etrm runs` exactly as from SQLite; reads never create a database; a wrong password or a
missing database is one line that names the server and never shows the password."""
import json
import subprocess

import pytest

from ml.cli import main
from ml.core import metadata
from ml.core.home import Home
from scripts import mariadb_server
from tests.lineage_fixtures import MODEL, build_home
from tests.mariadb_fixtures import mariadb_password

pytestmark = pytest.mark.network
VOLATILE = ("time", "_at", "duration", "started", "ended")


def _stable(value):
    """The JSON without timestamps and durations (the two stores were written moments apart)."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if not any(w in k for w in VOLATILE)}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def _read(capsys, *command):
    code = main(list(command))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _databases(server):
    listed = subprocess.run(
        [mariadb_server.binary("mariadb"), "--no-defaults", f"--socket={server.socket_path}",
         "--user=" + __import__("getpass").getuser(), "-N", "-e", "SHOW DATABASES"],
        check=True, capture_output=True, text=True)
    return set(listed.stdout.split())


def test_the_lineage_store_reads_the_same_from_mariadb_as_from_sqlite(tmp_path, mariadb,
                                                                      mariadb_metadata, monkeypatch,
                                                                      capsys):
    home = Home.resolve(tmp_path)
    assert not home.metadata.is_sqlite
    build_home(tmp_path, metadata.connection_for(home))
    build_home(tmp_path)  # the same store in tmp_path/metadata.sqlite
    for command in (["lineage", MODEL, "--version", "2", "--json"], ["lineage", MODEL, "--json"],
                    ["lineage", "--span", "3", "--json"], ["models", "--json"], ["runs", "--json"]):
        code, on_mariadb, err = _read(capsys, *command, "--home", str(tmp_path))
        assert (code, err) == (0, "")
        code, on_sqlite, err = _read(capsys, *command, "--home", str(tmp_path), "--metadata", "sqlite")
        assert (code, err) == (0, "")
        assert _stable(json.loads(on_mariadb)) == _stable(json.loads(on_sqlite)), command
    assert json.loads(on_mariadb)[0]["status"] == "succeeded"


def test_reads_never_create_a_database(tmp_path, mariadb, monkeypatch, capsys):
    url = mariadb.url("etrm_never_created")
    monkeypatch.setenv("ETRM_METADATA_PASSWORD_FILE", str(mariadb.password_file))
    for command in (["runs"], ["models"], ["lineage", MODEL]):
        code, out, err = _read(capsys, *command, "--home", str(tmp_path), "--metadata", url)
        assert code == 2 and out == ""
        assert err == (f"error: cannot read ML Metadata at {url}: database etrm_never_created "
                       "does not exist (a pipeline run creates it)\n")
    assert "etrm_never_created" not in _databases(mariadb)


def test_a_wrong_password_is_one_line_without_the_password(tmp_path, mariadb, mariadb_metadata,
                                                           monkeypatch, capsys):
    metadata.store_for(Home(tmp_path))  # the database exists
    monkeypatch.setenv("ETRM_METADATA_PASSWORD", "not-" + mariadb_password(mariadb))
    code, out, err = _read(capsys, "runs", "--home", str(tmp_path))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"error: cannot read ML Metadata at {mariadb_metadata}: cannot log in as etrm")
    assert mariadb_password(mariadb) not in err


def test_an_empty_database_has_no_runs(tmp_path, mariadb, mariadb_metadata, capsys):
    metadata.store_for(Home(tmp_path))
    assert _read(capsys, "runs", "--home", str(tmp_path)) == (
        0, f"no pipeline runs in {mariadb_metadata}\n", "")


def test_the_unix_socket_reaches_the_same_database(tmp_path, mariadb, mariadb_metadata, capsys):
    build_home(tmp_path, metadata.connection_for(Home(tmp_path)))
    database = mariadb_metadata.rsplit("/", 1)[1]
    by_socket = f"mysql://etrm@/{database}?socket={mariadb.socket_path}"
    code, out, err = _read(capsys, "runs", "--json", "--home", str(tmp_path), "--metadata", by_socket)
    assert (code, err) == (0, "")
    code, by_tcp, _ = _read(capsys, "runs", "--json", "--home", str(tmp_path))
    assert json.loads(out) == json.loads(by_tcp) and len(json.loads(out)) == 7
