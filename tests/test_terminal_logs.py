"""ml.core.logs: library warnings and logs go to the log file, progress and errors to stderr."""
import logging
import os
import warnings

import pytest
from absl import logging as absl_logging

from ml.core import logs
from ml.core.home import Home


def _emit_library_noise(tag: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn(f"future-{tag}", FutureWarning)
    absl_logging.warning("absl-%s", tag)
    os.write(2, f"cpp-{tag}\n".encode())  # what TensorFlow's C++ logging does


def test_library_warnings_go_to_the_log_file_not_the_terminal(tmp_path, capfd):
    home = Home(tmp_path)
    with logs.terminal(home) as terminal:
        _emit_library_noise("quiet")
        logs.progress_logger().info("progress-line")
    printed = capfd.readouterr().err
    written = terminal.log_path.read_text()
    assert terminal.log_path.parent == home.log_dir
    for noise in ("future-quiet", "absl-quiet", "cpp-quiet"):
        assert noise in written
        assert noise not in printed
    assert printed.splitlines() == ["progress-line"]
    # through logging (level and logger named), not only as raw bytes on the redirected fd 2
    assert "WARNING py.warnings:" in written and "FutureWarning: future-quiet" in written
    assert "WARNING absl: absl-quiet" in written


def test_verbose_shows_library_warnings_on_the_terminal_too(tmp_path, capfd):
    with logs.terminal(Home(tmp_path), verbose=True) as terminal:
        _emit_library_noise("loud")
    printed = capfd.readouterr().err
    written = terminal.log_path.read_text()
    for noise in ("future-loud", "absl-loud", "cpp-loud"):
        assert noise in printed
    assert "future-loud" in written and "absl-loud" in written


def test_an_error_reaches_the_terminal_and_its_traceback_the_log_file(tmp_path, capfd):
    with pytest.raises(RuntimeError):
        with logs.terminal(Home(tmp_path)) as terminal:
            logging.getLogger("tfx.orchestration").error("component-error-record")
            raise RuntimeError("Trainer failed: loss is NaN")
    printed = capfd.readouterr().err
    assert "component-error-record" in printed
    assert "Trainer failed: loss is NaN" in printed
    assert str(terminal.log_path) in printed
    assert "Traceback" not in printed
    written = terminal.log_path.read_text()
    assert "Traceback" in written and "Trainer failed: loss is NaN" in written


def test_an_inner_terminal_reuses_the_active_one(tmp_path):
    home = Home(tmp_path)
    with logs.terminal(home, stream=open(os.devnull, "w")) as outer:
        with logs.terminal(home) as inner:
            assert inner is outer
    assert list(home.log_dir.iterdir()) == [outer.log_path]
    assert logs.active() is None


def test_stderr_and_logging_are_restored_afterwards(tmp_path, capfd):
    with logs.terminal(Home(tmp_path)):
        pass
    os.write(2, b"after-the-command\n")
    assert "after-the-command" in capfd.readouterr().err
    assert warnings.showwarning is not logging._showwarning
    assert not [h for h in logging.getLogger().handlers
                if str(getattr(h, "baseFilename", "")).startswith(str(tmp_path))]
