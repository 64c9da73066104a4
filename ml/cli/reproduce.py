"""`etrm reproduce MODEL --version N`: reruns a pushed version from what its lineage recorded
into a fresh home (ml.lifecycle.reproduce) and prints both sides' Examples checksums and metrics.
Exit 0 when reproduced (identical Examples, metrics within --tolerance), 1 when not, 2 on bad
input."""
from __future__ import annotations

import argparse
import datetime as dt
import json

from ml.cli.errors import fail
from ml.cli.home_args import add_home_arguments


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("model", help="served model (etrm_risk_model, risk, report_lm, ...)")
    parser.add_argument("--version", type=int, required=True, help="the pushed version to rerun")
    add_home_arguments(parser)
    parser.add_argument("--into", help="fresh home for the rerun (default: "
                        "<home>/reproductions/<model>-v<N>-<UTC time>)")
    parser.add_argument("--into-metadata", metavar="URL", default="sqlite",
                        help="the rerun's ML Metadata, an empty database (default: SQLite in the "
                             "fresh home, whatever $ETRM_METADATA says)")
    parser.add_argument("--tolerance", type=float, default=1e-6,
                        help="largest absolute metric difference still reproduced (default: 1e-6)")
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    parser.add_argument("--verbose", action="store_true", help="show TFX's INFO logs")
    return parser


def run(args: argparse.Namespace) -> int:
    from ml.core import logs, registry
    from ml.core.home import Home

    try:
        entry = registry.get_model(args.model)
    except ValueError as exc:
        return fail(str(exc))
    if not args.tolerance >= 0.0:
        return fail(f"--tolerance must be >= 0, got {args.tolerance}")
    from ml.cli.home_args import home_of
    from ml.core.metadata_target import MetadataConfigError

    source = home_of(args)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    fresh_root = args.into or source.reproductions_dir / f"{entry.serving_name}-v{args.version}-{stamp}"
    fresh = Home.resolve(fresh_root, args.into_metadata)
    try:
        fresh.metadata
    except MetadataConfigError as exc:
        return fail(f"--into-metadata: {exc}")
    say = logs.progress_logger()
    with logs.terminal(fresh, verbose=args.verbose) as terminal:
        return _reproduce(args, entry, source, fresh, say, terminal)


def _reproduce(args, entry, source, fresh, say, terminal) -> int:
    from ml.core.metadata import STORE_ERRORS
    from ml.lifecycle.reproduce import reproduce

    try:
        result = reproduce(source, entry.key, args.version, fresh, tolerance=args.tolerance,
                           say=say.info)
    except (LookupError, ValueError) as exc:
        return fail(str(exc))
    except STORE_ERRORS as exc:
        return fail(f"cannot read ML Metadata at {source.metadata.describe()}: {exc}")
    except Exception as exc:  # a failed rerun: its reason, the trace in the log file
        terminal.report(exc, "\nReproduction failed")
        return 1
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, sort_keys=True))
    else:
        print("\n".join(comparison_lines(result, fresh)))
    return 0 if result.reproduced else 1


def _figure(value) -> str:
    return "-" if value is None else f"{value:.6f}"


def comparison_lines(result, fresh) -> list:
    """The original and the reproduction side by side, baselines first."""
    lines = []
    for step in [*_chain(result)]:
        described = step.to_dict()
        lines.append(f"{described['model']} v{described['version']} -> reproduced as "
                     f"v{described['reproduced_version']} in {fresh.root}")
        for span, sides in described["examples"].items():
            for split in sorted(set((sides["original"] or {})) | set((sides["reproduced"] or {}))):
                before = (sides["original"] or {}).get(split) or {}
                after = (sides["reproduced"] or {}).get(split) or {}
                same = "identical" if before and before == after else "DIFFERENT"
                lines.append(f"  span {span} {split:<5} {before.get('records', '-'):>7} records "
                             f"sha256 {before.get('sha256', '-')[:16]} | "
                             f"{after.get('records', '-'):>7} records "
                             f"sha256 {after.get('sha256', '-')[:16]}  {same}")
        for part in described["code"]["changed"]:
            lines.append(f"  {part} code changed since the original: "
                         f"{described['code']['original'].get(part)} -> "
                         f"{described['code']['reproduced'].get(part)} (differences may come from it)")
        lines.append(f"  {'metric':<22} {'original':>12} {'reproduced':>12} {'difference':>12}")
        for row in described["metrics"]:
            mark = "" if row["within_tolerance"] else "  outside tolerance"
            lines.append(f"  {row['metric']:<22} {_figure(row['original']):>12} "
                         f"{_figure(row['reproduced']):>12} {_figure(row['difference']):>12}{mark}")
    verdict = ("reproduced" if result.reproduced else "NOT reproduced")
    lines.append(f"{verdict}: Examples {'identical' if result.examples_identical else 'differ'}, "
                 f"metrics within {result.tolerance:g} "
                 f"{'yes' if all(r['within_tolerance'] for r in result.metric_rows()) else 'no'}")
    return lines


def _chain(result):
    steps = []
    current = result
    while current is not None:
        steps.insert(0, current)
        current = current.chain[0] if current.chain else None
    return steps
