"""--home and --metadata, declared once for every subcommand that keeps state in a home, and
the Home they name (a bad --metadata, $ETRM_METADATA or ml_metadata.json is one line, exit 2)."""
from __future__ import annotations

import argparse
import sys

from ml.core.home import Home
from ml.core.metadata_target import MetadataConfigError

HOME_HELP = "project home (default: $ETRM_HOME or .etrm)"
METADATA_HELP = ("ML Metadata database: mysql://USER@HOST:PORT/DB, mysql://USER@/DB?socket=PATH, "
                 "sqlite:///PATH or sqlite (default: $ETRM_METADATA, else <home>/ml_metadata.json, "
                 "else <home>/metadata.sqlite); the password comes from $ETRM_METADATA_PASSWORD "
                 "or the file $ETRM_METADATA_PASSWORD_FILE, never from the URL")


def add_home_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--home", help=HOME_HELP)
    parser.add_argument("--metadata", metavar="URL", help=METADATA_HELP)
    return parser


def home_of(args: argparse.Namespace) -> Home:
    """The home of the parsed arguments, its metadata target checked now (not mid-run)."""
    home = Home.resolve(args.home, getattr(args, "metadata", None))
    try:
        home.metadata
    except MetadataConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return home
