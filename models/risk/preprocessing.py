"""Transform's preprocessing_fn for the risk model: scaling, log transforms, vocabularies."""
from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from models.risk import features


def _dense(tensor: tf.Tensor, default) -> tf.Tensor:
    """Raw features arrive as [batch, 1] dense or sparse tensors; the model wants [batch]."""
    if isinstance(tensor, tf.sparse.SparseTensor):
        tensor = tf.sparse.to_dense(
            tf.SparseTensor(tensor.indices, tensor.values, [tensor.dense_shape[0], 1]), default)
    return tf.reshape(tensor, [-1])


def preprocessing_fn(inputs):
    """Raw trade columns -> model inputs; the label passes through as float."""
    outputs = {}
    for key in features.LOG_NUMERIC_FEATURES:
        value = tf.cast(_dense(inputs[key], 0.0), tf.float32)
        outputs[features.transformed_name(key)] = tft.scale_to_z_score(tf.math.log1p(tf.maximum(value, 0.0)))
    for key in features.NUMERIC_FEATURES:
        value = tf.cast(_dense(inputs[key], 0.0), tf.float32)
        outputs[features.transformed_name(key)] = tft.scale_to_z_score(value)
    for key, domain in features.CATEGORICAL_DOMAINS.items():
        outputs[features.transformed_name(key)] = tft.compute_and_apply_vocabulary(
            _dense(inputs[key], b""), num_oov_buckets=features.OOV_BUCKETS,
            reserved_tokens=domain or None, vocab_filename=features.vocabulary_name(key))
    if features.LABEL_KEY in inputs:
        outputs[features.LABEL_KEY] = tf.cast(_dense(inputs[features.LABEL_KEY], 0), tf.float32)
    return outputs
