"""Where a home's ML Metadata lives: SQLite in the home by default, or a MySQL/MariaDB server.

Chosen, first match wins, by `--metadata URL`, `$ETRM_METADATA`, the home's `ml_metadata.json`
(`{"url": "...", "password_file": "..."}`), else `<home>/metadata.sqlite`. URLs:

    sqlite                              the home's metadata.sqlite
    sqlite:///abs/path/metadata.sqlite  another SQLite file
    mysql://user@host:port/db           MySQL or MariaDB over TCP (port default 3306)
    mysql://user@/db?socket=/path.sock  over a Unix socket

The password never comes from the URL (a URL shows in `ps`, shell history and logs): it is
`$ETRM_METADATA_PASSWORD`, else the file named by `$ETRM_METADATA_PASSWORD_FILE`, else the
config file's `password_file`. Every password read is remembered so the log files can blank it
(`ml.core.logs`). No ml_metadata import here: the CLI validates the option before TensorFlow.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
import re
import urllib.parse
from typing import Mapping, Optional, Set

METADATA_ENV_VAR = "ETRM_METADATA"
PASSWORD_ENV_VAR = "ETRM_METADATA_PASSWORD"
PASSWORD_FILE_ENV_VAR = "ETRM_METADATA_PASSWORD_FILE"
CONFIG_FILE_NAME = "ml_metadata.json"
SQLITE_FILE_NAME = "metadata.sqlite"
DEFAULT_MYSQL_PORT = 3306
REDACTED = "***"

_known_passwords: Set[str] = set()


class MetadataConfigError(ValueError):
    """A metadata option, variable or config file that cannot be used; the message names it."""


def known_passwords() -> Set[str]:
    """Every metadata password this process has read (what log output must never show)."""
    return set(_known_passwords)


@dataclasses.dataclass(frozen=True)
class MetadataTarget:
    """One ML Metadata database. `password` stays out of repr and of `describe()`."""

    kind: str  # "sqlite" or "mysql"
    source: str  # what chose it: --metadata, $ETRM_METADATA, a config file, or the default
    sqlite_path: Optional[pathlib.Path] = None
    host: str = ""
    port: int = 0
    database: str = ""
    user: str = ""
    socket: str = ""
    password: str = dataclasses.field(default="", repr=False, compare=False)

    @property
    def is_sqlite(self) -> bool:
        return self.kind == "sqlite"

    def describe(self) -> str:
        """The target for messages and run summaries, never with the password."""
        if self.is_sqlite:
            return str(self.sqlite_path)
        if self.socket:
            return f"mysql://{self.user}@/{self.database}?socket={self.socket}"
        return f"mysql://{self.user}@{self.host}:{self.port}/{self.database}"


def resolve_target(root: pathlib.Path, url: Optional[str] = None,
                   environ: Optional[Mapping[str, str]] = None) -> MetadataTarget:
    """The metadata target of the home at root; MetadataConfigError names the bad input."""
    import os

    environ = os.environ if environ is None else environ
    default_sqlite = root / SQLITE_FILE_NAME
    if url not in (None, ""):
        return parse_url(url, "--metadata", default_sqlite, environ)
    if environ.get(METADATA_ENV_VAR):
        return parse_url(environ[METADATA_ENV_VAR], f"${METADATA_ENV_VAR}", default_sqlite, environ)
    config_path = root / CONFIG_FILE_NAME
    if config_path.is_file():
        return _from_config_file(config_path, default_sqlite, environ)
    return MetadataTarget(kind="sqlite", source="default", sqlite_path=default_sqlite)


def _from_config_file(path: pathlib.Path, default_sqlite: pathlib.Path,
                      environ: Mapping[str, str]) -> MetadataTarget:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MetadataConfigError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(config, dict) or not isinstance(config.get("url"), str):
        raise MetadataConfigError(f'{path}: expected {{"url": "mysql://user@host:port/db", '
                                  f'"password_file": "/path"}}')
    if "password" in config:
        raise MetadataConfigError(f"{path}: a password is not kept in the config file; name a "
                                  f"password_file or set ${PASSWORD_ENV_VAR}")
    unknown = sorted(set(config) - {"url", "password_file"})
    if unknown:
        raise MetadataConfigError(f"{path}: unknown key(s) {', '.join(unknown)} "
                                  "(known: url, password_file)")
    password_file = config.get("password_file")
    if password_file is not None and not isinstance(password_file, str):
        raise MetadataConfigError(f"{path}: password_file must be a path string")
    return parse_url(config["url"], str(path), default_sqlite, environ, password_file)


def parse_url(url: str, source: str, default_sqlite: pathlib.Path,
              environ: Mapping[str, str], password_file: Optional[str] = None) -> MetadataTarget:
    """A target from a metadata URL; `source` names the option or file in every error."""
    url = url.strip()
    if url == "sqlite":
        return MetadataTarget(kind="sqlite", source=source, sqlite_path=default_sqlite)
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "sqlite":
        return _sqlite_target(parts, source, url)
    if parts.scheme not in ("mysql", "mariadb"):
        raise MetadataConfigError(f"{source} {url}: unknown scheme {parts.scheme or '(none)'!r}; "
                                  "use mysql://user@host:port/db or sqlite:///path")
    if parts.password is not None:
        raise MetadataConfigError(
            f"{source}: a password in the URL is refused (it would show in ps, shell history and "
            f"logs); set ${PASSWORD_ENV_VAR} or ${PASSWORD_FILE_ENV_VAR}")
    return _mysql_target(parts, source, url, environ, password_file)


def _sqlite_target(parts: urllib.parse.SplitResult, source: str, url: str) -> MetadataTarget:
    if parts.netloc or not parts.path.startswith("/") or parts.query:
        raise MetadataConfigError(f"{source} {url}: a SQLite URL is sqlite:///absolute/path")
    return MetadataTarget(kind="sqlite", source=source, sqlite_path=pathlib.Path(parts.path))


def _mysql_target(parts: urllib.parse.SplitResult, source: str, url: str,
                  environ: Mapping[str, str], password_file: Optional[str]) -> MetadataTarget:
    database = parts.path.lstrip("/")
    if not database:
        raise MetadataConfigError(f"{source} {url}: no database; use mysql://user@host:port/db")
    if not re.fullmatch(r"[A-Za-z0-9_$]{1,64}", database):
        raise MetadataConfigError(f"{source} {url}: database {database!r} must be 1-64 letters, "
                                  "digits, _ or $")
    query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"socket"})
    if unknown:
        raise MetadataConfigError(f"{source} {url}: unknown parameter(s) {', '.join(unknown)} "
                                  "(known: socket)")
    socket = query.get("socket", [""])[-1]
    try:
        port = parts.port
    except ValueError:
        raise MetadataConfigError(f"{source} {url}: the port must be a number from 1 to 65535")
    host = parts.hostname or ""
    if socket and (host or port):
        raise MetadataConfigError(f"{source} {url}: give a host and port or a socket, not both")
    if not socket and not host:
        raise MetadataConfigError(f"{source} {url}: no host; use mysql://user@host:port/db or "
                                  "mysql://user@/db?socket=/path")
    if port == 0:
        raise MetadataConfigError(f"{source} {url}: the port must be a number from 1 to 65535")
    user = urllib.parse.unquote(parts.username or "")
    if not user:
        raise MetadataConfigError(f"{source} {url}: no user; use mysql://user@host:port/db")
    return MetadataTarget(kind="mysql", source=source, host=host,
                          port=(port or DEFAULT_MYSQL_PORT) if not socket else 0,
                          database=database, user=user, socket=socket,
                          password=_password(environ, password_file, source))


def _password(environ: Mapping[str, str], password_file: Optional[str], source: str) -> str:
    """$ETRM_METADATA_PASSWORD, else the password file's first line; '' when neither is set."""
    if environ.get(PASSWORD_ENV_VAR):
        password = environ[PASSWORD_ENV_VAR]
    else:
        name, chosen = ((f"${PASSWORD_FILE_ENV_VAR}", environ[PASSWORD_FILE_ENV_VAR])
                        if environ.get(PASSWORD_FILE_ENV_VAR)
                        else (f"password_file in {source}", password_file))
        if not chosen:
            return ""
        try:
            text = pathlib.Path(chosen).expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise MetadataConfigError(f"{name} {chosen}: cannot read the password file "
                                      f"({exc.strerror or exc})") from None
        password = text.splitlines()[0] if text.strip() else ""
        if not password:
            raise MetadataConfigError(f"{name} {chosen}: the password file is empty")
    _known_passwords.add(password)
    return password
