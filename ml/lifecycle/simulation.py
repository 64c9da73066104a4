"""Replay weeks of trading in minutes: real server, real monitoring, the real loop, simulated time.

Each simulated day, on a SimulatedClock:

    00:00, 02:30  the loop ticks (cron slots, monitoring alerts -> triggers, one job, the
                  deployment manager's canary analysis, guard and rollback); at midnight the
                  previous day's span is complete, so a job triggered by yesterday's alerts
                  trains on the drifted day itself
    10:00         the day's trades (the generator's span for that day, as the pipeline ingests
                  it) are scored by the served model through the real server (`etrm serve` in
                  a subprocess on the home), stable and canary sharing traffic by canary_share
    11:00, 13:00  the loop ticks (the deployment manager scrapes the server's request counts
                  after the traffic; a half-day analysis interval ends before 13:00)
    18:00         the served-model check (ml.monitoring.served_check) reads the day's request
                  logs: drift, prediction drift, CBPE-estimated AUC, and realised performance
                  of the trades whose outcomes arrived (older than outcome_delay_days)

No tick between the check and midnight: a job started then would end its window on the day
before the alert.

The loop, its runner and the deployment manager are the production ones unless injected, so
what the simulation shows is what the platform does. It records a timeline (every trigger,
job outcome and decision from the lifecycle audit log, with simulated time) and figures per day,
prints the timeline and writes an HTML report (ml.lifecycle.sim_report).
"""
from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
import pathlib
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

from ml.core import registry
from ml.core.home import Home
from ml.lifecycle.config import RetrainingConfig, validate

DAY = 86400.0
MORNING_TICK_HOURS = (0.0, 2.5)
AFTERNOON_TICK_HOURS = (11.0, 13.0)
TRAFFIC_HOUR = 10.0
CHECK_HOUR = 18.0
SERVER_START_SECONDS = 180.0
LOG_SETTLE_SECONDS = 15.0
LABEL_WAIT_SECONDS = 60.0
MONITORING_CONFIG = 'prometheus_config {\n  enable: true\n  path: "/monitoring/prometheus/metrics"\n}\n'


@dataclasses.dataclass
class DayFigures:
    """One simulated day: what served, how much traffic each version got, what monitoring saw."""

    date: str
    stable: Optional[int]
    canary: Optional[int]
    requests_by_label: Dict[str, int]
    requests_by_version: Dict[int, int]
    failed_requests: int
    logged_requests: int = 0
    drifted_features: List[str] = dataclasses.field(default_factory=list)
    max_drift_psi: Optional[float] = None
    prediction_psi: Optional[float] = None
    estimated_auc: Optional[float] = None
    realised_auc: Optional[float] = None
    labelled: int = 0
    alerts: List[str] = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict:
        values = dataclasses.asdict(self)
        values["requests_by_version"] = {str(k): v for k, v in self.requests_by_version.items()}
        return values


