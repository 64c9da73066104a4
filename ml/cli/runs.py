"""`etrm runs`: past pipeline runs (ml.lifecycle.run_history), newest first. Bad input is one
line on stderr and exit 2."""
from __future__ import annotations

import argparse
import json
import sys

from ml.cli.home_args import add_home_arguments, home_of


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--limit", type=int, default=20, help="newest N runs (default: 20)")
    parser.add_argument("--json", action="store_true", help="print the runs as JSON")
    add_home_arguments(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    from ml.cli.metadata_reads import read_metadata
    from ml.lifecycle.run_history import pipeline_runs

    if args.limit <= 0:
        print(f"error: --limit must be > 0, got {args.limit}", file=sys.stderr)
        return 2
    home = home_of(args)
    rows, error = read_metadata(
        home, lambda store: pipeline_runs(store, home.runs_dir, limit=args.limit))
    if error is not None:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(rows, indent=2, sort_keys=True))
        return 0
    if not rows:
        print(f"no pipeline runs in {home.metadata.describe()}")
    for row in rows:
        print(run_line(row))
    return 0


def run_line(row) -> str:
    from ml.lifecycle.lineage_render import span_range

    data = []
    if row["ingested_spans"]:
        data.append(f"ingested span {span_range(row['ingested_spans'])}")
    if row["window_spans"]:
        data.append(f"window spans {span_range(row['window_spans'])}")
    for push in row["pushed"]:
        data.append(f"pushed {push['model']} v{push['version']}" if push["version"] is not None
                    else f"not pushed ({push['not_pushed_reason']})")
    error = f"; {row['error']}" if row.get("error") else ""
    # an unfinished run's last update is a lower bound on its duration
    duration = ("≥" if row["status"] == "running" else "") + f"{row['duration_s']:.1f}s"
    return (f"{row['started_at']}  {row['pipeline']}  {row['status']:<9} {duration:>8}  "
            f"{row['components']} components; {'; '.join(data) or 'no data'}{error}")
