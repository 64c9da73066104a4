"""The continuous-learning loop with fake runners: cron fires once per slot (and once after
downtime), alerts and triggers merge into one job per model, outcomes and retries are recorded,
a failure after its retries is notified, one loop per home, and a loop killed with -9 or
stopped with SIGTERM loses and repeats nothing."""
import asyncio
import datetime as dt
import os
import pathlib
import signal
import subprocess
import sys
import time
import types

import pytest

from ml.core.home import Home
from ml.lifecycle.clock import SimulatedClock, SystemClock
from ml.lifecycle.config import RetrainingConfig
from ml.lifecycle.jobs import JobInterrupted, JobOutcome, PermanentJobError
from ml.lifecycle.loop import (ContinuousLearningLoop, LoopAlreadyRunning, alert_trigger_kind,
                               due_slot, queue_trigger)
from ml.lifecycle.windows import last_complete_span, span_ending, training_spans, window_end
from ml.lifecycle.store import LifecycleStore
from ml.monitoring.alert_store import AlertStore
from ml.monitoring.alerts import DriftAlert, DriftType
from ml.monitoring.notifications import SlackNotifier
from tests.continuous_fixtures import ScriptedRunner, WebhookReceiver, loop_settings

ROOT = pathlib.Path(__file__).resolve().parents[1]
UTC = dt.timezone.utc
RISK = "etrm_risk_model"
MONDAY_NOON = dt.datetime(2024, 3, 4, 12, 0, tzinfo=UTC).timestamp()
SUNDAY_TWO = dt.datetime(2024, 3, 10, 2, 0, tzinfo=UTC).timestamp()
SKIPPED = JobOutcome("skipped", "window holds 800 examples, fewer than min_samples_threshold 1000",
                     {"examples": 800, "min_samples_threshold": 1000})
BLESSED = JobOutcome("succeeded", "AUC 0.81 vs stable 0.80 (allowed drop 0.05)",
                     {"pushed_version": 7, "blessed": True, "window": [4, 8], "examples": 9000,
                      "metrics": {"auc": 0.81}, "mlmd": {"model_artifact": 12}})


class FakeDeployment:
    def __init__(self):
        self.pushed, self.steps = [], []

    def on_pushed(self, model_name, config, job, version):
        self.pushed.append((model_name, job.id, version))

    def step(self, model_name, config):
        self.steps.append(model_name)
        return []


def build(tmp_path, runner, clock, register=True, **options):
    settings = loop_settings(**options.pop("settings", {}))
    home = Home.resolve(tmp_path / "home")
    store = LifecycleStore(home.lifecycle_db)
    if register:
        store.register(RISK, RetrainingConfig(model_name="risk_model",
                                              retrain_schedule="0 2 * * 0"), clock.now())
    lines = []
    loop = ContinuousLearningLoop(home, store, runner, settings, clock, echo=lines.append, **options)
    loop.lines = lines
    return loop


def tick(loop):
    return asyncio.run(loop.tick())


def actions(store, model=RISK):
    return [entry.action for entry in store.history(model)]


def test_window_end_is_the_last_day_of_the_last_complete_span():
    settings = loop_settings()
    assert last_complete_span(dt.datetime(2024, 1, 7, 23, 59, tzinfo=UTC).timestamp(), settings) == -1
    assert window_end(dt.datetime(2024, 1, 7, 23, 59, tzinfo=UTC).timestamp(), settings) == "2023-12-31"
    assert window_end(dt.datetime(2024, 1, 8, tzinfo=UTC).timestamp(), settings) == "2024-01-07"
    assert window_end(SUNDAY_TWO, settings) == "2024-03-03"
    daily = loop_settings(span_days=1)
    assert window_end(SUNDAY_TWO, daily) == "2024-03-09"
    assert span_ending("2024-03-03", settings) == 8 and span_ending("2023-12-31", settings) == -1
    with pytest.raises(ValueError, match="not the last day of a 7-day span"):
        span_ending("2024-03-02", settings)
    assert training_spans(8, 30, settings) == [5, 6, 7, 8]
    assert training_spans(1, 30, settings) == [0, 1] and training_spans(-1, 30, settings) == []
    assert training_spans(8, 3, settings) == [8]


