"""The model half of the risk pipeline: Transform, Trainer, Evaluator, ServingPusher."""
from __future__ import annotations

from typing import List

import tensorflow_model_analysis as tfma
from tfx import v1 as tfx

from components.canary_validator.component import CanaryValidator
from components.serving_pusher.component import ServingPusher
from models.risk import features
from ml.core import registry
from pipeline.config import ModelSettings, ServingSettings
from ml.core.code_fingerprint import MODEL_CODE_KEY, source_fingerprint
from pipeline.resolvers import latest_blessed_model_resolver

SLICE_FEATURES = ["commodity", "region"]


def risk_eval_config(model: ModelSettings) -> tfma.EvalConfig:
    """AUC must reach min_auc and may not fall more than auc_tolerance below the serving model."""
    auc_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": model.min_auc}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
            absolute={"value": -model.auc_tolerance}))
    metrics = [tfma.MetricConfig(class_name=name) for name in (
        "ExampleCount", "AUCPrecisionRecall", "BinaryAccuracy", "Calibration", "CalibrationPlot",
        "MeanLabel", "MeanPrediction", "BinaryCrossentropy")]
    # Judged on the overall slice only: per-commodity slices hold a few hundred trades and their
    # AUC noise would refuse good candidates; they are still computed and reported.
    metrics.append(tfma.MetricConfig(class_name="AUC", per_slice_thresholds=[
        tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()], threshold=auc_threshold)]))
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(signature_name="serving_default", label_key=features.LABEL_KEY,
                                    prediction_key="risk_score", preprocessing_function_names=[])],
        slicing_specs=[tfma.SlicingSpec()] + [tfma.SlicingSpec(feature_keys=[f]) for f in SLICE_FEATURES],
        metrics_specs=[tfma.MetricsSpec(metrics=metrics)])


def risk_model_nodes(examples, schema, upstream, model: ModelSettings,
                     serving: ServingSettings, baseline=None, canary_examples=None) -> List:
    """Nodes from Transform to ServingPusher; Transform waits for `upstream` (the gate).

    `baseline` is the resolver of the model to warm-start from and compare with (default: the
    latest blessed Model); `canary_examples` the one Examples artifact the pre-push check sends
    (default: `examples`, when that is a single span)."""
    transform = tfx.components.Transform(
        examples=examples, schema=schema,
        preprocessing_fn="models.risk.preprocessing.preprocessing_fn", materialize=False,
        # StatisticsGen already describes the raw data; Transform's own statistics would double the cost.
        disable_statistics=True)
    transform.add_upstream_node(upstream)

    latest_blessed = baseline if baseline is not None else latest_blessed_model_resolver()

    trainer = tfx.components.Trainer(
        run_fn="models.risk.trainer.run_fn",
        examples=examples,
        transform_graph=transform.outputs["transform_graph"],
        schema=schema,
        base_model=latest_blessed.outputs["model"],
        train_args=tfx.proto.TrainArgs(num_steps=model.train_steps) if model.train_steps else None,
        custom_config={"hyperparameters": dict(model.hyperparameters), "seed": model.seed,
                       MODEL_CODE_KEY: source_fingerprint("models/risk", "models/common")})

    evaluator = tfx.components.Evaluator(
        examples=examples,
        model=trainer.outputs["model"],
        baseline_model=latest_blessed.outputs["model"],
        eval_config=risk_eval_config(model))

    canary = CanaryValidator(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        examples=canary_examples if canary_examples is not None else examples,
        model_name=registry.RISK_MODEL.serving_name,
        num_requests=model.canary_requests,
        latency_budget_ms=model.canary_latency_budget_ms,
        label_features=",".join(features.NOT_FEATURES))

    pusher = ServingPusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        infra_blessing=canary.outputs["blessing"],
        model_name=registry.RISK_MODEL.serving_name,
        serving_base_dir=serving.serving_base_dir,
        models_config_path=serving.models_config_path,
        num_versions=model.num_serving_versions,
        signing_key_path=serving.signing_key_path,
        push_key=serving.push_key)
    return [transform, latest_blessed, trainer, evaluator, canary, pusher]
