"""Progress lines while a TFX pipeline runs: which component, how many done, elapsed time.

The lines go to the `etrm.progress` logger, which the terminal shows (`ml.core.logs`); TFX's
own absl records go on to the log file.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Optional

from ml.core.logs import progress_logger

ANNOUNCE_AFTER_SECONDS = 10.0
# Resolvers, gates and the Pusher finish in a fraction of a second: their lines would be half
# the terminal and tell nothing the next line's [k/N] count does not.
QUIET_BELOW_SECONDS = 1.0


class ComponentProgress(logging.Handler):
    """Listens to the TFX runners' 'Component X is running/finished' log records.

    One line per component when it finishes, except components quicker than
    `quiet_below_seconds` (the last one is always shown); a component still running after
    `announce_after_seconds` (None: at once) also gets a 'running ...' line, so the terminal
    says what a slow step is without two lines for each resolver and gate.
    """

    def __init__(self, total_components: int, clock=time.monotonic,
                 announce_after_seconds: Optional[float] = ANNOUNCE_AFTER_SECONDS,
                 quiet_below_seconds: float = QUIET_BELOW_SECONDS):
        super().__init__(level=logging.INFO)
        self.total = total_components
        self.done = 0
        self.clock = clock
        self.announce_after_seconds = announce_after_seconds
        self.quiet_below_seconds = quiet_below_seconds
        self.started = clock()
        self.component_started = self.started
        self._announcement: Optional[threading.Timer] = None

    def emit(self, record: logging.LogRecord) -> None:
        if not isinstance(record.msg, str) or not record.args:
            return
        if record.msg.startswith("Component %s is running"):
            self.component_started = self.clock()
            self._announce_later(f"[{self.done + 1}/{self.total}] {record.args[0]} running ...")
        elif record.msg.startswith("Component %s is finished"):
            self.cancel()
            self.done += 1
            took = self.clock() - self.component_started
            if took < self.quiet_below_seconds and self.done < self.total:
                return
            self._say(f"[{self.done}/{self.total}] {record.args[0]} done in {took:.1f}s")

    def _announce_later(self, text: str) -> None:
        self.cancel()
        if self.announce_after_seconds is None:
            self._say(text)
            return
        self._announcement = threading.Timer(self.announce_after_seconds, self._say, (text,))
        self._announcement.daemon = True
        self._announcement.start()

    def cancel(self) -> None:
        """Drops a pending 'running ...' line (the component finished first)."""
        if self._announcement is not None:
            self._announcement.cancel()
            self._announcement = None

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

    handler.cancel()
    absl_logging.set_verbosity(absl_logging.WARNING)
    logging.getLogger("absl").removeHandler(handler)
