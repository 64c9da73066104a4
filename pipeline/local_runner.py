"""Runs the pipeline on this machine (LocalDagRunner or BeamDagRunner) under a project home."""
from __future__ import annotations

import dataclasses
import os
import pathlib
import time
from typing import Dict, List, Optional

from components.drift_gate.summary import drift_gate_summary
from pipeline import metadata_queries, progress, run_summary
from pipeline.config import (DataSettings, DriftSettings, ModelSettings, ServingSettings,
                             ValidationSettings)

PIPELINE_NAMES = {"trades": "etrm-risk-pipeline", "reports": "etrm-report-lm-pipeline"}


@dataclasses.dataclass(frozen=True)
class HomeLayout:
    """Where a run keeps its state under the project home."""

    home: pathlib.Path

    @property
    def metadata_path(self) -> pathlib.Path:
        return self.home / "metadata.sqlite"

    @property
    def pipelines_root(self) -> pathlib.Path:
        return self.home / "pipelines"

    @property
    def runs_dir(self) -> pathlib.Path:
        return self.home / "runs"

    def serving_log_dir(self, model_name: str) -> pathlib.Path:
        """Where the model server writes the model's sampled requests (ml/serving/request_log)."""
        return self.home / "serving_logs" / model_name

    def pipeline_root(self, pipeline_name: str) -> pathlib.Path:
        return self.pipelines_root / pipeline_name

    @property
    def serving(self) -> ServingSettings:
        return ServingSettings(serving_base_dir=str(self.home / "serving_models"),
                               models_config_path=str(self.home / "serving_config" / "models.config"))


# Below this many records per span, DirectRunner's multi-processing mode loses: each worker
# process re-imports TensorFlow (tens of seconds) before it does any work (see BENCHMARKS.md).
MULTI_PROCESSING_MIN_RECORDS = 250_000


def default_beam_workers(records_per_span: int) -> int:
    """All cores for big spans, in-process otherwise."""
    return (os.cpu_count() or 2) if records_per_span >= MULTI_PROCESSING_MIN_RECORDS else 1


def beam_args(workers: int) -> List[str]:
    """DirectRunner on all cores (multi-processing) or in-process for one worker."""
    if workers <= 1:
        return ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
    return ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"]


def resolve_span(layout: HomeLayout, pipeline_name: str, requested: Optional[int]) -> int:
    """The requested span, else the one after the newest span in ML Metadata."""
    if requested is not None:
        return requested
    return metadata_queries.next_span(
        metadata_queries.sqlite_config(str(layout.metadata_path)), pipeline_name)


def run_pipeline(layout: HomeLayout, data: DataSettings,
                 validation: ValidationSettings = ValidationSettings(),
                 model: ModelSettings = ModelSettings(train=False),
                 runner: str = "local", beam_workers: Optional[int] = None,
                 verbose: bool = False, drift: DriftSettings = DriftSettings()) -> Dict:
    """Runs one pipeline and writes runs/latest.json; returns that summary (raises on failure)."""
    from pipeline.create import create_pipeline

    if runner not in ("local", "beam"):
        raise ValueError(f"runner must be 'local' or 'beam', got {runner!r}")
    pipeline_name = PIPELINE_NAMES[data.dataset]
    if beam_workers is None:
        beam_workers = default_beam_workers(data.records_per_span)
    layout.home.mkdir(parents=True, exist_ok=True)
    connection = metadata_queries.sqlite_config(str(layout.metadata_path))
    if not drift.serving_log_dir:
        drift = dataclasses.replace(
            drift, serving_log_dir=str(layout.serving_log_dir(model.model_name)))
    tfx_pipeline = create_pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=str(layout.pipeline_root(pipeline_name)),
        data=data, validation=validation, model=model, serving=layout.serving,
        metadata_connection_config=connection,
        beam_pipeline_args=beam_args(beam_workers), drift=drift)

    started_ms = int(time.time() * 1000)
    started = time.monotonic()
    handler = progress.attach(len(tfx_pipeline.components), verbose=verbose)
    error: Optional[BaseException] = None
    try:
        _runner(runner).run(tfx_pipeline)
    except Exception as exc:  # recorded in the summary, then re-raised for the caller
        error = exc
    finally:
        progress.detach(handler)
    summary = run_summary.build(
        store=metadata_queries.open_store(connection), pipeline_name=pipeline_name,
        since_ms=started_ms, data=data, runner=runner, beam_workers=beam_workers,
        wall_seconds=time.monotonic() - started, home=layout.home, error=error)
    summary.update(drift_gate_summary(metadata_queries.open_store(connection), summary["components"]))
    run_summary.write(layout.runs_dir, summary)
    if error is not None:
        raise error
    return summary


def _runner(name: str):
    if name == "beam":
        from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner
        return BeamDagRunner()
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner
    return LocalDagRunner()
