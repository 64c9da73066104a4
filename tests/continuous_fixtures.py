"""Fake job runners and a loop process for the continuous-learning tests (no TensorFlow).

StepRunner does `steps` steps per job; each step announces itself (started-<job>-<step>),
works for step_seconds while watching should_stop(), checkpoints, then writes its marker
(done-<job>-<step>) with exclusive create, so a step run twice leaves a twice-<job>-<step>
file. `python -m tests.continuous_fixtures HOME` runs a real loop with it until a signal.
"""
from __future__ import annotations

import argparse
import asyncio
import pathlib
import sys
import time
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
