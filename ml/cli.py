"""The `etrm` command: one entry point for data, pipeline runs and serving.

Imports stay inside the subcommands: TensorFlow takes 20-40 s to import and `--help` needs none.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Beam workers inherit this: Google client libraries warn about Python 3.10 on every import.
os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning,ignore::DeprecationWarning")


def _generate(args: argparse.Namespace) -> int:
    from datetime import datetime

    from ml.synthetic_data_generator import ETRMDataConfig, SyntheticETRMDataGenerator

    try:
        config = ETRMDataConfig(
            num_trades=args.trades, num_positions=args.positions,
            num_risk_reports=args.risk_reports,
            start_date=datetime.strptime(args.start, "%Y-%m-%d"),
            end_date=datetime.strptime(args.end, "%Y-%m-%d"), seed=args.seed)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    generator = SyntheticETRMDataGenerator(config)
    dataset = generator.generate_complete_dataset()
    generator.save(dataset, args.out)
    print(f"Wrote {len(dataset['trades'])} trades, {len(dataset['text_descriptions'])} texts "
          f"to {args.out}")
    return 0


def _run(args: argparse.Namespace) -> int:
    import run_local

    return run_local.run_from_args(args)


def _serve(args: argparse.Namespace) -> int:
    from ml.serving.cli import run_serve

    return run_serve(args)


def _generate_report(args: argparse.Namespace) -> int:
    from ml.report_cli import run_generate_report

    return run_generate_report(args)


def _monitor(args: argparse.Namespace) -> int:
    from ml.monitor_cli import run_monitor

    return run_monitor(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="etrm", description="ETRM ML platform")
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser("generate", help="write a synthetic ETRM dataset to a folder")
    generate.add_argument("--out", required=True, help="output folder")
    generate.add_argument("--trades", type=int, default=1000)
    generate.add_argument("--positions", type=int, default=500)
    generate.add_argument("--risk-reports", type=int, default=100)
    generate.add_argument("--start", default="2023-01-01", help="YYYY-MM-DD")
    generate.add_argument("--end", default="2024-12-31", help="YYYY-MM-DD")
    generate.add_argument("--seed", type=int, default=42)
    generate.set_defaults(handler=_generate)

    import run_local

    run = commands.add_parser("run", help="run the TFX pipeline locally (same flags as run_local.py)")
    run_local.build_parser(run)
    run.set_defaults(handler=_run)

    from ml.serving.cli import add_serve_arguments

    serve = commands.add_parser(
        "serve", help="serve pushed models over TF Serving's REST and gRPC protocols")
    add_serve_arguments(serve)
    serve.set_defaults(handler=_serve)

    from ml.report_cli import add_generate_report_arguments

    report = commands.add_parser(
        "generate-report", help="write an ETRM report with the pushed language model")
    add_generate_report_arguments(report)
    report.set_defaults(handler=_generate_report)

    from ml.monitor_cli import add_monitor_arguments

    monitor = commands.add_parser(
        "monitor", help="check the served model's request logs for drift, skew and performance")
    add_monitor_arguments(monitor)
    monitor.set_defaults(handler=_monitor)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
