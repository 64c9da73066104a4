"""The drift checks' results for runs/latest.json: DriftCheck's published DriftResult artifact,
found through ML Metadata from the run's executions."""
from __future__ import annotations

import json
import os
from typing import Dict, List

from ml.core import metadata as metadata_queries

DRIFT_CHECK_NODE = "DriftCheck"
OUTPUT_KEY = "drift_result"
RESULT_FILE = "drift_result.json"


def drift_results(store, components: List[Dict]) -> Dict:
    """{'drift': {...}} with statuses, flagged features and report paths; {} if no check ran
    (or it failed before publishing its result)."""
    rows = [row for row in components if row["component"] == DRIFT_CHECK_NODE]
    published = (metadata_queries.output_artifacts(store, rows[-1]["execution_id"]).get(OUTPUT_KEY)
                 if rows else None)
    if not published:
        return {}
    folder = published[0].uri
    path = os.path.join(folder, RESULT_FILE)
    if not os.path.exists(path):
        return {}
    with open(path) as handle:
        result = json.load(handle)
    drift, skew = result["drift"], result["skew"]
    return {"drift": {
        "result_folder": folder, "blocked": bool(result["blocking_message"]),
        "drift_status": drift["status"], "drift_action": drift["action"],
        "against": drift["against"], "drifted_features": drift["flagged"],
        "drift_report": drift["report"],
        "skew_status": skew["status"], "skew_action": skew["action"],
        "skewed_features": skew["flagged"], "skew_report": skew["report"],
    }}
