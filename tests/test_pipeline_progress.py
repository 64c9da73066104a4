"""pipeline.progress: TFX's 'Component X is running/finished' records become progress lines."""
import logging

from ml.core.logs import PROGRESS_LOGGER
from pipeline import progress


def _record(msg, *args):
    return logging.LogRecord("absl", logging.INFO, __file__, 1, msg, args, None)


def _lines(caplog):
    return [r.getMessage() for r in caplog.records if r.name == PROGRESS_LOGGER]


def test_component_records_become_progress_lines(caplog):
    caplog.set_level(logging.INFO, logger=PROGRESS_LOGGER)
    now = [0.0]
    handler = progress.ComponentProgress(2, clock=lambda: now[0], announce_after_seconds=None)
    handler.handle(_record("Component %s is running.", "Trainer"))
    now[0] = 12.5
    handler.handle(_record("Component %s is finished.", "Trainer"))
    handler.handle(_record("Tables initialized inside a tf.function %s", "noise"))
    assert _lines(caplog) == ["      0.0s  [1/2] Trainer running ...",
                              "     12.5s  [1/2] Trainer done in 12.5s"]


def test_a_component_finishing_before_the_announcement_gets_one_line(caplog):
    caplog.set_level(logging.INFO, logger=PROGRESS_LOGGER)
    now = [0.0]
    handler = progress.ComponentProgress(3, clock=lambda: now[0], announce_after_seconds=3600)
    handler.handle(_record("Component %s is running.", "StatisticsGen"))
    now[0] = 2.25
    handler.handle(_record("Component %s is finished.", "StatisticsGen"))
    assert _lines(caplog) == ["      2.2s  [1/3] StatisticsGen done in 2.2s"]
    assert handler._announcement is None


def test_quick_components_are_silent_except_the_last(caplog):
    caplog.set_level(logging.INFO, logger=PROGRESS_LOGGER)
    now = [0.0]
    handler = progress.ComponentProgress(3, clock=lambda: now[0], announce_after_seconds=3600)
    for name, took in (("ImportSchemaGen", 0.1), ("Trainer", 5.0), ("ServingPusher", 0.1)):
        handler.handle(_record("Component %s is running.", name))
        now[0] += took
        handler.handle(_record("Component %s is finished.", name))
    assert _lines(caplog) == ["      5.1s  [2/3] Trainer done in 5.0s",
                              "      5.2s  [3/3] ServingPusher done in 0.1s"]
