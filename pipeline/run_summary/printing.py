"""Prints a run summary for people; runs/latest.json holds the same for machines."""
from __future__ import annotations

import collections
import pathlib
import sys
from typing import Dict, List


def drift_line(drift: Dict) -> str:
    """'drift: <status> against <span>, skew: <status>; <check> report: <path>', without the
    parts a first span (nothing to compare) or a run without serving logs does not have."""
    status, against = drift["drift_status"], drift["against"]
    line = f"drift: {status}" + (f" against {against}" if against and against != status else "")
    line += f", skew: {drift['skew_status']}"
    for check in ("drift", "skew"):
        if drift.get(f"{check}_report"):
            line += f"; {check} report: {drift[f'{check}_report']}"
    return line


FINE_STATES = ("COMPLETE", "CACHED")


def components_line(components: List[Dict], slowest: int = 3) -> str:
    """'components: 14 COMPLETE; slowest Trainer 230.3s, ...': the progress lines above
    already gave each one's time, so the summary names the states and where the time went."""
    states = collections.Counter(row["state"] for row in components)
    counts = ", ".join(f"{count} {state}" for state, count in states.most_common())
    ranked = sorted(components, key=lambda row: row["duration_s"], reverse=True)[:slowest]
    times = ", ".join(f"{row['component']} {row['duration_s']:.1f}s" for row in ranked)
    return f"components: {counts}; slowest {times}"


def print_summary(summary: Dict, path: pathlib.Path, stream=sys.stdout) -> None:
    write = stream.write
    write(f"\n{summary['pipeline']}: {summary['status']} in {summary['wall_seconds']}s "
          f"({summary['runner']} runner, {summary['beam_workers']} Beam workers)\n")
    data = []
    if "span" in summary:
        period = summary.get("period", {})
        data.append(f"span {summary['span']}: {period.get('start')} .. {period.get('end')}")
    if "examples_per_split" in summary:
        data.append("examples: " + ", ".join(
            f"{k}={v}" for k, v in summary["examples_per_split"].items()))
    if data:
        write(f"  {'; '.join(data)}\n")
    if "drift" in summary:
        write(f"  {drift_line(summary['drift'])}\n")
    if summary["components"]:
        write(f"  {components_line(summary['components'])}\n")
    for row in summary["components"]:
        if row["state"] not in FINE_STATES:
            write(f"    {row['component']}: {row['state']} after {row['duration_s']:.1f}s\n")
    model = summary.get("model")
    if model:
        overall = model.get("metrics", {}).get("overall", {})
        shown = ", ".join(f"{k}={v:.4f}" for k, v in sorted(overall.items()) if isinstance(v, float))
        write(f"  metrics: {shown}\n")
        if "bayes_optimal_auc" in model:
            write(f"  Bayes-optimal AUC on the same eval split: {model['bayes_optimal_auc']:.4f}\n")
        baseline = model.get("baseline")
        write(f"  baseline: {'serving version ' + str(baseline['serving_version']) if baseline else 'none (first model)'}\n")
        write(f"  blessed: {model.get('blessed')}\n")
        for failure in model.get("validation_failures", []):
            write(f"    - {failure}\n")
        canary = model.get("canary")
        if canary:
            detail = canary.get("reason") or f"p99 {canary.get('latency_p99_ms') or 0:.1f} ms"
            write(f"  pre-push serving check: {'passed' if canary['blessed'] else 'failed'} ({detail})\n")
        if model.get("pushed_version"):
            write(f"  pushed: version {model['pushed_version']} -> {model['pushed_to']}\n")
        else:
            write(f"  not pushed: {model.get('not_pushed_reason', 'no Pusher ran')}\n")
    log = f"; warnings and logs: {summary['log']}" if summary.get("log") else ""
    write(f"  summary: {path}{log}\n")
    stream.flush()  # before the next pipeline's progress lines on stderr
