"""`make run` wall time on a fresh home: this tree against a baseline tree, in one run.

`make run` is a new user's first command, so a change that slows it is a cost every user pays.
Each tree's `run_local.py` runs with the same interpreter on an empty home of its own (the
first run: both pipelines on span 0), one after the other; the table gives the wall time and
each component's time as the run prints it. The baseline is another checkout, for example
`git archive <commit> | tar -x -C /tmp/base`.

    .venv/bin/python -m benchmarks.bench_make_run --baseline /tmp/base
"""
from __future__ import annotations

import argparse
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Tuple

from benchmarks.sections import heading, machine_line, progress, publish

REPO = pathlib.Path(__file__).resolve().parents[1]
PIPELINE_LINE = re.compile(r"^Running (\S+) on span")
STEP_LINE = re.compile(r"\[\d+/\d+\] (\S+) done in ([\d.]+)s")
# The report issue's goal: `make run` does not grow by more than a minute.
TARGET_GROWTH_S = 60.0


def timed_run(tree: pathlib.Path, home: pathlib.Path, log: pathlib.Path) -> Tuple[float, Dict]:
    """(wall seconds, {(pipeline, component): seconds}) of one `run_local.py` in `tree`."""
    env = dict(os.environ, ETRM_HOME=str(home), TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    started = time.perf_counter()
    with open(log, "w") as out:
        finished = subprocess.run([sys.executable, str(tree / "run_local.py")], cwd=tree, env=env,
                                  stdout=out, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - started
    if finished.returncode != 0:
        raise SystemExit(f"run_local.py in {tree} failed (exit {finished.returncode}); see {log}")
    steps, pipeline = {}, "?"
    for line in log.read_text().splitlines():
        if PIPELINE_LINE.match(line):
            pipeline = PIPELINE_LINE.match(line).group(1)
        step = STEP_LINE.search(line)
        if step:
            steps[(pipeline, step.group(1))] = float(step.group(2))
    return wall, steps


def render(args, results: Dict[str, Tuple[float, Dict]], machine: str) -> str:
    (_, (base_wall, base_steps)), (_, (wall, steps)) = results.items()
    growth = wall - base_wall
    rows: List[str] = []
    for key in list(dict.fromkeys([*base_steps, *steps])):
        before, after = base_steps.get(key), steps.get(key)
        rows.append(f"| {key[0]} | {key[1]} | {_seconds(before)} | {_seconds(after)} |")
    return "\n".join([
        heading("make run on a fresh home"), "",
        f"- Command: `.venv/bin/python -m benchmarks.bench_make_run --baseline {args.baseline}`",
        f"- Machine: {machine}",
        "- Each tree's `run_local.py` (what `make run` runs) on an empty home: both pipelines on "
        "span 0, 20,000 trades; the baseline first, then this tree.", "",
        "| pipeline | component | baseline (s) | this tree (s) |", "| --- | --- | ---: | ---: |",
        *rows,
        f"| all | wall time | {base_wall:.0f} | {wall:.0f} |", "",
        f"Growth: {growth:+.0f} s (target <= +{TARGET_GROWTH_S:.0f} s: "
        f"{'met' if growth <= TARGET_GROWTH_S else 'NOT met'}).",
    ])


def _seconds(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, type=pathlib.Path,
                        help="another checkout of the project to compare with")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md")
    args = parser.parse_args(argv)
    if not (args.baseline / "run_local.py").is_file():
        parser.error(f"--baseline {args.baseline} has no run_local.py: give a project checkout")
    machine = machine_line()
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-make-run-") as workdir:
        for name, tree in (("baseline", args.baseline.resolve()), ("this tree", REPO)):
            progress(f"{name}: run_local.py in {tree} on a fresh home (about 10 minutes)")
            log = pathlib.Path(workdir) / f"{name.replace(' ', '-')}.log"
            results[name] = timed_run(tree, pathlib.Path(workdir) / name.replace(" ", "-"), log)
            progress(f"{name}: {results[name][0]:.0f} s")
    publish(render(args, results, machine), write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
