"""The model half of the report-LM pipeline: Transform, Trainer, LMEvaluator, ServingPusher.

Same shape as risk_nodes: Transform builds the tokenizer's vocabulary, the Trainer warm-starts
from the latest blessed LM, the evaluator blesses it (against an n-gram baseline and the
serving LM), and the ServingPusher publishes blessed models as the registry's etrm_report_lm.
"""
from __future__ import annotations

from typing import List

from tfx import v1 as tfx

from components.lm_evaluator.blessing import BlessingThresholds
from components.lm_evaluator.component import LMEvaluator
from components.serving_pusher.component import ServingPusher
from models.lm import preprocessing, trainer
from models.lm.config import ModelConfig
from ml.core import registry
from pipeline.config import ModelSettings, ServingSettings
from ml.core.code_fingerprint import MODEL_CODE_KEY, source_fingerprint
from pipeline.resolvers import latest_blessed_model_resolver


def lm_model_nodes(examples, schema, upstream, model: ModelSettings,
                   serving: ServingSettings, baseline=None, canary_examples=None) -> List:
    """Nodes from Transform to ServingPusher; Transform waits for `upstream` (the gate).

    `baseline` is the resolver of the model to warm-start from and compare with (default: the
    latest blessed Model); the LM has no pre-push serving check, so `canary_examples` is unused.

    Transform only builds the vocabulary: statistics of token ids (a second pass over the data)
    and an analyzer cache (each span is analysed once) would cost time and tell nothing, and
    TFT's graph mode (the Trainer reads only the vocabulary file) analyses in half the time of
    TF2 tracing.
    """
    config = ModelConfig.from_dict(model.hyperparameters)
    transform = tfx.components.Transform(
        examples=examples, schema=schema,
        preprocessing_fn="models.lm.preprocessing.preprocessing_fn", materialize=False,
        custom_config={preprocessing.VOCAB_SIZE_CONFIG_KEY: config.vocab_size},
        disable_statistics=True, disable_analyzer_cache=True, force_tf_compat_v1=True)
    transform.add_upstream_node(upstream)

    latest_blessed = baseline if baseline is not None else latest_blessed_model_resolver()

    model_trainer = tfx.components.Trainer(
        run_fn="models.lm.trainer.run_fn",
        examples=examples,
        transform_graph=transform.outputs["transform_graph"],
        schema=schema,
        base_model=latest_blessed.outputs["model"] if model.lm.warm_start else None,
        train_args=tfx.proto.TrainArgs(num_steps=model.train_steps) if model.train_steps else None,
        custom_config={trainer.HYPERPARAMETERS_KEY: config.to_dict(), trainer.SEED_KEY: model.seed,
                       MODEL_CODE_KEY: source_fingerprint("models/lm", "models/common")})

    evaluator = LMEvaluator(
        examples=examples,
        model=model_trainer.outputs["model"],
        baseline_model=latest_blessed.outputs["model"],
        ngram_order=model.lm.ngram_order,
        thresholds=BlessingThresholds(
            max_ngram_perplexity_ratio=model.lm.max_ngram_perplexity_ratio,
            perplexity_tolerance=model.lm.perplexity_tolerance))

    pusher = ServingPusher(
        model=model_trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        model_name=registry.REPORT_LM.serving_name,
        serving_base_dir=serving.serving_base_dir,
        models_config_path=serving.models_config_path,
        num_versions=model.num_serving_versions,
        signing_key_path=serving.signing_key_path,
        push_key=serving.push_key)
    return [transform, latest_blessed, model_trainer, evaluator, pusher]
