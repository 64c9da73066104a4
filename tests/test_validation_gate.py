"""The validation gate turns ExampleValidator's anomalies into a run-stopping message."""
import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2

from components.validation_gate import anomalies


def _anomalies(feature: str, short: str, description: str) -> anomalies_pb2.Anomalies:
    result = anomalies_pb2.Anomalies()
    info = result.anomaly_info[feature]
    info.short_description = short
    reason = info.reason.add()
    reason.short_description = short
    reason.description = description
    return result


def test_each_feature_and_anomaly_is_named():
    by_split = {"train": _anomalies("commodity", "Unexpected string values",
                                    "Examples contain values missing from the schema: uranium (~1%)."),
                "eval": anomalies_pb2.Anomalies()}
    with pytest.raises(anomalies.DataValidationError) as error:
        anomalies.check_anomalies(by_split, span=7, fail_on_anomalies=True)
    message = str(error.value)
    assert "span 7" in message and "training will not start" in message
    assert "train: feature 'commodity': Unexpected string values" in message
    assert "uranium" in message


def test_clean_data_passes_and_warning_mode_only_reports():
    clean = {"train": anomalies_pb2.Anomalies(), "eval": anomalies_pb2.Anomalies()}
    assert anomalies.check_anomalies(clean, span=0, fail_on_anomalies=True) == []
    dirty = {"eval": _anomalies("price", "Out-of-range values", "Unexpectedly low value: -3.")}
    problems = anomalies.check_anomalies(dirty, span=0, fail_on_anomalies=False)
    assert problems == ["eval: feature 'price': Out-of-range values: Unexpectedly low value: -3."]
