"""`etrm continuous`: run the continuous-learning loop, show its status and audit history,
trigger a retrain by hand, register a model; promote/rollback and simulate come from their
own modules. Errors print one line and exit 2."""
from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
from typing import Callable

from ml.cli.home_args import add_home_arguments, home_of

SETTING_FLAGS = {  # flag -> (ContinuousSettings field, type, help)
    "--span-days": ("span_days", int, "days per ingested span (default: 7)"),
    "--records-per-span": ("records_per_span", int, "generated records per span (default: 2000)"),
    "--poll-seconds": ("poll_seconds", float, "seconds between loop rounds (default: 30)"),
    "--max-attempts": ("max_attempts", int, "attempts before a job fails (default: 3)"),
    "--train-steps": ("train_steps", int, "training steps per job (default: the model's)"),
    "--serving-metrics-url": ("serving_metrics_url", str,
                              "the model server's Prometheus page for canary error and latency "
                              "checks, e.g. http://127.0.0.1:8501/monitoring/prometheus/metrics "
                              "(default: none, request logs only)"),
}


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    commands = parser.add_subparsers(dest="continuous_command", required=True)

    run = _command(commands, "run", "run the loop until SIGINT/SIGTERM", _run)
    run.add_argument("--exit-if-running", action="store_true",
                     help="exit (code 2) when another loop holds the home instead of waiting")
    for flag, (_, kind, text) in SETTING_FLAGS.items():
        run.add_argument(flag, type=kind, help=text)
    run.add_argument("--verbose", action="store_true", help="show library logs on the terminal")

    status = _command(commands, "status", "registered models, jobs, labels, alerts", _status)
    status.add_argument("--json", action="store_true", help="print the status as JSON")

    history = _command(commands, "history", "the audit log of every decision", _history)
    history.add_argument("model", nargs="?", help="one model (default: all)")
    history.add_argument("--limit", type=int, default=50, help="last N decisions (default: 50)")
    history.add_argument("--json", action="store_true", help="print the entries as JSON")

    trigger = _command(commands, "trigger", "queue a retrain by hand", _trigger)
    trigger.add_argument("model", help="a registered model (any registry name)")
    trigger.add_argument("--reason", required=True, help="why (recorded in the audit log)")

    register = _command(commands, "register", "register a model for continuous learning", _register)
    register.add_argument("model", help="model name (risk_model, etrm_risk_model, risk, ...)")
    register.add_argument("--schedule", required=True, help="five-field cron, e.g. '0 2 * * 0'")
    register.add_argument("--data-window-days", type=int, default=30)
    register.add_argument("--min-samples", type=int, default=1000)
    register.add_argument("--performance-threshold", type=float, default=0.05)
    register.add_argument("--auto-deploy", action="store_true")
    register.add_argument("--no-rollback", action="store_true",
                          help="do not roll back automatically when the new stable falls behind")

    _wire_optional(commands, "ml.cli.continuous_deploy", "add_deploy_commands")
    _wire_optional(commands, "ml.cli.continuous_simulate", "add_simulate_command")
    for command in commands.choices.values():
        handler = command.get_default("handler")
        if handler is not None and not getattr(handler, "is_guarded", False):
            command.set_defaults(handler=_guarded(handler))
    return parser


def run(args: argparse.Namespace) -> int:
    handler = getattr(args, "continuous_handler", None)
    if handler is None:
        print("error: choose a continuous subcommand (see etrm continuous --help)", file=sys.stderr)
        return 2
    return handler(args)


def _command(commands, name: str, text: str, handler: Callable) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=text)
    add_home_arguments(parser)
    parser.set_defaults(handler=_guarded(handler))
    return parser


def _guarded(handler: Callable) -> Callable:
    """Errors a user can act on as one line and exit code 2, never a traceback."""
    def guarded(args: argparse.Namespace) -> int:
        from ml.lifecycle.loop import LoopAlreadyRunning

        try:
            return handler(args)
        except (ValueError, LoopAlreadyRunning, OSError, sqlite3.Error) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    guarded.is_guarded = True
    return guarded


def _wire_optional(commands, module_name: str, function: str) -> None:
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        return
    getattr(module, function)(commands)


def _pipeline(args: argparse.Namespace, **settings):
    from ml.continuous_learning_pipeline import ContinuousLearningPipeline, ContinuousSettings

    return ContinuousLearningPipeline(home=home_of(args), settings=ContinuousSettings(**settings))


def _run(args: argparse.Namespace) -> int:
    from ml.core import logs
    from ml.lifecycle.loop import LoopAlreadyRunning

    overrides = {field: getattr(args, flag[2:].replace("-", "_"))
                 for flag, (field, _, _) in SETTING_FLAGS.items()
                 if getattr(args, flag[2:].replace("-", "_")) is not None}
    pipeline = _pipeline(args, **overrides)
    if not pipeline.store.registrations():
        print(f"warning: no model is registered in {pipeline.home.root}; register one with "
              "`etrm continuous register MODEL --schedule CRON`", file=sys.stderr)
    say = logs.progress_logger()
    with logs.terminal(pipeline.home, "continuous", verbose=args.verbose):
        loop = pipeline.build_loop(wait=not args.exit_if_running, echo=say.info)
        try:
            asyncio.run(loop.run())
        except (LoopAlreadyRunning, ValueError, OSError, sqlite3.Error) as exc:
            say.error("error: %s", exc)  # once, on the terminal (the log file has the rest)
            return 2
    return 0


