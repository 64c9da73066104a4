"""Progress lines while a TFX pipeline runs: which component, how many done, elapsed time."""
from __future__ import annotations

import logging
import sys
import time


class ComponentProgress(logging.Handler):
    """Listens to the TFX runners' 'Component X is running/finished' log records."""

    def __init__(self, total_components: int, stream=sys.stderr):
        super().__init__(level=logging.INFO)
        self.total = total_components
        self.done = 0
        self.stream = stream
        self.started = time.monotonic()
        self.component_started = self.started
        self.warnings = None

    def emit(self, record: logging.LogRecord) -> None:
        if not isinstance(record.msg, str) or not record.args:
            return
        if record.msg.startswith("Component %s is running"):
            self.component_started = time.monotonic()
            self._print(f"[{self.done + 1}/{self.total}] {record.args[0]} running ...")
        elif record.msg.startswith("Component %s is finished"):
            self.done += 1
            took = time.monotonic() - self.component_started
            self._print(f"[{self.done}/{self.total}] {record.args[0]} done in {took:.1f}s")

    def _print(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        self.stream.write(f"  {elapsed:7.1f}s  {text}\n")
        self.stream.flush()


def attach(total_components: int, verbose: bool = False) -> ComponentProgress:
    """Shows progress lines; TFX's own INFO logs only with verbose (warnings always)."""
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.INFO)
    absl_logger = logging.getLogger("absl")
    handler = ComponentProgress(total_components)
    absl_logger.addHandler(handler)
    if not verbose:
        # TFX logs through absl at INFO; without this every Beam stage would print.
        handler.warnings = logging.StreamHandler(sys.stderr)
        handler.warnings.setLevel(logging.WARNING)
        handler.warnings.addFilter(_drop_known_noise)
        absl_logger.addHandler(handler.warnings)
        absl_logger.propagate = False
    return handler


# TFX 1.16 warns on every input resolution that it ignores a predicate it never receives here.
KNOWN_NOISE = ("property_predicate is not supported",)


def _drop_known_noise(record: logging.LogRecord) -> bool:
    return not any(text in str(record.msg) for text in KNOWN_NOISE)


def detach(handler: ComponentProgress) -> None:
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.WARNING)
    absl_logger = logging.getLogger("absl")
    absl_logger.removeHandler(handler)
    if getattr(handler, "warnings", None) is not None:
        absl_logger.removeHandler(handler.warnings)
        absl_logger.propagate = True