@dataclasses.dataclass(frozen=True)
class TimelineEvent:
    """A trigger, job outcome, decision or monitoring alert at a simulated time."""

    time: float
    kind: str
    model: str
    action: str
    reason: str
    figures: Dict[str, Any] = dataclasses.field(default_factory=dict)
    job_id: Optional[int] = None

    @property
    def day(self) -> str:
        return dt.datetime.fromtimestamp(self.time, dt.timezone.utc).strftime("%Y-%m-%d")

    def line(self) -> str:
        stamp = dt.datetime.fromtimestamp(self.time, dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
        job = f" job {self.job_id}" if self.job_id is not None else ""
        return f"{stamp}  {self.action:<9}{job}  {self.reason}"


@dataclasses.dataclass
class SimulationResult:
    """Everything a run recorded; `report_path` is the HTML report when one was written."""

    model: str
    start: str
    days: List[DayFigures]
    timeline: List[TimelineEvent]
    drift: str
    report_path: Optional[pathlib.Path] = None

    def events(self, action: str) -> List[TimelineEvent]:
        return [event for event in self.timeline if event.action == action]

    def as_dict(self) -> dict:
        return {"model": self.model, "start": self.start, "drift": self.drift,
                "days": [day.as_dict() for day in self.days],
                "timeline": [dataclasses.asdict(event) for event in self.timeline],
                "report_path": str(self.report_path) if self.report_path else None}


class ServerProcess:
    """`etrm serve` on the home in a subprocess, ports picked free, config re-read quickly.

    Why a subprocess: the server loads TensorFlow models and must keep answering while a
    retraining job runs TFX in the simulation's process, as it would in production.
    """

    def __init__(self, home: Home, poll_seconds: float = 0.5, log_file_age_seconds: float = 1.0,
                 python: str = sys.executable):
        self.home = home
        self.poll_seconds = poll_seconds
        self.log_file_age_seconds = log_file_age_seconds
        self.python = python
        self.process: Optional[subprocess.Popen] = None
        self.rest_port: Optional[int] = None
        self.grpc_port: Optional[int] = None

    def start(self, timeout: float = SERVER_START_SECONDS) -> "ServerProcess":
        monitoring = self.home.root / "serving_config" / "monitoring.config"
        monitoring.parent.mkdir(parents=True, exist_ok=True)
        if not monitoring.exists():
            monitoring.write_text(MONITORING_CONFIG)
        command = [self.python, "-m", "ml.cli", "serve", "--home", str(self.home.root),
                   "--port", "0", "--rest_api_port", "0",
                   "--model_config_file_poll_wait_seconds", str(self.poll_seconds),
                   "--file_system_poll_wait_seconds", str(self.poll_seconds),
                   "--monitoring_config_file", str(monitoring),
                   "--request_log_sampling_rate", "1",
                   "--request_log_max_file_age_seconds", str(self.log_file_age_seconds),
                   "--log_level", "WARNING"]
        self.home.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.home.log_dir / "simulation-server.log", "ab")
        environment = {**os.environ, "TF_USE_LEGACY_KERAS": "1"}
        try:
            self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log,
                                            env=environment, text=True)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                if self.process.poll() is not None:
                    raise RuntimeError(f"etrm serve exited with status {self.process.returncode} "
                                       "before it was ready (see logs/simulation-server.log)")
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "ready":
                self.rest_port, self.grpc_port = event["rest_api_port"], event["grpc_port"]
                return self
        self.stop()
        raise RuntimeError(f"etrm serve was not ready within {timeout:g} s")

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}/monitoring/prometheus/metrics"

    def client(self):
        from ml.serving_client.client import ETRMModelClient, TensorFlowServingClient

        return ETRMModelClient(TensorFlowServingClient(host="127.0.0.1", rest_port=self.rest_port,
                                                       grpc_port=self.grpc_port))

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (the server finishes in-flight requests and closes its logs), then SIGKILL."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def wait_for_logs(home: Home, model_name: str, timeout: float = LOG_SETTLE_SECONDS) -> bool:
    """True once no request log of the model is still open (the server finishes a file once it
    is older than its max age and idle), so the check sees the whole day."""
    from ml.core.request_log import PARTIAL_SUFFIX

    folder = home.serving_log_dir(model_name)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not folder.is_dir() or not any(p.name.endswith(PARTIAL_SUFFIX) for p in folder.iterdir()):
            return True
        time.sleep(0.2)
    return False


def epoch(day: dt.date, hours: float = 0.0) -> float:
    moment = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)
    return moment.timestamp() + hours * 3600.0