def _status(args: argparse.Namespace) -> int:
    status = _pipeline(args).get_pipeline_status()
    if args.json:
        print(json.dumps(status, indent=2, allow_nan=False))
        return 0
    print(format_status(status))
    return 0


def format_status(status: dict) -> str:
    loop = status["loop"]
    lines = [f"home {status['home']} at {status['time']}",
             "loop: " + (f"{loop['owner']} ({'alive' if loop['alive'] else 'lease expired'}, "
                         f"since {loop['since']})" if loop else "not running")]
    if not status["models"]:
        lines.append("no model is registered for continuous learning")
    for model in status["models"]:
        config = model["config"]
        labels = model["labels"].get("labels", {})
        lines.append(f"{model['model']}: cron {config['retrain_schedule']!r}, next run "
                     f"{model['next_run']}, window {config['data_window_days']} d, auto_deploy "
                     f"{config['auto_deploy']}; labels "
                     + (", ".join(f"{k}={v}" for k, v in labels.items()) or "none"))
        if model["canary"]:
            lines.append("  " + canary_line(model["canary"]))
        if model["guard"]:
            lines.append("  " + guard_line(model["guard"]))
        for job in model["recent_jobs"][:5]:
            kinds = ",".join(dict.fromkeys(t["kind"] for t in job["triggers"]))
            detail = job["error"] or job["reason"] or job["progress"] or ""
            lines.append(f"  job {job['id']} {job['status']} (attempt {job['attempt']}, {kinds}, "
                         f"window to {job['window_end']})" + (f": {detail}" if detail else ""))
        decision = model["last_decision"]
        if decision:
            lines.append(f"  last decision {decision['time']}: {decision['action']}: "
                         f"{decision['reason']}")
    for alert in status["alerts"][:5]:
        lines.append(f"alert {alert['time']} {alert['model']} {alert['type']}: {alert['message']}")
    for alert in status["lifecycle_alerts"][:5]:
        lines.append(f"lifecycle alert {alert['time']} {alert['model']} {alert['metric']}: "
                     f"{alert['message']}")
    return "\n".join(lines)


def canary_line(canary: dict) -> str:
    """`canary v4 (20% of traffic, 19% seen) vs stable v3 since ...: 2 of 3 intervals ...`."""
    observed = canary["observed_share"]
    seen = f", {observed:.0%} seen" if observed is not None else ""
    mine, theirs = canary["canary"], canary["stable"]
    verdict = (f"verdict {canary['verdict']}: {'; '.join(canary['reasons'])}"
               if canary["verdict"] else f"first interval ends {canary['next_interval_ends']}")
    return (f"canary v{canary['version']} ({canary['canary_share']:.0%} of traffic{seen}) vs "
            f"stable v{canary['stable_version']} since {canary['started']}: "
            f"{canary['intervals_with_traffic']} of {canary['canary_intervals']} intervals with "
            f"enough traffic ({canary['intervals_analysed']} analysed); canary "
            f"{mine['requests']} requests/{mine['errors']} errors, stable "
            f"{theirs['requests']}/{theirs['errors']}; {verdict}")


def guard_line(guard: dict) -> str:
    """`guard v4 (against v3) since ...: 1 of 3 intervals checked, last ok (realised); ...`."""
    last = guard["last_check"]
    check = (f", last {last['status']}" + (f" ({last['basis']})" if last["basis"] else "")
             if last else ", no check yet")
    return (f"guard v{guard['version']} (against v{guard['against_version']}) since "
            f"{guard['promoted']}: {guard['intervals_checked']} of {guard['guard_intervals']} "
            f"intervals checked{check}; ends {guard['ends']} (on estimates alone "
            f"{guard['ends_at_latest']})")


def _history(args: argparse.Namespace) -> int:
    from ml.core import registry
    from ml.lifecycle.clock import iso

    if args.limit <= 0:
        raise ValueError(f"--limit must be > 0, got {args.limit}")
    model = None
    if args.model:
        try:
            model = registry.get_model(args.model).serving_name
        except ValueError as exc:
            raise ValueError(f"model: {exc}") from None
    entries = _pipeline(args).store.history(model, limit=args.limit)
    if args.json:
        print(json.dumps([{"id": e.id, "time": iso(e.time), "model": e.model, "action": e.action,
                           "reason": e.reason, "figures": e.figures, "job_id": e.job_id}
                          for e in entries], indent=2, allow_nan=False))
        return 0
    if not entries:
        print("no decisions recorded yet")
    for e in entries:
        job = f" job {e.job_id}" if e.job_id is not None else ""
        print(f"{iso(e.time)} {e.model}{job} {e.action}: {e.reason}")
    return 0


def _trigger(args: argparse.Namespace) -> int:
    job = _pipeline(args).trigger_retraining(args.model, args.reason)
    state = "queued" if len(job.triggers) == 1 else "merged into"
    if job.status not in ("pending", "running"):
        state = f"already {job.status} for this window:"
    print(f"{state} job {job.id} ({job.model}, window to {job.window_end}, {job.status})")
    return 0


def _register(args: argparse.Namespace) -> int:
    from ml.lifecycle.config import RetrainingConfig

    config = RetrainingConfig(model_name=args.model, retrain_schedule=args.schedule,
                              data_window_days=args.data_window_days,
                              min_samples_threshold=args.min_samples,
                              performance_threshold=args.performance_threshold,
                              auto_deploy=args.auto_deploy, rollback_on_failure=not args.no_rollback)
    model = _pipeline(args).register_model_for_retraining(config)
    print(f"registered {model}: {config.to_dict()}")
    return 0