def test_due_slot_collapses_missed_slots_into_one_fire():
    assert due_slot("0 2 * * 0", MONDAY_NOON, SUNDAY_TWO - 1) is None
    assert due_slot("0 2 * * 0", MONDAY_NOON, SUNDAY_TWO) == (SUNDAY_TWO, 1)
    three_weeks = SUNDAY_TWO + 14 * 86400 + 3600
    assert due_slot("0 2 * * 0", MONDAY_NOON, three_weeks) == (SUNDAY_TWO + 14 * 86400, 3)


def test_cron_fires_at_its_slot_once_even_across_a_restart_and_once_after_downtime(tmp_path):
    clock = SimulatedClock(MONDAY_NOON)
    runner = ScriptedRunner([SKIPPED, SKIPPED])
    loop = build(tmp_path, runner, clock)
    assert tick(loop)["triggers"] == []
    clock.set(SUNDAY_TWO)
    result = tick(loop)
    assert [t["kind"] for t in result["triggers"]] == ["schedule"]
    job = loop.store.jobs(RISK)[0]
    assert (job.window_end, job.status, job.triggers[0]["kind"]) == ("2024-03-03", "skipped", "schedule")

    restarted = build(tmp_path, runner, clock, register=False)
    assert tick(restarted)["triggers"] == []
    clock.advance(3600)
    assert tick(restarted)["triggers"] == []

    clock.set(SUNDAY_TWO + 14 * 86400 + 7200)  # down over the next two Sunday slots
    fired = tick(build(tmp_path, runner, clock, register=False))["triggers"]
    assert len(fired) == 1 and "2 slots since 2024-03-10T02:00" in fired[0]["reason"]
    assert len(loop.store.jobs(RISK)) == 2
    assert loop.store.history(RISK)[-2].figures["slots_missed"] == 1


def test_skip_is_recorded_with_its_reason_and_figures(tmp_path):
    clock = SimulatedClock(SUNDAY_TWO)
    loop = build(tmp_path, ScriptedRunner([SKIPPED]), clock)
    loop.trigger(RISK, "manual", "new data arrived")
    assert tick(loop)["job"]["status"] == "skipped"
    skip = loop.store.history(RISK)[-1]
    assert (skip.action, skip.figures["examples"], skip.figures["min_samples_threshold"]) == (
        "skip", 800, 1000)
    assert "fewer than min_samples_threshold" in loop.store.jobs(RISK)[0].result["reason"]


def test_triggers_and_alerts_merge_into_one_job_per_model(tmp_path):
    clock = SimulatedClock(SUNDAY_TWO - 60)
    runner = ScriptedRunner([BLESSED])
    deployment = FakeDeployment()
    loop = build(tmp_path, runner, clock, deployment=deployment)
    tick(loop)  # sets the cron baseline; nothing due yet
    alerts = AlertStore(loop.home.monitoring_dir / "alerts.sqlite")
    made = dict(severity="warning", feature="notional", metric="psi", value=0.4, threshold=0.25)
    alerts.record_all([
        DriftAlert(DriftType.DATA_DRIFT, model_name=RISK, message="Data drift on notional", **made),
        DriftAlert(DriftType.DATA_DRIFT, model_name="risk_model", message="Data drift on price",
                   **{**made, "feature": "price"}),
        DriftAlert(DriftType.PERFORMANCE_DRIFT, severity="critical", model_name=RISK, feature=None,
                   metric="accuracy_drop", value=0.08, threshold=0.05, message="accuracy fell"),
        DriftAlert(DriftType.DATA_DRIFT, model_name="etrm_report_lm", message="not registered", **made),
    ], cooldown_seconds=0)
    alerts.close()
    loop.trigger(RISK, "manual", "operator asked")
    clock.set(SUNDAY_TWO)
    result = tick(loop)
    assert sorted(t["kind"] for t in result["triggers"]) == ["drift", "performance", "schedule"]
    jobs = loop.store.jobs()
    assert len(jobs) == 1
    assert [t["kind"] for t in jobs[0].triggers] == ["manual", "schedule", "drift", "performance"]
    drift = next(t for t in jobs[0].triggers if t["kind"] == "drift")
    assert drift["figures"]["alert_count"] == 2
    assert actions(loop.store) == ["trigger"] * 4 + ["bless", "push"]
    assert deployment.pushed == [(RISK, jobs[0].id, 7)] and deployment.steps == [RISK, RISK]
    assert tick(loop)["triggers"] == []  # the alerts were read once (cursor in the store)


