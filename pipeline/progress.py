"""Progress lines while a TFX pipeline runs: which component, how many done, elapsed time.

The lines go to the `etrm.progress` logger, which the terminal shows (`ml.core.logs`); TFX's
own absl records go on to the log file.
"""
from __future__ import annotations

import logging
import time

from ml.core.logs import progress_logger


class ComponentProgress(logging.Handler):
    """Listens to the TFX runners' 'Component X is running/finished' log records."""

    def __init__(self, total_components: int, clock=time.monotonic):
        super().__init__(level=logging.INFO)
        self.total = total_components
        self.done = 0
        self.clock = clock
        self.started = clock()
        self.component_started = self.started

    def emit(self, record: logging.LogRecord) -> None:
        if not isinstance(record.msg, str) or not record.args:
            return
        if record.msg.startswith("Component %s is running"):
            self.component_started = self.clock()
            self._say(f"[{self.done + 1}/{self.total}] {record.args[0]} running ...")
        elif record.msg.startswith("Component %s is finished"):
            self.done += 1
            took = self.clock() - self.component_started
            self._say(f"[{self.done}/{self.total}] {record.args[0]} done in {took:.1f}s")

    def _say(self, text: str) -> None:
        progress_logger().info("  %7.1fs  %s", self.clock() - self.started, text)


def attach(total_components: int) -> ComponentProgress:
    """Turns TFX's absl INFO records on (the progress source) and listens to them."""
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.INFO)
    handler = ComponentProgress(total_components)
    logging.getLogger("absl").addHandler(handler)
    return handler


def detach(handler: ComponentProgress) -> None:
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.WARNING)
    logging.getLogger("absl").removeHandler(handler)
