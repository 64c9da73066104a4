"""Which finished request-log files a model's checks have already read, kept across runs."""
from __future__ import annotations

import json
import pathlib
from typing import List

from ml.core.atomic_files import atomic_write_text


class LogPositions:
    """The names of the log files read so far, in a small JSON file (written atomically)."""

    def __init__(self, path: pathlib.Path):
        self.path = pathlib.Path(path)
        self.read = set(json.loads(self.path.read_text())["files"]) if self.path.exists() else set()

    def new_files(self, files: List[pathlib.Path]) -> List[pathlib.Path]:
        return [path for path in files if path.name not in self.read]

    def mark_read(self, files: List[pathlib.Path]) -> None:
        self.read.update(path.name for path in files)
        atomic_write_text(self.path, json.dumps({"files": sorted(self.read)}, indent=1))
