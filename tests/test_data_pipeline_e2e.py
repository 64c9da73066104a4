"""Issue 2 end to end: ingest and validate spans with LocalDagRunner; assert on ML Metadata."""
import json

import pytest

from components.validation_gate.anomalies import DataValidationError
from ml.core import metadata as metadata_queries
from tests.pipeline_helpers import SMALL_TRADES, run_small, store_for

pytestmark = pytest.mark.e2e

DATA_NODES = ["ETRMExampleGen", "ImportSchemaGen", "StatisticsGen", "ExampleValidator", "ValidationGate",
              "previous_span_resolver", "DriftCheck", "DriftGate"]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("etrm_home")


def test_successive_runs_build_a_span_history(home):
    first = run_small(home)
    assert first["status"] == "succeeded" and first["span"] == 0
    assert sorted(row["component"] for row in first["components"]) == sorted(DATA_NODES)
    assert all(row["state"] == "COMPLETE" for row in first["components"])
    assert sum(first["examples_per_split"].values()) == SMALL_TRADES
    assert json.loads((home / "runs" / "latest.json").read_text())["span"] == 0

    second = run_small(home)
    assert second["span"] == 1 and second["period"] == {"start": "2024-01-08", "end": "2024-01-14"}
    store = store_for(home)
    assert metadata_queries.ingested_spans(store, "etrm-risk-pipeline") == [0, 1]
    examples = [a for a in store.get_artifacts_by_type("Examples")]
    assert sorted(a.custom_properties["span"].int_value for a in examples) == [0, 1]
    assert all(a.custom_properties["etrm_records_per_span"].int_value == SMALL_TRADES for a in examples)
    statistics = store.get_artifacts_by_type("ExampleStatistics")
    assert len(statistics) == 2


def test_a_never_seen_commodity_stops_the_run_before_training(home):
    with pytest.raises(DataValidationError) as error:
        run_small(home, train=True, drift="new_category@2024-01-01:0.3")
    message = str(error.value)
    assert "feature 'commodity'" in message and "hydrogen" in message
    summary = json.loads((home / "runs" / "latest.json").read_text())
    assert summary["status"] == "failed" and "DataValidationError" in summary["error"]
    states = {row["component"]: row["state"] for row in summary["components"]}
    assert states["ValidationGate"] == "FAILED"
    assert "Transform" not in states and "Trainer" not in states
