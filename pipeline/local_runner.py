"""Runs a model's pipeline on this machine (LocalDagRunner or BeamDagRunner) under a project home."""
from __future__ import annotations

import dataclasses
import time
from typing import Dict, Optional, Sequence

from ml.core import logs, metadata, registry
from ml.core.beam import beam_args, default_beam_workers
from ml.core.home import Home
from pipeline import progress, run_summary
from pipeline.config import (DataSettings, DriftSettings, ModelSettings, ServingSettings,
                             ValidationSettings)

def serving_settings(home: Home) -> ServingSettings:
    """Where a home's pushed models and models.config live, and the key that signs each push.

    A home gets its Ed25519 key pair on its first run, so every local deployment is signed and
    `etrm serve` (which trusts the home's public key) refuses a model swapped behind its back.
    """
    from ml.serving.manifest import generate_signing_key

    if not home.model_signing_key.exists():
        try:
            generate_signing_key(home.signing_keys_dir, home.model_signing_key.name[:-len(".pem")])
        except FileExistsError:
            if not home.model_signing_key.exists():
                raise ValueError(
                    f"{home.model_signing_public_key} exists without its private key "
                    f"{home.model_signing_key}: restore the key, or remove both to start over "
                    "(servers trusting the old public key will then refuse new pushes)") from None
    return ServingSettings(serving_base_dir=str(home.serving_models_dir),
                           models_config_path=str(home.models_config_path),
                           signing_key_path=str(home.model_signing_key))


def stable_version(home: Home, serving_name: str) -> int:
    """The version labelled `stable` in the home's models.config; -1 when nothing serves."""
    from ml.serving.model_config import STABLE_LABEL, version_labels

    return version_labels(home.models_config_path, serving_name).get(STABLE_LABEL, -1)


def resolve_span(home: Home, pipeline_name: str, requested: Optional[int]) -> int:
    """The requested span, else the one after the newest span in ML Metadata."""
    if requested is not None:
        return requested
    if not metadata.has_store(home):
        return 0
    return metadata.next_span(metadata.store_for(home), pipeline_name)


def run_pipeline(home: Home, data: DataSettings,
                 validation: ValidationSettings = ValidationSettings(),
                 model: ModelSettings = ModelSettings(train=False),
                 runner: str = "local", beam_workers: Optional[int] = None,
                 verbose: bool = False, drift: DriftSettings = DriftSettings(),
                 beam_options: Sequence[str] = ()) -> Dict:
    """Runs the pipeline of the dataset's model once and writes runs/latest.json; returns that
    summary (raises on failure, after writing it). Library output goes to the log file of the
    command's `logs.terminal` (a new one if the caller has none), which the summary names.
    beam_options: Beam pipeline options passed through (`ml.core.beam.beam_args`)."""
    with logs.terminal(home, verbose=verbose) as terminal:
        return _run_pipeline(home, data, validation, model, runner, beam_workers, drift,
                             terminal.log_path, tuple(beam_options))


def _run_pipeline(home: Home, data: DataSettings, validation: ValidationSettings,
                  model: ModelSettings, runner: str, beam_workers: Optional[int],
                  drift: DriftSettings, log_path, beam_options: Sequence[str]) -> Dict:
    from pipeline.create import create_pipeline

    entry = registry.for_dataset(data.dataset)
    if beam_workers is None:
        beam_workers = default_beam_workers(data.records_per_span)
    if not drift.serving_log_dir:
        drift = dataclasses.replace(
            drift, serving_log_dir=str(home.serving_log_dir(entry.serving_name)))
    home.root.mkdir(parents=True, exist_ok=True)
    tfx_pipeline = create_pipeline(
        pipeline_root=str(home.pipeline_root(entry.pipeline_name)),
        data=data, validation=validation, model=model, serving=serving_settings(home),
        metadata_connection_config=metadata.connection_for(home),
        beam_pipeline_args=beam_args(beam_workers, beam_options), drift=drift,
        baseline_version=stable_version(home, entry.serving_name))
    return _execute(home, tfx_pipeline, data, runner, beam_workers, log_path)


@dataclasses.dataclass(frozen=True)
class WindowRun:
    """What a continuous-learning training run was asked to do (recorded in its summary)."""

    dataset: str
    first_span: int
    last_span: int
    baseline_version: int
    push_key: str
    period_days: int = 7
    history_start: str = "2024-01-01"


def run_window_pipeline(home: Home, window: WindowRun, model: ModelSettings,
                        records_per_span: int, verbose: bool = False) -> Dict:
    """Trains on the validated spans of the window (pipeline.create.create_window_pipeline)
    and writes runs/latest.json; returns that summary (raises on failure, after writing it)."""
    from pipeline.create import create_window_pipeline

    entry = registry.for_dataset(window.dataset)
    beam_workers = default_beam_workers(records_per_span * (window.last_span - window.first_span + 1))
    serving = dataclasses.replace(serving_settings(home), push_key=window.push_key)
    with logs.terminal(home, verbose=verbose) as terminal:
        tfx_pipeline = create_window_pipeline(
            pipeline_root=str(home.pipeline_root(entry.pipeline_name)), dataset=window.dataset,
            first_span=window.first_span, last_span=window.last_span, model=model,
            serving=serving, baseline_version=window.baseline_version,
            period_days=window.period_days, history_start=window.history_start,
            metadata_connection_config=metadata.connection_for(home),
            beam_pipeline_args=beam_args(beam_workers))
        return _execute(home, tfx_pipeline, window, "local", beam_workers, terminal.log_path)


def _execute(home: Home, tfx_pipeline, data, runner: str, beam_workers: int, log_path) -> Dict:
    """Runs a built pipeline with progress lines, then builds and writes its summary."""
    if runner not in ("local", "beam"):
        raise ValueError(f"runner must be 'local' or 'beam', got {runner!r}")
    connection = tfx_pipeline.metadata_connection_config
    started_ms = int(time.time() * 1000)
    started = time.monotonic()
    error: Optional[BaseException] = None
    handler = progress.attach(len(tfx_pipeline.components))
    try:
        _runner(runner).run(tfx_pipeline)
    except Exception as exc:  # recorded in the summary, then re-raised for the caller
        error = exc
    finally:
        progress.detach(handler)
    summary = run_summary.build(
        store=metadata.open_store(connection), pipeline_name=tfx_pipeline.pipeline_info.pipeline_name,
        since_ms=started_ms, data=data, runner=runner, beam_workers=beam_workers,
        wall_seconds=time.monotonic() - started, home=home.root, error=error)
    summary["log"] = str(log_path)
    summary["beam_pipeline_args"] = list(tfx_pipeline.beam_pipeline_args)
    summary["metadata"] = home.metadata.describe()  # where the run was recorded, no password
    run_summary.write(home, summary)
    if error is not None:
        raise error
    return summary


def _runner(name: str):
    if name == "beam":
        from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner
        return BeamDagRunner()
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner
    return LocalDagRunner()