class Simulation:
    """N weeks of simulated trading on a home (see the module docstring).

    settings: ContinuousSettings (span size, seed, canary share, ...); drift: generator drift
    scenarios (KIND@YYYY-MM-DD:M[,...]) replacing settings.drift_scenarios when given;
    configs: the RetrainingConfig(s) registered (default: the risk model weekly, auto_deploy);
    start: the first simulated day (default: history_start + the first config's data window).
    loop_factory(simulation, home, store, settings, clock) -> an object with `async tick()`
    (and optionally `trigger(model, kind, reason, now)`) (default: the
    ContinuousLearningLoop with the RetrainingJobRunner and a DeploymentManager reading the
    server's logs and metrics); server: a started ServerProcess-like object to use instead of
    starting one; estimated_drop: the estimated-AUC rule's threshold (default None: the first
    config's performance_threshold; 0 turns the rule off). on_day(simulation, day) runs at the
    day's start (00:00, before its ticks). batch_size: trades per request (default 1: a trading
    system scores each trade as it is booked, and canary analysis counts requests). probe_label_moves: during every tick a thread keeps scoring one trade
    at a time on `stable` (features only, so monitoring and canary analysis ignore it) and
    `label_moves` records each tick that moved a label with the probe's requests and failures.
    """

    def __init__(self, home, weeks: int, settings, drift: Optional[str] = None,
                 configs: Optional[Sequence[RetrainingConfig]] = None, seed: Optional[int] = None,
                 outcome_delay_days: int = 7, start: Optional[dt.date] = None,
                 loop_factory: Optional[Callable] = None, server=None,
                 estimated_drop: Optional[float] = None, reference_rows: int = 2000,
                 batch_size: int = 1, echo: Optional[Callable[[str], None]] = None,
                 on_day: Optional[Callable[["Simulation", dt.date], None]] = None,
                 probe_label_moves: bool = False):
        from ml.lifecycle.settings import ContinuousSettings
        from pipeline.config import DriftSettings

        if isinstance(weeks, bool) or not isinstance(weeks, int) or weeks <= 0:
            raise ValueError(f"weeks must be a whole number > 0, got {weeks!r}")
        if isinstance(outcome_delay_days, bool) or not isinstance(outcome_delay_days, int) \
                or outcome_delay_days < 0:
            raise ValueError(f"outcome_delay_days must be a whole number >= 0, got "
                             f"{outcome_delay_days!r}")
        if not isinstance(settings, ContinuousSettings):
            raise ValueError(f"settings must be a ContinuousSettings, got {type(settings).__name__}")
        changes = {}
        if drift is not None:
            changes["drift_scenarios"] = drift
        if seed is not None:
            changes["seed"] = seed
        self.settings = dataclasses.replace(settings, **changes) if changes else settings
        self.home = home if isinstance(home, Home) else Home.resolve(home)
        self.weeks = weeks
        self.configs = list(configs) if configs else [RetrainingConfig(
            model_name=registry.RISK_MODEL.serving_name, retrain_schedule="0 2 * * 0",
            auto_deploy=True)]
        self.entries = [validate(config) for config in self.configs]
        self.model = self.entries[0].serving_name
        if self.model != registry.RISK_MODEL.serving_name:
            raise ValueError(f"configs: the simulation sends trades, so its first model must be "
                             f"{registry.RISK_MODEL.serving_name}, got {self.model}")
        self.outcome_delay_days = outcome_delay_days
        history = dt.datetime.strptime(self.settings.history_start, "%Y-%m-%d").date()
        self.start = start or history + dt.timedelta(days=max(self.configs[0].data_window_days,
                                                               self.settings.span_days))
        self.loop_factory = loop_factory or default_loop_factory
        self.server = server
        self.estimated_drop = (self.configs[0].performance_threshold if estimated_drop is None
                               else estimated_drop) or None
        self.reference_rows = reference_rows
        self.feature_psi = dict(DriftSettings().feature_psi_thresholds)
        self.batch_size = batch_size
        self.echo = echo or (lambda text: print(text, flush=True))
        self.on_day = on_day
        self.probe_label_moves = probe_label_moves
        self.label_moves: List[Dict[str, Any]] = []
        self._trades = None
        self.days: List[DayFigures] = []
        self.timeline: List[TimelineEvent] = []
        self._audit_seen = 0
        self.clock = None
        self.store = None
        self.loop = None

    # Running
    def run(self, report_path=None) -> SimulationResult:
        return asyncio.run(self.run_async(report_path))

    async def run_async(self, report_path=None) -> SimulationResult:
        from ml.lifecycle.clock import SimulatedClock
        from ml.lifecycle.store import LifecycleStore

        self.clock = SimulatedClock(epoch(self.start))
        self.store = LifecycleStore(self.home.lifecycle_db)
        for config, entry in zip(self.configs, self.entries):
            self.store.register(entry.serving_name, config, self.clock.now())
        self._audit_seen = max([entry.id for entry in self.store.history(limit=1)] or [0])
        own_server = self.server is None
        if own_server:
            self.server = ServerProcess(self.home).start()
        try:
            self.loop = self.loop_factory(self, self.home, self.store, self.settings, self.clock)
            if "stable" not in self.labels() and hasattr(self.loop, "trigger"):
                self.loop.trigger(self.model, "manual", "simulation start: no version is stable "
                                  "yet", self.clock.now())
            for index in range(self.weeks * 7):
                await self._day(self.start + dt.timedelta(days=index))
        finally:
            if own_server:
                self.server.stop()
        result = SimulationResult(self.model, self.start.isoformat(), self.days, self.timeline,
                                  self.settings.drift_scenarios)
        self.echo("timeline:")
        for event in self.timeline:
            self.echo("  " + event.line())
        if report_path is not None:
            from ml.lifecycle.sim_report import write_report

            result.report_path = pathlib.Path(write_report(result, report_path))
            self.echo(f"report: {result.report_path}")
        return result

    async def _day(self, day: dt.date) -> None:
        self.clock.set(max(epoch(day), self.clock.now()))
        if self.on_day is not None:
            self.on_day(self, day)
        for hours in MORNING_TICK_HOURS:
            await self._tick(epoch(day, hours))
        self.clock.set(epoch(day, TRAFFIC_HOUR))
        labels = self.labels()
        self.await_labels(labels)
        traffic = self.send(day, labels)
        wait_for_logs(self.home, self.model)
        figures = DayFigures(day.isoformat(), labels.get("stable"), labels.get("canary"),
                             dict(traffic.sent), dict(traffic.answered_by_version), traffic.failed)
        for hours in AFTERNOON_TICK_HOURS:
            await self._tick(epoch(day, hours))
        self.clock.set(epoch(day, CHECK_HOUR))
        self._check(day, figures)
        self.days.append(figures)
        served = f"stable v{figures.stable}" + (
            f", canary v{figures.canary}" if figures.canary not in (None, figures.stable) else "")
        auc = "".join(part for part in (
            f", est. AUC {figures.estimated_auc:.3f}" if figures.estimated_auc is not None else "",
            f", AUC {figures.realised_auc:.3f}" if figures.realised_auc is not None else ""))
        self.echo(f"{day} {served}: {traffic.requests} requests ({traffic.failed} failed)"
                  f"{auc}{', drift: ' + ', '.join(figures.drifted_features) if figures.drifted_features else ''}")

    def labels(self) -> Dict[str, int]:
        from ml.serving.model_config import find_model_config, read_model_server_config

        try:
            model = find_model_config(read_model_server_config(self.home.models_config_path),
                                      self.model)
        except KeyError:
            return {}
        return {label: int(version) for label, version in model.version_labels.items()}

    def await_labels(self, labels: Dict[str, int], timeout: float = LABEL_WAIT_SECONDS) -> bool:
        """Waits (real time) until the server answers each label with its models.config
        version: simulated time jumps, the server's config poll does not."""
        from ml.serving_client.client import TensorFlowServingError

        client = self.server.client().client
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                served = {label: [entry["version"] for entry in
                                  client.model_status(self.model, label=label)]
                          for label in labels}
            except TensorFlowServingError:
                served = {}
            if served and all(served.get(label) == [version] for label, version in labels.items()):
                return True
            time.sleep(0.2)
        self.echo(f"the server did not serve labels {labels} within {timeout:g} s")
        return False

    def send(self, day: dt.date, labels: Dict[str, int]):
        from ml.lifecycle.traffic import DayTraffic, day_trades, send_day
        from ml.serving_client.client import ABSplit

        if "stable" not in labels:
            return DayTraffic(date=day.isoformat())
        trades = day_trades(day, self.settings)
        if not trades.empty:
            self._trades = trades
        canary = labels.get("canary")
        share = self.settings.canary_share if canary is not None and canary != labels["stable"] else 0.0
        return send_day(self.server.client(), trades, ABSplit("stable", "canary", share),
                        batch_size=self.batch_size, seed=self.settings.seed + day.toordinal(),
                        date=day.isoformat())

    def _check(self, day: dt.date, figures: DayFigures) -> None:
        from ml.monitoring.served_check import check_served_model

        if figures.stable is None:
            return
        cutoff = day - dt.timedelta(days=self.outcome_delay_days - 1)
        check = None
        # A version pushed by hand has no training run in ML Metadata: the latest pushed one's
        # training data is the reference then.
        for reference_version in dict.fromkeys((figures.stable, None)):
            try:
                check = check_served_model(
                    self.home, self.model, self.reference_rows, now=self.clock.now(),
                    labels_available_before=cutoff, reference_version=reference_version,
                    estimated_drop_threshold=self.estimated_drop,
                    outcome_settings=self.outcome_settings(), only_identified=True,
                    feature_psi=self.feature_psi,
                    report_path=self.home.monitoring_reports_dir / f"sim-{day}.html")
                break
            except LookupError as error:
                problem = error
        if check is None:
            self.echo(f"{day} check skipped: {problem}")
            return
        if not check.checked:
            return
        figures.logged_requests = check.requests
        figures.drifted_features = check.drifted_features
        figures.max_drift_psi = max(check.drift_scores.values()) if check.drift_scores else None
        figures.prediction_psi = check.prediction_psi
        figures.estimated_auc = check.estimated_auc
        figures.realised_auc = check.realised_auc
        figures.labelled = check.labelled
        figures.alerts = [alert.message for alert in check.alerts]
        for alert in check.alerts:
            self.timeline.append(TimelineEvent(self.clock.now(), "alert", self.model, "alert",
                                               alert.message,
                                               {"drift_type": alert.drift_type.value,
                                                "feature": alert.feature}))

    def outcome_settings(self) -> Dict[str, Any]:
        """The generator settings of the simulated trades (their outcomes are regenerated
        from these, whatever data the serving version was trained on)."""
        from ml.lifecycle.traffic import span_request

        return span_request(0, self.settings).generator_properties()

    async def _tick(self, moment: float) -> None:
        self.clock.set(max(moment, self.clock.now()))
        before = self.labels()
        probe = (_Probe(self) if self.probe_label_moves and "stable" in before
                 and self._trades is not None else None)
        try:
            await self.loop.tick()
        finally:
            counts = probe.stop() if probe is not None else None
        after = self.labels()
        if after != before:
            move = {"time": self.clock.now(), "before": before, "after": after}
            if counts is not None:
                move.update(counts)
            self.label_moves.append(move)
        self._collect_audit()

    def _collect_audit(self) -> None:
        entries = [entry for entry in self.store.history(limit=10000) if entry.id > self._audit_seen]
        for entry in entries:
            kind = "trigger" if entry.action == "trigger" else (
                "job" if entry.action in ("bless", "reject", "push", "skip", "fail", "retry")
                else "decision")
            event = TimelineEvent(entry.time, kind, entry.model, entry.action, entry.reason,
                                  entry.figures, entry.job_id)
            self.timeline.append(event)
            self.echo("  " + event.line())
        if entries:
            self._audit_seen = entries[-1].id


