"""Model results of a run for runs/latest.json: TFMA metrics, blessing, baseline, push, Bayes AUC."""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List

import numpy as np

from ml.core import registry
from ml.core import metadata as metadata_queries
from ml.core.example_tables import split_files
from ml.core.metrics import roc_auc

RISK_EVALUATOR_NODE = registry.RISK_MODEL.evaluator_node
LM_EVALUATOR_NODE = registry.REPORT_LM.evaluator_node
LM_METRICS = ("perplexity", "cross_entropy", "token_accuracy", "bits_per_character")
LM_TRAINING_FIELDS = ("initial_eval_loss", "best_eval_loss", "epochs_run", "train_steps_run",
                      "train_tokens", "train_tokens_per_second", "vocabulary_source", "vocabulary_size")
OVERALL_METRICS = {"auc": "auc", "auc_precision_recall": "pr_auc", "binary_accuracy": "accuracy",
                   "calibration": "calibration", "example_count": "example_count",
                   "mean_label": "mean_label", "mean_prediction": "mean_prediction",
                   "binary_crossentropy": "log_loss"}


def bayes_optimal_auc(examples_uris, split: str = "eval") -> float:
    """AUC of the generator's true probability on the eval split of the Examples (one URI or
    the several spans of a rolling window): the best any model can do on that data."""
    import tensorflow as tf

    labels, probabilities = [], []
    uris = [examples_uris] if isinstance(examples_uris, str) else list(examples_uris)
    files = [path for uri in uris for path in split_files(uri, split)]
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator():
        example = tf.train.Example.FromString(record)
        labels.append(example.features.feature["high_risk"].int64_list.value[0])
        probabilities.append(example.features.feature["high_risk_probability"].float_list.value[0])
    return roc_auc(labels=np.array(labels), scores=np.array(probabilities))


def _metric_value(value) -> Any:
    for field in ("doubleValue", "double_value"):
        if isinstance(value, dict) and field in value:
            return value[field]
    return value


def evaluation_metrics(evaluation_uri: str) -> Dict[str, Any]:
    """Overall and per-slice metrics from TFMA's output."""
    import tensorflow_model_analysis as tfma

    result = tfma.load_eval_result(evaluation_uri)
    overall, slices = {}, {}
    for slice_key, metrics in result.slicing_metrics:
        values = {}
        for output in metrics.values():
            for sub in output.values():
                for name, value in sub.items():
                    if name in OVERALL_METRICS:
                        values[OVERALL_METRICS[name]] = _metric_value(value)
        if not slice_key:
            overall = values
        else:
            slices["/".join(f"{k}={v}" for k, v in slice_key)] = values
    return {"overall": overall, "slices": slices}


def validation_failures(evaluation_uri: str) -> List[str]:
    import tensorflow_model_analysis as tfma

    result = tfma.load_validation_result(evaluation_uri)
    failures = []
    for slice_metrics in result.metric_validations_per_slice:
        for failure in slice_metrics.failures:
            failures.append(describe_failure(failure))
    return failures


def describe_failure(failure) -> str:
    """E.g. "auc 0.5298 is below the lower bound 0.65" or "auc change -0.0486 vs serving model ..."."""
    name = failure.metric_key.name
    value = failure.metric_value.double_value.value
    threshold = failure.metric_threshold
    if failure.metric_key.is_diff:
        allowed = threshold.change_threshold.absolute.value
        return (f"{name} is {value:+.4f} against the serving model; "
                f"allowed change is {allowed:+.4f} or better")
    bounds = threshold.value_threshold
    if bounds.HasField("lower_bound") and value < bounds.lower_bound.value:
        return f"{name} {value:.4f} is below the lower bound {bounds.lower_bound.value}"
    if bounds.HasField("upper_bound") and value > bounds.upper_bound.value:
        return f"{name} {value:.4f} is above the upper bound {bounds.upper_bound.value}"
    return f"{name} {value:.4f} failed its threshold"


def lm_evaluation_metrics(metrics: Dict[str, Any]) -> Dict[str, Any]:
    """The report LM's evaluator metrics in the summary's shape: overall (with the n-gram
    baseline and the serving model beside the candidate) and per report kind."""
    overall = {name: metrics["candidate"][name] for name in LM_METRICS}
    overall["ngram_perplexity"] = metrics["ngram"]["perplexity"]
    overall["perplexity_ratio_to_ngram"] = metrics["perplexity_ratio_to_ngram"]
    if metrics.get("baseline"):
        overall["serving_model_perplexity"] = metrics["baseline"]["perplexity"]
        overall["perplexity_ratio_to_serving_model"] = metrics["perplexity_ratio_to_baseline"]
    slices = {name: {key: values[key] for key in LM_METRICS}
              for name, values in metrics.get("slices", {}).items()}
    return {"overall": overall, "slices": slices}


