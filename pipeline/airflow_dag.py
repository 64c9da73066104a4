"""Airflow DAG file: both models' pipelines, one DAG each (copy or link into the dags folder).

Its settings are pipeline.airflow_settings (ETRM_* environment variables, documented there and
in the README, "Orchestrating with Airflow or Kubeflow"). Importing it builds the two DAGs and
nothing else: TFX and TensorFlow are imported inside airflow_dag, the span of a run is rendered
from its logical date, and ML Metadata is only read when a task runs.
"""
from ml.core import registry
from pipeline.airflow_settings import AirflowSettings
from pipeline.orchestrators import airflow_dag

_settings = AirflowSettings.from_environ()
risk_dag = airflow_dag(_settings, registry.RISK_MODEL)
report_lm_dag = airflow_dag(_settings, registry.REPORT_LM)
