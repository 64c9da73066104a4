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
    """Writes the Kubeflow Pipelines V2 PipelineSpec (JSON) of create_pipeline for data.dataset's
    model, every node included (pipeline/kubeflow.py); metadata is KFP's own. Submit it with
    kfp.Client().create_run_from_pipeline_package."""
    from pipeline import kubeflow

    home = home or Home(pathlib.Path(kubeflow.IMAGE_HOME))
    return kubeflow.write_pipeline_spec(
        _pipeline(home, data, model, beam_workers=1, pipeline_root=pipeline_root, metadata=False),
        output_file, image, pipeline_root)


def compile_kubeflow_window(output_file: pathlib.Path, dataset: str, first_span: int,
                            last_span: int, baseline_version: int, model: ModelSettings,
                            pipeline_root: str, image: str = DEFAULT_IMAGE,
                            home: Optional[Home] = None, period_days: int = 7,
                            history_start: str = "2024-01-01") -> pathlib.Path:
    """The continuous-learning training run (create_window_pipeline) as a PipelineSpec: the
    rolling window of spans and the stable baseline compile as artifact queries."""
    from pipeline import kubeflow
    from pipeline.create import create_window_pipeline

    home = home or Home(pathlib.Path(kubeflow.IMAGE_HOME))
    tfx_pipeline = create_window_pipeline(
        pipeline_root=pipeline_root, dataset=dataset, first_span=first_span, last_span=last_span,
        model=model, serving=serving_settings(home), baseline_version=baseline_version,
        period_days=period_days, history_start=history_start, beam_pipeline_args=beam_args(1))
    return kubeflow.write_pipeline_spec(tfx_pipeline, output_file, image, pipeline_root)
