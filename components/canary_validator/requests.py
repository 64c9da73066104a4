"""Serving-check requests from the eval split, stripped to what a serving client would send."""
from __future__ import annotations

import glob
import os
from typing import Iterable, List

import tensorflow as tf


def eval_request_examples(split_dir: str, count: int,
                          drop_features: Iterable[str]) -> List[bytes]:
    """The first `count` examples of a split folder without label-only features (the SERVING
    environment)."""
    files = sorted(glob.glob(os.path.join(split_dir, "*")))
    if not files:
        raise ValueError(f"no examples in split folder {split_dir}")
    dropped = set(drop_features)
    requests = []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP").take(count).as_numpy_iterator():
        example = tf.train.Example.FromString(record)
        for name in dropped:
            if name in example.features.feature:
                del example.features.feature[name]
        requests.append(example.SerializeToString())
    return requests
