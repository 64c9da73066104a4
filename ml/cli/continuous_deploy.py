"""`etrm continuous promote` and `etrm continuous rollback`: deployment decisions by hand.

`ml/cli/continuous.py` wires them with `add_deploy_commands(subparsers)`. Both act on the
home's models.config with the same compare-and-swap as the loop (a loop moving the label at
the same moment makes one of them fail with a clear message), record the action in the audit
log (`etrm continuous history MODEL`) as manual with the user@host who ran it, notify through
the home's lifecycle notifier like the loop's decisions, and exit 2 with one line on stderr
when refused.
"""
from __future__ import annotations

import argparse
import json
import sys

from ml.cli.home_args import add_home_arguments, home_of


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
    add_home_arguments(promote)
    promote.set_defaults(handler=run_promote)

    rollback = subparsers.add_parser("rollback",
                                     help="move `stable` back to the last known-good version")
    rollback.add_argument("model", help="registered model (risk_model, etrm_risk_model, ...)")
    rollback.add_argument("--to", type=int, default=None, dest="to",
                          help="version to roll back to (default: the last known-good one)")
    rollback.add_argument("--reason", default="", help="why, for the audit log")
    add_home_arguments(rollback)
    rollback.set_defaults(handler=run_rollback)


def decide_by_hand(home, action: str, model: str, reason: str = "", by=None, **options):
    """A promotion or rollback by a person, with the home's lifecycle notifier (the one the
    loop uses), so the decision is audited, stored as a lifecycle alert and sent to its
    channels: the one code path of `etrm continuous promote|rollback` and the dashboard.
    Returns (serving name, result, channels); ValueError or PromotionConflict when refused."""
    from ml.core import registry
    from ml.lifecycle.deployment import promote_by_hand, rollback_by_hand
    from ml.lifecycle.notify import LifecycleNotifier
    from ml.lifecycle.store import LifecycleStore

    decide = {"promote": promote_by_hand, "rollback": rollback_by_hand}[action]
    model_name = registry.get_model(model).serving_name
    if not home.models_config_path.exists():
        raise ValueError(f"{home.models_config_path} does not exist: nothing is deployed in "
                         f"home {home.root}")
    store = LifecycleStore(home.lifecycle_db)
    notifier = LifecycleNotifier(home)
    try:
        result = decide(home, model_name, reason=reason, by=by, store=store, notifier=notifier,
                        **options)
    finally:
        notifier.close()
    return model_name, result, notifier.channels


def _refused(error: Exception) -> int:
    print(f"error: {error}", file=sys.stderr)
    return 2


def _by_hand(action: str, args: argparse.Namespace, **options) -> int:
    from ml.lifecycle.deployment import PromotionConflict

    try:
        model_name, result, channels = decide_by_hand(home_of(args), action, args.model,
                                                      reason=args.reason, **options)
    except (ValueError, PromotionConflict) as error:
        return _refused(error)
    if result["notification_error"]:
        print(f"warning: {model_name}: notification not sent: {result['notification_error']}",
              file=sys.stderr)
    return _report(model_name, result, channels)


def _report(model_name: str, result: dict, channels) -> int:
    if "from_version" in result:
        print(f"{model_name}: stable -> version {result['version']} (rolled back from "
              f"{result['from_version']})")
    else:
        print(f"{model_name}: stable -> version {result['version']} (was "
              f"{result['previous_stable']}){' [forced]' if result['forced'] else ''}")
    print(f"  labels: {json.dumps(result['labels'], sort_keys=True)}")
    print(f"  by {result['by']}" + ("" if result["notification_error"] else
                                     f"; notified: {', '.join(channels)}"))
    return 0


def run_promote(args: argparse.Namespace) -> int:
    if args.version is not None and args.version <= 0:
        return _refused(ValueError(f"--version must be a positive version number, got "
                                   f"{args.version}"))
    return _by_hand("promote", args, version=args.version, force=args.force)


def run_rollback(args: argparse.Namespace) -> int:
    if args.to is not None and args.to <= 0:
        return _refused(ValueError(f"--to must be a positive version number, got {args.to}"))
    return _by_hand("rollback", args, to=args.to)
