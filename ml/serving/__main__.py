"""`python -m ml.serving`: the local TF-Serving-compatible model server (an entry point, like
`etrm serve`; the flags are ml.cli.serve's)."""
import sys

from ml.cli.serve import main

if __name__ == "__main__":
    sys.exit(main())
