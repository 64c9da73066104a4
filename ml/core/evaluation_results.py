"""What an evaluator recorded about a candidate, read from its ModelEvaluation folder without
TensorFlow.

`etrm lineage` and `etrm models` show these figures; importing TFMA (and with it TensorFlow)
costs about a minute on a busy machine, so TFMA's metrics file is read as TFRecord framing plus
TFMA's own generated proto module, loaded by path so its package's TensorFlow imports never run.
The LMEvaluator writes plain JSON.
"""
from __future__ import annotations

import functools
import glob
import importlib.util
import json
import os
from typing import Dict

from ml.core.request_log import read_complete_records

LM_METRICS_FILE = "metrics.json"          # components.lm_evaluator.executor.METRICS_FILE
TFMA_METRICS_PATTERN = "metrics-*"
CANDIDATE = "candidate"
BASELINE = "baseline"


@functools.lru_cache(maxsize=1)
def _metrics_for_slice_module():
    spec = importlib.util.find_spec("tensorflow_model_analysis")
    if spec is None or spec.origin is None:
        raise LookupError("tensorflow_model_analysis is not installed; cannot read TFMA metrics")
    path = os.path.join(os.path.dirname(spec.origin), "proto", "metrics_for_slice_pb2.py")
    module_spec = importlib.util.spec_from_file_location("etrm_tfma_metrics_for_slice_pb2", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def tfma_overall_metrics(evaluation_uri: str) -> Dict[str, Dict[str, float]]:
    """{'candidate': {...}, 'baseline': {...}} of the overall slice (baseline only when the
    Evaluator compared with one); diffs are left out, they are candidate minus baseline."""
    proto = _metrics_for_slice_module()
    result: Dict[str, Dict[str, float]] = {}
    for path in sorted(glob.glob(os.path.join(evaluation_uri, TFMA_METRICS_PATTERN))):
        records, _, _ = read_complete_records(path)
        for record in records:
            metrics = proto.MetricsForSlice.FromString(record)
            if metrics.slice_key.single_slice_keys:
                continue
            for entry in metrics.metric_keys_and_values:
                if entry.key.is_diff or entry.value.WhichOneof("type") != "double_value":
                    continue
                role = entry.key.model_name or CANDIDATE
                result.setdefault(role, {})[entry.key.name] = entry.value.double_value.value
    return result


def lm_overall_metrics(evaluation_uri: str) -> Dict[str, Dict[str, float]]:
    """The LMEvaluator's figures in the same shape: candidate, baseline, and the n-gram model."""
    with open(os.path.join(evaluation_uri, LM_METRICS_FILE), encoding="utf-8") as handle:
        recorded = json.load(handle)
    result = {role: {name: value for name, value in recorded[role].items()
                     if isinstance(value, (int, float))}
              for role in (CANDIDATE, BASELINE, "ngram") if isinstance(recorded.get(role), dict)}
    return result


def overall_metrics(evaluation_uri: str) -> Dict[str, Dict[str, float]]:
    """Whichever evaluator wrote the folder; {} when it holds no metrics (a failed run)."""
    if os.path.exists(os.path.join(evaluation_uri, LM_METRICS_FILE)):
        return lm_overall_metrics(evaluation_uri)
    if glob.glob(os.path.join(evaluation_uri, TFMA_METRICS_PATTERN)):
        return tfma_overall_metrics(evaluation_uri)
    return {}
