"""`etrm lineage`: where a served version came from (ml.core.lineage), as a tree, JSON, DOT
or an HTML page; with --span, which Models were trained on a span. Bad input is one line on
stderr and exit 2."""
from __future__ import annotations

import argparse
import json
import sys

from ml.cli.errors import fail
from ml.cli.home_args import add_home_arguments, home_of


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("model", nargs="?",
                        help="served model (etrm_risk_model, risk, ...); optional with --span")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--version", type=int, help="serving version (default: the one labelled stable)")
    which.add_argument("--label", help="a label in models.config, e.g. stable or canary")
    which.add_argument("--span", type=int,
                       help="forward: every Model trained on this span and the version it became")
    parser.add_argument("--pipeline", help="with --span: only this pipeline's Examples "
                        "(default: the model's pipeline, or every pipeline without a model)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the lineage as JSON")
    output.add_argument("--dot", action="store_true", help="print the graph as Graphviz DOT")
    output.add_argument("--html", metavar="FILE", help="write a self-contained HTML page")
    add_home_arguments(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    from ml.core import lineage, registry
    from ml.cli.metadata_reads import read_metadata

    try:
        model = registry.get_model(args.model) if args.model else None
    except ValueError as exc:
        return fail(str(exc))
    if model is None and args.span is None:
        return fail("name a model (e.g. etrm lineage etrm_risk_model) or a span (--span N)")
    if args.pipeline and args.span is None:
        return fail("--pipeline goes with --span (a version's lineage is its model's pipeline)")
    if args.span is not None and (args.dot or args.html):
        return fail("--span lists Models; --dot and --html draw one version's lineage")
    home = home_of(args)
    if args.span is not None:
        pipeline = args.pipeline or (model.pipeline_name if model else None)
        rows, error = read_metadata(
            home, lambda store: lineage.models_trained_on_span(store, args.span, pipeline))
        return fail(error) if error is not None else _print_forward(args, rows)

    def read(store):
        version, labels = _chosen_version(home, model.serving_name, args)
        return version, labels, lineage.describe_push(store, model.serving_name, version)

    found, error = read_metadata(home, read)
    if error is not None:
        return fail(error)
    version, labels, described = found
    described["labels"] = sorted(label for label, target in labels.items() if target == version)
    return _print_lineage(args, described)


def _chosen_version(home, model_name: str, args: argparse.Namespace):
    """The version asked for and the model's labels; a LookupError naming a missing label."""
    from ml.serving.model_config import STABLE_LABEL, version_labels

    labels = version_labels(home.models_config_path, model_name)
    if args.version is not None:
        return args.version, labels
    label = args.label or STABLE_LABEL
    if label not in labels:
        known = ", ".join(f"{name}={target}" for name, target in sorted(labels.items())) or "none"
        raise LookupError(f"{model_name} has no label {label!r} in {home.models_config_path} "
                          f"(labels: {known}); pass --version N")
    return labels[label], labels


def _print_forward(args: argparse.Namespace, rows) -> int:
    from ml.lifecycle.lineage_render import forward_lines

    if args.json:
        print(json.dumps({"span": args.span, "models": rows}, indent=2, sort_keys=True))
    else:
        print("\n".join(forward_lines(args.span, rows)))
    return 0


def _print_lineage(args: argparse.Namespace, described) -> int:
    from ml.core.atomic_files import atomic_write_text
    from ml.lifecycle.lineage_render import dot_text, html_page, tree_lines

    if args.json:
        print(json.dumps(described, indent=2, sort_keys=True))
    elif args.dot:
        sys.stdout.write(dot_text(described))
    elif args.html:
        try:
            atomic_write_text(args.html, html_page(described))
        except OSError as exc:
            return fail(f"--html {args.html}: {exc.strerror or exc}")
        print(f"wrote {args.html}")
    else:
        print("\n".join(tree_lines(described)))
    return 0
