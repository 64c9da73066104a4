"""Airflow DAG file: both models' pipelines, one DAG each (copy or link into the dags folder).

An entry point (tests/test_layers.py): Airflow imports it, as a shell runs run_local.py.

Its settings are pipeline.airflow_settings (ETRM_* environment variables, documented there and
in the README, "Orchestrating with Airflow or Kubeflow"). Importing it builds the two DAGs and
nothing else: the span of a run is rendered from its logical date and ML Metadata is only read
when a task runs. Building them imports TFX and TensorFlow, once for both (BENCHMARKS.md,
"Airflow DAG file parse time").
"""
from ml.core import registry
from ml.lifecycle.store import registered_schedule
from pipeline.airflow_settings import AirflowSettings
from pipeline.orchestrators import airflow_dag

_settings = AirflowSettings.from_environ()
risk_dag = airflow_dag(_settings, registry.RISK_MODEL,
                       registered_schedule(_settings.home, registry.RISK_MODEL.serving_name))
report_lm_dag = airflow_dag(_settings, registry.REPORT_LM,
                            registered_schedule(_settings.home, registry.REPORT_LM.serving_name))
