"""Training progress on the terminal: a Trainer otherwise runs for minutes without a line.

One Keras callback for both trainers: the risk model passes it to `fit`, the language model's
own loop calls its hooks. It logs to the `etrm.progress` logger, which the command's terminal
shows (`ml.core.logs`); under LocalDagRunner the Trainer runs in the command's process, so
that handler sees it. Beam multi-processing (--beam-workers N) moves only Beam stages (the
data components, Transform, the Evaluator) into worker processes; they have no terminal
handler, and their stderr, inherited from the command, is the log file.
"""
from __future__ import annotations

import logging
import time
from typing import Callable, Optional

import tensorflow as tf

from ml.core.logs import PROGRESS_LOGGER

DEFAULT_INTERVAL_SECONDS = 30.0


def format_duration(seconds: float) -> str:
    """'45s', '1m12s', '2h03m': short enough for a progress line."""
    seconds = int(round(max(seconds, 0.0)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class TrainingProgress(tf.keras.callbacks.Callback):
    """'Trainer: step 800/1600 (50%), loss 2.31, 1m12s elapsed, ~1m10s left', at most one
    line per `interval_seconds`, and one when training ends.

    `total_steps` defaults to Keras' epochs x steps per epoch (`self.params` in `fit`); when
    neither is known the line has no percentage or estimate. The estimate assumes the
    remaining steps take as long as the ones since the first (which includes tracing the
    train function, up to a minute on busy cores); early stopping may end sooner.
    """

    def __init__(self, total_steps: Optional[int] = None,
                 interval_seconds: float = DEFAULT_INTERVAL_SECONDS, label: str = "Trainer",
                 clock: Callable[[], float] = time.monotonic,
                 logger: Optional[logging.Logger] = None):
        super().__init__()
        self.total_steps = total_steps
        self.interval_seconds = interval_seconds
        self.label = label
        self.clock = clock
        self.logger = logger or logging.getLogger(PROGRESS_LOGGER)
        self.step = 0
        self.loss: Optional[float] = None
        self._started = self._last_line = self._first_step_done = 0.0

    def on_train_begin(self, logs=None):
        if self.total_steps is None:
            params = getattr(self, "params", None) or {}
            if params.get("epochs") and params.get("steps"):
                self.total_steps = int(params["epochs"]) * int(params["steps"])
        self.step, self.loss = 0, None
        self._started = self._last_line = self.clock()

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if logs and logs.get("loss") is not None:
            self.loss = float(logs["loss"])
        now = self.clock()
        if self.step == 1:
            self._first_step_done = now
        if now - self._last_line >= self.interval_seconds:
            self._last_line = now
            self.logger.info("  %s", self.line(now))

    def on_train_end(self, logs=None):
        elapsed = format_duration(self.clock() - self._started)
        loss = f", loss {self.loss:.3g}" if self.loss is not None else ""
        self.logger.info("  %s: trained %d steps in %s%s", self.label, self.step, elapsed, loss)

    def line(self, now: float) -> str:
        """The progress line at `now` (the callback's clock)."""
        elapsed = now - self._started
        parts = [f"{self.label}: step {self.step}"]
        if self.total_steps:
            parts[0] += f"/{self.total_steps} ({100 * self.step // self.total_steps}%)"
        if self.loss is not None:
            parts.append(f"loss {self.loss:.3g}")
        parts.append(f"{format_duration(elapsed)} elapsed")
        if self.total_steps and self.step > 1:
            per_step = (now - self._first_step_done) / (self.step - 1)
            left = per_step * max(self.total_steps - self.step, 0)
            parts.append(f"~{format_duration(left)} left")
        return ", ".join(parts)
