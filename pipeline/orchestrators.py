"""The same create_pipeline() for Airflow (a DAG) and Kubeflow Pipelines V2 (a compiled spec)."""
from __future__ import annotations

import datetime as dt
import functools
import json
import pathlib
from typing import Optional

from pipeline.config import DataSettings, DriftSettings, ModelSettings, ValidationSettings
from ml.core import registry
from ml.core.home import Home
from ml.core.beam import beam_args
from pipeline.local_runner import serving_settings

DEFAULT_IMAGE = "etrm-ml-platform:latest"


def _pipeline(home: Home, data: DataSettings, model: ModelSettings, beam_workers: int,
              pipeline_root: Optional[str] = None, metadata: bool = True,
              drift: Optional[DriftSettings] = None):
    from ml.core import metadata as mlmd
    from pipeline.create import create_pipeline

    name = registry.for_dataset(data.dataset).pipeline_name
    return create_pipeline(
        pipeline_root=pipeline_root or str(home.pipeline_root(name)),
        data=data, validation=ValidationSettings(), model=model, serving=serving_settings(home),
        metadata_connection_config=mlmd.connection_for(home) if metadata else None,
        beam_pipeline_args=beam_args(beam_workers), drift=drift or DriftSettings())


def airflow_dag(settings, model: registry.RegisteredModel, schedule: str):
    """The model's pipeline as an Airflow DAG (TFX's AirflowDagRunner, one task per node).

    settings: a pipeline.airflow_settings.AirflowSettings; schedule: a cron (the DAG file
    gives the model's registered RetrainingConfig cron). One run at a time; failed tasks
    retry with exponential backoff, except the gates, whose verdict a retry would only repeat. The span is rendered
    per run from its logical date (span_of_logical_date), so the workers, which parse the file
    again for each task, agree on it with the scheduler."""
    from tfx.orchestration.airflow.airflow_dag_runner import AirflowDagRunner, AirflowPipelineConfig

    home = settings.home
    data = DataSettings(dataset=model.dataset, span=0,
                        records_per_span=settings.records_per_span(model),
                        drift_scenarios=settings.drift_scenarios)
    model_settings = ModelSettings(train_steps=settings.train_steps, min_auc=settings.min_auc,
                                   hyperparameters=(dict(settings.risk_hyperparameters)
                                                    if model is registry.RISK_MODEL else {}))
    drift = DriftSettings(serving_log_dir=str(home.serving_log_dir(model.serving_name)))
    tfx_pipeline = _pipeline(home, data, model_settings, settings.beam_workers, drift=drift)
    config = AirflowPipelineConfig(airflow_dag_config={
        "schedule": schedule,
        "start_date": dt.datetime(2024, 1, 1),
        "catchup": False,
        "max_active_runs": 1,
        "default_args": settings.default_args(),
        "user_defined_macros": {SPAN_MACRO: functools.partial(
            span_of_logical_date, data.history_start, data.period_days)},
        "tags": ["etrm", model.key],
    })
    dag = AirflowDagRunner(config).run(tfx_pipeline)
    _render_span_per_run(dag)
    for gate in GATE_NODES & set(dag.task_ids):
        dag.get_task(gate).retries = 0
    return dag


SPAN_MACRO = "etrm_span"
SPAN_TEMPLATE = "{{ %s(logical_date) }}" % SPAN_MACRO
GATE_NODES = frozenset({"ValidationGate", "DriftGate"})


def span_of_logical_date(history_start: str, period_days: int, logical_date) -> int:
    """The span whose window contains the run's logical date (its calendar day)."""
    from ml.synthetic.spans import span_for_date

    day = dt.datetime(logical_date.year, logical_date.month, logical_date.day)
    return span_for_date(day, history_start, period_days)


def _render_span_per_run(dag) -> None:
    """Puts SPAN_TEMPLATE where the built pipeline carries its span: ExampleGen's static range
    and the previous-span resolver's current span. Airflow renders a task's op_kwargs (the
    execution properties TFX's launcher applies to the node) before the task runs; each task
    gets its own copy, so the template survives the run."""
    from tfx.dsl.components.common.resolver import RESOLVER_CONFIG

    if "ETRMExampleGen" in dag.task_ids:
        task = dag.get_task("ETRMExampleGen")
        task.op_kwargs = {"exec_properties": {
            **task.op_kwargs["exec_properties"],
            "range_config": json.dumps({"static_range": {
                "start_span_number": "SPAN", "end_span_number": "SPAN"}}).replace('"SPAN"', SPAN_TEMPLATE)}}
    if "previous_span_resolver" in dag.task_ids:
        task = dag.get_task("previous_span_resolver")
        properties = task.op_kwargs["exec_properties"]
        task.op_kwargs = {"exec_properties": {
            **properties, RESOLVER_CONFIG: {**properties[RESOLVER_CONFIG], "current_span": SPAN_TEMPLATE}}}
        task.python_callable = functools.partial(_launch_with_rendered_resolver_config,
                                                 task.python_callable)


def _launch_with_rendered_resolver_config(launch, exec_properties, **context):
    """TFX's launcher applies rendered properties with exec_properties.update(), which a
    Resolver drops (it builds that dict anew from its config on each read); its config dict
    itself is shared, so the rendered config is applied to it in place before the launch."""
    from tfx.dsl.components.common.resolver import RESOLVER_CONFIG

    resolver = launch.keywords["component"]
    resolver.exec_properties[RESOLVER_CONFIG].update(exec_properties[RESOLVER_CONFIG])
    return launch(exec_properties=exec_properties, **context)


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
