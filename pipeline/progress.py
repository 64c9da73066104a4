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
    absl_logging.get_absl_handler().setLevel(logging.INFO if verbose else logging.WARNING)
    handler = ComponentProgress(total_components)
    logging.getLogger("absl").addHandler(handler)
    return handler


def detach(handler: ComponentProgress) -> None:
    logging.getLogger("absl").removeHandler(handler)
