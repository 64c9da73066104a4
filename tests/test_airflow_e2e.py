"""The risk model's DAG run by Airflow 2 (`airflow dags test`) with ML Metadata on MariaDB, as
the README recommends for Airflow (the session's server, a database of its own): every task
succeeds and ML Metadata holds each node's execution, the ModelBlessing and the pushed version;
a drifted span next week is stopped by the DriftGate before Transform, as under the local
runner."""
import pytest

from ml.core import metadata, registry
from ml.core.home import Home
from tests.airflow_fixtures import AirflowInstance, small_run_settings

pytestmark = pytest.mark.e2e

RISK = registry.RISK_MODEL
DAG_ID = RISK.pipeline_name
NODES = {"ETRMExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "ValidationGate",
         "previous_span_resolver", "DriftCheck", "DriftGate", "Transform",
         "latest_blessed_model_resolver", "Trainer", "Evaluator", "CanaryValidator", "ServingPusher"}
RESOLVERS = {"previous_span_resolver", "latest_blessed_model_resolver"}
FIRST_WEEK, SECOND_WEEK = "2024-01-01", "2024-01-08"  # spans 0 and 1


DATABASE = "etrm_airflow"


@pytest.fixture(scope="module")
def project_home(tmp_path_factory, mariadb):
    """The project home the DAG file is given, its ML Metadata on MariaDB: chosen through
    the environment, here as in the Airflow processes."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in mariadb.environment(DATABASE).items():
            patch.setenv(name, value)
        patch.delenv("ETRM_METADATA_PASSWORD", raising=False)
        yield Home(tmp_path_factory.mktemp("airflow_etrm_home"))


@pytest.fixture(scope="module")
def run_settings(project_home, mariadb):
    """The DAG's settings plus ML Metadata's target and password file, as a deployment sets
    them for the scheduler and the workers."""
    return {**small_run_settings(project_home.root), **mariadb.environment(DATABASE)}


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    return AirflowInstance.create(tmp_path_factory.mktemp("airflow_home"))


@pytest.fixture(scope="module")
def first_run(airflow, run_settings):
    result = airflow.airflow("dags", "test", DAG_ID, FIRST_WEEK, settings=run_settings)
    return result, airflow.newest_run(DAG_ID)


def _store(home):
    return metadata.open_store(metadata.connection_for(home))


def test_every_task_of_the_first_run_succeeds(first_run):
    result, (run_id, states) = first_run
    assert result.returncode == 0, result.stdout[-3000:]
    assert set(states) == NODES
    assert {task: state for task, state in states.items() if state != "success"} == {}


def test_ml_metadata_holds_every_node_the_blessing_and_the_push(first_run, project_home):
    _, (run_id, _) = first_run
    assert not project_home.metadata.is_sqlite and not project_home.metadata_path.exists()
    store = _store(project_home)
    executions = metadata.run_executions(store, RISK.pipeline_name, run_id)
    assert set(executions) == NODES
    assert {node for node, state in executions.items() if state == "CACHED"} == RESOLVERS
    assert {node for node, state in executions.items() if state != "COMPLETE"} == RESOLVERS
    examples = store.get_artifacts_by_type("Examples")
    assert [e.custom_properties["span"].int_value for e in examples] == [0]  # from the logical date
    # What the local runner and continuous learning ask sees the legacy launcher's records.
    assert metadata.ingested_spans(store, RISK.pipeline_name) == [0]
    assert list(metadata.validated_spans(store, RISK.pipeline_name, 7, "2024-01-01")) == [0]
    blessings = store.get_artifacts_by_type("ModelBlessing")
    assert [b.custom_properties["blessed"].int_value for b in blessings] == [1]
    pushed = metadata.latest_pushed_model(store, RISK.serving_name)
    assert pushed is not None and pushed.custom_properties["pushed_version"].string_value == "1"
    assert (project_home.serving_base(RISK.serving_name) / "1").is_dir()


def test_a_drifted_span_stops_at_the_drift_gate_before_transform(first_run, airflow, project_home,
                                                                  run_settings):
    settings = {**run_settings, "ETRM_DRIFT": "price_shift@2024-01-08:1.0"}
    result = airflow.airflow("dags", "test", DAG_ID, SECOND_WEEK, settings=settings)
    assert result.returncode != 0 and "DagRun failed" in result.stdout
    assert "DriftGateError" in result.stdout and "span 1 against span 0" in result.stdout
    run_id, states = airflow.newest_run(DAG_ID)
    assert states["DriftCheck"] == "success" and states["DriftGate"] == "failed"
    assert {states[node] for node in ("Transform", "Trainer", "Evaluator", "ServingPusher")} == {
        "upstream_failed"}
    executions = metadata.run_executions(_store(project_home), RISK.pipeline_name, run_id)
    assert executions["DriftCheck"] == "COMPLETE" and executions["DriftGate"] == "RUNNING"
    assert not {"Transform", "Trainer", "Evaluator", "ServingPusher"} & set(executions)
