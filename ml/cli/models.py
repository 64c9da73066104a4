"""`etrm models [MODEL]`: the registry view (ml.lifecycle.registry_view), one line per pushed
version. Bad input is one line on stderr and exit 2."""
from __future__ import annotations

import argparse
import json
import sys

from ml.cli.home_args import add_home_arguments, home_of


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("model", nargs="?", help="one model (default: every registered model)")
    parser.add_argument("--json", action="store_true", help="print the versions as JSON")
    add_home_arguments(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    from ml.core import registry
    from ml.cli.metadata_reads import read_metadata
    from ml.lifecycle.registry_view import version_rows
    from ml.serving.model_config import version_labels

    try:
        models = [registry.get_model(args.model)] if args.model else list(registry.MODELS)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    home = home_of(args)
    def read(store):
        views = []
        for model in models:
            labels = version_labels(home.models_config_path, model.serving_name)
            views.append((model, labels, version_rows(store, model, labels)))
        return views

    views, error = read_metadata(home, read)
    if error is not None:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({model.serving_name: {"labels": labels, "versions": rows}
                          for model, labels, rows in views}, indent=2, sort_keys=True))
        return 0
    for model, labels, rows in views:
        print("\n".join(model_lines(model.serving_name, labels, rows)))
    return 0


def model_lines(name: str, labels, rows):
    from ml.lifecycle.lineage_render import span_range

    if not rows:
        return [f"{name}: no pushed version"]
    lines = [f"{name}: {len(rows)} pushed version(s)"]
    for row in rows:
        tags = f" [{', '.join(row['labels'])}]" if row["labels"] else ""
        figures = ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                            for k, v in row["metrics"].items()) or "no metrics"
        baseline = (f"against v{row['baseline_version']}" if row["baseline_version"] is not None
                    else "without a baseline")
        blessed = {True: "blessed", False: "not blessed", None: "no verdict"}[row["blessed"]]
        lines.append(f"  v{row['version']}{tags} pushed {row['pushed_at']}: {figures}; {blessed} "
                     f"{baseline}; spans {span_range(row['spans'])}")
    orphans = {label: v for label, v in labels.items() if v not in {r["version"] for r in rows}}
    for label, version in sorted(orphans.items()):
        lines.append(f"  label {label} -> v{version}, which ML Metadata has no push of")
    return lines
