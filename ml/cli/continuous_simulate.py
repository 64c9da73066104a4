"""`etrm continuous simulate`: replay N weeks of trading in minutes (ml.lifecycle.simulation).

Wired into `etrm continuous` by ml/cli/continuous.py through add_simulate_command. Errors a
user can act on print one line and exit 2.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys

from ml.synthetic.spans import DRIFT_SPEC_HELP
from ml.cli.home_args import add_home_arguments, home_of


def add_simulate_command(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "simulate", help="replay N weeks of trading against the real server and loop",
        description="Each simulated day sends that day's trades to the served model through "
                    "the real server, the monitor runs daily, outcomes arrive after their "
                    "delay, and the continuous-learning loop reacts; prints a timeline and "
                    "writes an HTML report.")
    parser.add_argument("--weeks", type=int, required=True, help="simulated weeks")
    parser.add_argument("--drift", action="append", default=[], metavar="KIND@DATE:M",
                        help=f"generator drift scenario(s), {DRIFT_SPEC_HELP} (repeatable)")
    add_home_arguments(parser)
    parser.add_argument("--trades-per-day", type=int, default=300,
                        help="trades generated per simulated day (default: 300)")
    parser.add_argument("--span-days", type=int, default=1,
                        help="days per ingested span (default: 1, so a drift trigger can "
                             "retrain on the drifted days at once)")
    parser.add_argument("--seed", type=int, default=42, help="generator seed (default: 42)")
    parser.add_argument("--start", help="first simulated day YYYY-MM-DD (default: history "
                                        "start + the data window)")
    parser.add_argument("--schedule", default="0 2 * * 0",
                        help="retrain cron (default: '0 2 * * 0', Sundays 02:00)")
    parser.add_argument("--outcome-delay-days", type=int, default=7,
                        help="days until a trade's outcome is known (default: 7)")
    parser.add_argument("--train-steps", type=int, help="training steps per job")
    parser.add_argument("--report", help="HTML report path (default: "
                                         "<home>/monitoring/reports/simulation-<time>.html)")
    parser.add_argument("--auto-deploy", action=argparse.BooleanOptionalAction, default=True,
                        help="let canary analysis promote or withdraw (default: on)")
    parser.set_defaults(handler=run, continuous_handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        simulation, report = build(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        simulation.run(report_path=report)
    except (RuntimeError, LookupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def build(args: argparse.Namespace):
    """The Simulation and report path the flags describe; ValueError naming the bad flag."""
    from ml.core import registry
    from ml.lifecycle.config import RetrainingConfig
    from ml.lifecycle.settings import ContinuousSettings
    from ml.lifecycle.simulation import Simulation
    from ml.synthetic.spans import parse_drift_scenarios

    for flag, value in (("--weeks", args.weeks), ("--trades-per-day", args.trades_per_day),
                        ("--span-days", args.span_days)):
        if value <= 0:
            raise ValueError(f"{flag} must be > 0, got {value}")
    if args.outcome_delay_days < 0:
        raise ValueError(f"--outcome-delay-days must be >= 0, got {args.outcome_delay_days}")
    drift = ",".join(item.strip() for item in args.drift if item.strip())
    try:
        parse_drift_scenarios(drift)
    except ValueError as exc:
        raise ValueError(f"--drift: {exc}") from None
    start = None
    if args.start:
        try:
            start = dt.date.fromisoformat(args.start)
        except ValueError:
            raise ValueError(f"--start must be a date YYYY-MM-DD, got {args.start!r}") from None
    try:
        settings = ContinuousSettings(records_per_span=args.trades_per_day * args.span_days,
                                      span_days=args.span_days, seed=args.seed,
                                      drift_scenarios=drift, train_steps=args.train_steps)
    except ValueError as exc:
        raise ValueError(f"settings: {exc}") from None
    config = RetrainingConfig(model_name=registry.RISK_MODEL.serving_name,
                              retrain_schedule=args.schedule, auto_deploy=args.auto_deploy)
    home = home_of(args)
    simulation = Simulation(home, args.weeks, settings, configs=[config],
                            outcome_delay_days=args.outcome_delay_days, start=start)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    report = args.report or home.monitoring_reports_dir / f"simulation-{stamp}.html"
    return simulation, report
