"""Plain functions behind ETRMExampleGen: split assignment and tf.Example encoding (the span
itself is ml.synthetic.spans.SpanRequest).

Kept free of Beam and TFX so they can be tested and benchmarked on their own. Encoding uses
tfx-bsl's C++ RecordBatch-to-tf.Example encoder: building protos in Python is ~10x slower.
"""
from __future__ import annotations

from typing import Iterator, List

import numpy as np
import pandas as pd
import pyarrow as pa


def split_assignments(ids: pd.Series, split_buckets: List[int]) -> np.ndarray:
    """Split index per record from a stable hash of its id (same id, same split, every run).

    Hashing the serialized example instead (TFX's default) is not stable: the encoder's field
    order may differ between runs. pandas' hash uses a fixed key, so it is.
    """
    cumulative = np.cumsum(split_buckets)
    hashes = pd.util.hash_pandas_object(ids.astype(str), index=False).to_numpy()
    return np.searchsorted(cumulative, hashes % np.uint64(cumulative[-1]), side="right")


def _column_to_list_array(values: pd.Series) -> pa.Array:
    """One value per example, as the list array the tf.Example encoder expects."""
    offsets = pa.array(np.arange(len(values) + 1, dtype=np.int32))
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_integer_dtype(values):
        flat = pa.array(values.to_numpy(dtype=np.int64))
    elif pd.api.types.is_float_dtype(values):
        flat = pa.array(values.to_numpy(dtype=np.float32))
    else:
        flat = pa.array(values.astype(str).to_numpy(dtype=object), type=pa.binary())
    return pa.ListArray.from_arrays(offsets, flat)


def table_to_record_batches(table: pd.DataFrame, batch_size: int = 8192) -> Iterator[pa.RecordBatch]:
    """Splits a table into Arrow record batches of list columns (float32, int64, bytes)."""
    if table.isna().any().any():
        missing = [c for c in table.columns if table[c].isna().any()]
        raise ValueError(f"generated table has missing values in columns {missing}")
    for start in range(0, len(table), batch_size):
        chunk = table.iloc[start:start + batch_size]
        arrays = [_column_to_list_array(chunk[name]) for name in chunk.columns]
        yield pa.RecordBatch.from_arrays(arrays, [str(c) for c in chunk.columns])


def encode_record_batch(record_batch: pa.RecordBatch) -> List[bytes]:
    """Serialized tf.Examples for a record batch, via tfx-bsl's C++ encoder."""
    from tfx_bsl.coders import example_coder

    return example_coder.RecordBatchToExamplesEncoder().encode(record_batch)
