"""Where a command's output goes: progress on the terminal, everything else in a log file.

TensorFlow, TFX, Beam and the Google client libraries write Python warnings, `logging`/absl
records and C++ logs to stderr; a pipeline run would bury its few progress lines under
hundreds of them. `terminal(home)` sends all of that to `<home>/logs/<command>-<time>.log`
and leaves the terminal the records of the `etrm.progress` logger and errors (their message;
the traceback goes to the file). `verbose=True` shows everything on the terminal as well.

Every entry point (`etrm run`, `run_local.py`, `ml.model_fine_tuning.main`) and
`run_pipeline` enter it; an inner `terminal()` reuses the one already active, so one command
writes one log file. Stderr is redirected at the file-descriptor level, so C++ logs and Beam
multi-processing workers (separate processes inheriting fd 2) land in the file too. ML
Metadata passwords are blanked in both outputs.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import pathlib
import sys
import time
from typing import Iterator, Optional, TextIO

from ml.core.home import Home
from ml.core.metadata_target import REDACTED, known_passwords

PROGRESS_LOGGER = "etrm.progress"
FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def progress_logger() -> logging.Logger:
    """The logger whose INFO lines the terminal shows (component and training progress)."""
    return logging.getLogger(PROGRESS_LOGGER)


@dataclasses.dataclass
class Terminal:
    """The active output setup: where the log file is and where the real terminal is."""

    log_path: pathlib.Path
    stream: TextIO

    def report(self, exc: BaseException, prefix: str = "error") -> None:
        """The exception's message on the terminal, its traceback in the log file."""
        progress_logger().error("%s: %s", prefix, str(exc) or type(exc).__name__, exc_info=exc)
        progress_logger().error("traceback: %s", self.log_path)


_active: Optional[Terminal] = None


def active() -> Optional[Terminal]:
    """The Terminal of the command running in this process, if one is."""
    return _active


class _TerminalFilter(logging.Filter):
    """Progress and errors always; everything at INFO and above only when verbose."""

    def __init__(self, verbose: bool):
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR or self.verbose:
            return True
        return record.name == PROGRESS_LOGGER or record.name.startswith(PROGRESS_LOGGER + ".")


class _MessageOnly(logging.Formatter):
    """The message without traceback: the terminal shows what failed, the log file why."""

    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage()


class _Redacted(logging.Formatter):
    """Another formatter's text with every ML Metadata password blanked: TFX logs its whole
    connection config (password included) at INFO when a pipeline starts."""

    def __init__(self, inner: logging.Formatter):
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        text = self.inner.format(record)
        for password in known_passwords():
            for form in (password, _escaped(password)):
                text = text.replace(form, REDACTED)
        return text


def _escaped(text: str) -> str:
    """How protobuf's text format writes a string field (a logged config shows it so)."""
    return (text.replace("\\", "\\\\").replace('"', '\\"').replace("'", "\\'")
            .replace("\n", "\\n"))


def new_log_path(home: Home, command: str) -> pathlib.Path:
    """`<home>/logs/<command>-<YYYYmmdd-HHMMSS>.log`, with the pid if that name is taken."""
    home.log_dir.mkdir(parents=True, exist_ok=True)
    path = home.log_dir / f"{command}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    return path.with_name(f"{path.stem}-{os.getpid()}.log") if path.exists() else path


@contextlib.contextmanager
def terminal(home: Home, command: str = "run", verbose: bool = False,
             stream: Optional[TextIO] = None, redirect_fd: bool = True) -> Iterator[Terminal]:
    """Routes warnings and library logs to a new log file for the duration of a command.

    `stream` is the terminal (default: the process's stderr as it was on entry).
    `redirect_fd` points file descriptor 2 at the log file (not when verbose), which catches
    what bypasses Python's logging: TensorFlow's C++ logs and child processes' stderr.
    An exception leaving the block is reported (message here, traceback in the file) and
    re-raised.
    """
    global _active
    if _active is not None:
        yield _active
        return
    log_path = new_log_path(home, command)
    file_handler = logging.FileHandler(log_path, encoding="utf-8")
    file_handler.setFormatter(_Redacted(logging.Formatter(FILE_FORMAT)))
    with contextlib.ExitStack() as undo:
        if stream is None:
            stream = sys.stderr
            if redirect_fd and not verbose:
                stream = undo.enter_context(_stderr_fd_to(log_path))
        terminal_handler = logging.StreamHandler(stream)
        terminal_handler.addFilter(_TerminalFilter(verbose))
        terminal_handler.setFormatter(_Redacted(logging.Formatter(FILE_FORMAT) if verbose
                                                else _MessageOnly()))
        root = logging.getLogger()
        previous_level = root.level
        root.setLevel(logging.INFO)
        for handler in (file_handler, terminal_handler):
            root.addHandler(handler)
            undo.callback(root.removeHandler, handler)
        undo.callback(root.setLevel, previous_level)
        undo.callback(file_handler.close)
        logging.captureWarnings(True)
        undo.callback(logging.captureWarnings, False)
        _active = Terminal(log_path, stream)
        try:
            yield _active
        except BaseException as exc:
            _active.report(exc)
            raise
        finally:
            _active = None


@contextlib.contextmanager
def _stderr_fd_to(log_path: pathlib.Path) -> Iterator[TextIO]:
    """Points fd 2 at the log file; yields a stream to the original stderr."""
    sys.stderr.flush()
    original = os.dup(2)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    real_stderr = os.fdopen(os.dup(original), "w", buffering=1, encoding="utf-8")
    try:
        yield real_stderr
    finally:
        sys.stderr.flush()
        real_stderr.flush()
        os.dup2(original, 2)
        os.close(original)
        real_stderr.close()
