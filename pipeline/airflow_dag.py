"""Airflow DAG file: copy or link into $AIRFLOW_HOME/dags (see README, "Orchestrating").

Settings come from the environment at DAG-parse time, as Airflow requires: ETRM_HOME (state),
ETRM_TRADES_PER_SPAN, ETRM_SPAN (default: the next span after the newest in ML Metadata).
"""
import os

from ml.core import registry
from ml.core.home import Home
from pipeline.config import DataSettings, ModelSettings
from pipeline.local_runner import resolve_span
from pipeline.orchestrators import airflow_dag

_home = Home.resolve()
_span_env = os.environ.get("ETRM_SPAN")
_data = DataSettings(
    dataset=registry.RISK_MODEL.dataset,
    span=resolve_span(_home, registry.RISK_MODEL.pipeline_name,
                      int(_span_env) if _span_env else None),
    records_per_span=int(os.environ.get("ETRM_TRADES_PER_SPAN", "20000")))
DAG = airflow_dag(_home, _data, ModelSettings())
