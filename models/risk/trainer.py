"""Trainer run_fn for etrm_risk_model: trains the FT-Transformer and exports serving signatures."""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Dict, List, Optional, Tuple

import numpy as np

import tensorflow as tf
import tensorflow_transform as tft
from absl import logging
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from models.risk import features, signatures
from models.risk.calibration import PlattScaling, fit_platt
from models.common.training_progress import TrainingProgress
from models.common.warm_start import warm_start
from models.risk.model import RiskHyperparameters, build_model

# Every 10th training row is held out for early stopping and calibration; the eval split stays
# unseen until TFMA compares the candidate with the serving model.
HOLDOUT_EVERY = 10
WARM_START_DIR = "warm_start"
WEIGHTS_FILE = "weights.h5"
LAYOUT_FILE = "layout.json"


def _raw_dataset(file_pattern: List[str], data_accessor: tfx.components.DataAccessor,
                 tf_transform_output: tft.TFTransformOutput, batch_size: int, shuffle: bool) -> tf.data.Dataset:
    return data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(batch_size=batch_size, shuffle=shuffle, num_epochs=1),
        tf_transform_output.raw_metadata.schema)


def load_transformed(raw: tf.data.Dataset, tf_transform_output: tft.TFTransformOutput,
                     input_names: List[str]) -> Tuple[Dict[str, np.ndarray], np.ndarray, Dict[str, np.ndarray]]:
    """One pass over the raw split: model inputs, labels, and the raw columns serving defaults need.

    Applies the Transform graph in large batches, as serving will; the result fits in memory
    (16 numbers per trade), so training epochs never re-parse or re-transform.
    """
    tft_layer = tf_transform_output.transform_features_layer()
    inputs: Dict[str, list] = {name: [] for name in input_names}
    labels, raw_columns = [], {name: [] for name in features.RAW_FEATURES}
    for raw_batch in raw:
        transformed = tft_layer(raw_batch)
        for name in input_names:
            inputs[name].append(tf.reshape(transformed[name], [-1]).numpy())
        labels.append(tf.reshape(transformed[features.LABEL_KEY], [-1]).numpy())
        for name in features.RAW_FEATURES:
            value = raw_batch[name]
            value = tf.sparse.to_dense(value) if isinstance(value, tf.sparse.SparseTensor) else value
            raw_columns[name].append(value.numpy().reshape(-1))
    join = lambda parts: {name: np.concatenate(chunks) for name, chunks in parts.items()}
    return join(inputs), np.concatenate(labels), join(raw_columns)


def vocabulary_sizes(tf_transform_output: tft.TFTransformOutput) -> Dict[str, int]:
    return {key: tf_transform_output.vocabulary_size_by_name(features.vocabulary_name(key))
            for key in features.CATEGORICAL_DOMAINS}


