"""The retraining job on real TFX runs: ingestion of the window's spans, the sample threshold,
training on the rolling window against the version labelled `stable`, push to `canary`.

Two jobs share one home (conftest.continuous_home): the first trains from nothing and pushes v1
(stable and canary); the second ingests only the new day, warm-starts every layer from and is
judged against v1 and pushes v2 to canary (the warm start of the whole pipeline is proved here,
not again in test_risk_pipeline_e2e). ML Metadata then holds a blessed v2 with a higher id than
v1, which is what LatestBlessedModelStrategy would hand the next job; the window run resolves v1.
"""
import json

import pytest

from tests.continuous_fixtures import RETRAINING_SETTINGS, run_retraining_job

pytestmark = pytest.mark.e2e


def test_first_job_ingests_the_window_and_pushes_the_first_version(continuous_home):
    outcome, steps = continuous_home["first"]
    assert outcome.status == "succeeded", outcome.reason
    # 2024-01-01 is an exchange holiday: the window 01-02..01-04 is spans 1-3
    assert steps["ingest"]["spans"] == [1, 2, 3]
    assert outcome.result["window"] == [1, 3] and outcome.result["examples"] == 900
    assert outcome.result["baseline_version"] is None
    assert outcome.result["pushed_version"] == 1


def test_second_job_ingests_only_the_new_day_and_is_judged_against_stable(continuous_home):
    outcome, steps = continuous_home["second"]
    assert outcome.status == "succeeded", outcome.reason
    assert steps["ingest"]["spans"] == [4]
    assert outcome.result["window"] == [2, 4]
    assert outcome.result["baseline_version"] == 1
    assert outcome.result["pushed_version"] == 2
    assert continuous_home["labels"] == {"stable": 1, "canary": 2}
    base = continuous_home["home"].serving_base("etrm_risk_model")
    assert sorted(int(p.name) for p in base.iterdir() if p.name.isdigit()) == [1, 2]
    report = json.loads((base / "2" / "assets" / "training_report.json").read_text())
    assert report["warm_start"] and all(state == "warm" for state in report["warm_start"].values())
    assert report["steps_run"] == RETRAINING_SETTINGS["train_steps"], "train_steps are steps"
    pushed_as = continuous_home["resolved"]["pushed_as"]
    assert outcome.result["mlmd"]["baseline_model_artifact_id"] == pushed_as[1]


def test_the_window_resolves_stable_not_the_highest_blessed_model(continuous_home):
    resolved = continuous_home["resolved"]
    assert resolved["newest_blessed"] == resolved["pushed_as"][2]
    assert resolved["stable"] == [resolved["pushed_as"][1]]
    assert resolved["nothing_serving"] == {"model": []}
    assert resolved["daily_window"] == [4, 3, 2]
    assert resolved["weekly_window"] == []


def test_a_window_with_too_few_examples_is_skipped_with_its_reason(continuous_home):
    # Saturday 2024-01-06 has no trades: the window is spans 3-4, both already ingested
    outcome, steps = run_retraining_job(continuous_home["home"], "2024-01-06", min_samples=5000)
    assert outcome.status == "skipped"
    assert "(spans 3-4) holds 600 examples, fewer than min_samples_threshold=5000" in outcome.reason
    assert "ingest" not in steps and "train" not in steps


def test_a_report_lm_job_evaluates_its_whole_rolling_window_and_refuses_an_undertrained_lm(
        tmp_path):
    """The spec's short name `report_model` through the same runner: the job ingests the
    window's three report spans, trains the report LM on all of them, the LMEvaluator reads the
    eval split of every span in the window (not only one), and a candidate trained for 20 steps,
    worse than the n-gram baseline, is a finished job that pushes nothing and says why. (Pushing
    a blessed LM is proved in test_lm_pipeline_e2e; blessing one needs minutes of training.)"""
    from components.lm_evaluator.executor import load_metrics
    from ml.core import metadata
    from ml.core.example_tables import read_records, split_files
    from ml.core.home import Home
    from ml.serving.model_config import find_model_config, read_model_server_config

    home = Home.resolve(tmp_path / "lm-home")
    outcome, steps = run_retraining_job(home, "2024-01-05", min_samples=20,
                                        model_name="report_model", records_per_span=40,
                                        train_steps=20)
    assert outcome.status == "succeeded", outcome.reason
    assert sorted(steps) == ["count", "ingest", "train"]
    first, last = outcome.result["window"]
    assert steps["ingest"]["spans"] == list(range(first, last + 1)) == [2, 3, 4]  # Wed to Fri
    assert outcome.result["examples"] == 120
    assert outcome.result["pushed_version"] is None and not outcome.result["blessed"]
    assert "3-gram baseline" in outcome.result["not_pushed_reason"]
    store = metadata.store_for(home)
    (evaluation,) = store.get_artifacts_by_type("ModelEvaluation")
    window_eval_texts = sum(len(read_records(split_files(a.uri, "eval")))
                            for a in store.get_artifacts_by_id(outcome.result["examples_artifact_ids"]))
    assert load_metrics(evaluation.uri)["candidate"]["num_texts"] == window_eval_texts
    assert window_eval_texts > 0
    config = read_model_server_config(home.models_config_path) \
        if home.models_config_path.exists() else None
    assert config is None or find_model_config(config, "etrm_report_lm") is None
