"""Runs benchmarks/drift_baselines.py (Alibi Detect, Evidently) in .venv-drift-baselines on
windows the drift benchmark saved, and says plainly why when it cannot."""
from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BASELINES_PYTHON = ROOT / ".venv-drift-baselines" / "bin" / "python"
SCRIPT = ROOT / "benchmarks" / "drift_baselines.py"


class WindowArchive:
    """Windows of one benchmark run, one .npz per (scenario, rows) group, in a temp folder."""

    def __init__(self):
        self._folder = tempfile.TemporaryDirectory(prefix="drift-windows-")
        self.path = Path(self._folder.name)
        self.manifest: List[Dict] = []

    def add(self, scenario: str, rows: int, reference: np.ndarray, current: np.ndarray) -> str:
        name = f"group_{len(self.manifest):02d}.npz"
        np.savez(self.path / name, reference=reference, current=current)
        self.manifest.append({"file": name, "scenario": scenario, "rows": rows})
        return name

    def close(self) -> None:
        self._folder.cleanup()


def baseline_alarms(archive: WindowArchive, python: Path = BASELINES_PYTHON,
                    timeout: float = 3600) -> Tuple[Optional[Dict], str]:
    """(results, '') from drift_baselines.py, or (None, 'not measured: <why>')."""
    if not python.exists():
        return None, (f"not measured: {python.parent.parent.name} is absent (create it with "
                      "`make drift-baselines`)")
    (archive.path / "manifest.json").write_text(json.dumps(archive.manifest))
    out = archive.path / "results.json"
    try:
        done = subprocess.run([str(python), str(SCRIPT), "--windows", str(archive.path),
                               "--out", str(out)], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"not measured: the baseline run took over {timeout:.0f} s"
    if done.returncode != 0 or not out.exists():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"not measured: the baseline run failed (exit {done.returncode}: {last})"
    return json.loads(out.read_text()), ""
