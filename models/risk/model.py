"""FT-Transformer for trades: every feature becomes a token, a CLS token reads them all.

Numeric features get a per-feature linear embedding (value * w_f + b_f); categorical ones an
embedding table sized by their Transform vocabulary (plus OOV buckets).
"""
from __future__ import annotations

import dataclasses
from typing import Dict

import tensorflow as tf

from models.common.transformer import TransformerBlock
from models.risk import features


@dataclasses.dataclass(frozen=True)
class RiskHyperparameters:
    embed_dim: int = 32
    num_heads: int = 4
    num_layers: int = 2
    ff_dim: int = 64
    dropout: float = 0.1
    learning_rate: float = 2e-3
    batch_size: int = 256
    epochs: int = 20
    early_stopping_patience: int = 3
    low_risk_cutoff: float = 0.2
    high_risk_cutoff: float = 0.5

    def __post_init__(self):
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim ({self.embed_dim}) must be divisible by num_heads ({self.num_heads})")
        if not 0.0 < self.low_risk_cutoff < self.high_risk_cutoff < 1.0:
            raise ValueError("risk cut-offs must satisfy 0 < low_risk_cutoff < high_risk_cutoff < 1")


class NumericTokenizer(tf.keras.layers.Layer):
    """[batch, n_numeric] -> [batch, n_numeric, d]: one learned direction and bias per feature."""

    def __init__(self, num_features: int, embed_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.num_features, self.embed_dim = num_features, embed_dim

    def build(self, input_shape):
        self.weight = self.add_weight("weight", (self.num_features, self.embed_dim),
                                      initializer="glorot_uniform")
        self.bias = self.add_weight("bias", (self.num_features, self.embed_dim), initializer="zeros")

    def call(self, values):
        return values[..., None] * self.weight + self.bias

    def get_config(self):
        return {**super().get_config(), "num_features": self.num_features, "embed_dim": self.embed_dim}


class ClsToken(tf.keras.layers.Layer):
    """Prepends one learned token whose final state summarises the trade."""

    def build(self, input_shape):
        self.token = self.add_weight("cls", (1, 1, int(input_shape[-1])), initializer="glorot_uniform")

    def call(self, tokens):
        cls = tf.tile(self.token, [tf.shape(tokens)[0], 1, 1])
        return tf.concat([cls, tokens], axis=1)


def numeric_keys():
    return features.LOG_NUMERIC_FEATURES + features.NUMERIC_FEATURES


def build_model(vocabulary_sizes: Dict[str, int], hp: RiskHyperparameters) -> tf.keras.Model:
    """Inputs keyed by transformed names; output: probability of high risk, shape [batch]."""
    numeric_inputs = [tf.keras.Input(shape=(), name=features.transformed_name(k), dtype=tf.float32)
                      for k in numeric_keys()]
    categorical_inputs = {k: tf.keras.Input(shape=(), name=features.transformed_name(k), dtype=tf.int64)
                          for k in features.CATEGORICAL_DOMAINS}
    numeric = tf.keras.layers.Lambda(lambda xs: tf.stack(xs, axis=1), name="stack_numeric")(numeric_inputs)
    tokens = [NumericTokenizer(len(numeric_inputs), hp.embed_dim, name="numeric_tokens")(numeric)]
    for key, tensor in categorical_inputs.items():
        size = vocabulary_sizes[key] + features.OOV_BUCKETS
        embedded = tf.keras.layers.Embedding(size, hp.embed_dim, name=f"{key}_embedding")(tensor)
        tokens.append(tf.keras.layers.Reshape((1, hp.embed_dim))(embedded))
    x = tf.keras.layers.Concatenate(axis=1, name="feature_tokens")(tokens)
    x = ClsToken(name="cls_token")(x)
    for index in range(hp.num_layers):
        x = TransformerBlock(hp.embed_dim, hp.num_heads, hp.ff_dim, hp.dropout, name=f"encoder_{index}")(x)
    cls_state = tf.keras.layers.LayerNormalization(name="head_norm")(x[:, 0, :])
    hidden = tf.keras.layers.Dense(hp.embed_dim, activation="gelu", name="head_hidden")(cls_state)
    logit = tf.keras.layers.Dense(1, name="head_logit")(hidden)
    probability = tf.keras.layers.Activation("sigmoid", name="risk_score")(tf.squeeze(logit, -1))
    model = tf.keras.Model(inputs=numeric_inputs + list(categorical_inputs.values()), outputs=probability)
    model.compile(optimizer=tf.keras.optimizers.Adam(hp.learning_rate),
                  loss=tf.keras.losses.BinaryCrossentropy(),
                  metrics=[tf.keras.metrics.AUC(name="auc")])
    return model

