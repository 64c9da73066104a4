"""The serving request-log format: what the model server writes and monitoring reads.

Each sampled row is one tf.Example: the request features (those of a serialized tf.Example
input, or each input tensor under its alias), the outputs as `prediction/<alias>`, and
`model_name`, `model_version`, `signature_name`, `timestamp_micros`. Records go to
`<serving log dir of the model>/requests-<start>-<pid>-<n>.tfrecord` (uncompressed); a file is
written under a `.partial` name and renamed when complete, so readers only ever see whole
files. Writer (ml/serving/request_log.py) and readers (drift gate, `etrm monitor`) share this
module so they cannot disagree. TensorFlow is imported on use: the CLI imports this early.
"""
from __future__ import annotations

import os
import pathlib
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from ml.core.example_tables import read_records, records_to_frame, sample_records

EXAMPLE_INPUT_ALIASES = ("examples", "inputs")
PREDICTION_PREFIX = "prediction/"
FINISHED_SUFFIX = ".tfrecord"
PARTIAL_SUFFIX = ".tfrecord.partial"
FILE_PREFIX = "requests-"
MODEL_NAME_FEATURE = "model_name"
MODEL_VERSION_FEATURE = "model_version"
SIGNATURE_NAME_FEATURE = "signature_name"
TIMESTAMP_FEATURE = "timestamp_micros"


def prediction_column(output_alias: str) -> str:
    """The logged feature (and table column) holding a signature output."""
    return PREDICTION_PREFIX + output_alias


def finished_name(partial_name: str) -> str:
    """The name a `.partial` log file is renamed to once complete."""
    return partial_name[:-len(PARTIAL_SUFFIX)] + FINISHED_SUFFIX


def _feature(values: np.ndarray):
    import tensorflow as tf

    flat = np.asarray(values).reshape(-1)
    if flat.dtype == object or flat.dtype.kind in "SU":
        return tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[value if isinstance(value, bytes) else str(value).encode() for value in flat]))
    if flat.dtype.kind == "f":
        return tf.train.Feature(float_list=tf.train.FloatList(value=flat.astype(np.float32)))
    return tf.train.Feature(int64_list=tf.train.Int64List(value=flat.astype(np.int64)))


def _row_count(inputs: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray]) -> Optional[int]:
    """The shared batch size of every tensor, or None when the request is not batch-major."""
    sizes = {value.shape[0] if np.ndim(value) else None
             for value in list(inputs.values()) + list(outputs.values())}
    return sizes.pop() if len(sizes) == 1 and None not in sizes else None


def build_log_examples(model_name: str, version: int, signature_name: str,
                       inputs: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray],
                       timestamp_micros: int) -> List[bytes]:
    """Serialized tf.Examples, one per row (one per request when tensors are not batch-major)."""
    import tensorflow as tf
    from google.protobuf import message

    rows = _row_count(inputs, outputs)
    indices = range(rows) if rows is not None else [None]
    records = []
    for index in indices:
        features: Dict[str, tf.train.Feature] = {}
        for alias, value in inputs.items():
            row = value if index is None else value[index]
            if alias in EXAMPLE_INPUT_ALIASES and np.ndim(row) == 0 and isinstance(row, bytes):
                try:
                    features.update(tf.train.Example.FromString(row).features.feature)
                    continue
                except message.DecodeError:
                    pass  # not a tf.Example: logged as plain bytes below
            features[alias] = _feature(row)
        for alias, value in outputs.items():
            features[prediction_column(alias)] = _feature(value if index is None else value[index])
        features[MODEL_NAME_FEATURE] = _feature(np.array([model_name.encode()], dtype=object))
        features[MODEL_VERSION_FEATURE] = _feature(np.array([version], dtype=np.int64))
        features[SIGNATURE_NAME_FEATURE] = _feature(np.array([signature_name.encode()], dtype=object))
        features[TIMESTAMP_FEATURE] = _feature(np.array([timestamp_micros], dtype=np.int64))
        records.append(tf.train.Example(features=tf.train.Features(feature=features))
                       .SerializeToString())
    return records


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
