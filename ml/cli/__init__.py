"""The `etrm` command: one module per subcommand, each with add_arguments() and run(args).

Imports stay inside the subcommands' run(): TensorFlow takes 20-40 s to import and `--help`
needs none.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

# subcommand -> (module under ml.cli, help)
SUBCOMMANDS = {
    "generate": ("generate", "write a synthetic ETRM dataset to a folder"),
    "run": ("run", "run the TFX pipeline locally (same flags as run_local.py)"),
    "serve": ("serve", "serve pushed models over TF Serving's REST and gRPC protocols"),
    "generate-report": ("generate_report", "write an ETRM report with the pushed language model"),
    "monitor": ("monitor", "check the served model's request logs for drift, skew and performance"),
    "continuous": ("continuous", "continuous learning: run the loop, status, history, triggers"),
    "lineage": ("lineage", "where a served version came from, or what was trained on a span"),
    "models": ("models", "every pushed version with its labels, metrics, baseline and spans"),
    "runs": ("runs", "past pipeline runs: status, duration, spans, what they pushed"),
    "dashboard": ("dashboard", "the web dashboard: models, versions, drift, jobs, alerts, "
                               "serving health"),
    "reproduce": ("reproduce", "rerun a pushed version from its lineage into a fresh home and "
                               "compare"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="etrm", description="ETRM ML platform")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        module = importlib.import_module(f"ml.cli.{module_name}")
        sub = commands.add_parser(name, help=help_text)
        module.add_arguments(sub)
        sub.set_defaults(handler=module.run)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
