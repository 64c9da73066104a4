"""runs/latest.json: a machine-readable account of one run, built from ML Metadata."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import pathlib
from typing import Any, Dict, Optional

from ml.core.atomic_files import atomic_write_text
from ml.core import metadata as metadata_queries
from ml.core.example_tables import split_names, split_uri
from pipeline.run_summary.drift_results import drift_results
from pipeline.run_summary.model_results import add_model_results

STATISTICS_FILE = "FeatureStats.pb"


def _split_example_counts(statistics_uri: str) -> Dict[str, int]:
    """Examples per split, read from StatisticsGen's output."""
    import tensorflow_data_validation as tfdv

    counts = {}
    for split in split_names(statistics_uri):
        path = os.path.join(split_uri(statistics_uri, split), STATISTICS_FILE)
        if os.path.exists(path):
            counts[split] = int(tfdv.load_stats_binary(path).datasets[0].num_examples)
    return counts


def build(store, pipeline_name: str, since_ms: int, data, runner: str, beam_workers: int,
          wall_seconds: float, home: pathlib.Path, error: Optional[BaseException]) -> Dict[str, Any]:
    """Each component's state and duration, the span and its window, the data size, the error."""
    executions = metadata_queries.executions_since(store, pipeline_name, since_ms)
    summary: Dict[str, Any] = {
        "pipeline": pipeline_name,
        "status": "failed" if error is not None else "succeeded",
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "runner": runner,
        "beam_workers": beam_workers,
        "wall_seconds": round(wall_seconds, 1),
        "home": str(home),
        "data": dataclasses.asdict(data),
        "components": [{k: v for k, v in row.items() if k != "started_ms"} for row in executions],
    }
    for row in executions:
        outputs = metadata_queries.output_artifacts(store, row["execution_id"])
        if row["component"] == metadata_queries.EXAMPLE_GEN_NODE and outputs.get("examples"):
            examples = outputs["examples"][0]
            props = examples.custom_properties
            summary["span"] = props["span"].int_value
            summary["period"] = {"start": props["etrm_period_start"].string_value,
                                 "end": props["etrm_period_end"].string_value}
            summary["examples_uri"] = examples.uri
        if row["component"] == "StatisticsGen" and outputs.get("statistics"):
            summary["examples_per_split"] = _split_example_counts(outputs["statistics"][0].uri)
    add_model_results(store, executions, summary)
    summary.update(drift_results(store, summary["components"]))
    if error is not None:
        summary["error"] = f"{type(error).__name__}: {error}"
    return summary


def write(home, summary: Dict[str, Any]) -> pathlib.Path:
    """Writes runs/run-<time>.json and replaces runs/latest.json atomically (`home` is a Home)."""
    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S%f")
    text = json.dumps(summary, indent=2, sort_keys=True, default=str)
    for path in (home.runs_dir / f"run-{stamp}.json", home.latest_run):
        atomic_write_text(path, text)
    return home.latest_run
