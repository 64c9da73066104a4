"""What a retraining job sees and returns: the interface between the loop and a JobRunner.

Why a protocol: the loop (leases, retries, signals, audit) is tested with fake runners in
milliseconds, while ml.lifecycle.retraining.RetrainingJobRunner runs the real TFX pipeline
against the same JobContext. A runner is blocking code in a worker thread; it learns about a
stop (SIGINT/SIGTERM, a lost lease) by asking should_stop() between steps, checkpoints what
it finished so a resumed attempt (after a kill -9 or a stop) skips it, and raises
JobInterrupted to hand the job back without spending an attempt.
"""
from __future__ import annotations

import dataclasses
import sys
import threading
from typing import Any, Callable, Dict, Protocol

from ml.core.home import Home
from ml.core.registry import RegisteredModel
from ml.lifecycle.clock import Clock
from ml.lifecycle.config import RetrainingConfig
from ml.lifecycle.settings import ContinuousSettings
from ml.lifecycle.store import Job, LifecycleStore

OUTCOME_STATUSES = ("succeeded", "skipped", "failed")


class JobInterrupted(Exception):
    """The runner stopped early on request; the loop puts the job back to pending."""


class PermanentJobError(Exception):
    """Retrying cannot help (bad data, bad configuration): the job fails at once."""


@dataclasses.dataclass
class JobContext:
    """One attempt of one job, as handed to JobRunner.run (in a worker thread)."""

    home: Home
    store: LifecycleStore
    job: Job
    config: RetrainingConfig
    entry: RegisteredModel
    settings: ContinuousSettings
    clock: Clock
    owner: str
    stop_event: threading.Event = dataclasses.field(default_factory=threading.Event)
    lease_lost: threading.Event = dataclasses.field(default_factory=threading.Event)
    echo: Callable[[str], None] = dataclasses.field(default=None)
    result: Dict[str, Any] = dataclasses.field(default=None)

    def __post_init__(self):
        if self.result is None:
            self.result = dict(self.job.result)
        if self.echo is None:
            self.echo = _print_line

    def checkpoint(self, step: str, **values) -> None:
        """Records a finished step durably (lease-checked); JobInterrupted if the lease is gone."""
        steps = dict(self.result.get("steps", {}))
        steps[step] = {**steps.get(step, {}), **values}
        self._write({**self.result, "steps": steps})

    def steps(self) -> Dict[str, Dict]:
        """The steps this or an earlier attempt checkpointed."""
        return {name: dict(values) for name, values in self.result.get("steps", {}).items()}

    def should_stop(self) -> bool:
        """True once the loop was asked to stop or this worker lost the job's lease."""
        return self.stop_event.is_set() or self.lease_lost.is_set()

    def progress(self, message: str) -> None:
        """One terminal line, and job.result['progress'] for `etrm continuous status`."""
        self.echo(f"[job {self.job.id} {self.job.model}] {message}")
        self._write({**self.result, "progress": message})

    def _write(self, result: Dict[str, Any]) -> None:
        if not self.store.update_result(self.job.id, self.owner, result):
            self.lease_lost.set()
            raise JobInterrupted(f"job {self.job.id}: lease lost to another worker")
        self.result = result


@dataclasses.dataclass(frozen=True)
class JobOutcome:
    """How a job ended: status 'succeeded' | 'skipped' | 'failed', why, and its figures (JSON).

    For 'succeeded': {"pushed_version": int|None, "blessed": bool, "window": [first_span,
    last_span], "examples": n, "metrics": {...}, "mlmd": {...ids}}.
    """

    status: str
    reason: str
    result: Dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.status not in OUTCOME_STATUSES:
            raise ValueError(f"JobOutcome.status must be one of {OUTCOME_STATUSES}, "
                             f"got {self.status!r}")


class JobRunner(Protocol):
    """Runs one attempt of a job; blocking (the loop runs it in a thread and heartbeats)."""

    def run(self, context: JobContext) -> JobOutcome: ...


def _print_line(text: str) -> None:
    print(text, file=sys.stdout, flush=True)
