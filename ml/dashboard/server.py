"""Runs the dashboard under gunicorn (one worker process, a thread per request) rather than
Flask's development server, which its own documentation rules out for anything but
development. The app is built in the worker (after the fork), so its serving-health thread
runs where the requests are served."""
from __future__ import annotations

import socket
from typing import Callable

from gunicorn.app.base import BaseApplication


class _Gunicorn(BaseApplication):
    def __init__(self, factory: Callable, options: dict):
        self.factory, self.options = factory, options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return self.factory()


def check_port_free(host: str, port: int) -> None:
    """OSError naming the address when it cannot be bound (gunicorn would retry and exit
    with a traceback-like log instead)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise OSError(f"cannot listen on {host}:{port}: {error.strerror}") from None


def serve(factory: Callable, host: str, port: int, log_file: str, threads: int = 8) -> None:
    """Serves until SIGINT or SIGTERM (gunicorn stops gracefully, then exits the process)."""
    _Gunicorn(factory, {"bind": f"{host}:{port}", "workers": 1, "worker_class": "gthread",
                        "threads": threads, "accesslog": None, "errorlog": log_file,
                        "loglevel": "info", "timeout": 120, "graceful_timeout": 5,
                        "proc_name": "etrm-dashboard", "control_socket_disable": True}).run()
