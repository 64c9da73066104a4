"""DirectRunner workers: StatisticsGen, Transform and Evaluator at one and two workers, by size.

    .venv/bin/python -m benchmarks.bench_beam_workers --sizes 50000 250000

Each (size, workers) pair is one full risk-pipeline run in a fresh home (the Trainer capped
at --train-steps, so the Beam steps dominate); the per-component durations come from ML
Metadata through the run summary. One worker is the baseline in the same run: the question is
from which span size multi-processing (which re-imports TensorFlow in every worker process)
pays, i.e. where ml.core.beam.MULTI_PROCESSING_MIN_RECORDS belongs.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile

from benchmarks.sections import heading, machine_line, progress, publish

BEAM_COMPONENTS = ("ETRMExampleGen", "StatisticsGen", "Transform", "Evaluator")


def run_once(trades: int, workers: int, train_steps: int) -> dict:
    from ml.core.home import Home
    from pipeline.config import DataSettings, DriftSettings, ModelSettings
    from pipeline.local_runner import run_pipeline

    home = pathlib.Path(tempfile.mkdtemp(prefix=f"bench_beam_{trades}_{workers}_"))
    summary = run_pipeline(Home(home), DataSettings(records_per_span=trades),
                           model=ModelSettings(train_steps=train_steps, min_auc=0.5),
                           beam_workers=workers, drift=DriftSettings(enabled=False))
    durations = {row["component"]: row["duration_s"] for row in summary["components"]}
    return {"trades": trades, "workers": workers, "wall_s": summary["wall_seconds"],
            **{name: durations.get(name) for name in BEAM_COMPONENTS}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50000, 250000])
    parser.add_argument("--train-steps", type=int, default=20)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    machine = machine_line()
    rows = []
    for size in args.sizes:
        for workers in (1, 2):
            progress(f"{size:,} trades, {workers} worker(s) ...")
            rows.append(run_once(size, workers, args.train_steps))
            progress(f"measured: {rows[-1]}")
    lines = [heading("Beam DirectRunner: one worker against two, by span size"), "",
             f"- Command: `.venv/bin/python -m benchmarks.bench_beam_workers --sizes "
             f"{' '.join(map(str, args.sizes))} --train-steps {args.train_steps}`",
             f"- Machine: {machine}",
             "- One full risk-pipeline run per row in a fresh home (drift check off, Trainer capped); "
             "seconds per component from ML Metadata. One worker: in-process; two: "
             "multi-processing (each worker process imports TensorFlow).", "",
             "| trades per span | workers | " + " | ".join(f"{c} (s)" for c in BEAM_COMPONENTS)
             + " | pipeline wall (s) |",
             "| ---: | ---: | " + " | ".join("---:" for _ in BEAM_COMPONENTS) + " | ---: |"]
    for row in rows:
        lines.append(f"| {row['trades']:,} | {row['workers']} | "
                     + " | ".join(f"{row[c]:.1f}" if row[c] is not None else "-"
                                  for c in BEAM_COMPONENTS)
                     + f" | {row['wall_s']:.0f} |")
    lines += ["", "Speed-up of two workers over one (one-worker seconds / two-worker seconds):", ""]
    for size in args.sizes:
        one = next(r for r in rows if r["trades"] == size and r["workers"] == 1)
        two = next(r for r in rows if r["trades"] == size and r["workers"] == 2)
        ratios = ", ".join(f"{c} {one[c] / two[c]:.2f}x" for c in BEAM_COMPONENTS
                           if one[c] and two[c])
        lines.append(f"- {size:,} trades: {ratios}")
    publish("\n".join(lines), write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
