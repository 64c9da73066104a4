"""Continuous learning as the spec documents it: register a model's RetrainingConfig, run the
loop until SIGINT/SIGTERM, ask get_pipeline_status() from any process.

A facade over ml.lifecycle: registrations, jobs and decisions live in the project home
(<home>/lifecycle/lifecycle.sqlite), so the spec's debug command works from a second process
while a loop runs. The home is `home`, else $ETRM_HOME, else .etrm. Nothing heavy is imported
here: the TFX job runner loads on the first job.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from ml.core.home import Home
from ml.lifecycle.clock import Clock, SystemClock
from ml.lifecycle.config import RetrainingConfig, validate
from ml.lifecycle.jobs import JobContext, JobOutcome, JobRunner
from ml.lifecycle.loop import ContinuousLearningLoop, LoopAlreadyRunning, queue_trigger
from ml.lifecycle.notify import LifecycleNotifier, Notifiers
from ml.lifecycle.settings import ContinuousSettings
from ml.lifecycle.status import pipeline_status
from ml.lifecycle.store import Job, LifecycleStore

__all__ = ["ContinuousLearningPipeline", "RetrainingConfig", "ContinuousSettings",
           "LoopAlreadyRunning"]


class ContinuousLearningPipeline:
    """The spec's entry point. runner, deployment and notifiers default to the platform's
    (RetrainingJobRunner, DeploymentManager, the log); tests and the simulation inject theirs."""

    def __init__(self, home=None, settings: Optional[ContinuousSettings] = None,
                 clock: Optional[Clock] = None, runner: Optional[JobRunner] = None,
                 notifiers: Notifiers = None, deployment=None):
        self.home = home if isinstance(home, Home) else Home.resolve(home)
        self.settings = settings or ContinuousSettings()
        if not isinstance(self.settings, ContinuousSettings):
            raise ValueError(f"settings must be a ContinuousSettings, got {type(settings).__name__}")
        self.clock = clock or SystemClock()
        self.store = LifecycleStore(self.home.lifecycle_db)
        self.runner, self.notifiers, self.deployment = runner, notifiers, deployment

    def register_model_for_retraining(self, config: RetrainingConfig) -> str:
        """Validates the config and stores it under the model's serving name (returned).

        A ValueError names the field and what is accepted. Registering the same config again
        (every start of the Quick Start) changes nothing; a changed config is audited."""
        if not isinstance(config, RetrainingConfig):
            raise ValueError(f"config must be a RetrainingConfig, got {type(config).__name__}")
        entry = validate(config)
        now = self.clock.now()
        previous = self.store.register(entry.serving_name, config, now)
        if previous != config:
            reason = "registered for continuous learning" if previous is None else "config changed"
            self.store.record(entry.serving_name, "register", reason, now,
                              {"config": config.to_dict(),
                               "previous": previous.to_dict() if previous else None})
        return entry.serving_name

    def trigger_retraining(self, model_name: str, reason: str) -> Job:
        """A manual trigger (`etrm continuous trigger`); reopens a failed job for the window."""
        from ml.core import registry

        try:
            model = registry.get_model(model_name).serving_name
        except ValueError as exc:
            raise ValueError(f"model_name: {exc}") from None
        if model not in self.store.registrations():
            raise ValueError(f"model_name: {model} is not registered for retraining; register "
                             "it first (register_model_for_retraining)")
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError("reason must be a non-empty text saying why")
        return queue_trigger(self.store, self.settings, model, "manual", reason.strip(),
                             self.clock.now(), reopen_failed=True)

    def build_loop(self, wait: bool = True, owner: Optional[str] = None,
                   echo=None) -> ContinuousLearningLoop:
        notifier = (self.notifiers if isinstance(self.notifiers, LifecycleNotifier)
                    else LifecycleNotifier(self.home, self.notifiers, self.clock))
        deployment = self.deployment
        if deployment is None:
            deployment = _default_deployment(self.home, self.store, self.settings, self.clock,
                                             notifier)
        return ContinuousLearningLoop(self.home, self.store, self.runner or _DefaultRunner(self.settings),
                                      self.settings, self.clock, notifier, deployment, owner,
                                      wait=wait, echo=echo)

    async def run_continuous_learning_loop(self, stop_event=None, wait: bool = True) -> None:
        """Runs until SIGINT/SIGTERM (or stop_event): the current job finishes or checkpoints.

        A second loop on the same home waits for the first (wait=False: LoopAlreadyRunning)."""
        await self.build_loop(wait=wait).run(stop_event)

    def get_pipeline_status(self) -> Dict[str, Any]:
        """Registrations, next runs, jobs, label versions, the canary's analysis and the guard's
        progress, alerts, the last decision (JSON-ready). Intervals and deadlines follow the
        settings of the loop that last ran on the home (recorded when it took the lease), not
        this process's, which may be another command's defaults."""
        return pipeline_status(self.home, self.store, self.clock, self._loop_settings())

    def _loop_settings(self) -> ContinuousSettings:
        recorded = self.store.loop_settings()
        if not recorded:
            return self.settings
        try:
            return ContinuousSettings.from_dict(recorded)
        except ValueError:
            return self.settings


class _DefaultRunner:
    """The TFX job runner, imported on the first job: a loop that waits for Sunday's cron
    should not spend the TensorFlow import at start."""

    def __init__(self, settings: ContinuousSettings):
        self.settings = settings
        self._runner = None

    def run(self, context: JobContext) -> JobOutcome:
        if self._runner is None:
            from ml.lifecycle.retraining import RetrainingJobRunner

            self._runner = RetrainingJobRunner(self.settings)
        return self._runner.run(context)


def _default_deployment(home, store, settings, clock, notifier):
    """The platform's DeploymentManager, reading the server's metrics when a URL is set."""
    try:
        from ml.lifecycle.deployment import DeploymentManager
    except ModuleNotFoundError as exc:
        if exc.name != "ml.lifecycle.deployment":
            raise
        return None
    from ml.lifecycle.observations import PrometheusCounts

    metrics = (PrometheusCounts(settings.serving_metrics_url, home, settings)
               if settings.serving_metrics_url else None)
    return DeploymentManager(home, store, settings, clock, notifier, metrics=metrics)
