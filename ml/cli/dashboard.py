"""`etrm dashboard`: the web dashboard of a home (ml.dashboard). Read-only unless started with
an admin token; binds loopback unless told otherwise. Bad input is one line on stderr, exit 2."""
from __future__ import annotations

import argparse
import os
import pathlib
import sys

from ml.cli.home_args import add_home_arguments, home_of

TOKEN_VARIABLE = "ETRM_DASHBOARD_ADMIN_TOKEN"
MIN_TOKEN_LENGTH = 16
DEFAULT_METRICS_URL = "http://127.0.0.1:8501/monitoring/prometheus/metrics"


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    parser.add_argument("--serving-metrics-url", default=DEFAULT_METRICS_URL,
                        help="the model server's Prometheus page, for serving health "
                             f"(default {DEFAULT_METRICS_URL}; 'none' to leave it out)")
    parser.add_argument("--admin-token-file", default=None,
                        help="file holding the admin token that enables promote, rollback and "
                             f"acknowledge (or ${TOKEN_VARIABLE}); without one the dashboard "
                             "is read-only")
    parser.add_argument("--refresh-seconds", type=float, default=5.0,
                        help="how often pages update themselves (default 5; 0: never)")
    parser.add_argument("--verbose", action="store_true", help="show library logs")
    add_home_arguments(parser)
    return parser


def admin_token(args: argparse.Namespace):
    """The token from --admin-token-file, else the environment, else None; ValueError when
    it is unreadable or too short to resist guessing."""
    if args.admin_token_file:
        path = pathlib.Path(args.admin_token_file)
        try:
            token = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            raise ValueError(f"--admin-token-file {path}: cannot read it "
                             f"({getattr(error, 'strerror', None) or error})") from None
        where = f"--admin-token-file {path}"
    elif os.environ.get(TOKEN_VARIABLE):
        token, where = os.environ[TOKEN_VARIABLE].strip(), f"${TOKEN_VARIABLE}"
    else:
        return None
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(f"{where}: the admin token must be at least {MIN_TOKEN_LENGTH} "
                         f"characters, got {len(token)}")
    return token


def run(args: argparse.Namespace) -> int:
    from ml.core import logs

    if not 0 <= args.port <= 65535:
        print(f"error: --port must be 0-65535, got {args.port}", file=sys.stderr)
        return 2
    if args.refresh_seconds < 0:
        print(f"error: --refresh-seconds must be >= 0, got {args.refresh_seconds}",
              file=sys.stderr)
        return 2
    url = None if args.serving_metrics_url.lower() == "none" else args.serving_metrics_url
    if url is not None and not url.startswith(("http://", "https://")):
        print(f"error: --serving-metrics-url must be an http(s) URL or 'none', got {url!r}",
              file=sys.stderr)
        return 2
    try:
        token = admin_token(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    home = home_of(args)
    from ml.dashboard.server import check_port_free, serve

    try:
        check_port_free(args.host, args.port)
    except OSError as error:
        print(f"error: --port {args.port}: {error}", file=sys.stderr)
        return 2
    with logs.terminal(home, "dashboard", verbose=args.verbose) as terminal:
        mode = "admin actions need the token" if token else "read-only"
        terminal.stream.write(f"dashboard of {home.root} at http://{args.host}:{args.port}/ "
                              f"({mode}; log {terminal.log_path}); Ctrl-C stops it\n")
        terminal.stream.flush()

        def factory():
            from ml.dashboard.app import create_app

            return create_app(home, admin_token=token, serving_metrics_url=url,
                              refresh_seconds=args.refresh_seconds)

        try:
            serve(factory, args.host, args.port, str(terminal.log_path))
        except SystemExit as stopped:
            return int(stopped.code or 0)
    return 0
