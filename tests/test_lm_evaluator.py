"""LMEvaluator: metrics from the served functions, the n-gram baseline, the blessing rule and
artifacts written as TFX's Evaluator writes them."""
import math
import os

import pytest
import tensorflow as tf
from tfx.components.evaluator import constants
from tfx.types import Channel, standard_artifacts

from components.lm_evaluator import blessing, evaluation, executor
from components.lm_evaluator.component import LMEvaluator
from ml.core.example_tables import split_uri
from tests import lm_fixtures


def _metrics(ratio_to_ngram, ratio_to_baseline=None):
    metrics = {"candidate": {"perplexity": 4.0}, "ngram": {"order": 3, "perplexity": 5.0},
               "perplexity_ratio_to_ngram": ratio_to_ngram, "baseline": None}
    if ratio_to_baseline is not None:
        metrics["baseline"] = {"perplexity": 4.0}
        metrics["perplexity_ratio_to_baseline"] = ratio_to_baseline
    return metrics


@pytest.mark.parametrize("ratio_to_ngram, ratio_to_baseline, blessed", [
    (0.8, None, True),
    (1.0, None, False),
    (0.8, 1.04, True),
    (0.8, 1.06, False),
    (1.2, 0.9, False),
])
def test_blessing_needs_the_ngram_beaten_and_the_serving_model_matched(
        ratio_to_ngram, ratio_to_baseline, blessed):
    checks = blessing.blessing_checks(_metrics(ratio_to_ngram, ratio_to_baseline),
                                      blessing.BlessingThresholds(1.0, 0.05))
    assert len(checks) == (1 if ratio_to_baseline is None else 2)
    assert blessing.is_blessed(checks) is blessed


def test_thresholds_are_validated():
    with pytest.raises(ValueError, match="max_ngram_perplexity_ratio"):
        blessing.BlessingThresholds(max_ngram_perplexity_ratio=0.0)
    with pytest.raises(ValueError, match="perplexity_tolerance"):
        blessing.BlessingThresholds(perplexity_tolerance=-0.1)
    with pytest.raises(ValueError, match="ngram_order"):
        LMEvaluator(examples=None, model=None, ngram_order=7)


def test_relative_perplexity_is_the_perplexity_ratio_on_shared_tokens():
    candidate = evaluation.TokenTotals(-100.0, 50, 10, 200)
    baseline = evaluation.TokenTotals(-110.0, 50, 9, 200)
    assert evaluation.relative_perplexity(candidate, baseline) == pytest.approx(
        candidate.perplexity / baseline.perplexity)


def _write_split(examples_dir, split, texts, kinds):
    folder = os.path.join(examples_dir, f"Split-{split}")
    os.makedirs(folder)
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    with tf.io.TFRecordWriter(os.path.join(folder, "data.gz"), options) as writer:
        for text, kind in zip(texts, kinds):
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                "text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode()])),
                "kind": tf.train.Feature(bytes_list=tf.train.BytesList(value=[kind.encode()])),
            })).SerializeToString())


@pytest.fixture(scope="module")
def examples_dir(tmp_path_factory):
    corpus = lm_fixtures.corpus()
    folder = str(tmp_path_factory.mktemp("examples"))
    _write_split(folder, "train", corpus.train, ["trade_confirmation"] * len(corpus.train))
    _write_split(folder, "eval", corpus.eval, corpus.eval_kinds)
    return folder


def test_metrics_match_training_and_cover_every_kind(examples_dir):
    trained = lm_fixtures.trained_model()
    corpus = lm_fixtures.corpus()
    texts = evaluation.read_split_texts(split_uri(examples_dir, "eval"))
    assert texts.texts == corpus.eval and texts.kinds == corpus.eval_kinds
    metrics = evaluation.evaluate(trained.export_dir, evaluation.read_split_texts(split_uri(examples_dir, "train")),
                                  texts, ngram_order=3)
    assert math.log(metrics["candidate"]["perplexity"]) == pytest.approx(
        trained.report["best_eval_loss"], rel=1e-4)
    assert metrics["ngram"]["num_tokens"] == metrics["candidate"]["num_tokens"]
    assert metrics["ngram"]["perplexity"] > 1.0
    assert set(metrics["slices"]) == {f"kind={kind}" for kind in set(corpus.eval_kinds)}
    assert 0.0 < metrics["candidate"]["token_accuracy"] < 1.0


def _artifact(kind, uri, artifact_id=None):
    artifact = kind()
    artifact.uri = uri
    if artifact_id is not None:
        artifact.id = artifact_id
    return artifact


