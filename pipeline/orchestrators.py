"""The same create_pipeline() for Airflow (a DAG) and Kubeflow Pipelines V2 (a compiled spec)."""
from __future__ import annotations

import datetime as dt
import pathlib
from typing import Optional

from pipeline.config import DataSettings, DriftSettings, ModelSettings, ValidationSettings
from ml.core.home import Home
from ml.core.beam import beam_args
from pipeline.local_runner import serving_settings

DEFAULT_IMAGE = "etrm-ml-platform:latest"


def _pipeline(home: Home, data: DataSettings, model: ModelSettings, beam_workers: int,
              pipeline_root: Optional[str] = None, metadata: bool = True,
              drift: Optional[DriftSettings] = None):
    from ml.core import metadata as mlmd, registry
    from pipeline.create import create_pipeline

    name = registry.for_dataset(data.dataset).pipeline_name
    return create_pipeline(
        pipeline_root=pipeline_root or str(home.pipeline_root(name)),
        data=data, validation=ValidationSettings(), model=model, serving=serving_settings(home),
        metadata_connection_config=mlmd.connection_for(home) if metadata else None,
        beam_pipeline_args=beam_args(beam_workers), drift=drift or DriftSettings())


def airflow_dag(home: Home, data: DataSettings, model: ModelSettings,
                schedule: str = "0 2 * * 0", beam_workers: int = 2):
    """An Airflow DAG running the pipeline weekly (Sunday 02:00, the spec's retrain schedule)."""
    from tfx.orchestration.airflow.airflow_dag_runner import AirflowDagRunner, AirflowPipelineConfig

    config = AirflowPipelineConfig(airflow_dag_config={
        "schedule_interval": schedule,
        "start_date": dt.datetime(2024, 1, 1),
        "catchup": False,
        "max_active_runs": 1,
    })
    return AirflowDagRunner(config).run(_pipeline(home, data, model, beam_workers))


def compile_kubeflow(output_file: pathlib.Path, data: DataSettings, model: ModelSettings,
                     pipeline_root: str, image: str = DEFAULT_IMAGE,
                     home: Optional[Home] = None) -> pathlib.Path:
    """Writes the Kubeflow Pipelines V2 spec (JSON) for the pipeline; metadata is KFP's own.

    Without the drift gate: KFP V2 cannot compile its previous-span resolver (see README).
    """
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner as kfp_runner

    home = home or Home(pathlib.Path("/etrm"))
    output_file.parent.mkdir(parents=True, exist_ok=True)
    runner = kfp_runner.KubeflowV2DagRunner(
        config=kfp_runner.KubeflowV2DagRunnerConfig(default_image=image),
        output_dir=str(output_file.parent), output_filename=output_file.name)
    # KFP V2 compiles only TFX's LatestArtifact and LatestBlessedModel resolver strategies; the
    # drift gate resolves the previous span with its own strategy, so it is not compiled there.
    runner.run(_pipeline(home, data, model, beam_workers=1, pipeline_root=pipeline_root,
                         metadata=False, drift=DriftSettings(enabled=False)))
    return output_file
