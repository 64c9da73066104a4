"""Incremental decoding with a key/value cache, for `generate`.

Feeding the whole prefix through the model for every new token costs O(length^2) per text;
keeping each layer's keys and values makes a step cost O(length). The arithmetic is the
Keras model's, on the Keras layers' own weights (the MultiHeadAttention projections are its
`_query_dense`, `_key_dense`, `_value_dense` and `_output_dense` sublayers); the tests check
that prefill and step logits equal the model's.
"""
from __future__ import annotations

import math
from typing import List, Tuple

import tensorflow as tf

from models.lm.model import CausalDecoderBlock

MASKED = -1e9
Cache = Tuple[tf.Tensor, tf.Tensor]


class CachedDecoder:
    """Prefill a right-padded prompt batch, then advance each row by one token per step."""

    def __init__(self, model: tf.keras.Model, max_length: int):
        self.embedding = model.get_layer("token_embedding")
        self.positions = model.get_layer("position_embedding")
        self.final_norm = model.get_layer("final_norm")
        self.blocks: List[CausalDecoderBlock] = [
            layer for layer in model.layers if isinstance(layer, CausalDecoderBlock)]
        self.max_length = max_length

    def _projections(self, block: CausalDecoderBlock, x: tf.Tensor):
        normed = block.attention_norm(x)
        attention = block.attention
        scale = 1.0 / math.sqrt(float(attention._key_dim))
        return (attention._query_dense(normed) * scale, attention._key_dense(normed),
                attention._value_dense(normed))

    def _attend(self, block: CausalDecoderBlock, x, query, keys, values, visible):
        scores = tf.einsum("bqhd,bkhd->bhqk", query, keys)
        scores += (1.0 - tf.cast(visible, scores.dtype)) * MASKED
        context = tf.einsum("bhqk,bkhd->bqhd", tf.nn.softmax(scores, axis=-1), values)
        x = x + block.attention._output_dense(context)
        return x + block.ff_out(block.ff_in(block.ff_norm(x)))

    def _logits(self, x):
        return self.embedding(self.final_norm(x), mode="logits")

    def prefill(self, token_ids: tf.Tensor) -> Tuple[tf.Tensor, List[Cache]]:
        """[batch, time] ids -> logits [batch, time, vocab] and per-layer caches padded to
        max_length positions."""
        length = tf.shape(token_ids)[1]
        x = self.positions(self.embedding(token_ids, mode="embed"))
        visible = tf.linalg.band_part(tf.ones([length, length], tf.bool), -1, 0)[tf.newaxis, tf.newaxis]
        caches = []
        padding = [[0, 0], [0, self.max_length - length], [0, 0], [0, 0]]
        for block in self.blocks:
            query, keys, values = self._projections(block, x)
            x = self._attend(block, x, query, keys, values, visible)
            caches.append((tf.pad(keys, padding), tf.pad(values, padding)))
        return self._logits(x), caches

    def step(self, tokens: tf.Tensor, positions: tf.Tensor, caches: List[Cache]
             ) -> Tuple[tf.Tensor, List[Cache]]:
        """Row b's token `tokens[b]` at position `positions[b]` -> next-token logits [batch, vocab]
        and the caches with that position written."""
        positions = tf.cast(positions, tf.int32)
        x = (self.embedding(tokens[:, tf.newaxis], mode="embed")
             + tf.gather(self.positions.positions, positions)[:, tf.newaxis, :])
        write_at = tf.stack([tf.range(tf.shape(tokens)[0]), positions], axis=1)
        visible = (tf.range(self.max_length)[tf.newaxis, :] <= positions[:, tf.newaxis])
        visible = visible[:, tf.newaxis, tf.newaxis, :]
        updated = []
        for block, (keys, values) in zip(self.blocks, caches):
            query, key, value = self._projections(block, x)
            keys = tf.tensor_scatter_nd_update(keys, write_at, key[:, 0])
            values = tf.tensor_scatter_nd_update(values, write_at, value[:, 0])
            x = self._attend(block, x, query, keys, values, visible)
            updated.append((keys, values))
        return self._logits(x)[:, 0, :], updated