def _add_lm_evaluation(store, execution_id: int, model: Dict[str, Any]) -> None:
    from tfx.utils import path_utils

    from components.lm_evaluator.executor import METRICS_FILE, load_metrics
    from models.lm.serving import TRAINING_REPORT_ASSET

    outputs = metadata_queries.output_artifacts(store, execution_id)
    inputs = metadata_queries.input_artifacts(store, execution_id)
    if outputs.get("evaluation") and os.path.exists(os.path.join(outputs["evaluation"][0].uri, METRICS_FILE)):
        metrics = load_metrics(outputs["evaluation"][0].uri)
        model["metrics"] = lm_evaluation_metrics(metrics)
        model["validation_failures"] = [check["message"] for check in metrics.get("checks", [])
                                        if not check["passed"]]
    if outputs.get("blessing") and "blessed" in outputs["blessing"][0].custom_properties:
        model["blessed"] = bool(outputs["blessing"][0].custom_properties["blessed"].int_value)
    baseline = inputs.get("baseline_model", [])
    model["baseline"] = ({"model_artifact_id": baseline[0].id,
                          "serving_version": metadata_queries.pushed_version_of_model(store, baseline[0].id)}
                         if baseline else None)
    report_path = (os.path.join(path_utils.serving_model_path(inputs["model"][0].uri), "assets",
                                TRAINING_REPORT_ASSET) if inputs.get("model") else "")
    if os.path.exists(report_path):
        with open(report_path) as handle:
            report = json.load(handle)
        model["training"] = {key: report.get(key) for key in LM_TRAINING_FIELDS}


def add_model_results(store, executions: List[Dict], summary: Dict[str, Any]) -> None:
    """Fills metrics, blessing, baseline and push results in place."""
    by_component = {row["component"]: row for row in executions}
    model: Dict[str, Any] = {}
    if RISK_EVALUATOR_NODE in by_component:
        execution_id = by_component[RISK_EVALUATOR_NODE]["execution_id"]
        outputs = metadata_queries.output_artifacts(store, execution_id)
        inputs = metadata_queries.input_artifacts(store, execution_id)
        if outputs.get("evaluation"):
            uri = outputs["evaluation"][0].uri
            model["metrics"] = evaluation_metrics(uri)
            model["validation_failures"] = validation_failures(uri)
        if outputs.get("blessing"):
            blessing = outputs["blessing"][0]
            model["blessed"] = bool(blessing.custom_properties["blessed"].int_value)
        baseline = inputs.get("baseline_model", [])
        model["baseline"] = ({"model_artifact_id": baseline[0].id,
                              "serving_version": metadata_queries.pushed_version_of_model(store, baseline[0].id)}
                             if baseline else None)
        model["evaluated_examples"] = [examples.uri for examples in inputs.get("examples", [])]
    if LM_EVALUATOR_NODE in by_component:
        _add_lm_evaluation(store, by_component[LM_EVALUATOR_NODE]["execution_id"], model)
    if "CanaryValidator" in by_component:
        outputs = metadata_queries.output_artifacts(store, by_component["CanaryValidator"]["execution_id"])
        if outputs.get("blessing"):
            canary = outputs["blessing"][0]
            result_path = os.path.join(canary.uri, "canary_result.json")
            model["canary"] = {"blessed": bool(canary.custom_properties["blessed"].int_value)}
            if os.path.exists(result_path):
                with open(result_path) as handle:
                    details = json.load(handle)
                model["canary"].update({key: details.get(key) for key in (
                    "reason", "latency_p50_ms", "latency_p99_ms", "latency_budget_ms", "requests", "errors")})
    if "ServingPusher" in by_component:
        outputs = metadata_queries.output_artifacts(store, by_component["ServingPusher"]["execution_id"])
        if outputs.get("pushed_model"):
            pushed = outputs["pushed_model"][0].custom_properties
            if pushed["pushed"].int_value:
                model["pushed_version"] = int(pushed["pushed_version"].string_value)
                model["pushed_to"] = pushed["pushed_destination"].string_value
            else:
                model["pushed_version"] = None
                model["not_pushed_reason"] = (pushed["not_pushed_reason"].string_value
                                              if "not_pushed_reason" in pushed else "not blessed")
    if "Trainer" in by_component:
        outputs = metadata_queries.output_artifacts(store, by_component["Trainer"]["execution_id"])
        inputs = metadata_queries.input_artifacts(store, by_component["Trainer"]["execution_id"])
        if outputs.get("model"):
            model["model_uri"] = outputs["model"][0].uri
        base = inputs.get("base_model", [])
        model["warm_started_from"] = ({"model_artifact_id": base[0].id,
                                       "serving_version": metadata_queries.pushed_version_of_model(store, base[0].id)}
                                      if base else None)
    evaluated = model.pop("evaluated_examples", None) or (
        [summary["examples_uri"]] if summary.get("examples_uri") else [])
    if evaluated and model.get("metrics") and RISK_EVALUATOR_NODE in by_component:
        model["bayes_optimal_auc"] = bayes_optimal_auc(evaluated)
        auc = model["metrics"]["overall"].get("auc")
        if auc is not None:
            model["auc_gap_to_bayes"] = model["bayes_optimal_auc"] - auc
    if model:
        summary["model"] = model
