"""The continuous-learning loop: triggers in, one job at a time, decisions to the audit log.

Each tick holds the home's loop lease (one live loop per home), turns due cron slots and new
monitoring alerts into triggers (merged into a model's open job), claims one job and runs it
in a worker thread while heartbeating its lease, records the outcome and hands pushed versions
to the deployment manager, then lets the deployment manager step every model. Everything it
knows lives in the lifecycle store, so a loop killed with -9 is resumed by the next one: the
expired job lease makes the job claimable, its checkpoints let the runner skip finished steps.
"""
from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import os
import signal
import socket
import threading
import uuid
from typing import Any, Dict, List, Optional, Tuple

from ml.core import registry
from ml.core.home import Home
from ml.lifecycle.clock import Clock, iso, utc
from ml.lifecycle.config import RetrainingConfig, next_run
from ml.lifecycle.jobs import (JobContext, JobInterrupted, JobOutcome, JobRunner,
                               PermanentJobError)
from ml.lifecycle.notify import LifecycleNotifier, Notifiers
from ml.lifecycle.settings import ContinuousSettings
from ml.lifecycle.store import OPEN_STATUSES, Job, LifecycleStore
from ml.lifecycle.windows import last_complete_span, window_end
from ml.monitoring.alerts import json_ready

LOGGER = logging.getLogger("ml.lifecycle.loop")
__all__ = ["ContinuousLearningLoop", "LoopAlreadyRunning", "TRIGGER_KINDS", "due_slot",
           "last_complete_span", "next_scheduled_run", "queue_trigger", "window_end"]
TRIGGER_KINDS = ("schedule", "drift", "performance", "estimated_performance", "manual")
MAX_ERROR_CHARS = 2000
MISSED_SLOTS_COUNTED = 1000


class LoopAlreadyRunning(RuntimeError):
    """Another live loop holds this home's loop lease."""


def default_owner() -> str:
    """host:pid:random, so the message about a held lease says where the other loop runs."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def due_slot(schedule: str, last_slot: float, now: float) -> Optional[Tuple[float, int]]:
    """The newest cron slot in (last_slot, now] and how many slots that range holds (capped),
    or None: after downtime the loop fires once for the missed slots, not once per slot."""
    first = next_run(schedule, utc(last_slot))
    if first.timestamp() > now:
        return None
    slot, count = first, 1
    while count < MISSED_SLOTS_COUNTED:
        following = next_run(schedule, slot)
        if following.timestamp() > now:
            return slot.timestamp(), count
        slot, count = following, count + 1
    from croniter import croniter

    latest = croniter(schedule, utc(now)).get_prev(dt.datetime)
    candidate = next_run(schedule, latest)
    return (candidate if candidate.timestamp() <= now else latest).timestamp(), count


def next_scheduled_run(store: LifecycleStore, model: str, config: RetrainingConfig,
                       now: float) -> float:
    """When the model's cron fires next (an overdue slot fires at the next tick: now)."""
    last = store.schedule_slot(model)
    upcoming = next_run(config.retrain_schedule, utc(now if last is None else last)).timestamp()
    return max(upcoming, now) if last is not None else upcoming


def alert_trigger_kind(alert) -> str:
    """drift for data, prediction and concept drift; performance for a realised drop;
    estimated_performance for a drop estimated before the labels arrive."""
    kind = alert.drift_type.value
    if kind == "estimated_performance" or (kind == "performance_drift" and (
            alert.metric.startswith("estimated") or alert.details.get("estimated"))):
        return "estimated_performance"
    return "performance" if kind == "performance_drift" else "drift"


def error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS]


