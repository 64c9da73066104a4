"""Warm start of a new model from the previous blessed one, shared by the risk model and the LM."""
from __future__ import annotations

from typing import Dict

import tensorflow as tf


def warm_start(model: tf.keras.Model, previous: tf.keras.Model) -> Dict[str, str]:
    """Copies weights layer by layer where names and shapes match; reports what happened.

    Layer by layer rather than all-or-nothing, so a changed hyperparameter (a wider layer, one
    more block) still reuses every layer it did not touch.
    """
    previous_layers = {layer.name: layer for layer in previous.layers}
    report = {}
    for layer in model.layers:
        if not layer.weights:
            continue
        source = previous_layers.get(layer.name)
        if source is None or len(source.weights) != len(layer.weights):
            report[layer.name] = "fresh"
        elif all(a.shape == b.shape for a, b in zip(layer.weights, source.weights)):
            layer.set_weights(source.get_weights())
            report[layer.name] = "warm"
        else:
            report[layer.name] = "fresh (shape changed)"
    return report
