"""The report-LM half of create_pipeline and the run_local settings that select it."""
import pytest

from ml.cli import run as run_local
from models.lm.config import PRESETS
from pipeline.config import DataSettings, LanguageModelSettings, ModelSettings, ServingSettings
from pipeline.create import create_pipeline

SERVING = ServingSettings("/tmp/etrm-serving", "/tmp/etrm-serving/models.config")


def _pipeline(**model_fields):
    model = ModelSettings(hyperparameters=PRESETS["tiny"].to_dict(), **model_fields)
    return create_pipeline("/tmp/etrm-root",
                           DataSettings(dataset="reports", records_per_span=300),
                           model=model, serving=SERVING)


def _node(pipeline, node_id):
    return next(component for component in pipeline.components if component.id == node_id)


def test_reports_get_transform_trainer_lm_evaluator_and_pusher():
    pipeline = _pipeline()
    ids = {component.id for component in pipeline.components}
    assert {"Transform", "latest_blessed_model_resolver", "Trainer", "LMEvaluator",
            "ServingPusher"} <= ids
    assert "Evaluator" not in ids
    trainer = _node(pipeline, "Trainer")
    assert trainer.exec_properties["run_fn"] == "models.lm.trainer.run_fn"
    assert "base_model" in trainer.inputs
    evaluator = _node(pipeline, "LMEvaluator")
    assert set(evaluator.inputs) == {"examples", "model", "baseline_model"}
    pusher = _node(pipeline, "ServingPusher")
    assert "etrm_report_lm" in pusher.exec_properties["custom_config"]


def test_a_cold_start_has_no_base_model_but_still_compares_with_the_serving_model():
    pipeline = _pipeline(lm=LanguageModelSettings(warm_start=False), train_steps=1)
    assert "base_model" not in _node(pipeline, "Trainer").inputs
    assert "baseline_model" in _node(pipeline, "LMEvaluator").inputs


def test_bad_hyperparameters_fail_when_the_pipeline_is_built():
    with pytest.raises(ValueError, match="num_heads"):
        _pipeline_with({**PRESETS["tiny"].to_dict(), "embedding_dim": 30, "num_heads": 4})
    with pytest.raises(ValueError, match="embed_dim"):
        _pipeline_with({"embed_dim": 16})


def _pipeline_with(hyperparameters):
    model = ModelSettings(hyperparameters=hyperparameters)
    return create_pipeline("/tmp/etrm-root",
                           DataSettings(dataset="reports", records_per_span=300),
                           model=model, serving=SERVING)


def test_run_local_trains_the_lm_with_the_make_run_preset():
    args = run_local.build_parser().parse_args(["--model", "lm"])
    assert args.lm_preset == "run"
    settings = run_local.lm_settings(args.lm_preset)
    assert settings == {"hyperparameters": PRESETS["run"].to_dict()}
    with pytest.raises(SystemExit):
        run_local.build_parser().parse_args(["--lm-preset", "huge"])


def test_run_summary_shows_the_lm_beside_its_baselines():
    from pipeline.run_summary.model_results import lm_evaluation_metrics

    candidate = {"perplexity": 2.5, "cross_entropy": 0.92, "token_accuracy": 0.7,
                 "bits_per_character": 0.6, "num_tokens": 100}
    metrics = {"candidate": candidate, "ngram": {"order": 3, "perplexity": 4.0},
               "perplexity_ratio_to_ngram": 0.625, "baseline": {"perplexity": 2.4},
               "perplexity_ratio_to_baseline": 1.04,
               "slices": {"kind=risk_summary": candidate}}
    summary = lm_evaluation_metrics(metrics)
    assert summary["overall"] == {"perplexity": 2.5, "cross_entropy": 0.92, "token_accuracy": 0.7,
                                  "bits_per_character": 0.6, "ngram_perplexity": 4.0,
                                  "perplexity_ratio_to_ngram": 0.625,
                                  "serving_model_perplexity": 2.4,
                                  "perplexity_ratio_to_serving_model": 1.04}
    assert set(summary["slices"]["kind=risk_summary"]) == {
        "perplexity", "cross_entropy", "token_accuracy", "bits_per_character"}