def test_executor_writes_metrics_and_a_blessing_the_pusher_and_resolver_understand(
        examples_dir, tmp_path):
    trained = lm_fixtures.trained_model()
    examples = _artifact(standard_artifacts.Examples, examples_dir, 1)
    examples.split_names = '["train", "eval"]'
    model = _artifact(standard_artifacts.Model, trained.artifact_dir, 11)
    baseline = _artifact(standard_artifacts.Model, trained.artifact_dir, 7)
    result = _artifact(standard_artifacts.ModelEvaluation, str(tmp_path / "evaluation"))
    verdict = _artifact(standard_artifacts.ModelBlessing, str(tmp_path / "blessing"))
    os.makedirs(result.uri)
    os.makedirs(verdict.uri)
    executor.Executor().Do(
        {"examples": [examples], "model": [model], "baseline_model": [baseline]},
        {"evaluation": [result], "blessing": [verdict]},
        {executor.NGRAM_ORDER_KEY: 2, executor.MAX_NGRAM_RATIO_KEY: 100.0,
         executor.PERPLEXITY_TOLERANCE_KEY: 0.0})
    metrics = executor.load_metrics(result.uri)
    assert metrics["blessed"] is True
    assert metrics["perplexity_ratio_to_baseline"] == pytest.approx(1.0, abs=1e-6)
    assert [check["name"] for check in metrics["checks"]] == [
        "beats_ngram_baseline", "not_worse_than_serving_model"]
    assert verdict.get_int_custom_property(constants.ARTIFACT_PROPERTY_BLESSED_KEY) == 1
    assert verdict.get_int_custom_property(constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY) == 11
    assert verdict.get_int_custom_property(constants.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY) == 7
    assert os.path.exists(os.path.join(verdict.uri, constants.BLESSED_FILE_NAME))
    assert result.get_float_custom_property("perplexity") == pytest.approx(
        metrics["candidate"]["perplexity"])

    refused = _artifact(standard_artifacts.ModelBlessing, str(tmp_path / "refused"))
    os.makedirs(refused.uri)
    executor.Executor().Do(
        {"examples": [examples], "model": [model]},
        {"evaluation": [_artifact(standard_artifacts.ModelEvaluation, str(tmp_path / "e2"))],
         "blessing": [refused]},
        {executor.NGRAM_ORDER_KEY: 3, executor.MAX_NGRAM_RATIO_KEY: 0.01,
         executor.PERPLEXITY_TOLERANCE_KEY: 0.05})
    assert refused.get_int_custom_property(constants.ARTIFACT_PROPERTY_BLESSED_KEY) == 0
    assert os.path.exists(os.path.join(refused.uri, constants.NOT_BLESSED_FILE_NAME))
    assert "3-gram baseline" in refused.get_string_custom_property(
        constants.ARTIFACT_PROPERTY_BLESSING_MESSAGE_KEY)


def test_component_has_the_evaluator_interface():
    component = LMEvaluator(
        examples=Channel(type=standard_artifacts.Examples),
        model=Channel(type=standard_artifacts.Model),
        baseline_model=Channel(type=standard_artifacts.Model), ngram_order=3)
    assert set(component.outputs) == {"evaluation", "blessing"}
    assert component.exec_properties[executor.MAX_NGRAM_RATIO_KEY] == 1.0
    assert component.exec_properties[executor.PERPLEXITY_TOLERANCE_KEY] == 0.05


def test_a_window_of_examples_artifacts_is_read_as_one_split_in_order(tmp_path):
    """A continuous job trains on several spans: the evaluator gets one Examples artifact per
    span and must read every one's split, in order; an empty split folder is named."""
    first, second = str(tmp_path / "span-1"), str(tmp_path / "span-2")
    _write_split(first, "eval", ["one", "two"], ["trade_confirmation", "risk_summary"])
    _write_split(second, "eval", ["three"], ["compliance"])
    texts = evaluation.read_split_texts(split_uri(first, "eval"), split_uri(second, "eval"))
    assert (list(texts.texts), list(texts.kinds)) == (
        ["one", "two", "three"], ["trade_confirmation", "risk_summary", "compliance"])
    empty = tmp_path / "span-3" / "Split-eval"
    empty.mkdir(parents=True)
    with pytest.raises(ValueError, match=f"no files in split folder {empty}"):
        evaluation.read_split_texts(split_uri(first, "eval"), str(empty))
