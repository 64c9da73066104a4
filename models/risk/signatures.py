"""Serving signatures of etrm_risk_model; the Transform graph is inside, clients send raw trades.

- serving_default (predict): serialized tf.Examples -> risk_score, risk_level.
- classification (tensorflow/serving/classify): for TF Serving's Classify API.
- feature_defaults: the parsed raw features of the given examples, defaults filled in, so a
  client learns over the serving protocol which features exist, their types and defaults.
- assets/feature_defaults.json: the same defaults as a file, for people and tools.
"""
from __future__ import annotations

import json
import os
import tempfile
from typing import Dict

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from ml.serving.signatures import CLASSIFY_METHOD_NAME, set_signature_methods
from models.risk import features
from models.risk.calibration import EPSILON, PlattScaling
from models.risk.model import RiskHyperparameters, numeric_keys

FEATURE_DEFAULTS_ASSET = "feature_defaults.json"
TRAINING_REPORT_ASSET = "training_report.json"
RISK_LEVELS = ("LOW", "MEDIUM", "HIGH")


def _tf_dtype(kind: str):
    return {"float": tf.float32, "int": tf.int64, "string": tf.string}[kind]


def serving_feature_spec(defaults: Dict[str, Dict]) -> Dict[str, tf.io.FixedLenFeature]:
    """Parse spec for raw trade features; absent features take their stored default."""
    return {name: tf.io.FixedLenFeature([1], _tf_dtype(info["type"]), default_value=[info["default"]])
            for name, info in defaults.items()}


def compute_feature_defaults(raw_examples: Dict[str, np.ndarray]) -> Dict[str, Dict]:
    """Median of numeric columns and most frequent value of categorical ones, from training data."""
    defaults = {}
    for name in numeric_keys():
        values = np.asarray(raw_examples[name]).reshape(-1)
        kind = "int" if np.issubdtype(values.dtype, np.integer) else "float"
        median = float(np.median(values))
        defaults[name] = {"type": kind, "default": int(round(median)) if kind == "int" else median}
    for name in features.CATEGORICAL_DOMAINS:
        values = np.asarray(raw_examples[name]).reshape(-1)
        tokens, counts = np.unique(values, return_counts=True)
        top = tokens[int(np.argmax(counts))]
        defaults[name] = {"type": "string", "default": top.decode() if isinstance(top, bytes) else str(top)}
    return defaults


class RiskServingModule(tf.Module):
    """Holds the model, the TFT layer and the assets so they are saved together."""

    def __init__(self, model: tf.keras.Model, tf_transform_output: tft.TFTransformOutput,
                 hp: RiskHyperparameters, defaults: Dict[str, Dict], platt: PlattScaling,
                 asset_dir: str):
        super().__init__()
        self.model = model
        self.tft_layer = tf_transform_output.transform_features_layer()
        self.spec = serving_feature_spec(defaults)
        self.calibration_slope = tf.constant(platt.slope, tf.float32)
        self.calibration_intercept = tf.constant(platt.intercept, tf.float32)
        self.low_cutoff = tf.constant(hp.low_risk_cutoff, tf.float32)
        self.high_cutoff = tf.constant(hp.high_risk_cutoff, tf.float32)
        self.feature_defaults = tf.saved_model.Asset(os.path.join(asset_dir, FEATURE_DEFAULTS_ASSET))
        self.training_report = tf.saved_model.Asset(os.path.join(asset_dir, TRAINING_REPORT_ASSET))
        self.input_names = [inp.name for inp in model.inputs]

    def _scores(self, examples):
        raw = tf.io.parse_example(examples, self.spec)
        transformed = self.tft_layer(raw)
        inputs = {name: tf.reshape(transformed[name], [-1]) for name in self.input_names}
        raw_score = tf.clip_by_value(tf.reshape(self.model(inputs, training=False), [-1]),
                                     EPSILON, 1.0 - EPSILON)
        logits = tf.math.log(raw_score / (1.0 - raw_score))
        return tf.sigmoid(self.calibration_slope * logits + self.calibration_intercept)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(self, examples):
        score = self._scores(examples)
        level = tf.where(score >= self.high_cutoff, RISK_LEVELS[2],
                         tf.where(score >= self.low_cutoff, RISK_LEVELS[1], RISK_LEVELS[0]))
        return {"risk_score": score, "risk_level": level}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def feature_values(self, examples):
        raw = tf.io.parse_example(examples, self.spec)
        return {name: tf.reshape(value, [-1]) for name, value in raw.items()}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def classify(self, inputs):
        score = self._scores(inputs)
        scores = tf.stack([1.0 - score, score], axis=1)
        classes = tf.tile(tf.constant([["0", "1"]]), [tf.shape(score)[0], 1])
        return {"classes": classes, "scores": scores}


def export(model: tf.keras.Model, tf_transform_output: tft.TFTransformOutput, hp: RiskHyperparameters,
           defaults: Dict[str, Dict], platt: PlattScaling, export_dir: str,
           training_report: Dict) -> None:
    """Writes the SavedModel with both signatures and its assets."""
    with tempfile.TemporaryDirectory() as asset_dir:
        with open(os.path.join(asset_dir, FEATURE_DEFAULTS_ASSET), "w") as handle:
            json.dump(defaults, handle, indent=2, sort_keys=True)
        with open(os.path.join(asset_dir, TRAINING_REPORT_ASSET), "w") as handle:
            json.dump(training_report, handle, indent=2, sort_keys=True)
        module = RiskServingModule(model, tf_transform_output, hp, defaults, platt, asset_dir)
        tf.saved_model.save(module, export_dir, signatures={
            "serving_default": module.serve.get_concrete_function(),
            "classification": module.classify.get_concrete_function(),
            "feature_defaults": module.feature_values.get_concrete_function(),
        })
    set_signature_methods(export_dir, {"classification": CLASSIFY_METHOD_NAME})
