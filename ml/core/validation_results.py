"""What ExampleValidator found in a span, read from its ExampleAnomalies folder (one
SchemaDiff.pb per split, TFDV's Anomalies proto; tensorflow_metadata needs no TensorFlow)."""
from __future__ import annotations

import pathlib
from typing import Dict

SPLIT_PREFIX = "Split-"
ANOMALIES_FILE = "SchemaDiff.pb"


def anomalies_by_split(anomalies_uri: str) -> Dict[str, Dict[str, str]]:
    """{split: {feature: description}}; a split without anomalies maps to {}."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    found: Dict[str, Dict[str, str]] = {}
    for path in sorted(pathlib.Path(anomalies_uri).glob(f"{SPLIT_PREFIX}*/{ANOMALIES_FILE}")):
        anomalies = anomalies_pb2.Anomalies.FromString(path.read_bytes())
        split = path.parent.name[len(SPLIT_PREFIX):]
        found[split] = {feature: info.short_description or info.description
                        for feature, info in sorted(anomalies.anomaly_info.items())}
        if anomalies.HasField("dataset_anomaly_info"):
            info = anomalies.dataset_anomaly_info
            found[split]["(dataset)"] = info.short_description or info.description
    return found
