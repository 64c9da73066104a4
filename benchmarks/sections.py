"""Shared by the benchmark scripts: machine description and appending sections to BENCHMARKS.md."""
from __future__ import annotations

import datetime as dt
import os
import pathlib
import platform
import statistics
import sys
import time
from typing import Callable, List, Tuple

BENCHMARKS_MD = pathlib.Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def machine_line() -> str:
    load = os.getloadavg()
    return (f"{os.cpu_count()} CPU cores (shared), load average before the run "
            f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}; Python {platform.python_version()}")


def progress(message: str) -> None:
    """A progress line on stderr, prefixed with the running script's name."""
    print(f"[{pathlib.Path(sys.argv[0]).stem}] {message}", file=sys.stderr, flush=True)


def heading(title: str) -> str:
    return f"## {title} ({dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC)"


def timed_runs(function: Callable[[], object], repeats: int) -> Tuple[float, List[float]]:
    """Median and all wall times of `repeats` calls."""
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs), runs


def section_title(text: str) -> str:
    """'## ETRMExampleGen throughput (2026-11-30 06:29 UTC)' -> 'ETRMExampleGen throughput'."""
    first = text.strip().splitlines()[0]
    return first.lstrip("#").strip().rsplit(" (", 1)[0]


def replace_section(text: str, path: pathlib.Path = BENCHMARKS_MD) -> None:
    """Puts the section in BENCHMARKS.md in place of the earlier run of the same benchmark.

    One section per benchmark, the newest: a reader wants the current figures with their
    command, and git keeps the history of earlier runs. Written then renamed, so an
    interrupted write never loses the other benchmarks' sections.
    """
    from ml.core.atomic_files import atomic_write_text

    existing = path.read_text() if path.exists() else "# Benchmarks\n"
    title = section_title(text)
    parts = existing.split("\n## ")
    kept, placed = [parts[0].rstrip()], False
    for part in parts[1:]:
        if section_title("## " + part) == title:
            if not placed:
                kept.append(text.strip())
                placed = True
            continue
        kept.append("## " + part.rstrip())
    if not placed:
        kept.append(text.strip())
    atomic_write_text(str(path), "\n\n".join(kept) + "\n")


def publish(text: str, write: bool = True) -> None:
    """Prints a benchmark's section and, when asked, records it in BENCHMARKS.md."""
    print(text)
    if write:
        replace_section(text)
