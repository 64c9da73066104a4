"""DriftCheck and DriftGate: after ValidationGate, before Transform.

DriftCheck measures span drift and serving skew and always publishes its DriftResult (JSON,
TFDV anomalies, HTML reports), because TFX deletes the outputs of a failed execution. DriftGate
then fails the run when a check set to 'block' flagged features, so Transform never starts.
"""

import json
import os

from absl import logging
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts

from components.drift_gate import checks
from components.drift_gate.artifacts import DriftResult
from components.drift_gate.findings import DriftGateError, check_action, describe, gate_message
from components.drift_gate.previous_span import artifact_span
from ml.monitoring.drift_rule import DriftThresholds

RESULT_FILE = "drift_result.json"


@component
def DriftCheck(examples: InputArtifact[standard_artifacts.Examples],
              statistics: InputArtifact[standard_artifacts.ExampleStatistics],
              schema: InputArtifact[standard_artifacts.Schema],
              drift_result: OutputArtifact[DriftResult],
              previous_examples: InputArtifact[standard_artifacts.Examples] = None,
              previous_statistics: InputArtifact[standard_artifacts.ExampleStatistics] = None,
              feature_names: Parameter[str] = "",
              label_name: Parameter[str] = "",
              drift_action: Parameter[str] = "block",
              skew_action: Parameter[str] = "warn",
              psi_threshold: Parameter[float] = 0.25,
              feature_psi_thresholds: Parameter[str] = "",
              p_value: Parameter[float] = 0.01,
              label_change_threshold: Parameter[float] = 0.2,
              js_threshold: Parameter[float] = 0.4,
              linf_threshold: Parameter[float] = 0.1,
              skew_js_threshold: Parameter[float] = 0.4,
              skew_linf_threshold: Parameter[float] = 0.1,
              sample_rows: Parameter[int] = 20000,
              serving_log_dir: Parameter[str] = "") -> None:
    """Writes drift_result.json (with the blocking message, if any) and the HTML reports.

    label_name (one of feature_names) adds the label-relation tests to the drift check;
    feature_psi_thresholds ('price=0.5,volatility=0.4') overrides psi_threshold per feature.
    """
    import tensorflow_data_validation as tfdv
    from tfx.utils import io_utils

    check_action("drift_action", drift_action)
    check_action("skew_action", skew_action)
    features = [name.strip() for name in feature_names.split(",") if name.strip()]
    if not features:
        raise ValueError("feature_names must name at least one feature")
    drift_limits = DriftThresholds.from_properties(
        psi_threshold, p_value, js_threshold, linf_threshold, label_change_threshold,
        feature_psi_thresholds)
    skew_limits = DriftThresholds.from_properties(
        psi_threshold, p_value, skew_js_threshold, skew_linf_threshold, label_change_threshold,
        feature_psi_thresholds)
    schema_proto = tfdv.load_schema_text(io_utils.get_only_uri_in_dir(schema.uri))
    span = artifact_span(examples)
    output_dir = drift_result.uri
    os.makedirs(output_dir, exist_ok=True)

    if previous_examples is None or previous_statistics is None:
        drift = checks.CheckResult("drift", "no previous span")
        against = "no previous span"
    else:
        previous = artifact_span(previous_examples)
        against = f"span {previous}"
        drift = checks.drift_check(
            schema_proto, features, examples.uri, statistics.uri, previous_examples.uri,
            previous_statistics.uri, drift_limits, output_dir, sample_rows,
            title=f"Drift: span {span} against span {previous}", label=label_name)
        drift.details["previous_span"] = previous
    skew = checks.skew_check(
        schema_proto, features, examples.uri, statistics.uri, serving_log_dir, skew_limits,
        output_dir, sample_rows, title=f"Training/serving skew: span {span} against serving logs")

    blocking = []
    for outcome, action, compared in ((drift, drift_action, against),
                                      (skew, skew_action, "the serving logs")):
        if not outcome.flagged:
            continue
        if action == "block":
            blocking.append(gate_message(outcome.check.capitalize(), span, compared,
                                         outcome.flagged, outcome.report_path))
        for line in describe(outcome.flagged):
            logging.warning("%s (%s, %s): %s", outcome.check, compared, action, line)
    result = {"span": span, "features": features, "blocking_message": "\n".join(blocking),
              "drift": {**drift.to_json(), "action": drift_action, "against": against},
              "skew": {**skew.to_json(), "action": skew_action}}
    with open(os.path.join(output_dir, RESULT_FILE), "w") as handle:
        json.dump(result, handle, indent=2, sort_keys=True, default=str)
    drift_result.set_string_custom_property("drift_status", drift.status)
    drift_result.set_string_custom_property("skew_status", skew.status)
    drift_result.set_string_custom_property("drifted_features", ",".join(drift.flagged))
    drift_result.set_string_custom_property("skewed_features", ",".join(skew.flagged))
    drift_result.set_string_custom_property("drift_report", drift.report_path)
    drift_result.set_string_custom_property("skew_report", skew.report_path)
    drift_result.set_int_custom_property("span", span)
    drift_result.set_int_custom_property("blocked", int(bool(blocking)))


@component
def DriftGate(drift_result: InputArtifact[DriftResult]) -> None:
    """Raises DriftGateError, naming each flagged feature, its measure and threshold, when a
    blocking check flagged any; otherwise lets Transform start."""
    with open(os.path.join(drift_result.uri, RESULT_FILE)) as handle:
        message = json.load(handle)["blocking_message"]
    if message:
        raise DriftGateError(message)
