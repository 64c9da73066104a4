"""The serving request logs of a model (ml/serving/request_log.py's layout) as tables.

Only finished `.tfrecord` files are read: the server writes under `.partial` and renames a file
when it is complete, so a reader never sees half a file.
"""
from __future__ import annotations

import os
import pathlib
from typing import List, Optional, Sequence

import pandas as pd

from ml.core.example_tables import read_records, records_to_frame, sample_records

FINISHED_SUFFIX = ".tfrecord"
PREDICTION_PREFIX = "prediction/"
TIMESTAMP_FEATURE = "timestamp_micros"
MODEL_VERSION_FEATURE = "model_version"


def log_files(log_dir) -> List[pathlib.Path]:
    """Finished log files of one model, oldest first (names start with the UTC start time)."""
    directory = pathlib.Path(log_dir)
    if not directory.is_dir():
        return []
    return sorted(path for path in directory.iterdir()
                  if path.name.endswith(FINISHED_SUFFIX) and path.is_file())


def read_log_frame(files: Sequence[os.PathLike], columns: Sequence[str],
                   max_rows: Optional[int] = None, seed: int = 0) -> pd.DataFrame:
    """The logged requests of the given files: the named columns, sampled to max_rows."""
    records = read_records([str(path) for path in files], compression="")
    return records_to_frame(sample_records(records, max_rows, seed), columns)
