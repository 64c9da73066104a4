"""Prints a run summary for people; runs/latest.json holds the same for machines."""
from __future__ import annotations

import pathlib
import sys
from typing import Dict


def print_summary(summary: Dict, path: pathlib.Path, stream=sys.stdout) -> None:
    write = stream.write
    write(f"\n{summary['pipeline']}: {summary['status']} in {summary['wall_seconds']}s "
          f"({summary['runner']} runner, {summary['beam_workers']} Beam workers)\n")
    if "span" in summary:
        period = summary.get("period", {})
        write(f"  span {summary['span']}: {period.get('start')} .. {period.get('end')}\n")
    if "examples_per_split" in summary:
        counts = ", ".join(f"{k}={v}" for k, v in summary["examples_per_split"].items())
        write(f"  examples: {counts}\n")
    for row in summary["components"]:
        write(f"  {row['component']:<28} {row['state']:<9} {row['duration_s']:>7.1f}s\n")
    write(f"  summary: {path}\n")
