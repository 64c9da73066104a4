"""The risk pipeline run with ML Metadata on MariaDB (the session's server, a database of its
own), its lineage, registry view and run history read back through `etrm` and checked against
ML Metadata directly; the password shows nowhere in the home, in ML Metadata or in the logs."""
import json

import pytest

from ml.cli import main
from ml.core import metadata
from ml.core.home import Home
from tests.mariadb_fixtures import mariadb_password
from tests.pipeline_helpers import run_small

pytestmark = pytest.mark.e2e
MODEL = "etrm_risk_model"


@pytest.fixture
def mariadb_run(tmp_path, mariadb, mariadb_metadata):
    home = tmp_path / "home"
    return home, mariadb_metadata, run_small(home, train=True, drift_gate=False)


def _cli_json(capsys, *command):
    assert main(list(command)) == 0
    return json.loads(capsys.readouterr().out)


def _pushed(store, version):
    [pushed] = [a for a in store.get_artifacts_by_type("PushedModel")
                if a.custom_properties["pushed_version"].string_value == str(version)]
    [push_event] = [e for e in store.get_events_by_artifact_ids([pushed.id])
                    if e.type == metadata.metadata_store_pb2.Event.OUTPUT]
    inputs = store.get_events_by_execution_ids([push_event.execution_id])
    [model_id] = [e.artifact_id for e in inputs if e.path.steps[0].key == "model"]
    return pushed, model_id


def _everything_in(store):
    """Every ML Metadata record as text: types, artifacts, executions, contexts, events."""
    records = [store.get_artifact_types(), store.get_execution_types(), store.get_context_types(),
               store.get_artifacts(), store.get_executions(), store.get_contexts()]
    executions = [e.id for e in store.get_executions()]
    records.append(store.get_events_by_execution_ids(executions))
    return "\n".join(str(item) for group in records for item in group)


def test_pipeline_on_mariadb_and_its_lineage_read_back(mariadb_run, mariadb, monkeypatch, capsys):
    home, url, summary = mariadb_run
    assert summary["status"] == "succeeded" and summary["model"]["pushed_version"] == 1
    assert summary["metadata"] == url
    assert not (home / "metadata.sqlite").exists(), "nothing may fall back to SQLite"
    store = metadata.store_for(Home(home))
    pushed, model_id = _pushed(store, 1)

    described = _cli_json(capsys, "lineage", MODEL, "--version", "1", "--json", "--home", str(home))
    assert described["push"]["artifact_id"] == pushed.id
    assert described["model_artifact"]["artifact_id"] == model_id
    assert described["spans"] == [0] == metadata.ingested_spans(store, "etrm-risk-pipeline")
    assert described["evaluation"]["blessed"] is True
    assert described["trainer"]["warm_start_parent"] is None

    # the same store named by the option rather than the variable
    monkeypatch.delenv("ETRM_METADATA")
    rows = {row["version"]: row for row in _cli_json(
        capsys, "models", MODEL, "--json", "--home", str(home), "--metadata", url)[MODEL]["versions"]}
    assert set(rows) == {1} and rows[1]["spans"] == [0] and rows[1]["blessed"] is True
    runs = _cli_json(capsys, "runs", "--json", "--home", str(home), "--metadata", url)
    assert [run["status"] for run in runs] == ["succeeded"]
    assert {e.id for e in store.get_executions()} == {row["execution_id"] for row in summary["components"]}
    assert [push["version"] for push in runs[0]["pushed"]] == [1]

    password = mariadb_password(mariadb)
    assert password not in _everything_in(store), "the password went into ML Metadata"
    logs = list((home / "logs").glob("*.log"))
    assert logs and any("Using connection config" in p.read_text() for p in logs), \
        "TFX's connection-config log line is what the redaction must catch"
    leaks = [str(path) for path in home.rglob("*") if path.is_file()
             and password.encode() in path.read_bytes()]
    assert leaks == [], f"the password is written in {leaks}"