def test_an_estimated_performance_drop_is_its_own_trigger_kind_and_alerts_are_read_once(tmp_path):
    clock = SimulatedClock(SUNDAY_TWO - 60)
    loop = build(tmp_path, ScriptedRunner([SKIPPED]), clock)
    alerts = AlertStore(loop.home.monitoring_dir / "alerts.sqlite")
    alerts.record(DriftAlert(DriftType.PERFORMANCE_DRIFT, severity="warning", model_name=RISK,
                             feature=None, metric="estimated_auc_drop", value=0.06, threshold=0.05,
                             message="estimated AUC fell by 0.06"), cooldown_seconds=0)
    assert [t["kind"] for t in tick(loop)["triggers"]] == ["estimated_performance"]
    assert [alert_id for alert_id, _ in alerts.since(0)] == [1] and alerts.since(1) == []
    alerts.close()
    assert loop.store.alert_cursor() == 1
    assert tick(loop)["triggers"] == []


class AnalysingDeployment(FakeDeployment):
    def __init__(self, version):
        super().__init__()
        self.version = version

    def analysing(self, model_name):
        return self.version


@pytest.mark.parametrize("auto_deploy, queued", [(True, False), (False, True)])
def test_a_drift_alert_waits_for_the_verdict_of_an_auto_deployed_canary(tmp_path, auto_deploy,
                                                                        queued):
    clock = SimulatedClock(MONDAY_NOON)
    loop = build(tmp_path, ScriptedRunner([SKIPPED]), clock, register=False,
                 deployment=AnalysingDeployment(9))
    loop.store.register(RISK, RetrainingConfig(model_name="risk_model", retrain_schedule="0 2 * * 0",
                                               auto_deploy=auto_deploy), clock.now())
    alerts = AlertStore(loop.home.monitoring_dir / "alerts.sqlite")
    alerts.record(DriftAlert(DriftType.DATA_DRIFT, severity="warning", model_name=RISK,
                             feature="price", metric="psi", value=1.3, threshold=0.5,
                             message="price drifted"), cooldown_seconds=0)
    alerts.close()
    fired = tick(loop)["triggers"]
    assert bool(fired) == queued
    assert bool(loop.store.jobs(RISK)) == queued
    assert ("hold" in actions(loop.store)) != queued
    assert loop.store.alert_cursor() == 1
    if not queued:
        hold = [e for e in loop.store.history(RISK) if e.action == "hold"][0]
        assert "version 9 is on canary under analysis" in hold.reason


@pytest.mark.parametrize("drift_type, metric, kind", [
    ("data_drift", "psi", "drift"), ("prediction_drift", "psi", "drift"),
    ("concept_drift", "label_correlation_change", "drift"),
    ("performance_drift", "accuracy_drop", "performance"),
    ("performance_drift", "estimated_auc_drop", "estimated_performance"),
    ("estimated_performance", "roc_auc_drop", "estimated_performance"),
])
def test_alert_types_map_to_trigger_kinds(drift_type, metric, kind):
    alert = types.SimpleNamespace(drift_type=types.SimpleNamespace(value=drift_type), metric=metric,
                                  details={})
    assert alert_trigger_kind(alert) == kind


def test_a_trigger_for_a_trained_window_is_recorded_but_not_queued(tmp_path):
    clock = SimulatedClock(SUNDAY_TWO)
    loop = build(tmp_path, ScriptedRunner([BLESSED]), clock)
    loop.trigger(RISK, "manual", "first")
    tick(loop)
    job = loop.trigger(RISK, "drift", "same window again")
    assert job.status == "succeeded" and len(loop.store.jobs()) == 1
    assert "already handled by job 1" in loop.store.history(RISK)[-1].reason


def test_a_failing_job_retries_with_exponential_backoff_then_succeeds(tmp_path):
    clock = SimulatedClock(SUNDAY_TWO)
    runner = ScriptedRunner([RuntimeError("metadata store locked"), OSError("disk hiccup"), BLESSED])
    loop = build(tmp_path, runner, clock)
    loop.trigger(RISK, "manual", "go")
    assert tick(loop)["job"]["retry_in"] == 60
    assert tick(loop)["job"] is None  # not before its backoff
    clock.advance(60)
    assert tick(loop)["job"]["retry_in"] == 120
    clock.advance(119)
    assert tick(loop)["job"] is None
    clock.advance(1)
    assert tick(loop)["job"]["status"] == "succeeded"
    assert [when - SUNDAY_TWO for _, _, when in runner.calls] == [0, 60, 180]
    assert [attempt for _, attempt, _ in runner.calls] == [1, 2, 3]
    assert actions(loop.store) == ["trigger", "retry", "retry", "bless", "push"]
    retry = loop.store.history(RISK)[1]
    assert retry.figures["error"] == "RuntimeError: metadata store locked"
    assert retry.figures["delay_seconds"] == 60


