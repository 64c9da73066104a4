"""A pre-norm transformer encoder block (self-attention + feed-forward), tf-keras."""
from __future__ import annotations

import tensorflow as tf


class TransformerBlock(tf.keras.layers.Layer):
    """x + MHA(LN(x)) then x + FFN(LN(x)); `causal=True` masks future positions (for the LM)."""

    def __init__(self, embed_dim: int, num_heads: int, ff_dim: int, dropout: float = 0.0,
                 causal: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.embed_dim, self.num_heads, self.ff_dim = embed_dim, num_heads, ff_dim
        self.dropout_rate, self.causal = dropout, causal
        self.attention_norm = tf.keras.layers.LayerNormalization(epsilon=1e-6)
        self.attention = tf.keras.layers.MultiHeadAttention(
            num_heads=num_heads, key_dim=max(1, embed_dim // num_heads), dropout=dropout)
        self.ff_norm = tf.keras.layers.LayerNormalization(epsilon=1e-6)
        self.ff_in = tf.keras.layers.Dense(ff_dim, activation="gelu")
        self.ff_out = tf.keras.layers.Dense(embed_dim)
        self.dropout = tf.keras.layers.Dropout(dropout)

    def call(self, x, training=None, attention_mask=None):
        normed = self.attention_norm(x)
        attended = self.attention(normed, normed, attention_mask=attention_mask,
                                  use_causal_mask=self.causal, training=training)
        x = x + self.dropout(attended, training=training)
        return x + self.dropout(self.ff_out(self.ff_in(self.ff_norm(x))), training=training)

    def get_config(self):
        return {**super().get_config(), "embed_dim": self.embed_dim, "num_heads": self.num_heads,
                "ff_dim": self.ff_dim, "dropout": self.dropout_rate, "causal": self.causal}
