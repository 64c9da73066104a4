"""The drift benchmark's third-party baselines degrade to a clear 'not measured' note."""
from pathlib import Path

import numpy as np

from benchmarks.baseline_client import WindowArchive, baseline_alarms


def test_absent_baselines_virtualenv_is_reported_not_measured(tmp_path):
    archive = WindowArchive()
    try:
        name = archive.add("no change", 5, np.zeros((2, 10, 3)), np.ones((2, 5, 3)))
        assert (archive.path / name).exists()
        assert archive.manifest == [{"file": name, "scenario": "no change", "rows": 5}]
        results, note = baseline_alarms(archive, python=tmp_path / "missing" / "bin" / "python")
    finally:
        archive.close()
    assert results is None
    assert note.startswith("not measured: missing is absent") and "make drift-baselines" in note


def test_failing_baseline_run_is_reported_with_its_error(tmp_path):
    failing = tmp_path / "python"
    failing.write_text("#!/bin/sh\necho 'ModuleNotFoundError: alibi_detect' >&2\nexit 3\n")
    failing.chmod(0o755)
    archive = WindowArchive()
    try:
        results, note = baseline_alarms(archive, python=Path(failing))
    finally:
        archive.close()
    assert results is None
    assert note == "not measured: the baseline run failed (exit 3: ModuleNotFoundError: alibi_detect)"
