"""Which request-log files a model's checks have already read, kept across runs.

Files are remembered by `log_file_key` (the name without `.partial`/`.tfrecord`): a dead
writer's `.partial` that a read-only reader read in place is the same file once recovered and
renamed, so it is not read twice.
"""
from __future__ import annotations

import json
import pathlib
from typing import List

from ml.core.atomic_files import atomic_write_text
from ml.core.request_log import log_file_key


class LogPositions:
    """The keys of the log files read so far, in a small JSON file (written atomically)."""

    def __init__(self, path: pathlib.Path):
        self.path = pathlib.Path(path)
        stored = json.loads(self.path.read_text())["files"] if self.path.exists() else []
        self.read = {log_file_key(name) for name in stored}

    def new_files(self, files: List[pathlib.Path]) -> List[pathlib.Path]:
        return [path for path in files if log_file_key(path) not in self.read]

    def mark_read(self, files: List[pathlib.Path]) -> None:
        self.read.update(log_file_key(path) for path in files)
        atomic_write_text(self.path, json.dumps({"files": sorted(self.read)}, indent=1))
