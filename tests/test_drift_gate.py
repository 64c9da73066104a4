"""Plain functions of the drift gate: comparator setup, measurements, findings and messages,
previous-span resolution, settings validation."""
import pandas as pd
import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2
from tfx.types import standard_artifacts

from components.drift_gate import comparators
from components.drift_gate.findings import check_action, flagged_features, gate_message
from ml.monitoring.drift_rule import DriftThresholds, format_feature_floors, judge, parse_feature_floors
from components.drift_gate.previous_span import (PreviousSpanStrategy, artifact_span,
                                                 previous_span_artifacts)
from pipeline.config import DriftSettings


def _schema():
    schema = schema_pb2.Schema()
    schema.feature.add(name="price", type=schema_pb2.FLOAT)
    schema.feature.add(name="commodity", type=schema_pb2.BYTES, domain="commodity")
    schema.feature.add(name="high_risk", type=schema_pb2.INT)
    return schema


def test_drift_comparators_js_for_numeric_linf_for_categorical_only_on_named_features():
    schema = comparators.with_comparators(_schema(), ["price", "commodity"], comparators.DRIFT,
                                          js_threshold=0.3, linf_threshold=0.1)
    by_name = {f.name: f for f in schema.feature}
    assert by_name["price"].drift_comparator.jensen_shannon_divergence.threshold == 0.3
    assert by_name["commodity"].drift_comparator.infinity_norm.threshold == 0.1
    assert not by_name["high_risk"].HasField("drift_comparator")
    assert not by_name["price"].HasField("skew_comparator")
    assert not _schema().feature[0].HasField("drift_comparator")


def test_skew_comparators_and_bad_arguments():
    schema = comparators.with_comparators(_schema(), ["commodity"], comparators.SKEW, 0.3, 0.2)
    assert schema.feature[1].skew_comparator.infinity_norm.threshold == pytest.approx(0.2)
    with pytest.raises(ValueError, match="not in the schema"):
        comparators.with_comparators(_schema(), ["volume"], comparators.DRIFT, 0.3, 0.1)
    with pytest.raises(ValueError, match="comparator kind"):
        comparators.with_comparators(_schema(), ["price"], "shift", 0.3, 0.1)


def test_measurements_read_from_tfdv_drift_skew_info():
    anomalies = anomalies_pb2.Anomalies()
    info = anomalies.drift_skew_info.add()
    info.path.step.append("price")
    info.drift_measurements.add(type=anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE,
                                value=0.5, threshold=0.4)
    rows = comparators.comparator_measurements(anomalies, comparators.DRIFT)
    assert rows == [{"feature": "price", "measure": "Jensen-Shannon divergence", "value": 0.5,
                     "threshold": 0.4, "exceeded": True}]
    assert comparators.comparator_measurements(anomalies, comparators.SKEW) == []


def test_tfdv_validate_statistics_reports_drift_with_the_comparators():
    import tensorflow_data_validation as tfdv

    previous = tfdv.generate_statistics_from_dataframe(pd.DataFrame({"commodity": ["power"] * 90 + ["coal"] * 10}))
    current = tfdv.generate_statistics_from_dataframe(pd.DataFrame({"commodity": ["power"] * 50 + ["coal"] * 50}))
    schema = comparators.with_comparators(tfdv.infer_schema(previous), ["commodity"],
                                          comparators.DRIFT, 0.3, 0.1)
    anomalies = tfdv.validate_statistics(current, schema, previous_statistics=previous)
    [row] = comparators.comparator_measurements(anomalies, comparators.DRIFT)
    assert row["feature"] == "commodity" and row["value"] == pytest.approx(0.4) and row["exceeded"]


