"""create_pipeline(): arguments in, tfx Pipeline out; reads no environment."""
from __future__ import annotations

import os
from typing import List, Optional

from tfx import v1 as tfx
from ml_metadata.proto import metadata_store_pb2

from components.etrm_example_gen.component import ETRMExampleGen
from components.validation_gate.component import ValidationGate
from pipeline.config import DataSettings, ModelSettings, ServingSettings, ValidationSettings

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMA_DIRS = {"trades": os.path.join(REPO_ROOT, "data", "schema", "trades"),
               "reports": os.path.join(REPO_ROOT, "data", "schema", "reports")}


def schema_file(dataset: str) -> str:
    """The curated schema of a dataset (checked in under data/schema/)."""
    return os.path.join(SCHEMA_DIRS[dataset], "schema.pbtxt")


def create_pipeline(pipeline_name: str,
                    pipeline_root: str,
                    data: DataSettings,
                    validation: ValidationSettings = ValidationSettings(),
                    model: ModelSettings = ModelSettings(train=False),
                    serving: Optional[ServingSettings] = None,
                    metadata_connection_config: Optional[metadata_store_pb2.ConnectionConfig] = None,
                    beam_pipeline_args: Optional[List[str]] = None,
                    enable_cache: bool = False) -> tfx.dsl.Pipeline:
    """ETRMExampleGen -> StatisticsGen -> ImportSchemaGen -> ExampleValidator -> ValidationGate,
    then (model.train) the model's Transform -> Trainer -> Evaluator -> ServingPusher."""
    example_gen = ETRMExampleGen(
        dataset=data.dataset, span=data.span, records_per_span=data.records_per_span,
        seed=data.seed, history_start=data.history_start, period_days=data.period_days,
        drift_scenarios=data.drift_scenarios, shuffle_labels=data.shuffle_labels,
        split_ratios=data.split_ratios)
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_file(data.dataset))
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])
    validation_gate = ValidationGate(
        example_anomalies=example_validator.outputs["anomalies"],
        examples=example_gen.outputs["examples"],
        fail_on_anomalies=int(validation.fail_on_anomalies))

    components = [example_gen, statistics_gen, schema_gen, example_validator, validation_gate]
    if model.train:
        if serving is None:
            raise ValueError("serving settings are required when model.train is set")
        if data.dataset == "reports":
            from pipeline.lm_nodes import lm_model_nodes as model_nodes
        elif data.dataset == "trades":
            from pipeline.risk_nodes import risk_model_nodes as model_nodes
        else:
            raise ValueError(f"no model is trained on dataset {data.dataset!r} yet")

        components += model_nodes(example_gen.outputs["examples"], schema_gen.outputs["schema"],
                                  validation_gate, model, serving)
    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        components=components,
        enable_cache=enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=beam_pipeline_args or [],
    )
