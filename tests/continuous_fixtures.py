"""Fake job runners, a webhook receiver and a loop process for the continuous-learning tests
(no TensorFlow).

StepRunner does `steps` steps per job; each step announces itself (started-<job>-<step>),
works for step_seconds while watching should_stop(), checkpoints, then writes its marker
(done-<job>-<step>) with exclusive create, so a step run twice leaves a twice-<job>-<step>
file. `python -m tests.continuous_fixtures HOME` runs a real loop with it until a signal.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, List, Optional

from ml.core.home import Home
from ml.lifecycle.clock import SystemClock
from ml.lifecycle.jobs import JobContext, JobInterrupted, JobOutcome
from ml.lifecycle.loop import ContinuousLearningLoop
from ml.lifecycle.settings import ContinuousSettings
from ml.lifecycle.store import LifecycleStore


class StepRunner:
    def __init__(self, markers: pathlib.Path, steps: int = 4, step_seconds: float = 0.0,
                 outcome: Optional[Callable[[JobContext], JobOutcome]] = None):
        self.markers, self.steps_count, self.step_seconds = pathlib.Path(markers), steps, step_seconds
        self.markers.mkdir(parents=True, exist_ok=True)
        self.outcome = outcome

    def run(self, context: JobContext) -> JobOutcome:
        done = context.steps()
        for step in range(self.steps_count):
            name = f"step{step}"
            if name in done:
                continue
            (self.markers / f"started-{context.job.id}-{step}").touch()
            deadline = time.monotonic() + self.step_seconds
            while time.monotonic() < deadline:
                if context.should_stop():
                    raise JobInterrupted(f"stopped before {name}")
                time.sleep(0.02)
            context.checkpoint(name, at=context.clock.now())
            try:
                (self.markers / f"done-{context.job.id}-{step}").open("x").close()
            except FileExistsError:
                (self.markers / f"twice-{context.job.id}-{step}").touch()
            context.progress(f"{name} of {self.steps_count} done")
        if self.outcome is not None:
            return self.outcome(context)
        return JobOutcome("succeeded", "candidate blessed against stable",
                          {"pushed_version": None, "blessed": True, "examples": 5000})


class ScriptedRunner:
    """Returns or raises the scripted results in order (one per attempt)."""

    def __init__(self, script: List):
        self.script, self.calls = list(script), []

    def run(self, context: JobContext) -> JobOutcome:
        self.calls.append((context.job.id, context.job.attempt, context.clock.now()))
        item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item


class WebhookReceiver:
    """A Slack-style endpoint on 127.0.0.1: keeps each POSTed JSON body, answers 200."""

    def __init__(self):
        self.bodies, self.received = [], threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                hook.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                hook.received.set()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T000/B000/secret-token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def loop_settings(**overrides) -> ContinuousSettings:
    values = dict(lease_seconds=1.5, poll_seconds=0.1, retry_base_seconds=60.0)
    values.update(overrides)
    return ContinuousSettings(**values)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("home")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--step-seconds", type=float, default=0.5)
    parser.add_argument("--owner")
    args = parser.parse_args(argv)
    home = Home.resolve(args.home)
    store = LifecycleStore(home.lifecycle_db)
    runner = StepRunner(home.root / "markers", args.steps, args.step_seconds)
    loop = ContinuousLearningLoop(home, store, runner, loop_settings(), SystemClock(),
                                  owner=args.owner)
    asyncio.run(loop.run())
    return 0


if __name__ == "__main__":
    sys.exit(main())


RETRAINING_SETTINGS = dict(records_per_span=300, span_days=1, train_steps=30, min_auc=0.5)


def run_retraining_job(home, window_end: str, min_samples: int = 500, model_name="risk_model",
                       **settings_overrides):
    """One job of the real RetrainingJobRunner on `home`, claimed and finished in its store."""
    from ml.core import registry
    from ml.lifecycle.clock import SimulatedClock
    from ml.lifecycle.config import RetrainingConfig
    from ml.lifecycle.jobs import JobContext
    from ml.lifecycle.retraining import RetrainingJobRunner
    from ml.lifecycle.settings import ContinuousSettings
    from ml.lifecycle.store import LifecycleStore

    settings = ContinuousSettings(**{**RETRAINING_SETTINGS, **settings_overrides})
    store = LifecycleStore(home.lifecycle_db)
    clock = SimulatedClock(1.7e9)
    config = RetrainingConfig(model_name=model_name, retrain_schedule="0 2 * * 0",
                              data_window_days=3, min_samples_threshold=min_samples)
    model = registry.get_model(model_name)
    store.trigger(model.serving_name, "manual", "test", window_end, clock.now())
    job = store.claim("test-owner", 600.0, clock.now())
    context = JobContext(home=home, store=store, job=job, config=config, entry=model,
                         settings=settings, clock=clock, owner="test-owner", echo=lambda line: None)
    outcome = RetrainingJobRunner(settings).run(context)
    store.finish(job.id, "test-owner", outcome.status, clock.now(), result=outcome.result)
    return outcome, context.steps()


def run_retraining_jobs(root):
    """Two jobs on a new home (see conftest.continuous_home), with what they left snapshotted:
    labels, and the Models LatestBlessedModelStrategy and the stable resolver pick."""
    from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
        LatestBlessedModelStrategy)
    from tfx.types import artifact_utils

    from ml.core import metadata, registry
    from ml.core.home import Home
    from ml.serving.model_config import find_model_config, read_model_server_config
    from pipeline.strategies import ServingVersionModelStrategy, SpanWindowStrategy

    home = Home.resolve(root)
    first = run_retraining_job(home, "2024-01-04")
    second = run_retraining_job(home, "2024-01-05")
    model = registry.RISK_MODEL
    store = metadata.store_for(home)

    def artifacts(type_name):
        return artifact_utils.deserialize_artifacts(store.get_artifact_type(type_name),
                                                    store.get_artifacts_by_type(type_name))

    models = artifacts("Model")
    resolved = {
        "newest_blessed": LatestBlessedModelStrategy().resolve_artifacts(
            store, {"model": models, "model_blessing": artifacts("ModelBlessing")})["model"][0].id,
        "stable": [m.id for m in ServingVersionModelStrategy(model.serving_name, 1)
                   .resolve_artifacts(store, {"model": models})["model"]],
        "nothing_serving": ServingVersionModelStrategy(model.serving_name, -1)
        .resolve_artifacts(store, {"model": models}),
        "pushed_as": {v: metadata.model_pushed_as(store, model.serving_name, v).id for v in (1, 2)},
        "daily_window": [a.get_int_custom_property("span") for a in SpanWindowStrategy(
            model.pipeline_name, 2, 4, period_days=1).resolve_artifacts(
            store, {"examples": artifacts("Examples")})["examples"]],
        "weekly_window": SpanWindowStrategy(model.pipeline_name, 2, 4, period_days=7)
        .resolve_artifacts(store, {"examples": artifacts("Examples")})["examples"],
    }
    labels = dict(find_model_config(read_model_server_config(home.models_config_path),
                                    model.serving_name).version_labels)
    return {"home": home, "first": first, "second": second, "labels": labels,
            "resolved": resolved, "snapshot": snapshot_home(home, root.parent / "continuous-snapshot")}


def snapshot_home(home, target):
    """A copy of the home as the two jobs left it (v1 stable, v2 canary), for a test that acts
    on it (the dashboard's promotion) while the simulation changes the original; models.config
    points at the copy's own serving folder."""
    import shutil

    from ml.core.home import Home

    shutil.copytree(home.root, target)
    copy = Home.resolve(target)
    config = copy.models_config_path.read_text()
    copy.models_config_path.write_text(config.replace(str(home.root), str(copy.root)))
    return copy
