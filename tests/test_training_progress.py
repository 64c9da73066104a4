"""TrainingProgress: throttled progress lines with a time-left estimate, for both trainers."""
import logging

import numpy as np
import pytest
import tensorflow as tf

from ml.core.logs import PROGRESS_LOGGER
from models.common.training_progress import TrainingProgress, format_duration


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _lines(caplog):
    return [r.getMessage().strip() for r in caplog.records if r.name == PROGRESS_LOGGER]


def test_at_most_one_line_per_interval_with_a_sane_estimate(caplog):
    caplog.set_level(logging.INFO, logger=PROGRESS_LOGGER)
    clock = FakeClock()
    progress = TrainingProgress(total_steps=100, interval_seconds=30, clock=clock)
    progress.on_train_begin()
    for batch in range(100):
        clock.now += 1.0  # one second per step
        progress.on_train_batch_end(batch, {"loss": 3.0 - batch / 100})
    progress.on_train_end()
    lines = _lines(caplog)
    assert lines[:3] == [
        "Trainer: step 30/100 (30%), loss 2.71, 30s elapsed, ~1m10s left",
        "Trainer: step 60/100 (60%), loss 2.41, 1m00s elapsed, ~40s left",
        "Trainer: step 90/100 (90%), loss 2.11, 1m30s elapsed, ~10s left",
    ]
    assert lines[3:] == ["Trainer: trained 100 steps in 1m40s, loss 2.01"]


def test_fast_steps_give_no_more_lines_than_intervals(caplog):
    caplog.set_level(logging.INFO, logger=PROGRESS_LOGGER)
    clock = FakeClock()
    progress = TrainingProgress(total_steps=4800, interval_seconds=30, clock=clock)
    progress.on_train_begin()
    for batch in range(4800):
        clock.now += 0.0625  # 480 steps per interval, exactly representable
        progress.on_train_batch_end(batch, {"loss": 1.0})
    lines = _lines(caplog)
    assert len(lines) == 300 // 30
    assert lines[0] == "Trainer: step 480/4800 (10%), loss 1, 30s elapsed, ~4m30s left"


def test_the_slow_first_step_does_not_inflate_the_estimate(caplog):
    caplog.set_level(logging.INFO, logger=PROGRESS_LOGGER)
    clock = FakeClock()
    progress = TrainingProgress(total_steps=100, interval_seconds=30, clock=clock)
    progress.on_train_begin()
    clock.now += 60.0  # tracing the train function
    progress.on_train_batch_end(0, {"loss": 2.0})
    for batch in range(1, 31):
        clock.now += 1.0
        progress.on_train_batch_end(batch, {"loss": 2.0})
    assert _lines(caplog) == ["Trainer: step 1/100 (1%), loss 2, 1m00s elapsed",
                              "Trainer: step 31/100 (31%), loss 2, 1m30s elapsed, ~1m09s left"]


def test_keras_fit_supplies_the_total_steps(caplog):
    caplog.set_level(logging.INFO, logger=PROGRESS_LOGGER)
    clock = FakeClock()

    class Ticking(TrainingProgress):
        def on_train_batch_end(self, batch, logs=None):
            clock.now += 10.0
            super().on_train_batch_end(batch, logs)

    model = tf.keras.Sequential([tf.keras.layers.Dense(1, input_shape=(2,))])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.zeros((8, 2), np.float32), np.zeros((8, 1), np.float32)
    model.fit(x, y, batch_size=2, epochs=3, verbose=0,
              callbacks=[Ticking(interval_seconds=15, clock=clock)])
    lines = _lines(caplog)
    assert lines[0].startswith("Trainer: step 2/12 (16%), loss ")
    assert lines[0].endswith("20s elapsed, ~1m40s left")
    assert len(lines) == 12 // 2 + 1
    assert lines[-1].startswith("Trainer: trained 12 steps in 2m00s")


def test_unknown_total_gives_steps_without_an_estimate(caplog):
    caplog.set_level(logging.INFO, logger=PROGRESS_LOGGER)
    clock = FakeClock()
    progress = TrainingProgress(interval_seconds=1, clock=clock)
    progress.on_train_begin()
    clock.now += 2
    progress.on_train_batch_end(0)
    assert _lines(caplog) == ["Trainer: step 1, 2s elapsed"]


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (59.4, "59s"), (72, "1m12s"),
                                           (3600 + 180, "1h03m")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text
