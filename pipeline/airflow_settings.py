"""The settings of the Airflow DAGs, read in this one place (environment variables the DAG file
sees when Airflow parses it; every worker parses it again, so set them for workers too).

    ETRM_HOME                        project home: ML Metadata, pipeline roots, serving models
    ETRM_TRADES_PER_SPAN             records per span of the risk model's trades (20000)
    ETRM_REPORTS_PER_SPAN            records per span of the report LM's reports (2000)
    ETRM_TRAIN_STEPS                 training steps of both trainers (the model's default)
    ETRM_MIN_AUC                     the risk model's blessing floor (0.70)
    ETRM_RISK_HYPERPARAMETERS        JSON object of risk-model hyperparameters ({})
    ETRM_DRIFT                       generator drift scenarios, KIND@YYYY-MM-DD:MAGNITUDE,... ("")
    ETRM_BEAM_WORKERS                Beam workers of each component (1)
    ETRM_AIRFLOW_RETRIES             retries of a failed task (2; the gates never retry)
    ETRM_AIRFLOW_RETRY_DELAY_SECONDS first retry delay, doubled at each retry up to 1 h (300)

The schedule is not a setting here: it is the model's RetrainingConfig.retrain_schedule as
registered in the home (`ml.lifecycle.store.registered_schedule`), else the spec's weekly
Sunday 02:00. The span of a run is the span containing its logical date.
ML Metadata is the home's (ml.core.metadata.connection_for): with Airflow, a MariaDB/MySQL
server rather than SQLite, which concurrent tasks lock (README).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from typing import Any, Dict, Mapping, Optional

from ml.core import registry
from ml.core.home import Home

MAX_RETRY_DELAY = dt.timedelta(hours=1)


@dataclasses.dataclass(frozen=True)
class AirflowSettings:
    """What the DAGs of one home run with; `from_environ` is the only reader of the environment."""

    home: Home
    trades_per_span: int = 20000
    reports_per_span: int = 2000
    train_steps: Optional[int] = None
    min_auc: float = 0.70
    risk_hyperparameters: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    drift_scenarios: str = ""
    beam_workers: int = 1
    retries: int = 2
    retry_delay: dt.timedelta = dt.timedelta(minutes=5)

    def __post_init__(self):
        for name in ("trades_per_span", "reports_per_span", "beam_workers"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> "AirflowSettings":
        """The settings from the ETRM_* variables above; a ValueError naming the variable."""
        values: Dict[str, Any] = {"home": Home.resolve(environ.get("ETRM_HOME"))}
        for variable, (field, parse) in _VARIABLES.items():
            text = environ.get(variable, "")
            if text == "":
                continue
            try:
                values[field] = parse(text)
            except ValueError as exc:
                raise ValueError(f"{variable}={text!r} is not valid: {exc}") from None
        try:
            return cls(**values)
        except ValueError as exc:
            raise ValueError(f"Airflow settings: {exc}") from None

    def records_per_span(self, model: registry.RegisteredModel) -> int:
        return self.trades_per_span if model is registry.RISK_MODEL else self.reports_per_span

    def default_args(self) -> Dict[str, Any]:
        """Every task's retry policy: exponential backoff from retry_delay, capped at 1 h."""
        return {"retries": self.retries, "retry_delay": self.retry_delay,
                "retry_exponential_backoff": True, "max_retry_delay": MAX_RETRY_DELAY}


def _json_object(text: str) -> Dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


_VARIABLES = {
    "ETRM_TRADES_PER_SPAN": ("trades_per_span", int),
    "ETRM_REPORTS_PER_SPAN": ("reports_per_span", int),
    "ETRM_TRAIN_STEPS": ("train_steps", int),
    "ETRM_MIN_AUC": ("min_auc", float),
    "ETRM_RISK_HYPERPARAMETERS": ("risk_hyperparameters", _json_object),
    "ETRM_DRIFT": ("drift_scenarios", str),
    "ETRM_BEAM_WORKERS": ("beam_workers", int),
    "ETRM_AIRFLOW_RETRIES": ("retries", int),
    "ETRM_AIRFLOW_RETRY_DELAY_SECONDS": ("retry_delay", lambda text: dt.timedelta(seconds=float(text))),
}
SETTING_VARIABLES = ("ETRM_HOME", *_VARIABLES)