def hyperparameters_from(custom_config: Optional[Dict]) -> RiskHyperparameters:
    """Hyperparameters from the Trainer's custom_config; unknown names are rejected."""
    values = dict(custom_config or {}).get("hyperparameters", {})
    known = {f.name for f in dataclasses.fields(RiskHyperparameters)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown risk model hyperparameters {unknown}; known: {sorted(known)}")
    return RiskHyperparameters(**values)


def _load_previous(base_model_uri: str, hp: RiskHyperparameters) -> Optional[tf.keras.Model]:
    """Rebuilds the previous model from its saved layout and weights, if it left them."""
    folder = os.path.join(base_model_uri, WARM_START_DIR)
    if not tf.io.gfile.exists(os.path.join(folder, LAYOUT_FILE)):
        return None
    with tf.io.gfile.GFile(os.path.join(folder, LAYOUT_FILE)) as handle:
        layout = json.load(handle)
    previous_hp = RiskHyperparameters(**layout["hyperparameters"])
    previous = build_model(layout["vocabulary_sizes"], previous_hp)
    local_weights = os.path.join(folder, WEIGHTS_FILE)
    previous.load_weights(local_weights)
    return previous


def _save_warm_start_state(model_run_or_artifact_dir: str, model: tf.keras.Model,
                           sizes: Dict[str, int], hp: RiskHyperparameters) -> None:
    folder = os.path.join(model_run_or_artifact_dir, WARM_START_DIR)
    tf.io.gfile.makedirs(folder)
    model.save_weights(os.path.join(folder, WEIGHTS_FILE))
    with tf.io.gfile.GFile(os.path.join(folder, LAYOUT_FILE), "w") as handle:
        json.dump({"vocabulary_sizes": sizes, "hyperparameters": dataclasses.asdict(hp)}, handle)


def _fit_calibration(model: tf.keras.Model, holdout: tf.data.Dataset) -> PlattScaling:
    scores, labels = [], []
    for inputs, label in holdout:
        scores.append(model(inputs, training=False).numpy().reshape(-1))
        labels.append(label.numpy().reshape(-1))
    return fit_platt(np.concatenate(scores), np.concatenate(labels))


def hp_seed(fn_args: tfx.components.FnArgs) -> int:
    return int(dict(fn_args.custom_config or {}).get("seed", 42))


class _PhaseTimer:
    """Logs how long each phase of run_fn took (visible with --verbose)."""

    def __init__(self):
        import time

        self._clock = time.monotonic
        self._last = self._clock()

    def done(self, phase: str) -> None:
        now = self._clock()
        logging.info("Trainer phase %s took %.1fs", phase, now - self._last)
        self._last = now


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """Trains on the transformed train split (every 10th row held out for early stopping and
    calibration), exports the SavedModel; the eval split is never read here, TFMA judges on it."""
    timer = _PhaseTimer()
    hp = hyperparameters_from(fn_args.custom_config)
    tf.keras.utils.set_random_seed(hp_seed(fn_args))
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    sizes = vocabulary_sizes(tf_transform_output)
    model = build_model(sizes, hp)
    input_names = [inp.name for inp in model.inputs]
    raw_train = _raw_dataset(fn_args.train_files, fn_args.data_accessor, tf_transform_output, 8192, False)
    inputs, labels, raw_columns = load_transformed(raw_train, tf_transform_output, input_names)
    is_holdout = np.arange(len(labels)) % HOLDOUT_EVERY == 0
    pick = lambda mask: ({name: values[mask] for name, values in inputs.items()}, labels[mask])
    train = (tf.data.Dataset.from_tensor_slices(pick(~is_holdout))
             .shuffle(len(labels), seed=hp_seed(fn_args), reshuffle_each_iteration=True)
             .batch(hp.batch_size))
    if fn_args.train_steps:
        # train_steps counts steps, not passes: without repeat() one epoch of a small window
        # stops at its last batch (a 1,500-row window gave 5 steps for train_steps=40).
        train = train.repeat()
    train = train.prefetch(tf.data.AUTOTUNE)
    holdout = tf.data.Dataset.from_tensor_slices(pick(is_holdout)).batch(8192)
    defaults = signatures.compute_feature_defaults(raw_columns)
    timer.done("input pipeline and serving defaults")
    warm_report = {}
    if fn_args.base_model:
        base_artifact_uri = os.path.dirname(os.path.normpath(fn_args.base_model))
        previous = _load_previous(base_artifact_uri, hp)
        if previous is not None:
            warm_report = warm_start(model, previous)
            logging.info("Warm start from %s: %s", base_artifact_uri, warm_report)
    initial_eval_loss = None
    if warm_report:
        initial_eval_loss = float(model.evaluate(holdout, verbose=0, return_dict=True)["loss"])
    timer.done("warm start")
    history = model.fit(
        train, validation_data=holdout, epochs=1 if fn_args.train_steps else hp.epochs, verbose=0,
        steps_per_epoch=fn_args.train_steps or None,
        callbacks=[TrainingProgress(),
                   tf.keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1,
                                                        min_lr=hp.learning_rate / 32),
                   tf.keras.callbacks.EarlyStopping(monitor="val_loss", mode="min",
                                                    patience=hp.early_stopping_patience,
                                                    restore_best_weights=True)])
    timer.done("fit")
    platt = _fit_calibration(model, holdout)
    model_artifact_dir = os.path.dirname(os.path.normpath(fn_args.serving_model_dir))
    _save_warm_start_state(model_artifact_dir, model, sizes, hp)
    signatures.export(model, tf_transform_output, hp, defaults, platt, fn_args.serving_model_dir,
                      training_report={
                          "calibration": dataclasses.asdict(platt),
                          "warm_start": warm_report,
                          "initial_eval_loss": initial_eval_loss,
                          "epochs_run": len(history.history["loss"]),
                          "steps_run": int(model.optimizer.iterations.numpy()),
                          "final_train_loss": float(history.history["loss"][-1]),
                          "final_eval_auc": float(history.history["val_auc"][-1]),
                      })
    timer.done("calibration and export")
