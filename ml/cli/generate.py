"""`etrm generate`: writes a synthetic ETRM dataset (the spec's six files) to a folder."""
from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--trades", type=int, default=1000)
    parser.add_argument("--positions", type=int, default=500)
    parser.add_argument("--risk-reports", type=int, default=100)
    parser.add_argument("--start", default="2023-01-01", help="YYYY-MM-DD")
    parser.add_argument("--end", default="2024-12-31", help="YYYY-MM-DD")
    parser.add_argument("--seed", type=int, default=42)
    return parser


def run(args: argparse.Namespace) -> int:
    from datetime import datetime

    from ml.synthetic.generator import ETRMDataConfig, SyntheticETRMDataGenerator

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
