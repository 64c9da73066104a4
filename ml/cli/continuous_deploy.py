"""`etrm continuous promote` and `etrm continuous rollback`: deployment decisions by hand.

`ml/cli/continuous.py` wires them with `add_deploy_commands(subparsers)`. Both act on the
home's models.config with the same compare-and-swap as the loop (a loop moving the label at
the same moment makes one of them fail with a clear message), record the action in the audit
log (`etrm continuous history MODEL`), and exit 2 with one line on stderr when refused.
"""
from __future__ import annotations

import argparse
import json
import sys


def add_deploy_commands(subparsers) -> None:
    """Adds `promote` and `rollback` to the `etrm continuous` subcommands."""
    promote = subparsers.add_parser("promote", help="move `stable` to the canary (or --version)")
    promote.add_argument("model", help="registered model (risk_model, etrm_risk_model, ...)")
    promote.add_argument("--version", type=int, default=None,
                         help="version to promote (default: the one labelled canary)")
    promote.add_argument("--force", action="store_true",
                         help="promote even if its canary analysis failed or it was withdrawn "
                              "or rolled back")
    promote.add_argument("--reason", default="", help="why, for the audit log")
    promote.add_argument("--home", help="project home (default: $ETRM_HOME or .etrm)")
    promote.set_defaults(handler=run_promote)

    rollback = subparsers.add_parser("rollback",
                                     help="move `stable` back to the last known-good version")
    rollback.add_argument("model", help="registered model (risk_model, etrm_risk_model, ...)")
    rollback.add_argument("--to", type=int, default=None, dest="to",
                          help="version to roll back to (default: the last known-good one)")
    rollback.add_argument("--reason", default="", help="why, for the audit log")
    rollback.add_argument("--home", help="project home (default: $ETRM_HOME or .etrm)")
    rollback.set_defaults(handler=run_rollback)


def _context(args: argparse.Namespace):
    from ml.core import registry
    from ml.core.home import Home
    from ml.lifecycle.store import LifecycleStore

    model_name = registry.get_model(args.model).serving_name
    home = Home.resolve(args.home)
    if not home.models_config_path.exists():
        raise ValueError(f"{home.models_config_path} does not exist: nothing is deployed in "
                         f"home {home.root}")
    return model_name, home, LifecycleStore(home.lifecycle_db)


def _refused(error: Exception) -> int:
    print(f"error: {error}", file=sys.stderr)
    return 2


def run_promote(args: argparse.Namespace) -> int:
    from ml.lifecycle.deployment import PromotionConflict, promote

    if args.version is not None and args.version <= 0:
        return _refused(ValueError(f"--version must be a positive version number, got "
                                   f"{args.version}"))
    try:
        model_name, home, store = _context(args)
        reason = args.reason or ("forced promotion by hand" if args.force else "promotion by hand")
        result = promote(home, model_name, version=args.version, reason=reason, store=store,
                         force=args.force)
    except (ValueError, PromotionConflict) as error:
        return _refused(error)
    print(f"{model_name}: stable -> version {result['version']} (was "
          f"{result['previous_stable']}){' [forced]' if result['forced'] else ''}")
    print(f"  labels: {json.dumps(result['labels'], sort_keys=True)}")
    return 0


def run_rollback(args: argparse.Namespace) -> int:
    from ml.lifecycle.deployment import PromotionConflict, rollback

    if args.to is not None and args.to <= 0:
        return _refused(ValueError(f"--to must be a positive version number, got {args.to}"))
    try:
        model_name, home, store = _context(args)
        result = rollback(home, model_name, to=args.to, reason=args.reason or "rollback by hand",
                          store=store)
    except (ValueError, PromotionConflict) as error:
        return _refused(error)
    print(f"{model_name}: stable -> version {result['version']} (rolled back from "
          f"{result['from_version']})")
    print(f"  labels: {json.dumps(result['labels'], sort_keys=True)}")
    return 0
