"""The spec's continuous-learning API: the Quick Start snippet as written (it runs until SIGINT)
with its debug command from a second process, registration refusing bad input naming the field,
get_pipeline_status, and `etrm continuous` (errors as one line, exit 2; no TensorFlow import)."""
import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from ml.cli import main
from ml.continuous_learning_pipeline import (ContinuousLearningPipeline, ContinuousSettings,
                                             RetrainingConfig)
from ml.lifecycle.clock import SimulatedClock
from ml.lifecycle.store import LifecycleStore

ROOT = pathlib.Path(__file__).resolve().parents[1]
RISK = "etrm_risk_model"
SPEC_SNIPPET = '''
from ml.continuous_learning_pipeline import ContinuousLearningPipeline, RetrainingConfig
import asyncio

async def run_pipeline():
    pipeline = ContinuousLearningPipeline()

    # Configure model for continuous learning
    config = RetrainingConfig(
        model_name="risk_model",
        retrain_schedule="0 2 * * 0",  # Weekly
        auto_deploy=False
    )

    pipeline.register_model_for_retraining(config)

    # Start monitoring loop
    await pipeline.run_continuous_learning_loop()

# Run the pipeline
asyncio.run(run_pipeline())
'''
SPEC_DEBUG = '''
from ml.continuous_learning_pipeline import ContinuousLearningPipeline
pipeline = ContinuousLearningPipeline()
print(pipeline.get_pipeline_status())
'''
MODELS_CONFIG = textwrap.dedent('''
    model_config_list {
      config {
        name: "etrm_risk_model"
        base_path: "/models/etrm_risk_model"
        model_platform: "tensorflow"
        model_version_policy { specific { versions: 3 versions: 4 } }
        version_labels { key: "stable" value: 3 }
        version_labels { key: "canary" value: 4 }
      }
    }
''')


