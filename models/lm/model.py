"""Decoder-only transformer: token + position embeddings, causal blocks, tied output projection.

Inputs are token ids [batch, time] padded on the right with <pad>; because attention is
causal, padding after a token never changes that token's logits, so no padding mask is needed.
"""
from __future__ import annotations

import tensorflow as tf

from models.common.transformer import TransformerBlock
from models.lm.config import ModelConfig
from models.lm.tokenizer import PAD_ID

INPUT_NAME = "token_ids"
EMBEDDING_STDDEV = 0.02


class TiedTokenEmbedding(tf.keras.layers.Layer):
    """One matrix both embeds tokens (mode="embed") and scores them (mode="logits")."""

    def __init__(self, vocabulary_size: int, embed_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size, self.embed_dim = vocabulary_size, embed_dim

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            "embeddings", (self.vocabulary_size, self.embed_dim),
            initializer=tf.keras.initializers.RandomNormal(stddev=EMBEDDING_STDDEV))
        self.output_bias = self.add_weight("output_bias", (self.vocabulary_size,),
                                           initializer="zeros")

    @tf.autograph.experimental.do_not_convert
    def call(self, inputs, mode: str = "embed", training=None):
        if mode == "embed":
            return tf.gather(self.embeddings, tf.cast(inputs, tf.int32))
        if mode == "logits":
            return tf.matmul(inputs, self.embeddings, transpose_b=True) + self.output_bias
        raise ValueError(f"mode must be 'embed' or 'logits', got {mode!r}")

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size,
                "embed_dim": self.embed_dim}


class PositionEmbedding(tf.keras.layers.Layer):
    """Adds a learned vector per absolute position (up to max_length)."""

    def __init__(self, max_length: int, embed_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.max_length, self.embed_dim = max_length, embed_dim

    def build(self, input_shape):
        self.positions = self.add_weight(
            "positions", (self.max_length, self.embed_dim),
            initializer=tf.keras.initializers.RandomNormal(stddev=EMBEDDING_STDDEV))

    @tf.autograph.experimental.do_not_convert
    def call(self, token_vectors, training=None):
        length = tf.shape(token_vectors)[1]
        return token_vectors + self.positions[tf.newaxis, :length, :]

    def get_config(self):
        return {**super().get_config(), "max_length": self.max_length, "embed_dim": self.embed_dim}


class CausalDecoderBlock(TransformerBlock):
    """The shared TransformerBlock with causal self-attention.

    Its call has no tensor-dependent Python control flow, so AutoGraph is skipped: converting
    it would also convert every tf-keras layer inside (tf-keras is not on AutoGraph's
    do-not-convert list), which costs tens of seconds per model build and trace on two cores.
    """

    def __init__(self, embed_dim: int, num_heads: int, ff_dim: int, dropout: float = 0.0, **kwargs):
        kwargs.pop("causal", None)
        super().__init__(embed_dim, num_heads, ff_dim, dropout, causal=True, **kwargs)

    @tf.autograph.experimental.do_not_convert
    def call(self, x, training=None, attention_mask=None):
        return super().call(x, training=training, attention_mask=attention_mask)


def masked_token_cross_entropy(targets, logits):
    """Mean next-token negative log-likelihood over non-padding targets."""
    targets = tf.cast(targets, tf.int32)
    mask = tf.cast(tf.not_equal(targets, PAD_ID), logits.dtype)
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)
    return tf.reduce_sum(losses * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)


def build_model(config: ModelConfig, vocabulary_size: int) -> tf.keras.Model:
    """token_ids [batch, time] -> next-token logits [batch, time, vocabulary_size]."""
    token_ids = tf.keras.Input(shape=(None,), dtype=tf.int64, name=INPUT_NAME)
    embedding = TiedTokenEmbedding(vocabulary_size, config.embedding_dim, name="token_embedding")
    x = embedding(token_ids, mode="embed")
    x = PositionEmbedding(config.max_length, config.embedding_dim, name="position_embedding")(x)
    x = tf.keras.layers.Dropout(config.dropout, name="embedding_dropout")(x)
    for index in range(config.num_layers):
        x = CausalDecoderBlock(config.embedding_dim, config.num_heads, config.hidden_dim,
                               config.dropout, name=f"decoder_{index}")(x)
    x = tf.keras.layers.LayerNormalization(epsilon=1e-6, name="final_norm")(x)
    logits = embedding(x, mode="logits")
    return tf.keras.Model(inputs=token_ids, outputs=logits, name="etrm_report_lm")

