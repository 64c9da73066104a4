"""Third-party drift detectors on the drift benchmark's saved windows; run by the interpreter of
.venv-drift-baselines (make drift-baselines), because they do not install beside TFX.

Reads manifest.json and one .npz per window group (arrays reference[k], current[k]) written by
benchmarks/bench_drift.py and writes the alarms as JSON. Imports nothing from this project.

- Alibi Detect KSDrift at its defaults: p_val 0.05 with Bonferroni correction over features.
- Evidently DataDriftPreset at its defaults: dataset drift when at least half the columns
  drift (drift_share 0.5), each column by Evidently's default test for its size. The decision
  is read from the preset's DriftedColumnsCount metric alone, which skips rendering the
  preset's plots (ten times slower); the full preset is run on the first window of every
  group and must give the same count (reported as preset_mismatches).
"""
import argparse
import json
import logging
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def drifted_columns(reference: pd.DataFrame, current: pd.DataFrame, metric) -> int:
    from evidently import Report

    snapshot = Report([metric]).run(current_data=current, reference_data=reference)
    for result in snapshot.dict()["metrics"]:
        if result["metric_name"].startswith("DriftedColumnsCount"):
            return int(result["value"]["count"])
    raise RuntimeError("Evidently returned no DriftedColumnsCount metric")


def judge_group(reference: np.ndarray, current: np.ndarray) -> dict:
    """Alarms of both tools on every window of one group."""
    from alibi_detect.cd import KSDrift
    from evidently.metrics import DriftedColumnsCount
    from evidently.presets import DataDriftPreset

    names = [f"feature_{j}" for j in range(reference.shape[2])]
    result = {"windows": len(reference), "alibi": 0, "evidently_dataset": 0,
              "evidently_any_column": 0, "alibi_seconds": 0.0, "evidently_seconds": 0.0,
              "preset_checks": 0, "preset_mismatches": 0}
    share = DataDriftPreset().drift_share
    for index, (reference_rows, current_rows) in enumerate(zip(reference, current)):
        started = time.perf_counter()
        detector = KSDrift(reference_rows, p_val=0.05)
        result["alibi"] += int(detector.predict(current_rows)["data"]["is_drift"])
        result["alibi_seconds"] += time.perf_counter() - started
        started = time.perf_counter()
        reference_frame = pd.DataFrame(reference_rows, columns=names)
        current_frame = pd.DataFrame(current_rows, columns=names)
        count = drifted_columns(reference_frame, current_frame, DriftedColumnsCount(drift_share=share))
        result["evidently_seconds"] += time.perf_counter() - started
        result["evidently_dataset"] += int(count / len(names) >= share)
        result["evidently_any_column"] += int(count > 0)
        if index == 0:
            result["preset_checks"] += 1
            result["preset_mismatches"] += int(
                drifted_columns(reference_frame, current_frame, DataDriftPreset()) != count)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=Path, required=True, help="folder with manifest.json")
    parser.add_argument("--out", type=Path, required=True, help="JSON results")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    import alibi_detect
    import evidently

    manifest = json.loads((args.windows / "manifest.json").read_text())
    groups = []
    for group in manifest:
        with np.load(args.windows / group["file"]) as arrays:
            groups.append({**group, **judge_group(arrays["reference"], arrays["current"])})
        print(f"{group['scenario']} @ {group['rows']}: done", file=sys.stderr, flush=True)
    args.out.write_text(json.dumps({"versions": {"alibi-detect": alibi_detect.__version__,
                                                 "evidently": evidently.__version__},
                                    "groups": groups}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
