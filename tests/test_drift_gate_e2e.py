"""DriftGate end to end: spans resolved from ML Metadata, an unchanged span passes, a span with
a generator drift scenario from its first day is blocked with a message naming the features."""
import json

import pytest

from components.drift_gate.findings import DriftGateError
from ml.core import metadata as metadata_queries
from tests.pipeline_helpers import run_small, store_for

pytestmark = pytest.mark.e2e

TRADES = 1000


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("etrm_drift_home")


def _drift_result(home):
    store = store_for(home)
    newest = max(store.get_artifacts_by_type("ETRMDriftResult"), key=lambda a: a.id)
    with open(f"{newest.uri}/drift_result.json") as handle:
        return newest, json.load(handle)


def test_first_span_has_no_previous_span_and_passes(home):
    summary = run_small(home, records=TRADES)
    states = {row["component"]: row["state"] for row in summary["components"]}
    assert states["DriftCheck"] == states["DriftGate"] == "COMPLETE"
    artifact, result = _drift_result(home)
    assert result["drift"]["status"] == "no previous span"
    assert result["skew"]["status"] == "no serving logs"
    assert summary["drift"]["drift_status"] == "no previous span"


def test_unchanged_span_passes_against_the_previous_span(home):
    summary = run_small(home, records=TRADES)
    assert summary["status"] == "succeeded" and summary["span"] == 1
    artifact, result = _drift_result(home)
    assert result["drift"]["status"] == "passed", result["drift"]["flagged"]
    assert result["drift"]["previous_span"] == 0
    assert {row["feature"] for row in result["drift"]["tfdv"]} >= {"price", "commodity"}
    assert summary["drift"]["drift_report"].endswith("drift_report.html")
    page = open(summary["drift"]["drift_report"]).read()
    assert "data:image/png;base64" in page


def test_price_shift_from_the_first_day_blocks_the_run(home):
    with pytest.raises(DriftGateError) as error:
        run_small(home, records=TRADES, drift="price_shift@2024-01-15:1.0")
    message = str(error.value)
    assert "span 2 against span 1" in message
    assert "feature 'price'" in message and "PSI" in message and "> 0.5" in message
    latest = json.loads((home / "runs" / "latest.json").read_text())
    assert latest["status"] == "failed" and "DriftGateError" in latest["error"]
    assert latest["drift"]["drift_status"] == "flagged"
    assert "price" in latest["drift"]["drifted_features"]
    assert open(latest["drift"]["drift_report"]).read().count("<h3>price</h3>") == 1
    states = {row["component"]: row["state"] for row in latest["components"]}
    assert states["DriftCheck"] == "COMPLETE" and states["DriftGate"] == "FAILED"
    assert latest["drift"]["blocked"] is True
    assert metadata_queries.ingested_spans(store_for(home), "etrm-risk-pipeline") == [0, 1, 2]
