"""Transform's preprocessing_fn for the report language model: builds the tokenizer.

The analyzer (`tft.vocabulary`, over the training split) learns the domain words; the
reserved tokens keep their fixed ids at the front. The output `token_ids` are the texts
tokenized with that vocabulary by the same ops the served model runs.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import tensorflow as tf
import tensorflow_transform as tft

from models.lm import tokenizer, vocabulary

TEXT_KEY = "text"
KIND_KEY = "kind"
TOKEN_IDS_KEY = "token_ids"
VOCAB_SIZE_CONFIG_KEY = "vocab_size"
DEFAULT_VOCAB_SIZE = 10000


def dense_text(tensor) -> tf.Tensor:
    """The text feature arrives as [batch, 1] dense or sparse strings; returns [batch]."""
    if isinstance(tensor, tf.sparse.SparseTensor):
        tensor = tf.sparse.to_dense(
            tf.SparseTensor(tensor.indices, tensor.values, [tensor.dense_shape[0], 1]), "")
    return tf.reshape(tensor, [-1])


@tf.autograph.experimental.do_not_convert
def preprocessing_fn(inputs: Dict[str, Any], custom_config: Optional[Dict[str, Any]] = None):
    """Raw report texts -> token ids; writes the vocabulary file VOCABULARY_NAME.

    Pure TensorFlow ops without Python control flow on tensors: AutoGraph conversion is
    skipped, as it would otherwise convert every tensorflow_transform function it reaches.
    """
    vocab_size = int(dict(custom_config or {}).get(VOCAB_SIZE_CONFIG_KEY, DEFAULT_VOCAB_SIZE))
    pieces = tokenizer.pretokenize(dense_text(inputs[TEXT_KEY]))
    vocabulary_path = tft.vocabulary(
        pieces, top_k=vocabulary.learned_capacity(vocab_size),
        frequency_threshold=vocabulary.MIN_TOKEN_FREQUENCY,
        reserved_tokens=list(tokenizer.RESERVED_TOKENS),
        vocab_filename=vocabulary.VOCABULARY_NAME)

    def lookup(flat_pieces: tf.Tensor) -> tf.Tensor:
        return tft.apply_vocabulary(flat_pieces, vocabulary_path, default_value=-1)

    token_ids = tokenizer.encode_pieces(pieces, lookup)
    return {TOKEN_IDS_KEY: token_ids.to_sparse()}
