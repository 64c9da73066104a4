"""Continuous learning on the simulation: the issue's targets, each beside a baseline run alike.

    TF_USE_LEGACY_KERAS=1 .venv/bin/python -m benchmarks.bench_continuous [--quick] [--kill9]

Every scenario is `ml.lifecycle.simulation.Simulation` on a fresh home: the real model server
in a subprocess, the daily served-model check, outcomes after --outcome-delay-days, and the real
loop (RetrainingJobRunner: TFX jobs; DeploymentManager: canary analysis, guard, rollback). The
first tick trains version 1 (no version serves yet), so each scenario pays one training first.
Settings for all: spans of one day, --trades-per-day (one request per trade), canary share 0.2,
one canary and one guard interval of --interval-hours (default 12: a version pushed at
midnight gets the day's 10:00 session in its first interval, judged at the 13:00 tick; the
evening half holds no session and counts as too little traffic), a probe on `stable` during
every tick.

- drift response, per drift kind on a Wednesday of the second week (a volatility shock, whose
  ex-ante volatility feature first moves in the next day's trades, and a price shift, seen in
  the same day's): days from its onset to a version trained after it serving as `stable`, with
  drift triggers (monitoring alerts -> jobs) against the weekly cron alone (the loop never
  reads an alert). Target <= 2 days.
- forced bad model: version 1's scores inverted (risk 1 - p: AUC 1 - AUC) pushed and promoted
  with force at the start of a Thursday; the simulated hours and the requests it answered until `stable`
  is back on the known-good version (nobody validated it, so before outcomes the guard judges
  it by version 1's scores of its logged requests). Target: within one analysis window. Baseline (full runs):
  the same with rollback_on_failure off.
- label moves: requests of the tick probe that failed while a label moved. Target 0.
- no drift: --no-drift-weeks weeks with the weekly cron (8 in a full run): promotions of a
  version whose realised AUC fell below its predecessor's by more than performance_threshold,
  and rollbacks. Target 0 and 0. Baseline: the same weeks, cron alone.
- --kill9: the loop (a subprocess on the system clock) killed with SIGKILL at 10 random points
  of one job and restarted each time: jobs lost, run twice, versions pushed twice. Target 0/0/0.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

from benchmarks.sections import heading, machine_line, progress, publish

MODEL = "etrm_risk_model"
START = dt.date(2024, 2, 5)          # a Monday; the 30-day window before it is all history
DRIFT_ONSET = START + dt.timedelta(days=9)   # Wednesday of the second week
BAD_MODEL_DAY = START + dt.timedelta(days=3)  # Thursday of the first week
DRIFTS = (f"volatility_shock@{DRIFT_ONSET}:2.5", f"price_shift@{DRIFT_ONSET}:0.4")
DAY = 86400.0


@dataclasses.dataclass
class Options:
    trades_per_day: int
    weeks: int
    no_drift_weeks: int
    outcome_delay_days: int
    train_steps: Optional[int]
    baselines: bool
    keep: bool
    data_window_days: int = 30
    interval_hours: float = 12.0


def settings_for(options: Options, drift: str = ""):
    from ml.lifecycle.settings import ContinuousSettings

    return ContinuousSettings(records_per_span=options.trades_per_day, span_days=1,
                              drift_scenarios=drift, train_steps=options.train_steps,
                              canary_share=0.2, canary_intervals=1,
                              interval_seconds=options.interval_hours * 3600.0,
                              guard_intervals=1)


def config_for(options: Options, rollback: bool = True):
    """Weekly cron, auto_deploy; the window's trading days must hold three days of trades."""
    from ml.lifecycle.config import RetrainingConfig

    return RetrainingConfig(model_name=MODEL, retrain_schedule="0 2 * * 0", auto_deploy=True,
                            rollback_on_failure=rollback,
                            data_window_days=options.data_window_days,
                            min_samples_threshold=3 * options.trades_per_day)