class _Probe:
    """Scores one trade at a time on `stable` in a thread while a tick runs."""

    def __init__(self, simulation: Simulation, pause_seconds: float = 0.1):
        import threading

        from ml.lifecycle.traffic import model_features, plain_rows

        self.client = simulation.server.client()
        self.client.label = "stable"
        trades = simulation._trades
        self.rows = plain_rows(trades.head(50), model_features(self.client, trades))
        self.pause_seconds = pause_seconds
        self.requests = self.failed = 0
        self.errors: List[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="label-move-probe", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from ml.serving_client.client import TensorFlowServingError

        index = 0
        while not self._stop.is_set():
            self.requests += 1
            try:
                self.client.predict_risk_scores([self.rows[index % len(self.rows)]])
            except (TensorFlowServingError, ValueError) as error:
                self.failed += 1
                if len(self.errors) < 5:
                    self.errors.append(str(error))
            index += 1
            self._stop.wait(self.pause_seconds)

    def stop(self) -> Dict[str, Any]:
        self._stop.set()
        self._thread.join(timeout=30)
        return {"probe_requests": self.requests, "probe_failed": self.failed,
                "probe_errors": list(self.errors)}


def default_loop_factory(simulation: Simulation, home: Home, store, settings, clock):
    """The production loop: RetrainingJobRunner, DeploymentManager over the server's request
    logs (placed in time by trade date, outcomes after the simulation's delay) and metrics."""
    from ml.lifecycle.deployment import DeploymentManager
    from ml.lifecycle.loop import ContinuousLearningLoop
    from ml.lifecycle.observations import LoggedObservations, PrometheusCounts
    from ml.lifecycle.retraining import RetrainingJobRunner

    counts = PrometheusCounts(simulation.server.metrics_url, home, settings)
    observations = LoggedObservations(home, clock=clock, time_basis="trade_date",
                                      label_delay_seconds=simulation.outcome_delay_days * DAY,
                                      counts=counts,
                                      generator_settings=simulation.outcome_settings(),
                                      trade_hour=TRAFFIC_HOUR)
    deployment = DeploymentManager(home, store, settings, clock, observations=observations,
                                   metrics=counts)
    return ContinuousLearningLoop(home, store, RetrainingJobRunner(settings), settings, clock,
                                  deployment=deployment, echo=simulation.echo)