def test_flagged_features_and_message_name_feature_value_and_threshold():
    table = pd.DataFrame({"feature": ["price", "volume", "commodity"], "test": ["ks", "ks", "chi2"],
                          "p_value": [1e-32, 0.9, 0.3], "psi": [1.58, 0.01, 0.2],
                          "bins": [12, 12, 7]})
    relations = pd.DataFrame({"feature": ["volume"], "term": ["volume"],
                              "reference_correlation": [0.3], "current_correlation": [-0.2],
                              "change": [0.5], "threshold": [0.2], "p_value": [1e-9]})
    tfdv_rows = [{"feature": "commodity", "measure": "L-infinity distance", "value": 0.2,
                  "threshold": 0.1, "exceeded": True},
                 {"feature": "price", "measure": "Jensen-Shannon divergence", "value": 0.5,
                  "threshold": 0.4, "exceeded": True}]
    limits = DriftThresholds()
    distribution, relations = judge(table, relations, limits, 2000, 2000)
    flagged = flagged_features(tfdv_rows, distribution, relations, limits, "high_risk")
    assert list(flagged) == ["price", "volume"]
    message = gate_message("Drift", 3, "span 2", flagged, "/r/drift_report.html")
    assert message.startswith("Drift check failed for span 3 against span 2; training will not start. 2 features")
    assert ("feature 'price': PSI 1.580 > 0.25 + 0.011 sampling allowance (KS adjusted p 4e-32 "
            "< 0.01); TFDV Jensen-Shannon divergence 0.500 > 0.4") in message
    assert ("feature 'volume': correlation of volume with label high_risk moved 0.30 -> -0.20 "
            "(change 0.50 > 0.2, adjusted p 3e-09 < 0.01)") in message
    assert "commodity" not in message
    assert message.endswith("Report: /r/drift_report.html")


def _examples(span, artifact_id):
    artifact = standard_artifacts.Examples()
    artifact.id = artifact_id
    artifact.set_int_custom_property("span", span)
    return artifact


def test_previous_span_is_the_latest_earlier_span_newest_version():
    artifacts = [_examples(0, 1), _examples(1, 2), _examples(3, 3), _examples(1, 4), _examples(4, 5)]
    assert [a.id for a in previous_span_artifacts(artifacts, 3)] == [4]
    assert [a.id for a in previous_span_artifacts(artifacts, 4)] == [3]
    assert previous_span_artifacts(artifacts, 0) == []
    statistics = standard_artifacts.ExampleStatistics()
    statistics.span = 2
    assert artifact_span(statistics) == 2
    resolved = PreviousSpanStrategy(current_span=1).resolve_artifacts(None, {"examples": artifacts, "statistics": []})
    assert [a.id for a in resolved["examples"]] == [1] and resolved["statistics"] == []


def test_bad_settings_raise_value_errors_naming_the_field():
    with pytest.raises(ValueError, match="drift_action"):
        DriftSettings(drift_action="stop")
    with pytest.raises(ValueError, match="psi_threshold"):
        DriftSettings(psi_threshold=0)
    with pytest.raises(ValueError, match="p_value"):
        DriftSettings(p_value=1.5)
    with pytest.raises(ValueError, match="feature_psi_thresholds"):
        DriftSettings(feature_psi_thresholds=(("price", 0.0),))
    with pytest.raises(ValueError, match="feature_psi"):
        DriftThresholds(feature_psi={"price": -1.0})
    with pytest.raises(ValueError, match="NAME=NUMBER"):
        parse_feature_floors("price=high")
    with pytest.raises(ValueError, match="skew_action"):
        check_action("skew_action", "ignore")
    with pytest.raises(ValueError, match="linf_distance"):
        DriftThresholds(linf_distance=-1)


def test_feature_floors_travel_as_one_string_parameter():
    floors = {"volatility": 1.0, "price": 1.5}
    assert format_feature_floors(floors) == "price=1.5,volatility=1"
    assert parse_feature_floors(format_feature_floors(floors)) == floors
    assert parse_feature_floors("") == {}
    limits = DriftSettings().gate_thresholds()
    assert limits.psi_floor("price") == limits.psi_floor("forward_price") == 0.5
    assert limits.psi_floor("volatility") == 0.4
    assert limits.psi_floor("commodity") == limits.psi == 0.25 and limits.p_value == 0.01
