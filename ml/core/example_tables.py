"""tf.Example records (pipeline splits or serving logs) as pandas tables of chosen features.

Decoding goes through tfx-bsl's C++ decoder; large inputs are sampled uniformly at random with
a fixed seed, so a check costs the same on 20,000 or 2,000,000 rows and repeats exactly.
"""
from __future__ import annotations

import glob
import os
from typing import Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

SPLIT_PREFIX = "Split-"


def split_uri(examples_uri: str, split: str) -> str:
    """The folder of one split of an artifact known only by its URI (as ML Metadata returns it);
    with a TFX Artifact object at hand, tfx.types.artifact_utils.get_split_uri says the same."""
    return os.path.join(examples_uri, f"{SPLIT_PREFIX}{split}")


def split_names(artifact_uri: str) -> List[str]:
    """The splits an artifact known only by its URI has folders for, sorted."""
    if not os.path.isdir(artifact_uri):
        return []
    return sorted(entry[len(SPLIT_PREFIX):] for entry in os.listdir(artifact_uri)
                  if entry.startswith(SPLIT_PREFIX)
                  and os.path.isdir(os.path.join(artifact_uri, entry)))


def split_files(examples_uri: str, split: str) -> List[str]:
    """The record files of one split of an Examples artifact."""
    return sorted(glob.glob(os.path.join(split_uri(examples_uri, split), "*")))


def read_records(files: Sequence[str], compression: str = "GZIP") -> List[bytes]:
    import tensorflow as tf

    records: List[bytes] = []
    for path in files:
        records.extend(tf.data.TFRecordDataset(path, compression_type=compression)
                       .as_numpy_iterator())
    return records


def sample_records(records: List[bytes], max_rows: Optional[int], seed: int = 0) -> List[bytes]:
    """At most max_rows records, chosen uniformly without replacement (order kept)."""
    if max_rows is None or len(records) <= max_rows:
        return records
    keep = np.sort(np.random.default_rng(seed).choice(len(records), max_rows, replace=False))
    return [records[i] for i in keep]


def records_to_frame(records: Sequence[bytes], columns: Sequence[str]) -> pd.DataFrame:
    """One row per record and one column per feature; a record missing a feature gets NaN/None."""
    from tfx_bsl.coders import example_coder

    if not records:
        return pd.DataFrame({name: [] for name in columns})
    batch = example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(list(records))
    data = {}
    for name in columns:
        index = batch.schema.get_field_index(name)
        if index < 0:
            data[name] = [None] * batch.num_rows
            continue
        values = batch.column(index).to_pylist()
        data[name] = [_first(value) for value in values]
    return pd.DataFrame(data)


def _first(value):
    if not value:
        return None
    first = value[0]
    return first.decode() if isinstance(first, bytes) else first


def examples_frame(examples_uri: str, split: str, columns: Sequence[str],
                   max_rows: Optional[int] = None, seed: int = 0) -> pd.DataFrame:
    """A split of an Examples artifact as a table (sampled to max_rows)."""
    files = split_files(examples_uri, split)
    if not files:
        raise FileNotFoundError(f"no records for split {split!r} under {examples_uri}")
    return records_to_frame(sample_records(read_records(files), max_rows, seed), columns)


def split_checksums(examples_uri: str) -> Dict[str, Dict]:
    """{split: {"records": n, "sha256": digest}} of an Examples artifact: the digest covers
    every tf.Example in file and record order, each in its canonical serialization (features
    sorted by name), so two artifacts digest alike exactly when they hold the same records in
    the same order. The files themselves may differ: tfx-bsl's encoder writes the feature map
    in an order that varies from call to call."""
    import hashlib

    import tensorflow as tf

    checksums = {}
    for split in split_names(examples_uri):
        digest = hashlib.sha256()
        records = read_records(split_files(examples_uri, split))
        for record in records:
            canonical = tf.train.Example.FromString(record).SerializeToString(deterministic=True)
            digest.update(len(canonical).to_bytes(8, "little"))
            digest.update(canonical)
        checksums[split] = {"records": len(records), "sha256": digest.hexdigest()}
    return checksums
