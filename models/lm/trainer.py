"""Trainer run_fn for etrm_report_lm: trains (or fine-tunes) the LM and exports it for serving.

Cold start: the vocabulary Transform built on this span's training split. Warm start (the
Trainer got the latest blessed model as base_model): that model's weights *and vocabulary*,
so token ids keep their meaning; words new in this span are spelt out by the tokenizer.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Dict, List, Optional, Tuple

import tensorflow as tf
import tensorflow_transform as tft
from absl import logging
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from models.lm import sequences, serving, training
from models.lm.config import ModelConfig
from models.common.warm_start import warm_start
from models.lm.model import build_model
from models.lm.preprocessing import KIND_KEY, TEXT_KEY, dense_text
from models.lm.tokenizer import Tokenizer
from models.lm.vocabulary import VOCABULARY_NAME

WARM_START_DIR = "warm_start"
WEIGHTS_PREFIX = "weights"
LAYOUT_FILE = "layout.json"
VOCABULARY_FILE = "vocabulary.txt"
READ_BATCH_SIZE = 512
HYPERPARAMETERS_KEY = "hyperparameters"
SEED_KEY = "seed"


@dataclasses.dataclass
class PreviousModel:
    """A blessed model rebuilt for warm start: its Keras model, config and vocabulary."""

    model: tf.keras.Model
    config: ModelConfig
    vocabulary_file: str
    artifact_uri: str


def config_from(custom_config: Optional[Dict]) -> ModelConfig:
    return ModelConfig.from_dict(dict(custom_config or {}).get(HYPERPARAMETERS_KEY, {}))


def save_warm_start_state(model_artifact_dir: str, model: tf.keras.Model, config: ModelConfig,
                          vocabulary_file: str) -> str:
    """Weights, config and vocabulary beside the SavedModel, for the next run's warm start."""
    folder = os.path.join(model_artifact_dir, WARM_START_DIR)
    tf.io.gfile.makedirs(folder)
    model.save_weights(os.path.join(folder, WEIGHTS_PREFIX))
    tf.io.gfile.copy(vocabulary_file, os.path.join(folder, VOCABULARY_FILE), overwrite=True)
    with tf.io.gfile.GFile(os.path.join(folder, LAYOUT_FILE), "w") as handle:
        json.dump({"config": config.to_dict(),
                   "vocabulary_size": int(model.get_layer("token_embedding").vocabulary_size)},
                  handle, indent=2, sort_keys=True)
    return folder


def load_previous(model_artifact_dir: str) -> Optional[PreviousModel]:
    """Rebuilds the model a previous run saved; None when it left no warm-start state."""
    folder = os.path.join(model_artifact_dir, WARM_START_DIR)
    if not tf.io.gfile.exists(os.path.join(folder, LAYOUT_FILE)):
        return None
    with tf.io.gfile.GFile(os.path.join(folder, LAYOUT_FILE)) as handle:
        layout = json.load(handle)
    config = ModelConfig.from_dict(layout["config"])
    previous = build_model(config, int(layout["vocabulary_size"]))
    previous.load_weights(os.path.join(folder, WEIGHTS_PREFIX)).expect_partial()
    return PreviousModel(previous, config, os.path.join(folder, VOCABULARY_FILE), model_artifact_dir)


def choose_vocabulary(previous: Optional[PreviousModel], tf_transform_output) -> Tuple[str, str]:
    """(vocabulary file, where it came from): the warm-start model's, so every token id keeps
    its meaning and its embedding, else the one Transform built on this span."""
    if previous is not None:
        return previous.vocabulary_file, "base_model"
    return tf_transform_output.vocabulary_file_by_name(VOCABULARY_NAME), "transform"


def text_batches(file_pattern: List[str], data_accessor: tfx.components.DataAccessor,
                 tf_transform_output: tft.TFTransformOutput) -> tf.data.Dataset:
    """(texts, kinds) of a split in batches of [batch] strings (one pass)."""
    raw = data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(batch_size=READ_BATCH_SIZE, shuffle=False, num_epochs=1),
        tf_transform_output.raw_metadata.schema)
    return raw.map(lambda batch: (dense_text(batch[TEXT_KEY]), dense_text(batch[KIND_KEY])))


def holdout_split(text_batches: tf.data.Dataset, validation: bool) -> tf.data.Dataset:
    """The texts outside (or inside) the early-stopping holdout."""
    def select(texts, kinds):
        keep = sequences.in_validation_holdout(texts)
        keep = keep if validation else tf.logical_not(keep)
        return tf.boolean_mask(texts, keep), tf.boolean_mask(kinds, keep)

    return text_batches.map(select)


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """Trains on the train split (early stopping on a holdout of it: the eval split is left
    to the evaluator), exports the SavedModel and the warm-start state for the next run."""
    custom_config = dict(fn_args.custom_config or {})
    config = config_from(custom_config)
    seed = int(custom_config.get(SEED_KEY, 42))
    tf.keras.utils.set_random_seed(seed)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    previous = None
    if fn_args.base_model:
        previous = load_previous(os.path.dirname(os.path.normpath(fn_args.base_model)))
    vocabulary_file, vocabulary_source = choose_vocabulary(previous, tf_transform_output)
    tokenizer = Tokenizer(vocabulary_file)
    model = build_model(config, tokenizer.vocabulary_size)
    warm_report = warm_start(model, previous.model) if previous is not None else {}
    if previous is not None:
        logging.info("Warm start from %s: %s", previous.artifact_uri, warm_report)

    def train_split(validation: bool) -> tf.data.Dataset:
        texts = text_batches(fn_args.train_files, fn_args.data_accessor, tf_transform_output)
        return sequences.sequence_dataset(holdout_split(texts, validation), tokenizer,
                                          config.max_length).cache()

    report = training.fit(model, train_split(validation=False), train_split(validation=True),
                          config, seed, fn_args.train_steps)
    report.update({
        "warm_start": warm_report,
        "warm_started_from": previous.artifact_uri if previous is not None else None,
        "vocabulary_source": vocabulary_source,
        "vocabulary_size": tokenizer.vocabulary_size,
        "config": config.to_dict(),
    })
    logging.info("Training report: %s", report)
    model_artifact_dir = os.path.dirname(os.path.normpath(fn_args.serving_model_dir))
    save_warm_start_state(model_artifact_dir, model, config, vocabulary_file)
    serving.export(model, tokenizer, config, fn_args.serving_model_dir, report)
