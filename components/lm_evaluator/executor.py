"""LMEvaluator executor: parses its properties, calls the plain evaluation and blessing
functions, and writes the artifacts the way TFX's Evaluator does (so the Pusher and
LatestBlessedModelStrategy read them unchanged)."""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Dict, List

from absl import logging
from tfx import types
from tfx.components.evaluator import constants
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, path_utils

from components.lm_evaluator import blessing, evaluation

METRICS_FILE = "metrics.json"
NGRAM_ORDER_KEY = "ngram_order"
MAX_NGRAM_RATIO_KEY = "max_ngram_perplexity_ratio"
PERPLEXITY_TOLERANCE_KEY = "perplexity_tolerance"
TRAIN_SPLIT = "train"
EVAL_SPLIT = "eval"


def load_metrics(evaluation_uri: str) -> Dict[str, Any]:
    """The metrics an LMEvaluator run wrote."""
    with open(os.path.join(evaluation_uri, METRICS_FILE), encoding="utf-8") as handle:
        return json.load(handle)


def split_uris(examples: List[types.Artifact], split: str) -> List[str]:
    """One split's folder in each Examples artifact (a window of spans brings several)."""
    if not examples:
        raise ValueError("LMEvaluator received no Examples artifact")
    return [artifact_utils.get_split_uri([artifact], split) for artifact in examples]


class Executor(base_executor.BaseExecutor):
    """Evaluates the candidate on the eval split and writes metrics and blessing."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        examples = input_dict[standard_component_specs.EXAMPLES_KEY]
        model = artifact_utils.get_single_instance(input_dict[standard_component_specs.MODEL_KEY])
        baselines = input_dict.get(standard_component_specs.BASELINE_MODEL_KEY) or []
        thresholds = blessing.BlessingThresholds(
            max_ngram_perplexity_ratio=float(exec_properties[MAX_NGRAM_RATIO_KEY]),
            perplexity_tolerance=float(exec_properties[PERPLEXITY_TOLERANCE_KEY]))
        metrics = evaluation.evaluate(
            candidate_dir=path_utils.serving_model_path(model.uri),
            train=evaluation.read_split_texts(*split_uris(examples, TRAIN_SPLIT)),
            evaluation=evaluation.read_split_texts(*split_uris(examples, EVAL_SPLIT)),
            ngram_order=int(exec_properties[NGRAM_ORDER_KEY]),
            baseline_dir=path_utils.serving_model_path(baselines[0].uri) if baselines else None)
        checks = blessing.blessing_checks(metrics, thresholds)
        blessed = blessing.is_blessed(checks)
        metrics["checks"] = [dataclasses.asdict(check) for check in checks]
        metrics["blessed"] = blessed

        result = artifact_utils.get_single_instance(output_dict[standard_component_specs.EVALUATION_KEY])
        io_utils.write_string_file(os.path.join(result.uri, METRICS_FILE),
                                   json.dumps(metrics, indent=2, sort_keys=True))
        result.set_float_custom_property("perplexity", metrics["candidate"]["perplexity"])
        result.set_float_custom_property("ngram_perplexity", metrics["ngram"]["perplexity"])

        model_blessing = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.BLESSING_KEY])
        model_blessing.set_string_custom_property(constants.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY,
                                                  model.uri)
        model_blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY,
                                               model.id)
        if baselines:
            model_blessing.set_string_custom_property(
                constants.ARTIFACT_PROPERTY_BASELINE_MODEL_URI_KEY, baselines[0].uri)
            model_blessing.set_int_custom_property(
                constants.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY, baselines[0].id)
        model_blessing.set_string_custom_property(
            constants.ARTIFACT_PROPERTY_BLESSING_MESSAGE_KEY,
            "; ".join(check.message for check in checks if not check.passed) or "all checks passed")
        marker = constants.BLESSED_FILE_NAME if blessed else constants.NOT_BLESSED_FILE_NAME
        io_utils.write_string_file(os.path.join(model_blessing.uri, marker), "")
        model_blessing.set_int_custom_property(
            constants.ARTIFACT_PROPERTY_BLESSED_KEY,
            constants.BLESSED_VALUE if blessed else constants.NOT_BLESSED_VALUE)
        for check in checks:
            logging.info("LMEvaluator check %s: %s (%s)", check.name,
                         "passed" if check.passed else "FAILED", check.message)