class CronOnlyLoop:
    """The baseline loop: monitoring alerts are read past before every tick, so only the cron
    (and the start's manual trigger) queues jobs."""

    def __init__(self, inner, home, store):
        self.inner, self.home, self.store = inner, home, store

    def trigger(self, *args, **kwargs):
        return self.inner.trigger(*args, **kwargs)

    async def tick(self):
        from ml.monitoring.alert_store import AlertStore

        path = self.home.monitoring_dir / "alerts.sqlite"
        if path.exists():
            alerts = AlertStore(path)
            try:
                rows = alerts.since(self.store.alert_cursor())
            finally:
                alerts.close()
            if rows:
                self.store.set_alert_cursor(rows[-1][0])
        return await self.inner.tick()


def cron_only_factory(simulation, home, store, settings, clock):
    from ml.lifecycle.simulation import default_loop_factory

    return CronOnlyLoop(default_loop_factory(simulation, home, store, settings, clock), home, store)


def simulate(name: str, options: Options, weeks: int, drift: str = "", cron_only: bool = False,
             rollback: bool = True, on_day=None):
    """One scenario on a fresh home; returns (simulation, result)."""
    from ml.lifecycle.simulation import Simulation, default_loop_factory

    home = pathlib.Path(tempfile.mkdtemp(prefix=f"etrm-bench-continuous-{name}-"))
    progress(f"{name}: {weeks} simulated weeks on {home}")
    simulation = Simulation(
        home, weeks, settings_for(options, drift), configs=[config_for(options, rollback)], start=START,
        outcome_delay_days=options.outcome_delay_days,
        loop_factory=cron_only_factory if cron_only else default_loop_factory,
        echo=lambda line: progress(f"{name}: {line}"), on_day=on_day, probe_label_moves=True)
    started = time.perf_counter()
    result = simulation.run(report_path=home / "simulation.html")
    progress(f"{name}: done in {time.perf_counter() - started:.0f} s")
    if not options.keep:
        shutil.rmtree(home, ignore_errors=True)
        result.report_path = None
    return simulation, result


def _epoch(day: dt.date) -> float:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp()


def days_to_retrained_stable(simulation) -> Optional[float]:
    """Simulated days from the drift onset until `stable` moves to a version pushed after it
    (a canary pushed before the onset and promoted after it was not trained on the drift)."""
    onset = _epoch(DRIFT_ONSET)
    before = {d.stable for d in simulation.days if _epoch(dt.date.fromisoformat(d.date)) < onset}
    before |= {d.canary for d in simulation.days if _epoch(dt.date.fromisoformat(d.date)) < onset}
    before |= {version for move in simulation.label_moves if move["time"] < onset
               for version in move["after"].values()}
    for move in simulation.label_moves:
        version = move["after"].get("stable")
        if move["time"] >= onset and version is not None and version not in before \
                and version != move["before"].get("stable"):
            return (move["time"] - onset) / DAY
    return None


def drift_response(options: Options, drift: str) -> Dict:
    found = {"drift": drift}
    kind = drift.split("@")[0]
    for variant, cron_only in (("drift triggers", False), ("weekly cron alone", True)):
        simulation, result = simulate(f"{kind}-cron" if cron_only else kind, options,
                                      options.weeks, drift, cron_only=cron_only)
        found[variant] = {"days": days_to_retrained_stable(simulation),
                          "triggers": [e.reason for e in result.timeline if e.action == "trigger"],
                          "moves": simulation.label_moves, "result": result}
    return found