@pytest.mark.network
def test_a_job_failing_after_its_retries_is_failed_audited_and_notified(tmp_path):
    hook = WebhookReceiver()
    try:
        clock = SimulatedClock(SUNDAY_TWO)
        runner = ScriptedRunner([RuntimeError("boom 1"), RuntimeError("boom 2"), RuntimeError("boom 3")])
        loop = build(tmp_path, runner, clock, notifiers=[SlackNotifier(hook.url, timeout=5.0)])
        loop.trigger(RISK, "manual", "go")
        for _ in range(3):
            tick(loop)
            clock.advance(1000)
        job = loop.store.jobs(RISK)[0]
        assert (job.status, job.failures, job.error) == ("failed", 2, "RuntimeError: boom 3")
        assert actions(loop.store) == ["trigger", "retry", "retry", "fail"]
        assert hook.received.wait(10)
        text = hook.bodies[0]["text"]
        assert "Retraining job 1 of etrm_risk_model failed" in text and "boom 3" in text
        loop.notifier.close()
    finally:
        hook.close()


def test_a_permanent_error_fails_at_once(tmp_path):
    clock = SimulatedClock(SUNDAY_TWO)
    loop = build(tmp_path, ScriptedRunner([PermanentJobError("schema mismatch")]), clock)
    loop.trigger(RISK, "manual", "go")
    assert tick(loop)["job"]["status"] == "failed"
    assert actions(loop.store) == ["trigger", "fail"]


class _CheckpointThenStop:
    def run(self, context):
        context.checkpoint("ingest", spans=[7, 8])
        raise JobInterrupted("stop requested after ingest")


def test_an_interrupted_job_goes_back_to_pending_without_spending_an_attempt(tmp_path):
    clock = SimulatedClock(SUNDAY_TWO)
    loop = build(tmp_path, _CheckpointThenStop(), clock)
    loop.trigger(RISK, "manual", "go")
    assert tick(loop)["job"]["status"] == "pending"
    job = loop.store.jobs(RISK)[0]
    assert (job.status, job.attempt, job.failures) == ("pending", 0, 0)
    assert job.result["steps"] == {"ingest": {"spans": [7, 8]}}
    assert actions(loop.store)[-1] == "release"
    loop.runner = ScriptedRunner([BLESSED])
    tick(loop)
    job = loop.store.jobs(RISK)[0]
    assert (job.status, job.attempt) == ("succeeded", 1)
    assert job.result["steps"] == {"ingest": {"spans": [7, 8]}}  # kept beside the outcome


class _LeaseStolen:
    def run(self, context):
        with context.store._transaction() as connection:
            connection.execute("UPDATE jobs SET lease_owner = 'someone-else'")
        context.checkpoint("ingest")


def test_a_worker_that_lost_its_lease_stops_and_writes_nothing(tmp_path):
    clock = SimulatedClock(SUNDAY_TWO)
    loop = build(tmp_path, _LeaseStolen(), clock)
    loop.trigger(RISK, "manual", "go")
    assert tick(loop)["job"]["status"] == "lease_lost"
    job = loop.store.jobs(RISK)[0]
    assert (job.status, job.result) == ("running", {})


def test_a_second_loop_on_the_home_waits_or_refuses(tmp_path):
    clock = SimulatedClock(SUNDAY_TWO)
    first = build(tmp_path, ScriptedRunner([]), clock, owner="host-a:101:x")
    assert tick(first)["lease"]
    refusing = build(tmp_path, ScriptedRunner([]), clock, register=False, wait=False,
                     owner="host-b:202:y")
    with pytest.raises(LoopAlreadyRunning, match=r"another loop \(owner host-a:101:x\) holds .*home"):
        tick(refusing)
    waiting = build(tmp_path, ScriptedRunner([]), clock, register=False, owner="host-b:202:z")
    assert not tick(waiting)["lease"] and not tick(waiting)["lease"]
    assert sum("waiting" in line for line in waiting.lines) == 1
    waiting.trigger(RISK, "manual", "queued while the other loop holds the home")
    assert tick(waiting)["job"] is None  # only the lease holder runs jobs
    clock.advance(2)  # first loop stopped renewing: presumed dead
    assert tick(waiting)["lease"]
    assert not tick(first)["lease"]
    assert waiting.store.loop_settings() == waiting.settings.to_dict(), \
        "the lease holder records its settings for status readers"


