"""Reads ExampleValidator's anomalies and turns them into one readable message per problem."""
from __future__ import annotations

import os
from typing import Dict, List

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.types import Artifact, artifact_utils

ANOMALIES_FILE = "SchemaDiff.pb"


class DataValidationError(RuntimeError):
    """Raised when examples do not match the curated schema; the message lists each anomaly."""


def load_split_anomalies(example_anomalies: Artifact,
                         split_names: List[str]) -> Dict[str, anomalies_pb2.Anomalies]:
    """The Anomalies proto of each split, as ExampleValidator wrote it."""
    result = {}
    for split in split_names:
        path = os.path.join(artifact_utils.get_split_uri([example_anomalies], split),
                            ANOMALIES_FILE)
        with open(path, "rb") as handle:
            result[split] = anomalies_pb2.Anomalies.FromString(handle.read())
    return result


def describe_anomalies(anomalies_by_split: Dict[str, anomalies_pb2.Anomalies]) -> List[str]:
    """One line per split, feature and anomaly, e.g. "eval: feature 'price': Out-of-range values"."""
    lines = []
    for split, anomalies in sorted(anomalies_by_split.items()):
        for feature, info in sorted(anomalies.anomaly_info.items()):
            reasons = "; ".join(
                f"{reason.short_description}: {reason.description}".strip(": ")
                for reason in info.reason) or info.short_description
            lines.append(f"{split}: feature '{feature}': {reasons}")
        if anomalies.HasField("dataset_anomaly_info"):
            reasons = "; ".join(r.short_description for r in anomalies.dataset_anomaly_info.reason)
            lines.append(f"{split}: dataset: {reasons}")
    return lines


def check_anomalies(anomalies_by_split: Dict[str, anomalies_pb2.Anomalies], span: int,
                    fail_on_anomalies: bool) -> List[str]:
    """Raises DataValidationError naming every anomaly, unless downgraded to a warning."""
    problems = describe_anomalies(anomalies_by_split)
    if problems and fail_on_anomalies:
        raise DataValidationError(
            f"Data validation failed for span {span}; training will not start. "
            f"{len(problems)} anomalies:\n  " + "\n  ".join(problems))
    return problems
