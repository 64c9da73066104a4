"""Shared by the benchmark scripts: machine description and appending sections to BENCHMARKS.md."""
from __future__ import annotations

import datetime as dt
import os
import pathlib
import platform
import statistics
import time
from typing import Callable, List, Tuple

BENCHMARKS_MD = pathlib.Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def machine_line() -> str:
    load = os.getloadavg()
    return (f"{os.cpu_count()} CPU cores (shared), load average before the run "
            f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}; Python {platform.python_version()}")


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


def append_section(text: str, path: pathlib.Path = BENCHMARKS_MD) -> None:
    """Appends one section; BENCHMARKS.md keeps every run's results with its command."""
    if not path.exists():
        path.write_text("# Benchmarks\n")
    with path.open("a") as handle:
        handle.write("\n" + text.rstrip() + "\n")
