"""Shared test setup: the platform's process settings (legacy Keras, quiet TF logs) before any
TensorFlow import, from the one place every entry point uses."""
import os

from ml.core.process import configure

configure()

# Airflow writes its config and database under AIRFLOW_HOME on import: keep tests out of ~/airflow.
if "AIRFLOW_HOME" not in os.environ:
    import tempfile

    os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="etrm-airflow-")
