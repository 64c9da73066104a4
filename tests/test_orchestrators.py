"""The pipeline compiles for Airflow (a real DAG) and Kubeflow Pipelines V2 (a JSON spec)."""
import json

import pytest

from pipeline.config import DataSettings, ModelSettings
from ml.core.home import Home

pytestmark = pytest.mark.slow

EXPECTED_NODES = {"ETRMExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator",
                  "ValidationGate", "Transform", "Trainer", "Evaluator", "CanaryValidator", "ServingPusher",
                  "latest_blessed_model_resolver"}


def _airflow_dags(tmp_path):
    from ml.core import registry
    from pipeline.airflow_settings import AirflowSettings
    from pipeline.orchestrators import airflow_dag

    settings = AirflowSettings(home=Home(tmp_path), trades_per_span=100, reports_per_span=50)
    return (airflow_dag(settings, registry.RISK_MODEL, "0 2 * * 0"),
            airflow_dag(settings, registry.REPORT_LM, "0 2 * * 0"))


def test_airflow_dags_have_a_task_per_component_one_run_at_a_time_and_retries(tmp_path):
    from airflow.models import DAG

    risk, lm = _airflow_dags(tmp_path)
    assert isinstance(risk, DAG) and isinstance(lm, DAG)
    assert (risk.dag_id, lm.dag_id) == ("etrm-risk-pipeline", "etrm-report-lm-pipeline")
    assert EXPECTED_NODES <= set(risk.task_ids)
    assert {"LMEvaluator", "Trainer", "ServingPusher"} <= set(lm.task_ids)
    assert "Transform" in risk.get_task("Trainer").upstream_task_ids
    assert "DriftGate" in risk.get_task("Transform").upstream_task_ids
    assert "ValidationGate" in risk.get_task("DriftGate").upstream_task_ids
    for dag in (risk, lm):
        assert dag.timetable.summary == "0 2 * * 0" and dag.max_active_runs == 1 and not dag.catchup
        trainer = dag.get_task("Trainer")
        assert trainer.retries == 2 and trainer.retry_exponential_backoff
        assert dag.get_task("ValidationGate").retries == 0
    assert risk.get_task("DriftGate").retries == 0


def test_airflow_schedule_is_the_registered_retraining_cron(tmp_path, monkeypatch):
    from airflow.models import DagBag
    from ml.continuous_learning_pipeline import ContinuousLearningPipeline, RetrainingConfig
    from tests.airflow_fixtures import DAG_FILE

    ContinuousLearningPipeline(home=tmp_path / "home").register_model_for_retraining(
        RetrainingConfig(model_name="risk_model", retrain_schedule="30 3 * * 1"))
    monkeypatch.setenv("ETRM_HOME", str(tmp_path / "home"))
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "etrm_dags.py").symlink_to(DAG_FILE)
    bag = DagBag(dag_folder=str(tmp_path / "dags"), include_examples=False)
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {"etrm-risk-pipeline", "etrm-report-lm-pipeline"}
    assert "LMEvaluator" in bag.dags["etrm-report-lm-pipeline"].task_ids
    assert bag.dags["etrm-risk-pipeline"].timetable.summary == "30 3 * * 1"
    assert bag.dags["etrm-report-lm-pipeline"].timetable.summary == "0 2 * * 0"


def test_airflow_renders_the_span_of_each_run_from_its_logical_date(tmp_path):
    import pendulum
    from tfx.dsl.components.common.resolver import RESOLVER_CONFIG

    risk, _ = _airflow_dags(tmp_path)
    week_3 = pendulum.datetime(2024, 1, 22, 2, tz="UTC")
    context = {"logical_date": week_3, **risk.user_defined_macros}
    example_gen = risk.get_task("ETRMExampleGen")
    rendered = example_gen.render_template(example_gen.op_kwargs, context)
    assert json.loads(rendered["exec_properties"]["range_config"]) == {
        "static_range": {"start_span_number": 3, "end_span_number": 3}}
    resolver = risk.get_task("previous_span_resolver")
    rendered = resolver.render_template(resolver.op_kwargs, context)
    assert rendered["exec_properties"][RESOLVER_CONFIG] == {"current_span": "3"}


def test_kubeflow_v2_spec_lists_every_component(tmp_path):
    from pipeline.orchestrators import compile_kubeflow

    out = compile_kubeflow(tmp_path / "etrm_pipeline.json", DataSettings(span=3, records_per_span=100),
                           ModelSettings(), pipeline_root="gs://bucket/etrm")
    spec = json.loads(out.read_text())
    tasks = spec["root"]["dag"]["tasks"]
    # KFP V2 compiles LatestBlessedModelStrategy into two resolver tasks named after the node.
    compiled_nodes = {name.split("-")[0] for name in tasks}
    assert EXPECTED_NODES <= compiled_nodes
    # The drift gate too (tests/test_kubeflow.py checks every node of every pipeline).
    assert {"DriftCheck", "DriftGate", "previous_span_resolver"} <= compiled_nodes
    assert "Transform" in tasks["Trainer"]["dependentTasks"]

