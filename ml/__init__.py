"""The ETRM ML platform's runtime API (the spec's `ml.*` modules) and its libraries."""
from ml.core import process as _process

_process.configure()
