"""`etrm monitor`: check the served model's logged requests against its training reference.

The check itself is ml.monitoring.served_check.check_served_model (the continuous-learning
simulation runs the same one daily); this module parses the flags and prints its summary.
"""
from __future__ import annotations

import argparse
import sys

from ml.core import registry
from ml.cli.home_args import add_home_arguments, home_of


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--model", default=registry.RISK_MODEL.serving_name,
                        help=f"served model (default: {registry.RISK_MODEL.serving_name})")
    add_home_arguments(parser)
    parser.add_argument("--reference-rows", type=int, default=5000,
                        help="training rows sampled as the reference (default: 5000)")
    parser.add_argument("--report", default=None,
                        help="HTML report path (default: <home>/monitoring/reports/<model>-<time>.html)")
    return parser


def run(args: argparse.Namespace) -> int:
    """Checks the new logs, prints a short summary; 0 when checked or nothing new, 2 on errors."""
    from ml.monitoring.served_check import check_served_model

    if args.reference_rows <= 0:
        print(f"error: --reference-rows must be > 0, got {args.reference_rows}", file=sys.stderr)
        return 2
    try:
        model_name = registry.get_model(args.model).serving_name
    except ValueError as exc:
        print(f"error: --model: {exc}", file=sys.stderr)
        return 2
    if model_name != registry.RISK_MODEL.serving_name:
        print(f"error: --model: monitoring checks tabular trade features; {model_name} has none",
              file=sys.stderr)
        return 2
    try:
        check = check_served_model(home_of(args), model_name, args.reference_rows,
                                   report_path=args.report)
    except LookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in check.summary_lines():
        print(line)
    return 0
