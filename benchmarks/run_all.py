"""Runs every benchmark in turn, each in its own process, with its default (full) sizes.

    .venv/bin/python -m benchmarks.run_all                  # all of them (hours on 2 cores)
    .venv/bin/python -m benchmarks.run_all serving drift    # only those named

One process per benchmark, one after the other: two TensorFlow-heavy benchmarks at once on a
2-core machine would measure each other. Each script records its own section in BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time

BENCHMARKS = {
    "generator": "benchmarks.bench_generator",
    "example_gen": "benchmarks.bench_example_gen",
    "drift": "benchmarks.bench_drift",
    "drift_scenarios": "benchmarks.bench_drift_scenarios",
    "serving": "benchmarks.bench_serving",
    "transitions": "benchmarks.bench_transitions",
    "reliability": "benchmarks.bench_reliability",
    "risk_model": "benchmarks.bench_risk_model",
    "lm": "benchmarks.bench_lm",
    "continuous": "benchmarks.bench_continuous",
    "performance_estimation": "benchmarks.bench_performance_estimation",
    "beam_workers": "benchmarks.bench_beam_workers",
    "dashboard": "benchmarks.bench_dashboard",
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run, of {', '.join(BENCHMARKS)} (default: all)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    failed = []
    for name in args.names or list(BENCHMARKS):
        print(f"== {name} ({BENCHMARKS[name]})", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", BENCHMARKS[name]])
        print(f"== {name}: {'ok' if code == 0 else f'exit {code}'} in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
