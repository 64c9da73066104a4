"""A pushed version reproduced from its lineage into ML Metadata on MariaDB: the risk e2e
home's v1 (SQLite, tests/conftest.py::risk_home) is rerun by `etrm reproduce` into a fresh
home whose store is a MariaDB database of its own (the session's server). The rerun matches
the original (same records in the same order, the same figures), and its lineage, registry
view and run history read back through `etrm` agree with ML Metadata directly; the password
shows nowhere in the home, in ML Metadata or in the logs."""
import contextlib
import io
import json

import pytest

from ml.cli import main
from ml.core import metadata
from ml.core.home import Home
from tests.mariadb_fixtures import mariadb_password

pytestmark = pytest.mark.e2e
MODEL = "etrm_risk_model"


@pytest.fixture(scope="module")
def mariadb_url(mariadb):
    """The module's own database, chosen through the environment as a user would."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in mariadb.environment("etrm_reproduced").items():
            patch.setenv(name, value)
        patch.delenv("ETRM_METADATA_PASSWORD", raising=False)
        yield mariadb.url("etrm_reproduced")


@pytest.fixture(scope="module")
def mariadb_run(tmp_path_factory, risk_home, mariadb_url):
    """(fresh home, its URL, the rerun's summary, the reproduction's JSON). The original's
    runs/*.json are moved aside during the rerun, so only its lineage can feed it; the source
    is named `--metadata sqlite` because $ETRM_METADATA points at MariaDB here."""
    source, _ = risk_home
    fresh = tmp_path_factory.mktemp("reproduced") / "home"
    kept = [path.rename(path.with_suffix(".kept")) for path in (source / "runs").glob("*.json")]
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            code = main(["reproduce", MODEL, "--version", "1", "--home", str(source),
                         "--metadata", "sqlite", "--into", str(fresh),
                         "--into-metadata", mariadb_url, "--json"])
    finally:
        for path in kept:
            path.rename(path.with_suffix(".json"))
    result = json.loads(printed.getvalue())
    assert code == 0, result
    summary = json.loads((fresh / "runs" / "latest.json").read_text())
    return fresh, mariadb_url, summary, result


def test_the_rerun_matches_the_original(mariadb_run, risk_home):
    _, _, _, result = mariadb_run
    original = risk_home[1]["model"]
    assert result["reproduced"] and result["examples_identical"]
    assert result["code"]["changed"] == [] and result["chain"] == []
    examples = result["examples"]["0"]
    assert examples["original"] == examples["reproduced"]
    assert sum(split["records"] for split in examples["original"].values()) == 1500
    figures = {row["metric"]: row for row in result["metrics"]}
    assert figures["auc"]["original"] == pytest.approx(original["metrics"]["overall"]["auc"])
    assert all(abs(row["difference"]) <= 1e-6 for row in result["metrics"])


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


def test_the_rerun_on_mariadb_and_its_lineage_read_back(mariadb_run, mariadb, monkeypatch, capsys):
    home, url, summary, _ = mariadb_run
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
