"""Which ML Metadata a home uses (--metadata > $ETRM_METADATA > <home>/ml_metadata.json > SQLite
in the home) and where its password may come from (never the URL)."""
import json
import pathlib

import pytest

from ml.cli import main
from ml.core import metadata
from ml.core.home import Home
from ml.core.metadata_target import MetadataConfigError, known_passwords, resolve_target


def _target(tmp_path, url=None, **environ):
    return resolve_target(tmp_path, url, environ)


def test_sqlite_in_the_home_is_the_default(tmp_path):
    target = _target(tmp_path)
    assert target.is_sqlite and target.sqlite_path == tmp_path / "metadata.sqlite"
    assert target.source == "default"
    assert metadata.connection_for(Home(tmp_path)).sqlite.filename_uri == str(tmp_path / "metadata.sqlite")


def test_the_option_beats_the_variable_which_beats_the_config_file(tmp_path):
    (tmp_path / "ml_metadata.json").write_text(json.dumps({"url": "mysql://c@confighost/cdb"}))
    assert _target(tmp_path).host == "confighost"
    assert _target(tmp_path, ETRM_METADATA="mysql://e@envhost:3307/edb").host == "envhost"
    chosen = _target(tmp_path, "mysql://o@opthost:3308/odb", ETRM_METADATA="mysql://e@envhost/edb")
    assert (chosen.source, chosen.host, chosen.port, chosen.database, chosen.user) == \
        ("--metadata", "opthost", 3308, "odb", "o")
    assert _target(tmp_path, "sqlite", ETRM_METADATA="mysql://e@envhost/edb").is_sqlite


def test_mysql_url_forms_become_ml_metadata_connection_configs(tmp_path):
    tcp = metadata.target_config(_target(tmp_path, "mysql://etrm@db.internal/mlmd",
                                         ETRM_METADATA_PASSWORD="s3cret"))
    assert (tcp.mysql.host, tcp.mysql.port, tcp.mysql.database, tcp.mysql.user,
            tcp.mysql.password, tcp.mysql.skip_db_creation) == \
        ("db.internal", 3306, "mlmd", "etrm", "s3cret", False)
    socket = _target(tmp_path, "mysql://etrm@/mlmd?socket=/run/mysqld/mysqld.sock")
    config = metadata.target_config(socket, read_only=True)
    assert config.mysql.socket == "/run/mysqld/mysqld.sock" and not config.mysql.host
    assert config.mysql.skip_db_creation, "a read must never create the database"
    assert socket.describe() == "mysql://etrm@/mlmd?socket=/run/mysqld/mysqld.sock"
    other = _target(tmp_path, "sqlite:///srv/mlmd/metadata.sqlite")
    assert metadata.target_config(other, read_only=True).sqlite.connection_mode == \
        metadata.metadata_store_pb2.SqliteMetadataSourceConfig.READONLY


@pytest.mark.parametrize("url, problem", [
    ("postgres://u@h/db", "unknown scheme 'postgres'"),
    ("mysql://u@h", "no database"),
    ("mysql://u@h:notaport/db", "the port must be a number"),
    ("mysql://u@h:0/db", "the port must be a number"),
    ("mysql://h:3306/db", "no user"),
    ("mysql://u@/db", "no host"),
    ("mysql://u@h:3306/db?socket=/s", "not both"),
    ("mysql://u@h/db?sslmode=on", "unknown parameter(s) sslmode"),
    ("mysql://u@h/my-db", "must be 1-64 letters"),
    ("sqlite://relative/path", "sqlite:///absolute/path"),
])
def test_a_bad_url_is_one_line_naming_the_option(tmp_path, url, problem):
    with pytest.raises(MetadataConfigError) as raised:
        _target(tmp_path, url)
    assert str(raised.value).startswith(f"--metadata {url}: ") and problem in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_password_in_the_url_is_refused_without_echoing_it(tmp_path):
    for url in ("mysql://etrm:hunter2@h/db", "mysql://etrm:@h/db"):
        with pytest.raises(MetadataConfigError) as raised:
            _target(tmp_path, url)
        assert "password in the URL is refused" in str(raised.value)
        assert "hunter2" not in str(raised.value) and "ETRM_METADATA_PASSWORD" in str(raised.value)
    with pytest.raises(MetadataConfigError, match=r"^\$ETRM_METADATA: a password in the URL"):
        _target(tmp_path, ETRM_METADATA="mysql://etrm:hunter2@h/db")


