"""A throwaway MariaDB server for ML Metadata: tests, CI and benchmarks.

    python scripts/mariadb_server.py start DATADIR   # prints the ETRM_METADATA* variables to export
    python scripts/mariadb_server.py stop DATADIR

`start` initialises DATADIR (mariadb-install-db) unless it already holds a database, starts
mariadbd on 127.0.0.1 at a free port (and a socket in DATADIR), and creates the user `etrm`
with a random password (mysql_native_password, which ML Metadata's client needs) allowed to
create the databases `etrm%`. The password is in DATADIR/password (mode 0600), never on a
command line. `stop` shuts the server down. Only the standard library: .ci/run calls it before
the virtualenv matters. The Debian package is `mariadb-server` (.ci/run installs it).
"""
from __future__ import annotations

import dataclasses
import getpass
import json
import os
import pathlib
import secrets
import shutil
import socket
import subprocess
import sys
import time
from typing import Optional

USER = "etrm"
DATABASE = "etrm_mlmd"
STARTUP_SECONDS = 60
INSTALL_HINT = ("MariaDB is not installed: `.ci/run` installs it, or run "
                "`apt-get install -y mariadb-server`")


@dataclasses.dataclass(frozen=True)
class Server:
    datadir: pathlib.Path
    port: int
    pid: int

    @property
    def socket_path(self) -> pathlib.Path:
        return self.datadir / "mysqld.sock"

    @property
    def password_file(self) -> pathlib.Path:
        return self.datadir / "password"

    def url(self, database: str = DATABASE) -> str:
        """The --metadata URL of a database on this server (no password: see password_file)."""
        return f"mysql://{USER}@127.0.0.1:{self.port}/{database}"

    def environment(self, database: str = DATABASE) -> dict:
        """The variables that point the platform at a database on this server."""
        return {"ETRM_METADATA": self.url(database),
                "ETRM_METADATA_PASSWORD_FILE": str(self.password_file)}


def binary(name: str) -> str:
    """A MariaDB program (mariadbd lives in /usr/sbin, off a normal user's PATH)."""
    found = shutil.which(name) or next((str(p) for p in (pathlib.Path("/usr/sbin") / name,
                                                          pathlib.Path("/usr/bin") / name)
                                        if p.is_file()), None)
    if found is None:
        raise FileNotFoundError(f"{name} not found. {INSTALL_HINT}")
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _state_file(datadir: pathlib.Path) -> pathlib.Path:
    return datadir / "etrm-server.json"


def _client(server_socket: pathlib.Path, sql: str) -> None:
    """Runs SQL as the OS user's unix_socket account; the SQL (with the password) on stdin."""
    subprocess.run([binary("mariadb"), "--no-defaults", f"--socket={server_socket}",
                    f"--user={getpass.getuser()}"], input=sql, text=True, check=True,
                   capture_output=True)


def _initialise(datadir: pathlib.Path) -> None:
    datadir.mkdir(parents=True, exist_ok=True)
    subprocess.run([binary("mariadb-install-db"), "--no-defaults", f"--datadir={datadir}",
                    f"--user={getpass.getuser()}", "--skip-test-db",
                    "--auth-root-authentication-method=socket"],
                   check=True, capture_output=True, text=True)


def start(datadir: pathlib.Path) -> Server:
    """Starts a server on datadir (initialised on first use) and makes sure the etrm user and
    database exist; returns where it listens."""
    datadir = datadir.resolve()
    if not (datadir / "mysql").is_dir():
        _initialise(datadir)
    port = _free_port()
    server_socket = datadir / "mysqld.sock"
    log = datadir / "error.log"
    process = subprocess.Popen(
        [binary("mariadbd"), "--no-defaults", f"--datadir={datadir}", f"--socket={server_socket}",
         f"--port={port}", "--bind-address=127.0.0.1", f"--pid-file={datadir / 'mysqld.pid'}",
         f"--log-error={log}", f"--user={getpass.getuser()}", "--skip-name-resolve",
         "--performance-schema=OFF", "--innodb-buffer-pool-size=64M", "--skip-log-bin"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"mariadbd exited with {process.returncode}; {log}:\n{tail}")
        ping = subprocess.run([binary("mariadb-admin"), "--no-defaults", f"--socket={server_socket}",
                               f"--user={getpass.getuser()}", "ping"], capture_output=True)
        if ping.returncode == 0:
            break
        if time.monotonic() > deadline:
            process.terminate()
            raise RuntimeError(f"mariadbd did not answer within {STARTUP_SECONDS}s; see {log}")
        time.sleep(0.2)
    server = Server(datadir, port, process.pid)
    password = _password(server)
    sql_password = password.replace("\\", "\\\\").replace("'", "\\'")
    statements = [f"CREATE DATABASE IF NOT EXISTS {DATABASE};"]
    for host in ("127.0.0.1", "localhost"):
        statements += [
            f"CREATE USER IF NOT EXISTS '{USER}'@'{host}' IDENTIFIED VIA mysql_native_password "
            f"USING PASSWORD('{sql_password}');",
            f"GRANT ALL PRIVILEGES ON `etrm%`.* TO '{USER}'@'{host}';"]
    _client(server_socket, "\n".join(statements))
    _state_file(datadir).write_text(json.dumps({"port": port, "pid": process.pid}))
    return server


def _password(server: Server) -> str:
    """The etrm user's password, made on the first start (0600, readable by this user only)."""
    if server.password_file.exists():
        return server.password_file.read_text().strip()
    password = secrets.token_urlsafe(18)
    fd = os.open(server.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(password + "\n")
    return password


def running(datadir: pathlib.Path) -> Optional[Server]:
    """The server started on datadir, if its process is still alive."""
    state = _state_file(datadir.resolve())
    if not state.exists():
        return None
    recorded = json.loads(state.read_text())
    try:
        os.kill(recorded["pid"], 0)
    except ProcessLookupError:
        return None
    return Server(datadir.resolve(), recorded["port"], recorded["pid"])


def stop(datadir: pathlib.Path, timeout: float = 60.0) -> bool:
    """Shuts down the server started on datadir; False if none was running."""
    server = running(datadir)
    if server is None:
        return False
    os.kill(server.pid, 15)  # mariadbd shuts down cleanly on SIGTERM
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(server.pid, 0)
        except ProcessLookupError:
            break
        try:  # reap it when it is our child (a pytest fixture's server)
            os.waitpid(server.pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.1)
    else:
        os.kill(server.pid, 9)
    _state_file(server.datadir).unlink(missing_ok=True)
    return True


def main(argv=None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] not in ("start", "stop"):
        print("usage: mariadb_server.py start|stop DATADIR", file=sys.stderr)
        return 2
    action, datadir = args[0], pathlib.Path(args[1])
    try:
        if action == "start":
            server = running(datadir) or start(datadir)
            for name, value in server.environment().items():
                print(f"export {name}={value}")
            return 0
        print("stopped" if stop(datadir) else f"no server running on {datadir}", file=sys.stderr)
        return 0
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"error: {' '.join(exc.cmd[:1])} failed: {(exc.stderr or '').strip()}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
