"""Shared test setup: TF_USE_LEGACY_KERAS before any TensorFlow import, quiet TF logs."""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Airflow writes its config and database under AIRFLOW_HOME on import: keep tests out of ~/airflow.
if "AIRFLOW_HOME" not in os.environ:
    import tempfile

    os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="etrm-airflow-")
