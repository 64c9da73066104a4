"""`python -m ml.cli`: the `etrm` command."""
import sys

from ml.cli import main

sys.exit(main())
