"""A tiny report corpus, vocabulary, trained LM and its export, built once per test process.

Real generator texts (one synthetic span through the same code ETRMExampleGen runs), a few
hundred of them, a one-layer model and seconds of training: enough to exercise every path.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import tempfile
from typing import List

from models.lm.config import PRESETS, ModelConfig

TINY_CONFIG: ModelConfig = dataclasses.replace(PRESETS["tiny"], epochs=3)
RECORDS_PER_SPAN = 250


@dataclasses.dataclass(frozen=True)
class Corpus:
    train: List[str]
    train_kinds: List[str]
    eval: List[str]
    eval_kinds: List[str]


@dataclasses.dataclass
class TrainedModel:
    config: ModelConfig
    vocabulary_file: str
    model: object
    tokenizer: object
    export_dir: str
    artifact_dir: str
    report: dict


@functools.lru_cache(maxsize=None)
def workdir() -> str:
    return tempfile.mkdtemp(prefix="etrm-lm-tests-")


@functools.lru_cache(maxsize=None)
def corpus() -> Corpus:
    """Span 0 of the reports dataset, split 4:1 by position."""
    from ml.synthetic import spans

    table = spans.generate_table(spans.SpanRequest(
        dataset="reports", span=0, records_per_span=RECORDS_PER_SPAN, seed=7))
    rows = list(zip(table["text"].tolist(), table["kind"].tolist()))
    train = [row for i, row in enumerate(rows) if i % 5]
    evaluation = [row for i, row in enumerate(rows) if not i % 5]
    return Corpus([t for t, _ in train], [k for _, k in train],
                  [t for t, _ in evaluation], [k for _, k in evaluation])


@functools.lru_cache(maxsize=None)
def vocabulary_file() -> str:
    from models.lm import vocabulary

    tokens = vocabulary.build_vocabulary(corpus().train, TINY_CONFIG.vocab_size)
    return vocabulary.write_vocabulary(tokens, os.path.join(workdir(), "vocabulary.txt"))


def text_sequences(tokenizer, texts: List[str], kinds: List[str], config: ModelConfig):
    """(ids, kind) per text, as the Trainer feeds them to training.fit."""
    import tensorflow as tf

    from models.lm import sequences

    return sequences.sequence_dataset(
        tf.data.Dataset.from_tensor_slices((texts, kinds)).batch(64), tokenizer,
        config.max_length).cache()


@functools.lru_cache(maxsize=None)
def trained_model() -> TrainedModel:
    """The tiny LM trained for a few epochs, exported as the Trainer exports it."""
    import tensorflow as tf

    from models.lm import serving, trainer, training
    from models.lm.model import build_model
    from models.lm.tokenizer import Tokenizer

    tf.keras.utils.set_random_seed(3)
    tokenizer = Tokenizer(vocabulary_file())
    model = build_model(TINY_CONFIG, tokenizer.vocabulary_size)
    data = corpus()
    report = training.fit(model, text_sequences(tokenizer, data.train, data.train_kinds, TINY_CONFIG),
                          text_sequences(tokenizer, data.eval, data.eval_kinds, TINY_CONFIG),
                          TINY_CONFIG, seed=3)
    artifact_dir = os.path.join(workdir(), "model")
    export_dir = os.path.join(artifact_dir, "Format-Serving")
    trainer.save_warm_start_state(artifact_dir, model, TINY_CONFIG, vocabulary_file())
    serving.export(model, tokenizer, TINY_CONFIG, export_dir, report)
    return TrainedModel(TINY_CONFIG, vocabulary_file(), model, tokenizer, export_dir,
                        artifact_dir, report)