def test_the_password_comes_from_the_variable_or_a_file(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("from-a-file\n")
    url = "mysql://etrm@h/db"
    assert _target(tmp_path, url, ETRM_METADATA_PASSWORD="from-env",
                   ETRM_METADATA_PASSWORD_FILE=str(secret)).password == "from-env"
    assert _target(tmp_path, url, ETRM_METADATA_PASSWORD_FILE=str(secret)).password == "from-a-file"
    (tmp_path / "ml_metadata.json").write_text(json.dumps({"url": url, "password_file": str(secret)}))
    target = _target(tmp_path)
    assert target.password == "from-a-file" and "from-a-file" in known_passwords()
    assert "from-a-file" not in repr(target) and "from-a-file" not in target.describe()
    assert _target(tmp_path, url).password == "", "no password: the server decides (e.g. socket auth)"


def test_unusable_password_files_and_config_files_are_named(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(MetadataConfigError, match=r"^\$ETRM_METADATA_PASSWORD_FILE .*nowhere: "
                                                  r"cannot read the password file"):
        _target(tmp_path, "mysql://u@h/db", ETRM_METADATA_PASSWORD_FILE=str(missing))
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(MetadataConfigError, match="the password file is empty"):
        _target(tmp_path, "mysql://u@h/db", ETRM_METADATA_PASSWORD_FILE=str(tmp_path / "empty"))
    config = tmp_path / "ml_metadata.json"
    for text, problem in [("{not json", "not a readable JSON file"),
                          (json.dumps({"url": "mysql://u@h/db", "password": "x"}),
                           "a password is not kept in the config file"),
                          (json.dumps({"url": "mysql://u@h/db", "pasword_file": "/p"}),
                           "unknown key(s) pasword_file"),
                          (json.dumps(["mysql://u@h/db"]), 'expected {"url"')]:
        config.write_text(text)
        with pytest.raises(MetadataConfigError) as raised:
            _target(tmp_path)
        assert str(raised.value).startswith(str(config)) and problem in str(raised.value)


@pytest.mark.parametrize("command", [["runs"], ["models"], ["lineage", "etrm_risk_model"],
                                     ["run", "--no-train"], ["continuous", "status"]])
def test_every_metadata_command_refuses_a_bad_option_in_one_line(tmp_path, capsys, command):
    with pytest.raises(SystemExit) as exited:
        main(command + ["--home", str(tmp_path), "--metadata", "mysql://etrm:pw@h/db"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --metadata: a password in the URL is refused")
    assert err.count("\n") == 1 and "pw@" not in err
    assert not (tmp_path / "metadata.sqlite").exists()


def test_home_resolution_carries_the_option(tmp_path, monkeypatch):
    monkeypatch.setenv("ETRM_METADATA", "mysql://e@envhost/edb")
    assert Home(tmp_path).metadata.host == "envhost"
    assert Home.resolve(tmp_path, "mysql://o@opthost/odb").metadata.host == "opthost"
    assert Home.resolve(pathlib.Path(tmp_path)).metadata.source == "$ETRM_METADATA"


def test_passwords_read_are_blanked_in_the_log_file_and_on_the_terminal(tmp_path):
    import io
    import logging

    from ml.core import logs

    _target(tmp_path, "mysql://u@h/db", ETRM_METADATA_PASSWORD='pa"ss-word')
    terminal = io.StringIO()
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level  # earlier tests of the session may have raised absl's level
    absl_logger.setLevel(logging.INFO)
    try:
        written, config = _log_password_lines(tmp_path, terminal)
    finally:
        absl_logger.setLevel(level)
    assert 'password: "pa\\"ss-word"' in str(config.mysql), "the form TFX logs"
    assert "pa\"ss-word" not in written and 'pa\\"ss-word' not in written
    assert written.count("***") == 4 and "Using connection config" in written


def _log_password_lines(tmp_path, terminal):
    import logging

    from ml.core import logs

    with logs.terminal(Home(tmp_path), verbose=True, stream=terminal) as active:
        config = metadata.target_config(_target(tmp_path, "mysql://u@h/db",
                                                ETRM_METADATA_PASSWORD='pa"ss-word'))
        logging.getLogger("absl").info("Using connection config:\n %s", config.mysql)
        logging.getLogger("absl").error("plain %s", 'pa"ss-word')
    return active.log_path.read_text() + terminal.getvalue(), config
