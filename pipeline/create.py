"""create_pipeline(): arguments in, tfx Pipeline out; reads no environment."""
from __future__ import annotations

import os
from typing import List, Optional

from tfx import v1 as tfx
from ml_metadata.proto import metadata_store_pb2

from components.drift_gate.component import DriftCheck, DriftGate
from components.drift_gate.previous_span import PreviousSpanStrategy
from components.etrm_example_gen.component import ETRMExampleGen
from components.validation_gate.component import ValidationGate
from ml.core import registry
from ml.core.repo import REPO_ROOT
from pipeline.config import (DataSettings, DriftSettings, ModelSettings, ServingSettings,
                             ValidationSettings)
from pipeline.resolvers import stable_model_resolver

SCHEMA_ROOT = os.path.join(str(REPO_ROOT), "data", "schema")


def schema_file(dataset: str) -> str:
    """The curated schema of a dataset (checked in under data/schema/<dataset>/)."""
    return os.path.join(SCHEMA_ROOT, registry.for_dataset(dataset).dataset, "schema.pbtxt")


def create_pipeline(pipeline_root: str,
                    data: DataSettings,
                    validation: ValidationSettings = ValidationSettings(),
                    model: ModelSettings = ModelSettings(train=False),
                    serving: Optional[ServingSettings] = None,
                    metadata_connection_config: Optional[metadata_store_pb2.ConnectionConfig] = None,
                    beam_pipeline_args: Optional[List[str]] = None,
                    drift: DriftSettings = DriftSettings(),
                    baseline_version: Optional[int] = None) -> tfx.dsl.Pipeline:
    """ETRMExampleGen -> StatisticsGen -> ImportSchemaGen -> ExampleValidator -> ValidationGate
    -> DriftGate (trades, when drift.enabled), then (model.train) the model's Transform ->
    Trainer -> Evaluator -> ServingPusher. The model, its name and the pipeline's name come
    from the registry entry of data.dataset. No step is cached: every run ingests a new span.

    baseline_version: the serving version to warm-start from and judge against (the `stable`
    label; -1 when nothing serves). None gives TFX's LatestBlessedModelStrategy, for
    orchestrators that compile the pipeline once (KFP V2 compiles no other strategy)."""
    entry = registry.for_dataset(data.dataset)
    example_gen = ETRMExampleGen(data, split_ratios=data.split_ratios)
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_file(data.dataset))
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])
    validation_gate = ValidationGate(
        example_anomalies=example_validator.outputs["anomalies"],
        examples=example_gen.outputs["examples"],
        fail_on_anomalies=int(validation.fail_on_anomalies))

    components = [example_gen, statistics_gen, schema_gen, example_validator, validation_gate]
    gate = validation_gate
    if drift.enabled and data.dataset == "trades":
        drift_nodes = drift_gate_nodes(example_gen, statistics_gen, schema_gen, data.span, drift)
        drift_nodes[-1].add_upstream_node(validation_gate)
        components += drift_nodes
        gate = drift_nodes[-1]
    if model.train:
        if serving is None:
            raise ValueError("serving settings are required when model.train is set")
        baseline = (stable_model_resolver(entry.serving_name, baseline_version)
                    if baseline_version is not None else None)
        components += entry.build_nodes()(example_gen.outputs["examples"],
                                          schema_gen.outputs["schema"], gate, model, serving,
                                          baseline=baseline)
    return tfx.dsl.Pipeline(
        pipeline_name=entry.pipeline_name,
        pipeline_root=pipeline_root,
        components=components,
        enable_cache=False,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=beam_pipeline_args or [],
    )


def drift_gate_nodes(example_gen, statistics_gen, schema_gen, span: int,
                     drift: DriftSettings) -> List:
    """The previous span's Examples and statistics (resolved from ML Metadata), DriftCheck
    (publishes the result and reports) and DriftGate (stops the run when a blocking check fired).

    The resolver's channels name no producer: a channel from a node of this pipeline would only
    see the current run's artifacts, and the previous span was ingested by an earlier run."""
    from ml.monitoring.drift_rule import format_feature_floors
    from models.risk import features

    previous = tfx.dsl.Resolver(
        strategy_class=PreviousSpanStrategy,
        config={"current_span": span},
        examples=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Examples),
        statistics=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ExampleStatistics),
    ).with_id("previous_span_resolver")
    drift_check = DriftCheck(
        examples=example_gen.outputs["examples"],
        statistics=statistics_gen.outputs["statistics"],
        schema=schema_gen.outputs["schema"],
        previous_examples=previous.outputs["examples"],
        previous_statistics=previous.outputs["statistics"],
        feature_names=",".join(features.RAW_FEATURES + [features.LABEL_KEY]),
        label_name=features.LABEL_KEY,
        drift_action=drift.drift_action, skew_action=drift.skew_action,
        psi_threshold=drift.psi_threshold,
        feature_psi_thresholds=format_feature_floors(dict(drift.feature_psi_thresholds)),
        p_value=drift.p_value, label_change_threshold=drift.label_change,
        js_threshold=drift.js_threshold, linf_threshold=drift.linf_threshold,
        skew_js_threshold=drift.skew_js_threshold, skew_linf_threshold=drift.skew_linf_threshold,
        sample_rows=drift.sample_rows, serving_log_dir=drift.serving_log_dir)
    drift_gate = DriftGate(drift_result=drift_check.outputs["drift_result"])
    return [previous, drift_check, drift_gate]


def create_window_pipeline(pipeline_root: str, dataset: str, first_span: int, last_span: int,
                           model: ModelSettings, serving: ServingSettings, baseline_version: int,
                           period_days: int = 7, history_start: str = "2024-01-01",
                           metadata_connection_config: Optional[metadata_store_pb2.ConnectionConfig] = None,
                           beam_pipeline_args: Optional[List[str]] = None) -> tfx.dsl.Pipeline:
    """Continuous learning's training run: the validated spans first_span..last_span (ingested
    by earlier runs of create_pipeline, resolved from ML Metadata) -> the model's Transform ..
    ServingPusher, warm-started from and judged against serving version baseline_version
    (the `stable` label; -1 when nothing serves yet). Same pipeline name as the ingestion
    runs, so the resolvers see their artifacts."""
    from pipeline.strategies import SpanWindowStrategy

    entry = registry.for_dataset(dataset)
    grid = {"pipeline_name": entry.pipeline_name, "period_days": period_days,
            "history_start": history_start}
    window = tfx.dsl.Resolver(
        strategy_class=SpanWindowStrategy,
        config={**grid, "first_span": first_span, "last_span": last_span},
        examples=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Examples),
    ).with_id("training_window_resolver")
    newest = tfx.dsl.Resolver(
        strategy_class=SpanWindowStrategy,
        config={**grid, "first_span": last_span, "last_span": last_span},
        examples=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Examples),
    ).with_id("newest_span_resolver")
    stable = stable_model_resolver(entry.serving_name, baseline_version)
    schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_file(dataset))
    nodes = entry.build_nodes()(window.outputs["examples"], schema_gen.outputs["schema"],
                                schema_gen, model, serving, baseline=stable,
                                canary_examples=newest.outputs["examples"])
    return tfx.dsl.Pipeline(
        pipeline_name=entry.pipeline_name,
        pipeline_root=pipeline_root,
        components=[window, newest, schema_gen] + nodes,
        enable_cache=False,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=beam_pipeline_args or [],
    )
