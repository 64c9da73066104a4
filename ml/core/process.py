"""The process settings every entry point and Beam worker needs before TensorFlow is imported.

TFX 1.16 does not support Keras 3, so TF_USE_LEGACY_KERAS=1 must be set before the first
TensorFlow import. `ml/__init__.py` calls `configure()`, and the `components`, `models`,
`pipeline` and `benchmarks` packages import `ml` first, so any process that touches the
platform's code (the CLI, a test, a Beam worker unpickling a transform) passes through here.
"""
from __future__ import annotations

import os


def configure() -> None:
    """Legacy Keras and quiet TensorFlow C++ logs, unless the caller chose otherwise."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Beam workers inherit this: Google client libraries warn about Python 3.10 on every import.
    # (In the command's own process it is too late to matter; there `ml.core.logs` sends
    # warnings to the log file. A PYTHONWARNINGS set by the caller wins over this default.)
    os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning,ignore::DeprecationWarning")
