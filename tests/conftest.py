"""Shared test setup: the platform's process settings (legacy Keras, quiet TF logs) before any
TensorFlow import, from the one place every entry point uses."""
import os

from ml.core.process import configure

configure()

# Airflow writes its config and database under AIRFLOW_HOME on import: keep tests out of ~/airflow.
if "AIRFLOW_HOME" not in os.environ:
    import tempfile

    os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="etrm-airflow-")


import pytest  # noqa: E402  (after configure(): fixtures below import TensorFlow lazily)


@pytest.fixture(scope="session")
def continuous_home(tmp_path_factory):
    """A home two real retraining jobs ran on (daily spans, 3-day windows): v1 trained from
    nothing, v2 against stable v1. Shared by the retraining and simulation e2e tests; what the
    jobs left is snapshotted here, since the simulation goes on to change the home."""
    from tests.continuous_fixtures import run_retraining_jobs

    return run_retraining_jobs(tmp_path_factory.mktemp("continuous-home"))


from tests.mariadb_fixtures import mariadb, mariadb_metadata  # noqa: E402,F401  (fixtures)


@pytest.fixture(scope="session")
def risk_home(tmp_path_factory):
    """A home whose first risk-pipeline run (1,500 trades, fast hyperparameters) pushed v1:
    (home, that run's summary). Shared by the risk e2e tests and the reproduction into
    MariaDB, which reruns that v1 from its lineage."""
    from tests.pipeline_helpers import run_small

    home = tmp_path_factory.mktemp("risk_home")
    return home, run_small(home, train=True, drift_gate=False)