def test_run_stops_on_the_stop_event_and_releases_the_loop_lease(tmp_path):
    clock = SimulatedClock(SUNDAY_TWO)
    loop = build(tmp_path, ScriptedRunner([]), clock)

    async def main():
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.2, stop.set)
        await loop.run(stop)

    asyncio.run(main())
    assert loop.store.loop_lease() is None
    assert clock.now() > SUNDAY_TWO  # the simulated clock moved by poll_seconds per round


def _loop_process(home, *extra):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-m", "tests.continuous_fixtures", str(home), *extra],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _wait_for(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def _queued_home(tmp_path):
    home = Home.resolve(tmp_path / "home")
    store = LifecycleStore(home.lifecycle_db)
    clock = SystemClock()
    store.register(RISK, RetrainingConfig(model_name="risk_model", retrain_schedule="0 2 * * 0"),
                   clock.now())
    queue_trigger(store, loop_settings(), RISK, "manual", "test", clock.now())
    return home, store


@pytest.mark.slow
def test_a_loop_killed_with_sigkill_mid_job_is_resumed_by_the_next_nothing_lost_or_repeated(tmp_path):
    home, store = _queued_home(tmp_path)
    markers = home.root / "markers"
    first = _loop_process(home.root, "--steps", "4", "--step-seconds", "0.4")
    try:
        _wait_for(lambda: (markers / "started-1-2").exists())
    finally:
        first.kill()
        first.communicate()
    job = store.job(1)
    assert (job.status, sorted(job.result["steps"])) == ("running", ["step0", "step1"])
    second = _loop_process(home.root, "--steps", "4", "--step-seconds", "0.4")
    try:
        _wait_for(lambda: store.job(1).status == "succeeded")
    finally:
        second.send_signal(signal.SIGTERM)
        out, err = second.communicate(timeout=30)
    assert second.returncode == 0, err
    assert "resuming steps step0, step1" in out
    assert sorted(p.name for p in markers.glob("done-*")) == [f"done-1-{s}" for s in range(4)]
    assert not list(markers.glob("twice-*"))
    assert store.job(1).attempt == 2
    assert actions(store) == ["trigger", "resume", "bless"]
    assert store.history(RISK)[1].figures["steps"] == ["step0", "step1"]


@pytest.mark.slow
def test_sigterm_stops_a_running_loop_cleanly_with_the_job_checkpointed(tmp_path):
    home, store = _queued_home(tmp_path)
    process = _loop_process(home.root, "--steps", "4", "--step-seconds", "2")
    try:
        _wait_for(lambda: (home.root / "markers" / "started-1-1").exists())
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "received SIGTERM" in out and "Traceback" not in err
    job = store.job(1)
    assert (job.status, job.attempt, sorted(job.result["steps"])) == ("pending", 0, ["step0"])
    assert store.loop_lease() is None
    assert actions(store)[-1] == "release"


def _open_store(path):
    try:
        LifecycleStore(path).loop_lease()
        return "ok"
    except Exception as error:  # the failure is the test's result
        return repr(error)


@pytest.mark.slow
def test_processes_opening_a_new_lifecycle_store_at_once_all_succeed(tmp_path):
    import multiprocessing

    paths = [tmp_path / f"home{i}" / "lifecycle.sqlite" for i in range(25) for _ in range(4)]
    with multiprocessing.get_context("fork").Pool(4) as pool:
        assert set(pool.map(_open_store, paths, chunksize=1)) == {"ok"}


def test_an_outcome_with_numpy_figures_is_recorded_as_plain_json(tmp_path):
    import numpy as np

    clock = SimulatedClock(SUNDAY_TWO)
    outcome = JobOutcome("succeeded", "blessed", {
        "pushed_version": np.int64(3), "blessed": True, "path": pathlib.Path("/x"),
        "metrics": {"auc": np.float32(0.75), "loss": float("nan")}})
    deployment = FakeDeployment()
    loop = build(tmp_path, ScriptedRunner([outcome]), clock, deployment=deployment)
    loop.trigger(RISK, "manual", "go")
    tick(loop)
    result = loop.store.jobs(RISK)[0].result
    assert (result["pushed_version"], result["metrics"]["loss"], result["path"]) == (3, "NaN", "/x")
    assert deployment.pushed == [(RISK, 1, 3)]