def _env(home):
    return {**os.environ, "ETRM_HOME": str(home),
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def _spec_config(**changes):
    values = dict(model_name="risk_model", retrain_schedule="0 2 * * 0", auto_deploy=False)
    values.update(changes)
    return RetrainingConfig(**values)


@pytest.fixture
def pipeline(tmp_path):
    clock = SimulatedClock(1_710_000_000.0)  # 2024-03-09 16:00 UTC, a Saturday
    return ContinuousLearningPipeline(home=tmp_path / "home", clock=clock,
                                      settings=ContinuousSettings(poll_seconds=1.0))


@pytest.mark.slow
def test_the_quick_start_runs_as_written_until_sigint_and_is_visible_from_another_process(tmp_path):
    home = tmp_path / "home"
    script = tmp_path / "quick_start.py"
    script.write_text(SPEC_SNIPPET)
    loop = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=_env(home),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        store_path = home / "lifecycle" / "lifecycle.sqlite"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and loop.poll() is None:
            if store_path.exists() and LifecycleStore(store_path).loop_lease():
                break
            time.sleep(0.1)
        assert loop.poll() is None, loop.communicate()
        debug = subprocess.run([sys.executable, "-c", SPEC_DEBUG], cwd=tmp_path, env=_env(home),
                               capture_output=True, text=True, timeout=120)
        assert debug.returncode == 0, debug.stderr
        assert "'model': 'etrm_risk_model'" in debug.stdout and "'next_run': '20" in debug.stdout
        status = json.loads(subprocess.run(
            [sys.executable, "-m", "ml.cli", "continuous", "status", "--json"], cwd=tmp_path,
            env=_env(home), capture_output=True, text=True, timeout=120).stdout)
        (model,) = status["models"]
        assert model["config"]["retrain_schedule"] == "0 2 * * 0" and status["loop"]["alive"]
        assert model["next_run"].endswith("T02:00:00+00:00") and model["current_job"] is None
        loop.send_signal(signal.SIGINT)
        out, err = loop.communicate(timeout=60)
    finally:
        loop.kill()
    assert loop.returncode == 0, err
    assert "received SIGINT" in out and "Traceback" not in err
    assert LifecycleStore(home / "lifecycle" / "lifecycle.sqlite").loop_lease() is None


@pytest.mark.parametrize("changes, message", [
    ({"retrain_schedule": "weekly"}, r"retrain_schedule must be a five-field cron expression"),
    ({"retrain_schedule": "0 25 * * 0"}, r"retrain_schedule '0 25 \* \* 0' is not a valid cron"),
    ({"model_name": "fraud_model"}, r"model_name: unknown model 'fraud_model'; known models: .*risk_model"),
    ({"data_window_days": -7}, r"data_window_days must be a positive whole number, got -7"),
    ({"min_samples_threshold": -1}, r"min_samples_threshold must be a positive whole number"),
    ({"performance_threshold": -0.05}, r"performance_threshold must be a number in \[0, 1\), got -0.05"),
])
def test_bad_registrations_are_refused_naming_the_field(pipeline, changes, message):
    with pytest.raises(ValueError, match=message):
        pipeline.register_model_for_retraining(_spec_config(**changes))
    assert pipeline.store.registrations() == {}


def test_registration_resolves_the_spec_name_and_audits_changes_only(pipeline):
    assert pipeline.register_model_for_retraining(_spec_config()) == RISK
    assert pipeline.register_model_for_retraining(_spec_config()) == RISK
    pipeline.register_model_for_retraining(_spec_config(data_window_days=14))
    entries = pipeline.store.history(RISK)
    assert [e.reason for e in entries] == ["registered for continuous learning", "config changed"]
    assert entries[-1].figures["previous"]["data_window_days"] == 30
    with pytest.raises(ValueError, match="config must be a RetrainingConfig"):
        pipeline.register_model_for_retraining({"model_name": "risk_model"})


def test_pipeline_status_shows_configs_next_run_jobs_labels_and_the_last_decision(pipeline):
    pipeline.register_model_for_retraining(_spec_config())
    pipeline.home.models_config_path.parent.mkdir(parents=True)
    pipeline.home.models_config_path.write_text(MODELS_CONFIG)
    job = pipeline.trigger_retraining("risk", "new counterparties onboarded")
    status = pipeline.get_pipeline_status()
    json.dumps(status, allow_nan=False)
    (model,) = status["models"]
    assert model["next_run"] == "2024-03-10T02:00:00+00:00"
    assert model["labels"] == {"labels": {"canary": 4, "stable": 3}, "versions": [3, 4]}
    assert model["current_job"]["id"] == job.id and model["current_job"]["status"] == "pending"
    assert model["current_job"]["triggers"][0] == {
        "kind": "manual", "reason": "new counterparties onboarded", "time": "2024-03-09T16:00:00+00:00"}
    assert model["current_job"]["window_end"] == "2024-03-03"
    assert status["last_decision"]["action"] == "trigger"
    assert status["loop"] is None and status["alerts"] == []


def test_a_manual_trigger_needs_a_registered_model_and_a_reason(pipeline):
    with pytest.raises(ValueError, match="model_name: etrm_risk_model is not registered"):
        pipeline.trigger_retraining("risk_model", "why not")
    pipeline.register_model_for_retraining(_spec_config())
    with pytest.raises(ValueError, match="reason must be a non-empty text"):
        pipeline.trigger_retraining("risk_model", "  ")
    with pytest.raises(ValueError, match="model_name: unknown model"):
        pipeline.trigger_retraining("nope", "x")


def test_a_manual_trigger_reopens_a_failed_job_for_the_window(pipeline):
    pipeline.register_model_for_retraining(_spec_config())
    job = pipeline.trigger_retraining("risk_model", "first")
    store = pipeline.store
    claimed = store.claim("w", 60, pipeline.clock.now())
    store.finish(claimed.id, "w", "failed", pipeline.clock.now(), error="boom")
    again = pipeline.trigger_retraining("risk_model", "fixed the feed")
    assert (again.id, again.status, len(again.triggers)) == (job.id, "pending", 2)
    assert (again.attempt, again.failures, again.finished_at) == (0, 0, None)


def test_cli_status_history_and_trigger(tmp_path, capsys):
    home = str(tmp_path / "home")
    assert main(["continuous", "register", "risk_model", "--schedule", "0 2 * * 0", "--home", home]) == 0
    assert main(["continuous", "trigger", "risk", "--reason", "new data", "--home", home]) == 0
    assert "queued job 1 (etrm_risk_model" in capsys.readouterr().out
    assert main(["continuous", "trigger", "risk", "--reason", "again", "--home", home]) == 0
    assert "merged into job 1" in capsys.readouterr().out
    assert main(["continuous", "status", "--json", "--home", home]) == 0
    status = json.loads(capsys.readouterr().out)
    assert [t["reason"] for t in status["models"][0]["current_job"]["triggers"]] == ["new data", "again"]
    assert main(["continuous", "status", "--home", home]) == 0
    assert "job 1 pending" in capsys.readouterr().out
    assert main(["continuous", "history", "risk_model", "--json", "--home", home]) == 0
    assert [e["action"] for e in json.loads(capsys.readouterr().out)] == ["register", "trigger", "trigger"]
    assert main(["continuous", "history", "--home", home]) == 0
    assert "etrm_risk_model job 1 trigger: manual: new data" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["continuous", "trigger", "fraud", "--reason", "x"], "error: model_name: unknown model 'fraud'"),
    (["continuous", "trigger", "risk", "--reason", "x"],
     "error: model_name: etrm_risk_model is not registered"),
    (["continuous", "register", "risk", "--schedule", "* *"],
     "error: retrain_schedule must be a five-field"),
    (["continuous", "register", "risk", "--schedule", "0 2 * * 0", "--data-window-days", "-1"],
     "error: data_window_days must be a positive whole number"),
    (["continuous", "history", "fraud"], "error: model: unknown model 'fraud'"),
    (["continuous", "run", "--serving-metrics-url", "localhost:8501/metrics"],
     "error: serving_metrics_url must be an http(s) URL"),
])
def test_cli_errors_are_one_line_and_exit_2(tmp_path, capsys, argv, message):
    assert main(argv + ["--home", str(tmp_path / "home")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


@pytest.mark.slow
def test_cli_run_exits_when_another_loop_holds_the_home(tmp_path):
    home = tmp_path / "home"
    store = LifecycleStore(home / "lifecycle" / "lifecycle.sqlite")
    assert store.acquire_loop_lease("otherhost:4242:abc", 3600, time.time())
    result = subprocess.run([sys.executable, "-m", "ml.cli", "continuous", "run", "--home", str(home),
                             "--exit-if-running"], cwd=ROOT, env=_env(home), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    assert "another loop (owner otherhost:4242:abc) holds" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_the_facade_and_the_cli_parser_import_no_tensorflow(tmp_path):
    code = ("import sys, ml.continuous_learning_pipeline, ml.cli; ml.cli.build_parser(); "
            "print(sorted(m for m in ('tensorflow', 'tfx') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(tmp_path),
                            capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "[]", result.stderr


def test_the_loop_reads_the_servers_metrics_when_given_their_url(tmp_path):
    """Canary errors and latency come from the server's Prometheus page, through the stored
    scrapes; without a URL only the request logs (no errors, no latency) are read."""
    url = "http://127.0.0.1:8501/monitoring/prometheus/metrics"
    loop = ContinuousLearningPipeline(home=tmp_path / "with", settings=ContinuousSettings(
        serving_metrics_url=url)).build_loop(wait=False)
    assert loop.deployment.metrics.url == url
    assert loop.deployment.observations.counts is loop.deployment.metrics
    plain = ContinuousLearningPipeline(home=tmp_path / "without").build_loop(wait=False)
    assert plain.deployment.metrics is None and plain.deployment.observations.counts is None
