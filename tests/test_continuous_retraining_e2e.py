"""The retraining job on real TFX runs: ingestion of the window's spans, the sample threshold,
training on the rolling window against the version labelled `stable`, push to `canary`.

Two jobs share one home (module fixture): the first trains from nothing and pushes v1 (stable
and canary); the second ingests only the new day, warm-starts from and is judged against v1 and
pushes v2 to canary. ML Metadata then holds a blessed v2 with a higher id than v1, which is
what LatestBlessedModelStrategy would hand the next job; the window run resolves v1.
"""
import pytest

from ml.core import metadata, registry
from ml.core.home import Home
from ml.lifecycle.clock import SimulatedClock
from ml.lifecycle.config import RetrainingConfig
from ml.lifecycle.jobs import JobContext
from ml.lifecycle.settings import ContinuousSettings
from ml.lifecycle.store import LifecycleStore

pytestmark = pytest.mark.e2e

MODEL = registry.RISK_MODEL
SETTINGS = ContinuousSettings(records_per_span=300, span_days=1, train_steps=30, min_auc=0.5)


def _run_job(home: Home, window_end: str, min_samples: int = 500):
    from ml.lifecycle.retraining import RetrainingJobRunner

    store = LifecycleStore(home.lifecycle_db)
    clock = SimulatedClock(1.7e9)
    config = RetrainingConfig(model_name="risk_model", retrain_schedule="0 2 * * 0",
                              data_window_days=3, min_samples_threshold=min_samples)
    store.trigger(MODEL.serving_name, "manual", "test", window_end, clock.now())
    job = store.claim("test-owner", 600.0, clock.now())
    context = JobContext(home=home, store=store, job=job, config=config, entry=MODEL,
                         settings=SETTINGS, clock=clock, owner="test-owner", echo=lambda line: None)
    outcome = RetrainingJobRunner(SETTINGS).run(context)
    store.finish(job.id, "test-owner", outcome.status, clock.now(), result=outcome.result)
    return outcome, context.steps()


@pytest.fixture(scope="module")
def two_jobs(tmp_path_factory):
    home = Home.resolve(tmp_path_factory.mktemp("continuous-home"))
    first = _run_job(home, "2024-01-04")
    second = _run_job(home, "2024-01-05")
    return home, first, second


def _labels(home):
    from ml.serving.model_config import find_model_config, read_model_server_config

    model = find_model_config(read_model_server_config(home.models_config_path), MODEL.serving_name)
    return dict(model.version_labels)


def test_first_job_ingests_the_window_and_pushes_the_first_version(two_jobs):
    home, (outcome, steps), _ = two_jobs
    assert outcome.status == "succeeded", outcome.reason
    # 2024-01-01 is an exchange holiday: the window 01-02..01-04 is spans 1-3
    assert steps["ingest"]["spans"] == [1, 2, 3]
    assert outcome.result["window"] == [1, 3] and outcome.result["examples"] == 900
    assert outcome.result["baseline_version"] is None
    assert outcome.result["pushed_version"] == 1


def test_second_job_ingests_only_the_new_day_and_is_judged_against_stable(two_jobs):
    home, _, (outcome, steps) = two_jobs
    assert outcome.status == "succeeded", outcome.reason
    assert steps["ingest"]["spans"] == [4]
    assert outcome.result["window"] == [2, 4]
    assert outcome.result["baseline_version"] == 1
    assert outcome.result["pushed_version"] == 2
    assert _labels(home) == {"stable": 1, "canary": 2}
    store = metadata.store_for(home)
    stable_model = metadata.model_pushed_as(store, MODEL.serving_name, 1)
    assert outcome.result["mlmd"]["baseline_model_artifact_id"] == stable_model.id


def test_the_window_resolves_stable_not_the_highest_blessed_model(two_jobs):
    from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
        LatestBlessedModelStrategy)
    from tfx.types import artifact_utils, standard_artifacts

    from pipeline.strategies import ServingVersionModelStrategy, SpanWindowStrategy

    home, _, _ = two_jobs
    store = metadata.store_for(home)
    models = artifact_utils.deserialize_artifacts(
        store.get_artifact_type("Model"), store.get_artifacts_by_type("Model"))
    blessings = artifact_utils.deserialize_artifacts(
        store.get_artifact_type("ModelBlessing"), store.get_artifacts_by_type("ModelBlessing"))
    newest_blessed = LatestBlessedModelStrategy().resolve_artifacts(
        store, {"model": models, "model_blessing": blessings})["model"][0]
    stable = ServingVersionModelStrategy(MODEL.serving_name, 1).resolve_artifacts(
        store, {"model": models})["model"]
    assert newest_blessed.id == metadata.model_pushed_as(store, MODEL.serving_name, 2).id
    assert [m.id for m in stable] == [metadata.model_pushed_as(store, MODEL.serving_name, 1).id]
    assert ServingVersionModelStrategy(MODEL.serving_name, -1).resolve_artifacts(
        store, {"model": models}) == {"model": []}

    examples = artifact_utils.deserialize_artifacts(
        store.get_artifact_type("Examples"), store.get_artifacts_by_type("Examples"))
    window = SpanWindowStrategy(MODEL.pipeline_name, 2, 4, period_days=1).resolve_artifacts(
        store, {"examples": examples})["examples"]
    assert [a.get_int_custom_property("span") for a in window] == [4, 3, 2]
    weekly = SpanWindowStrategy(MODEL.pipeline_name, 2, 4, period_days=7).resolve_artifacts(
        store, {"examples": examples})["examples"]
    assert weekly == []


def test_a_window_with_too_few_examples_is_skipped_with_its_reason(two_jobs):
    home, _, _ = two_jobs
    # Saturday 2024-01-06 has no trades: the window is spans 3-4, both already ingested
    outcome, steps = _run_job(home, "2024-01-06", min_samples=5000)
    assert outcome.status == "skipped"
    assert "(spans 3-4) holds 600 examples, fewer than min_samples_threshold=5000" in outcome.reason
    assert "ingest" not in steps and "train" not in steps
