"""Risk model quality: AUC on the unseen eval split against the Bayes-optimal AUC, by data size.

    .venv/bin/python -m benchmarks.bench_risk_model --sizes 20000 60000 150000

Each size is one full pipeline run (ExampleGen to Pusher) in a fresh home. The baseline is the
generator's true probability on the same eval split: no model can rank trades better.
"""
from __future__ import annotations

import argparse
import sys
import tempfile


from benchmarks.sections import heading, machine_line, publish  # noqa: E402

TARGET_GAP = 0.01


def run_size(trades: int, beam_workers: int) -> dict:
    import pathlib

    from pipeline.config import DataSettings, ModelSettings
    from ml.core.home import Home
    from pipeline.local_runner import run_pipeline

    home = pathlib.Path(tempfile.mkdtemp(prefix=f"bench_risk_{trades}_"))
    summary = run_pipeline(Home(home), DataSettings(records_per_span=trades),
                           model=ModelSettings(), beam_workers=beam_workers)
    durations = {row["component"]: row["duration_s"] for row in summary["components"]}
    model = summary["model"]
    return {"trades": trades, "auc": model["metrics"]["overall"]["auc"],
            "bayes": model["bayes_optimal_auc"], "eval_rows": summary["examples_per_split"]["eval"],
            "calibration": model["metrics"]["overall"].get("calibration"),
            "trainer_s": durations.get("Trainer"), "wall_s": summary["wall_seconds"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20000, 60000, 150000])
    parser.add_argument("--beam-workers", type=int, default=1)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    machine = machine_line()
    rows = []
    for size in args.sizes:
        rows.append(run_size(size, args.beam_workers))
        print(f"measured: {rows[-1]}", flush=True)
    lines = [heading("Risk model AUC against the Bayes-optimal AUC"), "",
             f"- Command: `.venv/bin/python -m benchmarks.bench_risk_model --sizes {' '.join(map(str, args.sizes))}`",
             f"- Machine: {machine}",
             "- One full pipeline run per size (span 0, 80/20 split by trade id); AUC by TFMA on the "
             "eval split the model never saw; Bayes-optimal AUC from the generator's true probability "
             "on the same rows",
             "", "| trades per span | eval rows | model AUC | Bayes-optimal AUC | gap | calibration | Trainer (s) | pipeline wall (s) |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['trades']:,} | {r['eval_rows']:,} | {r['auc']:.4f} | {r['bayes']:.4f} | "
                     f"{r['bayes'] - r['auc']:.4f} | {r['calibration']:.3f} | {r['trainer_s']:.0f} | {r['wall_s']:.0f} |")
    default_gap = rows[0]["bayes"] - rows[0]["auc"]
    lines += ["", f"Gap at the default `make run` size ({rows[0]['trades']:,} trades): **{default_gap:.4f}** "
              f"(target: within {TARGET_GAP})."]
    text = "\n".join(lines)
    publish(text, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
