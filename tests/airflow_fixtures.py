"""Airflow 2 under a temporary AIRFLOW_HOME, running pipeline/airflow_dag.py with `airflow dags
test` as a subprocess (Airflow's own metadata in its SQLite; the project's ML Metadata in the
project home given to the DAG file)."""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import sqlite3
import subprocess
import sys
from typing import Dict, Mapping, Optional, Tuple

from pipeline.airflow_settings import SETTING_VARIABLES
from tests.pipeline_helpers import FAST_HYPERPARAMETERS

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
DAG_FILE = REPO_ROOT / "pipeline" / "airflow_dag.py"
AIRFLOW = pathlib.Path(sys.executable).with_name("airflow")
# The DAG file imports TFX and with it TensorFlow: 47-101 s on this shared 2-core machine
# (BENCHMARKS.md, "Airflow DAG file parse time"), beyond Airflow's default 30 s; as the README.
DAGBAG_IMPORT_TIMEOUT_S = "300"


def small_run_settings(home: pathlib.Path) -> Dict[str, str]:
    """The DAG settings (pipeline.airflow_settings) of a small, fast risk-model run."""
    return {"ETRM_HOME": str(home), "ETRM_TRADES_PER_SPAN": "1000", "ETRM_REPORTS_PER_SPAN": "200",
            "ETRM_TRAIN_STEPS": "20", "ETRM_MIN_AUC": "0.65",
            "ETRM_RISK_HYPERPARAMETERS": json.dumps(FAST_HYPERPARAMETERS),
            "ETRM_AIRFLOW_RETRIES": "0"}


@dataclasses.dataclass(frozen=True)
class AirflowInstance:
    """A migrated AIRFLOW_HOME whose dags folder holds a link to the project's DAG file."""

    root: pathlib.Path

    @classmethod
    def create(cls, root: pathlib.Path) -> "AirflowInstance":
        instance = cls(root)
        (root / "dags").mkdir(parents=True)
        (root / "dags" / "etrm_dags.py").symlink_to(DAG_FILE)
        instance.airflow("db", "migrate", settings={})
        return instance

    def environment(self, settings: Mapping[str, str]) -> Dict[str, str]:
        # The DAG's own settings come only from `settings`; others pass (ML Metadata's target).
        env = {key: value for key, value in os.environ.items()
               if key not in SETTING_VARIABLES and not key.startswith("AIRFLOW")}
        env.update(settings)
        env.update({"AIRFLOW_HOME": str(self.root), "AIRFLOW__CORE__DAGS_FOLDER": str(self.root / "dags"),
                    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                    "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": DAGBAG_IMPORT_TIMEOUT_S,
                    "PYTHONPATH": str(REPO_ROOT), "TF_USE_LEGACY_KERAS": "1"})
        return env

    def airflow(self, *args: str, settings: Mapping[str, str]) -> subprocess.CompletedProcess:
        """Runs the airflow CLI under `nice`; its output is kept in the instance's logs/."""
        log_dir = self.root / "cli_logs"
        log_dir.mkdir(exist_ok=True)
        log_path = log_dir / f"{len(list(log_dir.iterdir())):02d}-{'-'.join(args[:2])}.log"
        with open(log_path, "w") as log:
            result = subprocess.run(["nice", "-n", "10", str(AIRFLOW), *args], env=self.environment(settings),
                                    stdout=log, stderr=subprocess.STDOUT, cwd=self.root, timeout=1500)
        return subprocess.CompletedProcess(result.args, result.returncode,
                                           stdout=log_path.read_text())

    def newest_run(self, dag_id: str) -> Tuple[str, Dict[str, Optional[str]]]:
        """The run id of dag_id's newest run and each task's state, from Airflow's database."""
        with sqlite3.connect(self.root / "airflow.db") as db:
            run_id = db.execute("SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1",
                                (dag_id,)).fetchone()[0]
            rows = db.execute("SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?",
                              (dag_id, run_id)).fetchall()
        return run_id, dict(rows)
