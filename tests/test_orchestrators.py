"""The pipeline compiles for Airflow (a real DAG) and Kubeflow Pipelines V2 (a JSON spec)."""
import json

import pytest

from pipeline.config import DataSettings, ModelSettings
from ml.core.home import Home

pytestmark = pytest.mark.slow

EXPECTED_NODES = {"ETRMExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator",
                  "ValidationGate", "Transform", "Trainer", "Evaluator", "CanaryValidator", "ServingPusher",
                  "latest_blessed_model_resolver"}


def test_airflow_dag_has_a_task_per_component(tmp_path):
    from airflow.models import DAG
    from pipeline.orchestrators import airflow_dag

    dag = airflow_dag(Home(tmp_path), DataSettings(span=3, records_per_span=100), ModelSettings())
    assert isinstance(dag, DAG)
    assert dag.schedule_interval == "0 2 * * 0"
    assert EXPECTED_NODES <= set(dag.task_ids)
    trainer = dag.get_task("Trainer")
    assert "Transform" in trainer.upstream_task_ids
    assert "DriftGate" in dag.get_task("Transform").upstream_task_ids
    assert "ValidationGate" in dag.get_task("DriftGate").upstream_task_ids


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
