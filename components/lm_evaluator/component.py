"""LMEvaluator component: Evaluator-shaped inputs and outputs for the report language model.

TFMA cannot express this blessing: its value thresholds are constants fixed when the pipeline
is built, and its change thresholds compare against one baseline model, while the report LM
must beat an n-gram baseline fitted on this run's training split *and* stay within a
tolerance of the serving LM.
"""
from __future__ import annotations

from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.lm_evaluator import executor
from components.lm_evaluator.blessing import BlessingThresholds


class LMEvaluatorSpec(types.ComponentSpec):
    PARAMETERS = {
        executor.NGRAM_ORDER_KEY: ExecutionParameter(type=int),
        executor.MAX_NGRAM_RATIO_KEY: ExecutionParameter(type=float),
        executor.PERPLEXITY_TOLERANCE_KEY: ExecutionParameter(type=float),
    }
    INPUTS = {
        standard_component_specs.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        standard_component_specs.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        standard_component_specs.BASELINE_MODEL_KEY: ChannelParameter(
            type=standard_artifacts.Model, optional=True),
    }
    OUTPUTS = {
        standard_component_specs.EVALUATION_KEY: ChannelParameter(
            type=standard_artifacts.ModelEvaluation),
        standard_component_specs.BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing),
    }


class LMEvaluator(base_component.BaseComponent):
    """Perplexity, next-token accuracy, a Kneser-Ney baseline and the blessing of a report LM."""

    SPEC_CLASS = LMEvaluatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, examples: types.BaseChannel, model: types.BaseChannel,
                 baseline_model: Optional[types.BaseChannel] = None, ngram_order: int = 3,
                 thresholds: BlessingThresholds = BlessingThresholds()):
        if not 1 <= ngram_order <= 4:
            raise ValueError(f"ngram_order must be in 1..4, got {ngram_order}")
        spec = LMEvaluatorSpec(
            examples=examples, model=model, baseline_model=baseline_model,
            ngram_order=ngram_order,
            max_ngram_perplexity_ratio=thresholds.max_ngram_perplexity_ratio,
            perplexity_tolerance=thresholds.perplexity_tolerance,
            evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
            blessing=types.Channel(type=standard_artifacts.ModelBlessing))
        super().__init__(spec=spec)
