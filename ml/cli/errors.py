"""The one answer to bad input in the read-and-report subcommands: one line on stderr, exit 2."""
import sys


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2
