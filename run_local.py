"""Runs the ETRM pipelines locally: `python run_local.py --help` (the same as `etrm run`)."""
import sys

from ml.cli.run import main

if __name__ == "__main__":
    sys.exit(main())
