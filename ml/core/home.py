"""The project home: every path the platform keeps state under, in one place.

The home is --home, else $ETRM_HOME, else .etrm in the working directory. Nothing else spells a
path under it by hand: ask `Home` (so lineage, continuous learning and the dashboard all find
the same files). Its ML Metadata is `Home.metadata`: --metadata, else $ETRM_METADATA, else
<home>/ml_metadata.json, else SQLite in the home (ml.core.metadata_target).
"""
from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
from typing import Optional, Union

from ml.core.metadata_target import SQLITE_FILE_NAME, MetadataTarget, resolve_target
from ml.core.model_names import check_model_name

HOME_ENV_VAR = "ETRM_HOME"
DEFAULT_HOME = ".etrm"
DOCKER_MODELS_ROOT = "/models/"

PathLike = Union[str, os.PathLike]


def resolve_home(home: Optional[PathLike] = None) -> pathlib.Path:
    """The project home as an absolute path (not created here)."""
    chosen = home if home not in (None, "") else os.environ.get(HOME_ENV_VAR) or DEFAULT_HOME
    return pathlib.Path(chosen).expanduser().resolve()


@dataclasses.dataclass(frozen=True)
class Home:
    """Paths under one project home; nothing is created until a caller writes there."""

    root: pathlib.Path
    metadata_url: Optional[str] = None  # --metadata as given; None: the environment decides

    @classmethod
    def resolve(cls, home: Optional[PathLike] = None, metadata: Optional[str] = None) -> "Home":
        return cls(resolve_home(home), metadata or None)

    # ML Metadata and pipeline runs
    @functools.cached_property
    def metadata(self) -> MetadataTarget:
        """The home's ML Metadata database; resolved on first use (MetadataConfigError names
        a bad option, variable or config file)."""
        return resolve_target(self.root, self.metadata_url)

    @property
    def metadata_path(self) -> pathlib.Path:
        """The default SQLite file (used unless another target is chosen: see `metadata`)."""
        return self.root / SQLITE_FILE_NAME

    @property
    def pipelines_root(self) -> pathlib.Path:
        return self.root / "pipelines"

    def pipeline_root(self, pipeline_name: str) -> pathlib.Path:
        return self.pipelines_root / pipeline_name

    @property
    def runs_dir(self) -> pathlib.Path:
        return self.root / "runs"

    @property
    def latest_run(self) -> pathlib.Path:
        return self.runs_dir / "latest.json"

    @property
    def reproductions_dir(self) -> pathlib.Path:
        """Fresh homes `etrm reproduce` reruns pushed versions into (one per reproduction)."""
        return self.root / "reproductions"

    @property
    def log_dir(self) -> pathlib.Path:
        """Library warnings and logs of every command (the terminal shows progress only)."""
        return self.root / "logs"

    # Serving
    @property
    def serving_models_dir(self) -> pathlib.Path:
        return self.root / "serving_models"

    def serving_base(self, model_name: str) -> pathlib.Path:
        """A model's TF Serving base path: one integer-named folder per pushed version."""
        return self.serving_models_dir / check_model_name(model_name)

    @property
    def models_config_path(self) -> pathlib.Path:
        return self.root / "serving_config" / "models.config"

    @property
    def signing_keys_dir(self) -> pathlib.Path:
        """The model-signing key pair, outside serving_models/ so whoever can write a model
        folder cannot also re-sign it (the private key is mode 0600)."""
        return self.root / "keys"

    @property
    def model_signing_key(self) -> pathlib.Path:
        return self.signing_keys_dir / "model_signing.pem"

    @property
    def model_signing_public_key(self) -> pathlib.Path:
        return self.signing_keys_dir / "model_signing.pub.pem"

    @property
    def serving_logs_dir(self) -> pathlib.Path:
        return self.root / "serving_logs"

    def serving_log_dir(self, model_name: str) -> pathlib.Path:
        """Where the model server writes the model's sampled requests."""
        return self.serving_logs_dir / check_model_name(model_name)

    def local_base_path(self, base_path: str) -> pathlib.Path:
        """A models.config base_path on this machine: /models/<name> (the docker mount) maps
        to serving_base(<name>) when it does not exist locally."""
        path = pathlib.Path(base_path)
        if not path.exists() and base_path.startswith(DOCKER_MODELS_ROOT):
            return self.serving_models_dir / base_path[len(DOCKER_MODELS_ROOT):]
        return path.resolve()

    # Monitoring
    @property
    def monitoring_dir(self) -> pathlib.Path:
        """ModelMonitoringService's default state: references, alerts."""
        return self.root / "monitoring"

    def monitoring_positions(self, model_name: str) -> pathlib.Path:
        """Which request-log files `etrm monitor` has already read for a model."""
        return self.monitoring_dir / "positions" / f"{check_model_name(model_name)}.json"

    @property
    def monitoring_reports_dir(self) -> pathlib.Path:
        return self.monitoring_dir / "reports"

    @property
    def monitoring_checks_db(self) -> pathlib.Path:
        """Every monitoring window's figures (ml.monitoring.check_history), for trends."""
        return self.monitoring_dir / "checks.sqlite"

    def monitoring_pending_outcomes(self, model_name: str) -> pathlib.Path:
        """Served requests whose outcomes had not arrived when they were checked."""
        return self.monitoring_dir / "pending_outcomes" / f"{check_model_name(model_name)}.parquet"

    def monitoring_reference_source(self, model_name: str) -> pathlib.Path:
        """Which model and training Examples the registered monitoring reference came from."""
        return self.monitoring_dir / "reference_sources" / f"{check_model_name(model_name)}.json"

    # Lifecycle
    @property
    def lifecycle_db(self) -> pathlib.Path:
        """Continuous learning's registrations, job queue and audit log (SQLite)."""
        return self.root / "lifecycle" / "lifecycle.sqlite"

    @property
    def lifecycle_alerts_db(self) -> pathlib.Path:
        """Continuous learning's own alerts (failed jobs, rollbacks) and their deliveries; apart
        from monitoring's alerts, which the loop reads as triggers."""
        return self.root / "lifecycle" / "alerts.sqlite"
