"""Continuous learning's foundations: RetrainingConfig validation, cron next-run times, the job
queue (one job per model, merged triggers, idempotent windows), leases and the audit log."""
import datetime as dt
import json
import subprocess
import sys

import pytest

from ml.lifecycle.config import RetrainingConfig, next_run, validate
from ml.lifecycle.store import LifecycleStore

UTC = dt.timezone.utc


def test_the_spec_config_is_valid_and_resolves_the_short_name():
    config = RetrainingConfig(model_name="risk_model", retrain_schedule="0 2 * * 0", auto_deploy=False)
    assert validate(config).serving_name == "etrm_risk_model"
    assert (config.data_window_days, config.min_samples_threshold, config.performance_threshold,
            config.rollback_on_failure) == (30, 1000, 0.05, True)


@pytest.mark.parametrize("field, value, message", [
    ("model_name", "fraud_model", r"model_name: unknown model 'fraud_model'.*risk_model"),
    ("retrain_schedule", "every sunday", r"retrain_schedule must be a five-field cron"),
    ("retrain_schedule", "61 2 * * 0", r"retrain_schedule '61 2 \* \* 0' is not a valid cron"),
    ("data_window_days", -3, r"data_window_days must be a positive whole number, got -3"),
    ("min_samples_threshold", 0, r"min_samples_threshold must be a positive whole number"),
    ("performance_threshold", -0.1, r"performance_threshold must be a number in \[0, 1\)"),
    ("auto_deploy", "yes", r"auto_deploy must be True or False"),
])
def test_bad_configs_are_refused_naming_the_field(field, value, message):
    config = RetrainingConfig(model_name="risk_model", retrain_schedule="0 2 * * 0")
    setattr(config, field, value)
    with pytest.raises(ValueError, match=message):
        validate(config)


def test_next_run_of_the_weekly_schedule_is_the_coming_sunday_at_two():
    monday = dt.datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    assert next_run("0 2 * * 0", monday) == dt.datetime(2024, 1, 7, 2, 0, tzinfo=UTC)
    at_the_time = dt.datetime(2024, 1, 7, 2, 0, tzinfo=UTC)
    assert next_run("0 2 * * 0", at_the_time) == dt.datetime(2024, 1, 14, 2, 0, tzinfo=UTC)
    assert next_run("*/15 * * * *", monday) == dt.datetime(2024, 1, 1, 12, 15, tzinfo=UTC)


@pytest.fixture
def store(tmp_path):
    return LifecycleStore(tmp_path / "lifecycle.sqlite")


def test_registrations_survive_reopening(tmp_path):
    path = tmp_path / "lifecycle.sqlite"
    config = RetrainingConfig(model_name="risk_model", retrain_schedule="0 2 * * 0")
    LifecycleStore(path).register("etrm_risk_model", config, now=1.0)
    assert LifecycleStore(path).registrations() == {"etrm_risk_model": config}


def test_triggers_merge_into_the_open_job_one_job_per_model(store):
    first = store.trigger("etrm_risk_model", "schedule", "cron 0 2 * * 0", "2024-01-07", now=1.0)
    merged = store.trigger("etrm_risk_model", "drift", "price drifted", "2024-01-08", now=2.0)
    other = store.trigger("etrm_report_lm", "manual", "by hand", "2024-01-07", now=3.0)
    assert merged.id == first.id and other.id != first.id
    assert [t["kind"] for t in merged.triggers] == ["schedule", "drift"]
    assert len(store.jobs("etrm_risk_model")) == 1


def test_a_finished_window_is_never_queued_twice(store):
    job = store.trigger("etrm_risk_model", "schedule", "weekly", "2024-01-07", now=1.0)
    claimed = store.claim("loop-a", lease_seconds=60, now=2.0)
    assert store.finish(claimed.id, "loop-a", "succeeded", now=3.0, result={"pushed_version": 4})
    again = store.trigger("etrm_risk_model", "schedule", "weekly", "2024-01-07", now=4.0)
    assert again.id == job.id and again.status == "succeeded"
    assert store.claim("loop-a", lease_seconds=60, now=5.0) is None


def test_a_live_lease_keeps_a_second_worker_out_and_an_expired_one_lets_it_resume(store):
    store.trigger("etrm_risk_model", "manual", "go", "2024-01-07", now=0.0)
    job = store.claim("loop-a", lease_seconds=30, now=1.0)
    assert job.status == "running" and job.attempt == 1
    assert store.claim("loop-b", lease_seconds=30, now=10.0) is None
    assert store.heartbeat(job.id, "loop-a", lease_seconds=30, now=20.0)
    assert store.claim("loop-b", lease_seconds=30, now=40.0) is None   # renewed until 50
    resumed = store.claim("loop-b", lease_seconds=30, now=51.0)         # loop-a died
    assert resumed.id == job.id and resumed.lease_owner == "loop-b" and resumed.attempt == 2
    assert not store.heartbeat(job.id, "loop-a", lease_seconds=30, now=52.0)
    assert not store.finish(job.id, "loop-a", "succeeded", now=53.0)
    assert store.finish(job.id, "loop-b", "succeeded", now=54.0)


def test_a_retried_job_waits_for_its_backoff(store):
    store.trigger("etrm_risk_model", "manual", "go", "2024-01-07", now=0.0)
    job = store.claim("loop-a", lease_seconds=30, now=1.0)
    assert store.retry_later(job.id, "loop-a", "Trainer failed", not_before=100.0)
    assert store.claim("loop-a", lease_seconds=30, now=50.0) is None
    again = store.claim("loop-a", lease_seconds=30, now=100.0)
    assert again.attempt == 2 and again.error == "Trainer failed"


def test_finishing_with_an_open_status_is_refused(store):
    store.trigger("etrm_risk_model", "manual", "go", "2024-01-07", now=0.0)
    job = store.claim("loop-a", lease_seconds=30, now=1.0)
    with pytest.raises(ValueError, match="a job finishes as one of"):
        store.finish(job.id, "loop-a", "running", now=2.0)


def test_the_audit_log_keeps_decisions_in_order_with_strict_json_figures(store):
    store.record("etrm_risk_model", "promote", "canary passed", now=1.0, figures={"auc": 0.86})
    store.record("etrm_risk_model", "rollback", "AUC fell by 0.08", now=2.0, job_id=3)
    store.record("etrm_report_lm", "skip", "too few samples", now=3.0)
    history = store.history("etrm_risk_model")
    assert [(e.action, e.figures, e.job_id) for e in history] == [
        ("promote", {"auc": 0.86}, None), ("rollback", {}, 3)]
    with pytest.raises(ValueError):
        store.record("etrm_risk_model", "promote", "bad figure", now=4.0, figures={"auc": float("nan")})


def test_another_process_sees_the_queue(store):
    store.trigger("etrm_risk_model", "drift", "price drifted", "2024-01-07", now=1.0)
    code = ("import json, sys; from ml.lifecycle.store import LifecycleStore; "
            "jobs = LifecycleStore(sys.argv[1]).jobs(); "
            "print(json.dumps([(j.model, j.status, j.triggers[0]['kind']) for j in jobs]))")
    out = subprocess.run([sys.executable, "-c", code, str(store.path)], capture_output=True,
                         text=True, check=True).stdout
    assert json.loads(out) == [["etrm_risk_model", "pending", "drift"]]