class ContinuousLearningLoop:
    """One home's continuous-learning loop; see the module docstring for a tick's steps.

    wait=True: a second loop on a held home waits (and says so once); wait=False raises
    LoopAlreadyRunning. deployment is any object with on_pushed(model, config, job, version)
    and step(model, config) (ml.lifecycle.deployment.DeploymentManager).
    """

    def __init__(self, home: Home, store: LifecycleStore, runner: JobRunner,
                 settings: ContinuousSettings, clock: Clock, notifiers: Notifiers = None,
                 deployment=None, owner: Optional[str] = None, *, wait: bool = True,
                 echo=None):
        self.home = home if isinstance(home, Home) else Home.resolve(home)
        self.store, self.runner, self.settings, self.clock = store, runner, settings, clock
        self.notifier = (notifiers if isinstance(notifiers, LifecycleNotifier)
                         else LifecycleNotifier(self.home, notifiers, clock))
        self.deployment = deployment
        self.owner = owner or default_owner()
        self.wait = wait
        self.echo = echo or (lambda text: print(text, flush=True))
        self.holds_lease = False
        self.current: Optional[JobContext] = None
        self._stop = threading.Event()
        self._wake: Optional[asyncio.Event] = None
        self._aio_loop: Optional[asyncio.AbstractEventLoop] = None
        self._announced_holder: Optional[str] = None

    # Stopping
    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def request_stop(self, reason: str = "stop requested") -> None:
        """Ends the loop after the current job finishes or checkpoints (thread-safe)."""
        first = not self._stop.is_set()
        self._stop.set()
        context = self.current
        if context is not None:
            context.stop_event.set()
        if first:
            where = f"; job {context.job.id} finishes or checkpoints" if context else ""
            self.echo(f"{reason}: stopping{where}")
        if self._aio_loop is not None and self._wake is not None:
            self._aio_loop.call_soon_threadsafe(self._wake.set)

    # One round
    async def tick(self) -> Dict[str, Any]:
        """One round; returns what it did: {"lease", "triggers", "job", "deployment"}."""
        now = self.clock.now()
        if not self._hold_lease(now):
            return {"lease": False, "holder": self.store.loop_lease(), "triggers": [],
                    "job": None, "deployment": []}
        registrations = self.store.registrations()
        triggers = self._schedule_triggers(registrations, now)
        triggers += self._alert_triggers(registrations, now)
        job = None if self.stopping else await self._run_one(registrations)
        events = [] if self.stopping else self._step_deployment(registrations)
        return {"lease": True, "triggers": triggers, "job": job, "deployment": events}

    def _hold_lease(self, now: float) -> bool:
        if self.store.acquire_loop_lease(self.owner, self.settings.lease_seconds, now):
            if not self.holds_lease:
                self.store.record_loop_settings(self.settings.to_dict(), now)
                self.echo(f"continuous learning loop {self.owner} holds {self.home.root}")
            self.holds_lease, self._announced_holder = True, None
            return True
        if self.holds_lease:
            self.echo(f"loop {self.owner} lost the lease on {self.home.root} (presumed dead)")
        self.holds_lease = False
        holder = self.store.loop_lease() or {"owner": "?", "expires": now}
        message = (f"another loop (owner {holder['owner']}) holds {self.home.root} until "
                   f"{iso(holder['expires'])} unless it renews")
        if not self.wait:
            raise LoopAlreadyRunning(message + "; not starting a second loop")
        if self._announced_holder != holder["owner"]:
            self.echo(message + "; waiting")
            self._announced_holder = holder["owner"]
        return False

    # Triggers
    def trigger(self, model: str, kind: str, reason: str, now: Optional[float] = None,
                figures: Optional[Dict[str, Any]] = None, **store_options) -> Job:
        """Queues (or merges) a trigger for a registered model and audits it."""
        return queue_trigger(self.store, self.settings, model, kind, reason,
                             self.clock.now() if now is None else now, figures, **store_options)

    def _schedule_triggers(self, registrations: Dict[str, RetrainingConfig],
                           now: float) -> List[Dict[str, Any]]:
        fired = []
        for model, config in registrations.items():
            last = self.store.schedule_slot(model)
            if last is None:
                self.store.set_schedule_slot(model, now)
                continue
            due = due_slot(config.retrain_schedule, last, now)
            if due is None:
                continue
            slot, slots = due
            reason = f"cron {config.retrain_schedule!r} slot {iso(slot)}"
            if slots > 1:
                reason += f" ({slots} slots since {iso(last)} while no loop ran; fired once)"
            job = self.trigger(model, "schedule", reason, now, schedule_slot=slot,
                               figures={"slot": iso(slot), "slots_missed": slots - 1})
            fired.append({"model": model, "kind": "schedule", "reason": reason, "job": job.id})
        return fired

    def _alert_triggers(self, registrations: Dict[str, RetrainingConfig],
                        now: float) -> List[Dict[str, Any]]:
        path = self.home.monitoring_dir / "alerts.sqlite"
        if not path.exists():
            return []
        from ml.monitoring.alert_store import AlertStore

        alerts = AlertStore(path)
        try:
            rows = alerts.since(self.store.alert_cursor())
        finally:
            alerts.close()
        if not rows:
            return []
        groups: Dict[Tuple[str, str], list] = {}
        for alert_id, alert in rows:
            try:
                model = registry.get_model(alert.model_name).serving_name
            except ValueError:
                continue
            if model in registrations:
                groups.setdefault((model, alert_trigger_kind(alert)), []).append((alert_id, alert))
        last_id = rows[-1][0]
        fired = []
        held = False
        for index, ((model, kind), items) in enumerate(groups.items()):
            cursor = last_id if index == len(groups) - 1 else None
            reason, figures = _alert_reason(kind, items)
            candidate = self._candidate_under_analysis(model, registrations[model])
            if candidate is not None:
                self.store.record(model, "hold", f"{reason}; not queued: version {candidate} is "
                                  "on canary under analysis, whose verdict answers it", now, figures)
                held = held or cursor is not None
                continue
            job = self.trigger(model, kind, reason, now, alert_cursor=cursor, figures=figures)
            fired.append({"model": model, "kind": kind, "reason": reason, "job": job.id})
        if not groups or held:
            self.store.set_alert_cursor(last_id)
        return fired

    def _candidate_under_analysis(self, model: str, config: RetrainingConfig) -> Optional[int]:
        """The canary an auto-deploying model is judging, if any: a drift or performance alert
        then waits for its verdict, since a new job would replace the canary before it is
        judged (under a lasting drift, every day), and nothing would ever be promoted."""
        analysing = getattr(self.deployment, "analysing", None)
        if not config.auto_deploy or analysing is None:
            return None
        return analysing(model)

    # Jobs
    async def _run_one(self, registrations: Dict[str, RetrainingConfig]) -> Optional[Dict]:
        settings = self.settings
        job = self.store.claim(self.owner, settings.lease_seconds, self.clock.now())
        if job is None:
            return None
        config = registrations.get(job.model)
        if config is None:
            self.store.finish(job.id, self.owner, "cancelled", self.clock.now(),
                              result=job.result, error="model no longer registered")
            self.store.record(job.model, "cancel", "model no longer registered", self.clock.now(),
                              job_id=job.id)
            return {"id": job.id, "status": "cancelled"}
        context = JobContext(home=self.home, store=self.store, job=job, config=config,
                             entry=registry.get_model(config.model_name), settings=settings,
                             clock=self.clock, owner=self.owner, echo=self.echo)
        if job.attempt > job.failures + 1:  # an earlier attempt neither failed nor was released
            self.store.record(job.model, "resume", f"attempt {job.attempt}: the previous worker's "
                              "lease expired (it died); resuming from its checkpoints",
                              self.clock.now(), {"attempt": job.attempt,
                                                 "steps": sorted(context.steps())}, job.id)
        kinds = ", ".join(dict.fromkeys(t["kind"] for t in job.triggers))
        resumed = f", resuming steps {', '.join(context.steps())}" if context.steps() else ""
        self.echo(f"job {job.id} {job.model}: attempt {job.attempt}, window to {job.window_end}, "
                  f"triggers: {kinds}{resumed}")
        self.current = context
        if self.stopping:
            context.stop_event.set()
        try:
            outcome, error = await self._run_in_thread(context)
        finally:
            self.current = None
        return self._settle(context, outcome, error)

    async def _run_in_thread(self, context: JobContext):
        task = asyncio.ensure_future(asyncio.to_thread(self.runner.run, context))
        interval = self.settings.lease_seconds / 3
        while True:
            done, _ = await asyncio.wait({task}, timeout=interval)
            if done:
                break
            now = self.clock.now()
            if not (self.store.heartbeat(context.job.id, self.owner, self.settings.lease_seconds, now)
                    and self.store.renew_loop_lease(self.owner, self.settings.lease_seconds, now)):
                context.lease_lost.set()
            if self.stopping:
                context.stop_event.set()
        try:
            return task.result(), None
        except Exception as error:  # any runner failure is the job's, handled by _settle
            LOGGER.debug("job %s raised", context.job.id, exc_info=True)
            return None, error

    def _settle(self, context: JobContext, outcome: Optional[JobOutcome],
                error: Optional[BaseException]) -> Dict[str, Any]:
        job, now = context.job, self.clock.now()
        summary = {"id": job.id, "model": job.model, "attempt": job.attempt}
        if context.lease_lost.is_set():
            self.echo(f"job {job.id}: lease lost; another worker owns it now")
            return {**summary, "status": "lease_lost"}
        if isinstance(error, JobInterrupted):
            self.store.release(job.id, self.owner)
            self.store.record(job.model, "release", f"interrupted: {error}", now,
                              {"attempt": job.attempt, "steps": sorted(context.steps())}, job.id)
            self.echo(f"job {job.id}: interrupted, back in the queue with its checkpoints "
                      f"({', '.join(context.steps()) or 'none'})")
            return {**summary, "status": "pending", "reason": str(error)}
        if error is not None and not isinstance(error, PermanentJobError):
            return self._retry_or_fail(context, error)
        if error is not None:
            return self._fail(context, f"permanent error: {error_text(error)}", error_text(error))
        outcome = dataclasses.replace(outcome, result=jsonable(outcome.result))
        if outcome.status == "failed":
            return self._fail(context, outcome.reason, outcome.reason, outcome.result)
        return self._succeed_or_skip(context, outcome)

    def _succeed_or_skip(self, context: JobContext, outcome: JobOutcome) -> Dict[str, Any]:
        job, now = context.job, self.clock.now()
        result = {**context.result, **outcome.result, "reason": outcome.reason}
        if not self.store.finish(job.id, self.owner, outcome.status, now, result=result):
            self.echo(f"job {job.id}: lease lost before it could finish")
            return {"id": job.id, "status": "lease_lost"}
        figures = _figures(outcome.result)
        if outcome.status == "skipped":
            self.store.record(job.model, "skip", outcome.reason, now, figures, job.id)
            self.echo(f"job {job.id} {job.model}: skipped: {outcome.reason}")
            return {"id": job.id, "model": job.model, "status": "skipped", "reason": outcome.reason}
        version = outcome.result.get("pushed_version")
        action = "bless" if outcome.result.get("blessed") else "reject"
        self.store.record(job.model, action, outcome.reason, now, figures, job.id)
        if version is not None:
            self.store.record(job.model, "push", f"version {version} pushed to canary", now,
                              figures, job.id)
        self.echo(f"job {job.id} {job.model}: {action}ed; {outcome.reason}"
                  + (f"; pushed version {version}" if version is not None else ""))
        if version is not None and self.deployment is not None:
            self._call_deployment("on_pushed", job.model, context.config,
                                  self.store.job(job.id), int(version))
        return {"id": job.id, "model": job.model, "status": "succeeded", "reason": outcome.reason,
                "pushed_version": version}

    def _retry_or_fail(self, context: JobContext, error: BaseException) -> Dict[str, Any]:
        job, now, settings = context.job, self.clock.now(), self.settings
        failures = job.failures + 1
        text = error_text(error)
        if failures >= settings.max_attempts:
            return self._fail(context, f"failed {failures} times (max_attempts "
                                       f"{settings.max_attempts}); last error: {text}", text)
        delay = settings.retry_base_seconds * 2 ** (failures - 1)
        if not self.store.retry_later(job.id, self.owner, text, now + delay):
            return {"id": job.id, "status": "lease_lost"}
        reason = f"attempt {job.attempt} failed ({text}); retry in {delay:g} s"
        self.store.record(job.model, "retry", reason, now,
                          {"attempt": job.attempt, "failures": failures, "delay_seconds": delay,
                           "not_before": iso(now + delay), "error": text}, job.id)
        self.echo(f"job {job.id} {job.model}: {reason}")
        return {"id": job.id, "model": job.model, "status": "pending", "retry_in": delay,
                "error": text}

    def _fail(self, context: JobContext, reason: str, error: str,
              result: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        job, now = context.job, self.clock.now()
        full = {**context.result, **(result or {}), "reason": reason}
        if not self.store.finish(job.id, self.owner, "failed", now, result=full, error=error):
            return {"id": job.id, "status": "lease_lost"}
        figures = {"attempt": job.attempt, "failures": job.failures + 1, "error": error,
                   "window_end": job.window_end, **_figures(result or {})}
        self.store.record(job.model, "fail", reason, now, figures, job.id)
        self.echo(f"job {job.id} {job.model}: failed: {reason}")
        try:
            self.notifier.notify(job.model, "retraining_failed",
                                 f"Retraining job {job.id} of {job.model} failed: {reason}",
                                 figures={**figures, "job_id": job.id},
                                 value=float(job.failures + 1),
                                 threshold=float(self.settings.max_attempts))
        except Exception as exc:  # a broken channel must not stop the loop; the store keeps it
            self.echo(f"job {job.id}: failure notification not sent: {error_text(exc)}")
        return {"id": job.id, "model": job.model, "status": "failed", "reason": reason}

    # Deployment
    def _step_deployment(self, registrations: Dict[str, RetrainingConfig]) -> List[Any]:
        if self.deployment is None:
            return []
        events: List[Any] = []
        for model, config in registrations.items():
            events += self._call_deployment("step", model, config) or []
        return events

    def _call_deployment(self, method: str, model: str, *args):
        try:
            return getattr(self.deployment, method)(model, *args)
        except Exception as error:  # one model's deployment trouble must not stop the loop
            LOGGER.debug("deployment.%s raised", method, exc_info=True)
            text = error_text(error)
            self.store.record(model, "error", f"deployment {method} failed: {text}",
                              self.clock.now(), {"error": text})
            self.echo(f"{model}: deployment {method} failed: {text}")
            return None

    # Running until stopped
    async def run(self, stop_event: Optional[asyncio.Event] = None) -> None:
        """Ticks every poll_seconds until SIGINT/SIGTERM (or stop_event); then the current job
        finishes or checkpoints and goes back to the queue, and the loop lease is released."""
        self._aio_loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._aio_loop.add_signal_handler(sig, self.request_stop,
                                                  f"received {signal.Signals(sig).name}")
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
        try:
            while not self._stopped(stop_event):
                try:
                    await self.tick()
                except LoopAlreadyRunning:
                    raise
                except Exception as error:  # a locked database or a bad stored row: next round
                    LOGGER.warning("tick failed", exc_info=True)
                    self.echo(f"round failed, retrying in {self.settings.poll_seconds:g} s: "
                              f"{error_text(error)}")
                if self._stopped(stop_event):
                    break
                await self._pause(self.settings.poll_seconds, stop_event)
        finally:
            for sig in installed:
                self._aio_loop.remove_signal_handler(sig)
            if self.holds_lease:
                self.store.release_loop_lease(self.owner)
                self.holds_lease = False
            self.notifier.close()
            self._aio_loop = None
        self.echo(f"continuous learning loop {self.owner} stopped")

    def _stopped(self, stop_event) -> bool:
        if stop_event is not None and stop_event.is_set():
            self._stop.set()
        return self.stopping

    async def _pause(self, seconds: float, stop_event: Optional[asyncio.Event]) -> None:
        waiters = {asyncio.ensure_future(self.clock.sleep(seconds)),
                   asyncio.ensure_future(self._wake.wait())}
        if isinstance(stop_event, asyncio.Event):
            waiters.add(asyncio.ensure_future(stop_event.wait()))
        _, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for waiter in pending:
            waiter.cancel()


def queue_trigger(store: LifecycleStore, settings: ContinuousSettings, model: str, kind: str,
                  reason: str, now: float, figures: Optional[Dict[str, Any]] = None,
                  **store_options) -> Job:
    """A trigger into the queue for the window ending at the last complete span, with its
    audit entry (merged into an open job, or already done for that window)."""
    if kind not in TRIGGER_KINDS:
        raise ValueError(f"trigger kind must be one of {TRIGGER_KINDS}, got {kind!r}")
    end = window_end(now, settings)
    job = store.trigger(model, kind, reason, end, now, figures=figures, **store_options)
    entry = {"kind": kind, "window_end": end, "job_id": job.id, **(figures or {})}
    if job.status in OPEN_STATUSES:
        merged = len(job.triggers) > 1
        text = f"{kind}: {reason}" + (f" (merged into {job.status} job {job.id})" if merged else "")
        store.record(model, "trigger", text, now, {**entry, "merged": merged}, job.id)
    else:
        store.record(model, "trigger", f"{kind}: {reason}; window to {end} already handled by "
                     f"job {job.id} ({job.status}), not queued again", now,
                     {**entry, "merged": False, "duplicate": True}, job.id)
    return job


def _alert_reason(kind: str, items: list) -> Tuple[str, Dict[str, Any]]:
    first = items[0][1]
    reason = f"{len(items)} {kind.replace('_', ' ')} alert(s) from monitoring; first: {first.message}"
    figures = {"alerts": [{"id": alert_id, "drift_type": alert.drift_type.value,
                           "feature": alert.feature, "metric": alert.metric,
                           "value": alert.value, "threshold": alert.threshold,
                           "severity": alert.severity}
                          for alert_id, alert in items[:20]],
               "alert_count": len(items)}
    return reason, json_ready(figures)


def _figures(result: Dict[str, Any]) -> Dict[str, Any]:
    """An outcome's figures for the audit log (without the bulky checkpoints)."""
    return json_ready({k: v for k, v in result.items() if k not in ("steps", "progress")})


def jsonable(values: Dict[str, Any]) -> Dict[str, Any]:
    """A runner's result as strict JSON (numpy scalars as numbers, anything else as text), so
    an odd value cannot keep a finished job from being recorded."""
    def plain(value):
        item = getattr(value, "item", None)
        return item() if callable(item) else str(value)

    return json.loads(json.dumps(json_ready(dict(values)), default=plain, allow_nan=False))
