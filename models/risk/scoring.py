"""The risk model's scores on serialized tf.Examples, through its serving_default signature."""
from __future__ import annotations

from typing import List

import numpy as np

BATCH = 512


def risk_scores(model_dir: str, records: List[bytes]) -> np.ndarray:
    """risk_score per record, from the SavedModel in model_dir (the exact served function)."""
    import tensorflow as tf

    predict = tf.saved_model.load(model_dir).signatures["serving_default"]
    scores = [predict(examples=tf.constant(records[start:start + BATCH]))["risk_score"].numpy()
              for start in range(0, len(records), BATCH)]
    return np.concatenate(scores).reshape(-1) if scores else np.zeros(0, dtype=np.float32)
