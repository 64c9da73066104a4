"""Past pipeline runs: ML Metadata's pipeline-run contexts (every run, whoever started it),
joined with the runs/run-*.json summaries the local runner writes (wall time, runner, error)
where one holds the same executions.

Status comes from the executions: failed if one failed, running if one has not finished
(a killed run stays so), else succeeded; a summary's own status wins when it has one.
"""
from __future__ import annotations

import json
import pathlib
from typing import Dict, List, Optional

from ml_metadata.proto import metadata_store_pb2

from ml.core.lineage import CONSUMED, PRODUCED, event_key, iso_ms, short_type

Execution = metadata_store_pb2.Execution
UNFINISHED = (Execution.NEW, Execution.RUNNING, Execution.UNKNOWN)
# the training window is what these read (Transform's inputs are recorded before it runs, so a
# run still in Transform shows its window too)
WINDOW_READERS = ("Transform", "Trainer")


def _status(executions) -> str:
    states = {execution.last_known_state for execution in executions}
    if Execution.FAILED in states:
        return "failed"
    if Execution.CANCELED in states:
        return "canceled"
    if states & set(UNFINISHED):
        return "running"
    return "succeeded"


def summaries_by_execution(runs_dir: pathlib.Path) -> Dict[int, Dict]:
    """execution id -> the run summary that lists it (unreadable summaries are skipped)."""
    found: Dict[int, Dict] = {}
    for path in sorted(runs_dir.glob("run-*.json")):
        try:
            summary = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        summary["path"] = str(path)
        for row in summary.get("components", []):
            if isinstance(row, dict) and "execution_id" in row:
                found[int(row["execution_id"])] = summary
    return found


def pipeline_runs(store, runs_dir: Optional[pathlib.Path] = None,
                  limit: Optional[int] = None) -> List[Dict]:
    """Newest first: pipeline, run id, start, duration, status, spans ingested, the training window,
    components, and what was pushed (or why not)."""
    runs = []
    for pipeline in store.get_contexts_by_type("pipeline"):
        for context in store.get_children_contexts_by_context(pipeline.id):
            if context.type == "pipeline_run":
                runs.append((pipeline.name, context))
    executions_of = {context.id: store.get_executions_by_context(context.id) for _, context in runs}
    runs = [(name, context) for name, context in runs if executions_of[context.id]]
    runs.sort(key=lambda item: (min(e.create_time_since_epoch for e in executions_of[item[1].id]),
                                item[1].id), reverse=True)
    if limit is not None:
        runs = runs[:limit]
    all_ids = [e.id for _, context in runs for e in executions_of[context.id]]
    events = store.get_events_by_execution_ids(all_ids) if all_ids else []
    artifact_ids = sorted({event.artifact_id for event in events})
    artifacts = {a.id: a for a in store.get_artifacts_by_id(artifact_ids)} if artifact_ids else {}
    summaries = summaries_by_execution(runs_dir) if runs_dir is not None and runs_dir.is_dir() else {}
    rows = []
    for pipeline_name, context in runs:
        executions = executions_of[context.id]
        kinds = {e.id: short_type(e) for e in executions}
        ingested, window, pushes = set(), set(), []
        for event in events:
            if event.execution_id not in kinds or event.artifact_id not in artifacts:
                continue
            artifact, kind, key = artifacts[event.artifact_id], kinds[event.execution_id], event_key(event)
            span = artifact.custom_properties["span"].int_value if "span" in artifact.custom_properties else None
            if event.type in PRODUCED and artifact.type == "Examples" and span is not None:
                ingested.add(span)
            elif (event.type in CONSUMED and kind in WINDOW_READERS and key == "examples"
                  and span is not None):
                window.add(span)
            elif event.type in PRODUCED and artifact.type == "PushedModel":
                pushes.append(_push(artifact))
        started = min(e.create_time_since_epoch for e in executions)
        ended = max(e.last_update_time_since_epoch for e in executions)
        summary = next((summaries[e.id] for e in executions if e.id in summaries), None)
        rows.append({
            "pipeline": pipeline_name, "run_id": context.name, "started_at": iso_ms(started),
            "duration_s": round((ended - started) / 1000.0, 1),
            "status": (summary or {}).get("status") or _status(executions),
            "components": len(executions),
            "ingested_spans": sorted(ingested), "window_spans": sorted(window),
            "pushed": pushes,
            "wall_seconds": (summary or {}).get("wall_seconds"),
            "error": (summary or {}).get("error"),
            "summary": (summary or {}).get("path"),
        })
    return rows


def _push(artifact) -> Dict:
    props = artifact.custom_properties
    if "pushed" in props and props["pushed"].int_value:
        destination = props["pushed_destination"].string_value
        return {"model": pathlib.Path(destination).parent.name,
                "version": int(props["pushed_version"].string_value)}
    return {"model": None, "version": None,
            "not_pushed_reason": props["not_pushed_reason"].string_value
            if "not_pushed_reason" in props else "not blessed"}
