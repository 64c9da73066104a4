"""`python -m ml.serving`: the local TF-Serving-compatible model server."""
import sys

from ml.serving.cli import main

if __name__ == "__main__":
    sys.exit(main())
