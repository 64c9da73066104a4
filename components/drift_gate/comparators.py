"""TFDV comparator setup on the curated schema, and reading the measurements TFDV reports.

Numeric features get Jensen-Shannon divergence, categorical ones the L-infinity distance
(TFDV's recommended pair); the drift comparator compares spans, the skew comparator compares
training data with serving logs.
"""
from __future__ import annotations

from typing import Dict, Iterable, List

from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2

DRIFT, SKEW = "drift", "skew"
MEASURE_NAMES = {
    anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY: "L-infinity distance",
    anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE: "Jensen-Shannon divergence",
    anomalies_pb2.DriftSkewInfo.Measurement.NORMALIZED_ABSOLUTE_DIFFERENCE:
        "normalised absolute difference",
}


def is_categorical(feature: schema_pb2.Feature) -> bool:
    """Strings and features with a string domain are compared by category frequencies."""
    return feature.type == schema_pb2.BYTES or feature.HasField("domain") or feature.HasField(
        "string_domain")


def with_comparators(schema: schema_pb2.Schema, feature_names: Iterable[str], kind: str,
                     js_threshold: float, linf_threshold: float) -> schema_pb2.Schema:
    """A copy of schema with drift (or skew) comparators on the named features only."""
    if kind not in (DRIFT, SKEW):
        raise ValueError(f"comparator kind must be {DRIFT!r} or {SKEW!r}, got {kind!r}")
    result = schema_pb2.Schema()
    result.CopyFrom(schema)
    by_name = {feature.name: feature for feature in result.feature}
    missing = [name for name in feature_names if name not in by_name]
    if missing:
        raise ValueError(f"features not in the schema: {missing}")
    for name in feature_names:
        feature = by_name[name]
        comparator = feature.drift_comparator if kind == DRIFT else feature.skew_comparator
        if is_categorical(feature):
            comparator.infinity_norm.threshold = linf_threshold
        else:
            comparator.jensen_shannon_divergence.threshold = js_threshold
    return result


def comparator_measurements(anomalies: anomalies_pb2.Anomalies, kind: str) -> List[Dict]:
    """One row per feature and measure: feature, measure, value, threshold, exceeded."""
    rows = []
    for info in anomalies.drift_skew_info:
        measurements = info.drift_measurements if kind == DRIFT else info.skew_measurements
        feature = ".".join(info.path.step)
        for measurement in measurements:
            rows.append({"feature": feature,
                         "measure": MEASURE_NAMES.get(measurement.type, "unknown measure"),
                         "value": float(measurement.value),
                         "threshold": float(measurement.threshold),
                         "exceeded": measurement.value > measurement.threshold})
    return sorted(rows, key=lambda row: row["feature"])