def _inverted_model(source: pathlib.Path, target: pathlib.Path) -> pathlib.Path:
    """Version `source` with risk_score 1 - p: served like any version, ranked backwards."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(source))
    serve = loaded.signatures["serving_default"]
    defaults = loaded.signatures["feature_defaults"]

    class Inverted(tf.Module):
        def __init__(self):
            super().__init__()
            self.loaded = loaded

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, examples):
            outputs = serve(examples=examples)
            score = 1.0 - outputs["risk_score"]
            level = tf.where(score < 0.33, "LOW", tf.where(score < 0.66, "MEDIUM", "HIGH"))
            return {"risk_score": score, "risk_level": level}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def feature_defaults(self, examples):
            return defaults(examples=examples)

    module = Inverted()
    tf.saved_model.save(module, str(target), signatures={
        "serving_default": module.serve, "feature_defaults": module.feature_defaults})
    for extra in ("assets",):
        if (source / extra).is_dir():
            shutil.copytree(source / extra, target / extra, dirs_exist_ok=True)
    return target


def forced_bad_model(options: Options, rollback: bool = True) -> Dict:
    marks: Dict = {}

    def push_and_force(simulation, day: dt.date) -> None:
        if day != BAD_MODEL_DAY:
            return
        from components.serving_pusher.versions import push_model
        from ml.lifecycle.deployment import promote

        home = simulation.home
        good = simulation.labels()["stable"]
        scratch = pathlib.Path(tempfile.mkdtemp(prefix="etrm-bad-model-"))
        try:
            bad_dir = _inverted_model(home.serving_base(MODEL) / str(good), scratch / "model")
            pushed = push_model(str(bad_dir), home.serving_models_dir, MODEL,
                                home.models_config_path,
                                signing_key=home.model_signing_key
                                if home.model_signing_key.exists() else None)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        bad = int(pushed.name)
        _wait_served(simulation, bad)
        promote(home, MODEL, version=bad, reason="benchmark: a bad model promoted by hand",
                store=simulation.store, clock=simulation.clock, force=True)
        simulation.await_labels({"stable": bad})
        marks.update(good=good, bad=bad, promoted_at=simulation.clock.now())
        progress(f"bad model v{bad} promoted over v{good}")

    name = "bad-model" if rollback else "bad-model-no-rollback"
    simulation, result = simulate(name, options, 2, on_day=push_and_force, rollback=rollback)
    rolled = next((m for m in simulation.label_moves if marks and m["time"] > marks["promoted_at"]
                   and m["after"].get("stable") == marks["good"]), None)
    served = sum(d.requests_by_version.get(marks.get("bad"), 0) for d in simulation.days
                 if rolled is None or _epoch(dt.date.fromisoformat(d.date)) < rolled["time"])
    return {**marks, "rolled_back_at": rolled["time"] if rolled else None,
            "hours": (rolled["time"] - marks["promoted_at"]) / 3600 if rolled and marks else None,
            "bad_requests": served, "moves": simulation.label_moves, "result": result}


def _wait_served(simulation, version: int, timeout: float = 120.0) -> None:
    from ml.serving_client.client import TensorFlowServingError

    client = simulation.server.client().client
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if client.model_status(MODEL, version=version):
                return
        except TensorFlowServingError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"version {version} was not served within {timeout:g} s")


def realised_by_stable(result) -> Dict[int, float]:
    """Realised AUC of each version over the days it was stable (weighted by labelled rows)."""
    sums: Dict[int, List[float]] = {}
    for day in result.days:
        if day.stable is None or day.realised_auc is None or not day.labelled:
            continue
        entry = sums.setdefault(day.stable, [0.0, 0.0])
        entry[0] += day.realised_auc * day.labelled
        entry[1] += day.labelled
    return {version: total / weight for version, (total, weight) in sums.items() if weight}


def no_drift(options: Options, cron_only: bool) -> Dict:
    simulation, result = simulate("no-drift-cron" if cron_only else "no-drift", options,
                                  options.no_drift_weeks, cron_only=cron_only)
    aucs = realised_by_stable(result)
    threshold = config_for(options).performance_threshold
    promotions, worse = 0, []
    for move in simulation.label_moves:
        old, new = move["before"].get("stable"), move["after"].get("stable")
        if old is None or new is None or new == old or new < old:
            continue
        promotions += 1
        if old in aucs and new in aucs and aucs[new] < aucs[old] - threshold:
            worse.append((old, new, aucs[old], aucs[new]))
    rollbacks = [m for m in simulation.label_moves
                 if m["after"].get("stable") is not None and m["before"].get("stable") is not None
                 and m["after"]["stable"] < m["before"]["stable"]]
    return {"promotions": promotions, "worse": worse, "rollbacks": len(rollbacks),
            "jobs": len([e for e in result.timeline if e.action == "push"]),
            "triggers": len([e for e in result.timeline if e.action == "trigger"]),
            "moves": simulation.label_moves, "result": result}


def kill9(options: Options, points: int = 10, seed: int = 7) -> Dict:
    """The loop killed with SIGKILL at random points of one job; then left to finish it."""
    from ml.core.home import Home
    from ml.lifecycle.loop import queue_trigger
    from ml.lifecycle.store import LifecycleStore

    home = Home(pathlib.Path(tempfile.mkdtemp(prefix="etrm-bench-continuous-kill9-")))
    settings = dataclasses.replace(settings_for(options), lease_seconds=15.0, poll_seconds=2.0)
    store = LifecycleStore(home.lifecycle_db)
    store.register(MODEL, config_for(options), time.time())
    job = queue_trigger(store, settings, MODEL, "manual", "benchmark: kill -9", time.time())
    rng = random.Random(seed)
    kills = []
    for point in range(points + 1):
        child = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bench_continuous", "--loop-child", str(home.root),
             "--trades-per-day", str(options.trades_per_day)]
            + (["--train-steps", str(options.train_steps)] if options.train_steps else []),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if point == points:
            deadline = time.monotonic() + 3600
            while time.monotonic() < deadline and _open(store, job.id):
                time.sleep(2)
            child.send_signal(signal.SIGTERM)
            child.wait(120)
            break
        wait = rng.uniform(5.0, 90.0)
        time.sleep(wait)
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        kills.append(round(wait, 1))
        time.sleep(settings.lease_seconds + 1)
        progress(f"kill -9 {point + 1}/{points} after {wait:.0f} s; job steps "
                 f"{sorted(store.jobs(MODEL, 1)[0].result.get('steps', {}))}")
    jobs = store.jobs(MODEL, 100)
    pushes = [e for e in store.history(MODEL, 1000) if e.action == "push"]
    versions = sorted(int(p.name) for p in home.serving_base(MODEL).iterdir() if p.name.isdigit()) \
        if home.serving_base(MODEL).is_dir() else []
    outcome = {"kills": kills, "jobs": [(j.id, j.status, j.attempt) for j in jobs],
               "lost": sum(1 for j in jobs if j.status in ("pending", "running")),
               "twice": sum(1 for j in jobs if j.window_end == job.window_end) - 1,
               "double_pushes": max(0, len(pushes) - 1), "versions": versions}
    if not options.keep:
        shutil.rmtree(home.root, ignore_errors=True)
    return outcome


def _open(store, job_id: int) -> bool:
    return any(j.id == job_id and j.status in ("pending", "running") for j in store.jobs(MODEL, 100))


def loop_child(home: str, options: Options) -> int:
    """The loop the kill -9 scenario kills: the production loop on the system clock."""
    from ml.core.home import Home
    from ml.lifecycle.clock import SystemClock
    from ml.lifecycle.loop import ContinuousLearningLoop
    from ml.lifecycle.retraining import RetrainingJobRunner
    from ml.lifecycle.store import LifecycleStore

    settings = dataclasses.replace(settings_for(options), lease_seconds=15.0, poll_seconds=2.0)
    root = Home(pathlib.Path(home))
    loop = ContinuousLearningLoop(root, LifecycleStore(root.lifecycle_db),
                                  RetrainingJobRunner(settings), settings, SystemClock())
    asyncio.run(loop.run())
    return 0


def _fmt(value, digits: int = 1, unit: str = "") -> str:
    return "not reached" if value is None else f"{value:.{digits}f}{unit}"


SCENARIOS = ("drift", "bad-model", "no-drift", "kill9")


def report(options: Options, args, machine: str, drifts: Optional[List[Dict]],
           bad: Optional[Dict], bad_baseline, quiet: Optional[Dict], quiet_baseline,
           killed) -> str:
    """The section for BENCHMARKS.md: a row per scenario run (None: not run). A run of some
    scenarios (--scenarios) is a section of its own, so runs of the others do not replace it."""
    flags = " ".join(f for f in ("--quick" if args.quick else "",
                                 f"--scenarios {','.join(args.scenarios)}"
                                 if getattr(args, "scenarios", None) else "",
                                 "--kill9" if args.kill9 else "",
                                 f"--trades-per-day {args.trades_per_day}"
                                 if getattr(args, "trades_per_day", None) else "",
                                 f"--interval-hours {args.interval_hours:g}"
                                 if getattr(args, "interval_hours", None) else "",
                                 f"--no-drift-weeks {args.no_drift_weeks}"
                                 if getattr(args, "no_drift_weeks", None) else "") if f)
    chosen = getattr(args, "scenarios", None)
    title = "Continuous learning on the simulation" + (f": {', '.join(chosen)}" if chosen else "")
    lines = [heading(title), "",
             f"Command: `TF_USE_LEGACY_KERAS=1 .venv/bin/python -m benchmarks.bench_continuous"
             f"{' ' + flags if flags else ''}`  ",
             f"Machine: {machine}. Spans of 1 day, {options.trades_per_day} trades per day, "
             f"a {options.data_window_days}-day training window, "
             f"outcomes after {options.outcome_delay_days} day(s), canary share 0.2, one canary "
             f"and one guard interval of {options.interval_hours:g} simulated hours; real "
             f"server, real TFX jobs"
             f"{f' ({options.train_steps} training steps)' if options.train_steps else ''}.", "",
             "| target | measured | baseline (same run) | goal |", "| --- | --- | --- | --- |"]
    runs = []
    for drift in drifts or []:
        with_triggers, cron = drift["drift triggers"], drift["weekly cron alone"]
        runs += [with_triggers, cron]
        met = with_triggers["days"] is not None and with_triggers["days"] <= 2
        lines.append(f"| drift onset ({drift['drift']}) to a retrained `stable` | "
                     f"{_fmt(with_triggers['days'], 2, ' days')} | weekly cron alone: "
                     f"{_fmt(cron['days'], 2, ' days')} | <= 2 days: {'met' if met else 'NOT met'} |")
    if bad is not None:
        runs.append(bad)
        hours = bad["hours"]
        lines.append(f"| forced bad model (v{bad.get('bad')} over v{bad.get('good')}) rolled back | "
                     f"after {_fmt(hours, 1, ' simulated hours')}, {bad['bad_requests']} requests "
                     f"answered by it | " + ("rollback off: " + f"{bad_baseline['bad_requests']} "
                                             "requests answered by it to the end"
                                             if bad_baseline else "not run (--quick)")
                     + f" | within one analysis window ({options.interval_hours:g} h): "
                     f"{'met' if hours is not None and hours <= options.interval_hours + 1 else 'NOT met'} |")
    if quiet is not None:
        runs.append(quiet)
    moves = [m for run in runs + [r for r in (bad_baseline, quiet_baseline) if r]
             for m in run["moves"] if "probe_requests" in m]
    failed = sum(m["probe_failed"] for m in moves)
    if runs:
        lines.append(f"| failed requests during label moves | {failed} of "
                     f"{sum(m['probe_requests'] for m in moves)} probe requests over "
                     f"{len(moves)} moves; "
                     f"{sum(d.failed_requests for run in runs for d in run['result'].days)} "
                     f"failed of the simulated traffic | - | "
                     f"0: {'met' if failed == 0 else 'NOT met'} |")
    if quiet is not None:
        quiet_ok = not quiet["worse"] and quiet["rollbacks"] == 0
        lines.append(f"| {options.no_drift_weeks} weeks without drift | {quiet['promotions']} "
                     f"promotions, {len(quiet['worse'])} of a worse model, {quiet['rollbacks']} "
                     f"rollbacks, {quiet['triggers']} triggers | "
                     + (f"cron alone: {quiet_baseline['promotions']} promotions, "
                        f"{len(quiet_baseline['worse'])} worse, {quiet_baseline['rollbacks']} "
                        "rollbacks" if quiet_baseline else "not run (--quick)")
                     + f" | 0 worse, 0 rollbacks: {'met' if quiet_ok else 'NOT met'} |")
    if killed is not None:
        ok = killed["lost"] == 0 and killed["twice"] == 0 and killed["double_pushes"] == 0
        lines.append(f"| kill -9 of the loop at {len(killed['kills'])} random points of a job | "
                     f"{killed['lost']} lost, {killed['twice']} run twice, "
                     f"{killed['double_pushes']} double pushes (versions {killed['versions']}) | - | "
                     f"0/0/0: {'met' if ok else 'NOT met'} |")
    lines += ["", f"- Analysis window: one interval of {options.interval_hours:g} simulated "
              "hours (a rollback or promotion lands at the first tick after it ends); the bad "
              "model's window in requests is the count above (all traffic it answered before "
              "the rollback)."]
    for drift in drifts or []:
        lines.append(f"- Triggers with {drift['drift']}: "
                     + "; ".join(drift["drift triggers"]["triggers"][:6])[:600])
        decisions = [f"{dt.datetime.fromtimestamp(e.time, dt.timezone.utc):%m-%d %H:%M} "
                     f"{e.action}: {e.reason[:160]}"
                     for e in drift["drift triggers"]["result"].timeline
                     if e.action in ("alert", "push", "bless", "promote", "reject", "withdraw")
                     and e.time >= _epoch(DRIFT_ONSET)][:8]
        lines.append(f"- Timeline after the onset ({drift['drift']}): " + "; ".join(decisions))
    return "\n".join(lines) + "\n"


def _scenario_list(text: str) -> List[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown scenario {', '.join(unknown) or repr(text)}; "
                                         f"choose from {', '.join(SCENARIOS)}")
    return names


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="2 weeks per scenario, a 7-day window, 40 training steps, no "
                             "baselines for the bad-model and no-drift scenarios")
    parser.add_argument("--kill9", action="store_true", help="also the kill -9 scenario")
    parser.add_argument("--scenarios", type=_scenario_list, default=None,
                        help=f"comma-separated, of {', '.join(SCENARIOS)} (default: all but "
                             "kill9); the others are reported as not run")
    parser.add_argument("--trades-per-day", type=int, default=None,
                        help="default 300: a 0.2 canary share then gets the 50 requests a "
                             "day canary analysis needs")
    parser.add_argument("--train-steps", type=int, default=None)
    parser.add_argument("--outcome-delay-days", type=int, default=1)
    parser.add_argument("--interval-hours", type=float, default=12.0,
                        help="canary and guard analysis interval (default 12)")
    parser.add_argument("--no-drift-weeks", type=int, default=None,
                        help="simulated weeks of the no-drift scenario (default 8, 2 with --quick)")
    parser.add_argument("--keep", action="store_true", help="keep the scenarios' homes")
    parser.add_argument("--no-append", action="store_true", help="do not write BENCHMARKS.md")
    parser.add_argument("--loop-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    options = Options(trades_per_day=args.trades_per_day or 300,
                      weeks=2 if args.quick else 3, no_drift_weeks=args.no_drift_weeks or (2 if args.quick else 8),
                      outcome_delay_days=args.outcome_delay_days,
                      train_steps=args.train_steps or (40 if args.quick else None),
                      baselines=not args.quick, keep=args.keep,
                      data_window_days=7 if args.quick else 30,
                      interval_hours=args.interval_hours)
    if args.loop_child:
        return loop_child(args.loop_child, options)
    chosen = set(args.scenarios or [name for name in SCENARIOS if name != "kill9"])
    if args.kill9:
        chosen.add("kill9")
    machine = machine_line()
    drifts = [drift_response(options, drift) for drift in DRIFTS] if "drift" in chosen else None
    bad = forced_bad_model(options) if "bad-model" in chosen else None
    bad_baseline = forced_bad_model(options, rollback=False) \
        if options.baselines and "bad-model" in chosen else None
    quiet = no_drift(options, cron_only=False) if "no-drift" in chosen else None
    quiet_baseline = no_drift(options, cron_only=True) \
        if options.baselines and "no-drift" in chosen else None
    killed = kill9(options) if "kill9" in chosen else None
    publish(report(options, args, machine, drifts, bad, bad_baseline, quiet, quiet_baseline,
                   killed), write=not args.no_append)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    sys.exit(main())
