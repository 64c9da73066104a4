"""The two checks the gate runs, each writing its TFDV anomalies and HTML report to a folder.

drift: the current span against the previous one (TFDV drift comparators on StatisticsGen's
statistics, plus KS/chi-square, PSI and, with the label, label-relation tests on sampled
examples). skew: serving request logs against the current span's training data (TFDV skew
comparators, environment SERVING, plus KS/chi-square and PSI; the logs carry no label).
The verdict is components.drift_gate.verdict's; TFDV's measurements are reported beside it.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Dict, List, Optional, Sequence

import pandas as pd

from components.drift_gate import comparators
from ml.core import example_tables
from ml.core import request_log as serving_logs
from components.drift_gate.verdict import window_verdict
from ml.monitoring.drift_rule import DriftThresholds
from ml.monitoring.drift_page import render_drift_page

STATISTICS_SPLIT = "train"
STATISTICS_FILE = "FeatureStats.pb"
SERVING_ENVIRONMENT = "SERVING"


@dataclasses.dataclass
class CheckResult:
    """Outcome of one check; status is 'passed', 'flagged' or why it did not run."""

    check: str
    status: str
    flagged: Dict[str, List[str]] = dataclasses.field(default_factory=dict)
    tfdv: List[Dict] = dataclasses.field(default_factory=list)
    psi_ks: Optional[pd.DataFrame] = None
    relations: Optional[pd.DataFrame] = None
    report_path: str = ""
    details: Dict = dataclasses.field(default_factory=dict)

    def to_json(self) -> Dict:
        return {"status": self.status, "flagged": self.flagged, "tfdv": self.tfdv,
                "psi_ks": [] if self.psi_ks is None else _records(self.psi_ks),
                "label_relations": [] if self.relations is None else _records(self.relations),
                "report": self.report_path, **self.details}


def _records(table: pd.DataFrame) -> List[Dict]:
    return [{key: (value.item() if hasattr(value, "item") else value) for key, value in row.items()}
            for row in table.to_dict(orient="records")]


def load_split_statistics(statistics_uri: str, split: str = STATISTICS_SPLIT):
    import tensorflow_data_validation as tfdv

    return tfdv.load_stats_binary(os.path.join(example_tables.split_uri(statistics_uri, split), STATISTICS_FILE))


def with_gate_flags(table: pd.DataFrame, flagged: Dict[str, List[str]]) -> pd.DataFrame:
    """The PSI/KS table with `drifted` set to the gate's decision, so the report plots every
    flagged feature (also those flagged for their relation to the label)."""
    table = table.copy()
    table["drifted"] = table["feature"].isin(list(flagged))
    return table


def _write_anomalies(anomalies, path: str) -> None:
    from google.protobuf import text_format

    with open(path, "w") as handle:
        handle.write(text_format.MessageToString(anomalies))


def drift_check(schema, features: Sequence[str], current_examples_uri: str,
                current_statistics_uri: str, previous_examples_uri: str,
                previous_statistics_uri: str, thresholds: DriftThresholds, output_dir: str,
                sample_rows: int, title: str, label: str = "") -> CheckResult:
    """TFDV drift comparators plus the gate's tests between two spans' training splits."""
    import tensorflow_data_validation as tfdv

    drift_schema = comparators.with_comparators(
        schema, features, comparators.DRIFT, thresholds.js_divergence, thresholds.linf_distance)
    anomalies = tfdv.validate_statistics(
        load_split_statistics(current_statistics_uri), drift_schema,
        previous_statistics=load_split_statistics(previous_statistics_uri))
    _write_anomalies(anomalies, os.path.join(output_dir, "drift_anomalies.pbtxt"))
    tfdv_rows = comparators.comparator_measurements(anomalies, comparators.DRIFT)
    reference = example_tables.examples_frame(previous_examples_uri, STATISTICS_SPLIT, features,
                                              sample_rows)
    current = example_tables.examples_frame(current_examples_uri, STATISTICS_SPLIT, features,
                                            sample_rows)
    return _finish("drift", tfdv_rows, reference, current, thresholds, output_dir, title,
                   {"reference_rows": len(reference), "current_rows": len(current)}, label)


def skew_check(schema, features: Sequence[str], training_examples_uri: str,
               training_statistics_uri: str, log_dir: str, thresholds: DriftThresholds,
               output_dir: str, sample_rows: int, title: str) -> CheckResult:
    """TFDV skew comparators (environment SERVING) plus PSI/KS, training data against the
    model's serving request logs; 'no serving logs' when the model has none yet."""
    import tensorflow_data_validation as tfdv

    files = serving_logs.log_files(log_dir) if log_dir else []
    if not files:
        return CheckResult("skew", "no serving logs", details={"log_dir": log_dir})
    serving = serving_logs.read_log_frame(files, features, sample_rows)
    logged = [name for name in features if serving[name].notna().all()]
    if serving.empty or not logged:
        return CheckResult("skew", "no serving logs", details={"log_dir": log_dir,
                                                               "log_files": len(files)})
    skew_schema = comparators.with_comparators(
        schema, logged, comparators.SKEW, thresholds.js_divergence, thresholds.linf_distance)
    anomalies = tfdv.validate_statistics(
        load_split_statistics(training_statistics_uri), skew_schema,
        environment=SERVING_ENVIRONMENT,
        serving_statistics=tfdv.generate_statistics_from_dataframe(serving[logged]))
    _write_anomalies(anomalies, os.path.join(output_dir, "skew_anomalies.pbtxt"))
    tfdv_rows = comparators.comparator_measurements(anomalies, comparators.SKEW)
    training = example_tables.examples_frame(training_examples_uri, STATISTICS_SPLIT, logged,
                                             sample_rows)
    return _finish("skew", tfdv_rows, training, serving[logged], thresholds, output_dir, title,
                   {"log_dir": log_dir, "log_files": len(files), "serving_rows": len(serving),
                    "not_logged": [name for name in features if name not in logged]})


def _finish(check: str, tfdv_rows: List[Dict], reference: pd.DataFrame, current: pd.DataFrame,
            thresholds: DriftThresholds, output_dir: str, title: str, details: Dict,
            label: str = "") -> CheckResult:
    verdict = window_verdict(reference, current, thresholds, label, tfdv_rows)
    report_path = os.path.join(output_dir, f"{check}_report.html")
    render_drift_page(reference, current, with_gate_flags(verdict.distribution, verdict.flagged),
                        title=title, path=report_path)
    return CheckResult(check, "flagged" if verdict.flagged else "passed", verdict.flagged,
                       tfdv_rows, verdict.distribution, verdict.relations, report_path, details)
