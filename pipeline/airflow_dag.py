"""Airflow DAG file: copy or link into $AIRFLOW_HOME/dags (see README, "Orchestrating").

Settings come from the environment at DAG-parse time, as Airflow requires: ETRM_HOME (state),
ETRM_TRADES_PER_SPAN, ETRM_SPAN (default: the next span after the newest in ML Metadata).
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from ml.home import resolve_home  # noqa: E402
from pipeline.config import DataSettings, ModelSettings  # noqa: E402
from pipeline.local_runner import PIPELINE_NAMES, HomeLayout, resolve_span  # noqa: E402
from pipeline.orchestrators import airflow_dag  # noqa: E402

_layout = HomeLayout(resolve_home())
_span_env = os.environ.get("ETRM_SPAN")
_data = DataSettings(
    dataset="trades",
    span=resolve_span(_layout, PIPELINE_NAMES["trades"], int(_span_env) if _span_env else None),
    records_per_span=int(os.environ.get("ETRM_TRADES_PER_SPAN", "20000")))
DAG = airflow_dag(_layout, _data, ModelSettings())
