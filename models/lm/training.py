"""The LM's training loop: Adam on the masked next-token loss, early stopping on eval loss.

A small explicit loop instead of Keras `fit`: its step functions are traced once without
AutoGraph (Keras' own train function would AutoGraph-convert tf-keras internals, about half
a minute per process on two busy cores), and evaluation is token-weighted, so the eval loss
is exactly the mean negative log-likelihood per token that `score` reports.
"""
from __future__ import annotations

import itertools
import math
import time
from typing import Dict, Optional, Tuple

import tensorflow as tf
from absl import logging

from models.common.training_progress import TrainingProgress
from models.lm import sequences
from models.lm.config import ModelConfig
from models.lm.model import masked_token_cross_entropy
from models.lm.tokenizer import PAD_ID

GRADIENT_CLIP_NORM = 1.0
WARMUP_STEPS = 50
FINAL_LEARNING_RATE_FRACTION = 0.1
_BATCH_SPEC = [tf.TensorSpec([None, None], tf.int64), tf.TensorSpec([None, None], tf.int64)]


def _token_count(targets: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(tf.cast(tf.not_equal(targets, PAD_ID), tf.int64))


def learning_rate_schedule(peak: float, total_steps: int):
    """Linear warm-up to `peak` (a tenth of the run, at most WARMUP_STEPS), then cosine decay
    to a tenth of it: big early steps do not wreck a warm-started model, small late steps
    settle the fine structure of the reports."""
    warmup = min(WARMUP_STEPS, total_steps // 10)
    return tf.keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=peak * FINAL_LEARNING_RATE_FRACTION if warmup else peak,
        decay_steps=max(total_steps - warmup, 1), alpha=FINAL_LEARNING_RATE_FRACTION,
        warmup_target=peak if warmup else None, warmup_steps=warmup)


class LanguageModelTrainer:
    """Owns the optimizer and the traced train and eval steps of one model."""

    def __init__(self, model: tf.keras.Model, learning_rate: float, total_steps: int = 1):
        self.model = model
        self.optimizer = tf.keras.optimizers.Adam(learning_rate_schedule(learning_rate, total_steps),
                                                  clipnorm=GRADIENT_CLIP_NORM)
        self.train_step = tf.function(self._train_step, input_signature=_BATCH_SPEC,
                                      autograph=False)
        self.eval_step = tf.function(self._eval_step, input_signature=_BATCH_SPEC,
                                     autograph=False)

    def _train_step(self, inputs, targets):
        with tf.GradientTape() as tape:
            loss = masked_token_cross_entropy(targets, self.model(inputs, training=True))
        variables = self.model.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss, _token_count(targets)

    def _eval_step(self, inputs, targets):
        logits = self.model(inputs, training=False)
        mask = tf.not_equal(targets, PAD_ID)
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)
        hits = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int64), targets) & mask
        return (tf.reduce_sum(tf.where(mask, losses, 0.0)), _token_count(targets),
                tf.reduce_sum(tf.cast(hits, tf.int64)))

    def evaluate(self, batches: tf.data.Dataset) -> Dict[str, float]:
        """Token-weighted loss (mean NLL per token, nats), accuracy and perplexity."""
        total_loss, tokens, correct = 0.0, 0, 0
        for inputs, targets in batches:
            loss, count, hits = self.eval_step(inputs, targets)
            total_loss += float(loss)
            tokens += int(count)
            correct += int(hits)
        loss = total_loss / max(tokens, 1)
        return {"loss": loss, "token_accuracy": correct / max(tokens, 1),
                "perplexity": math.exp(min(loss, 50.0)), "tokens": tokens}

    def train_epoch(self, batches, progress: Optional[tf.keras.callbacks.Callback] = None
                    ) -> Dict[str, float]:
        """One pass over `batches` (a dataset or an iterator's next slice); mean batch loss,
        steps, tokens and tokens per second. `progress` hears of every batch."""
        losses, tokens = [], 0
        started = time.monotonic()
        for inputs, targets in batches:
            loss, count = self.train_step(inputs, targets)
            losses.append(float(loss))
            tokens += int(count)
            if progress is not None:
                progress.on_train_batch_end(len(losses) - 1, {"loss": losses[-1]})
        seconds = time.monotonic() - started
        return {"loss": sum(losses) / max(len(losses), 1), "steps": len(losses), "tokens": tokens,
                "seconds": seconds, "tokens_per_second": tokens / max(seconds, 1e-9)}


def training_stream(train_sequences: tf.data.Dataset, config: ModelConfig, seed: int
                    ) -> Tuple[tf.data.Dataset, bool, Dict]:
    """Training batches, whether they are endless, and the kind mix they were drawn with."""
    counts = sequences.kind_counts(train_sequences)
    if config.kind_sampling_exponent < 1.0 and len(counts) > 1:
        weights = sequences.kind_weights(counts, config.kind_sampling_exponent)
        stream = sequences.kind_balanced(train_sequences, weights, seed)
        batches = sequences.training_batches(stream, config.batch_size, config.max_length)
        return batches, True, {"kind_counts": counts, "kind_weights": weights}
    batches = sequences.training_batches(sequences.ids_only(train_sequences), config.batch_size,
                                         config.max_length, shuffle_seed=seed)
    return batches, False, {"kind_counts": counts, "kind_weights": None}


def fit(model: tf.keras.Model, train_sequences: tf.data.Dataset, eval_sequences: tf.data.Dataset,
        config: ModelConfig, seed: int, train_steps: Optional[int] = None,
        progress: Optional[TrainingProgress] = None) -> Dict:
    """Trains with early stopping on eval loss (best weights kept); returns what happened.

    Both datasets hold (token ids, kind) per text. `train_steps` (the Trainer's TrainArgs) caps training at that many batches in total;
    otherwise `config.epochs` epochs of `config.steps_per_epoch` batches (None: a full pass).
    `progress` (default: a TrainingProgress line every 30 s) hears of every training batch.
    """
    train, endless, mix = training_stream(train_sequences, config, seed)
    evaluation = sequences.training_batches(sequences.ids_only(eval_sequences), config.batch_size,
                                            config.max_length)
    epochs, steps = config.epochs, config.steps_per_epoch
    if train_steps:
        epochs, steps = 1, train_steps
    full_pass = math.ceil(sum(mix["kind_counts"].values()) / config.batch_size)
    if endless and not steps:
        steps = full_pass
    total_steps = epochs * (steps or full_pass)
    runner = LanguageModelTrainer(model, config.learning_rate, total_steps)
    stream = iter(train if endless else train.repeat()) if steps else None
    initial = runner.evaluate(evaluation)
    best_loss, best_weights, stale, history = initial["loss"], model.get_weights(), 0, []
    progress = progress or TrainingProgress(total_steps)
    progress.on_train_begin()
    for epoch in range(epochs):
        epoch_result = runner.train_epoch(itertools.islice(stream, steps) if steps else train,
                                          progress)
        eval_result = runner.evaluate(evaluation)
        history.append({"epoch": epoch + 1, "train_loss": epoch_result["loss"],
                        "eval_loss": eval_result["loss"],
                        "eval_token_accuracy": eval_result["token_accuracy"],
                        "train_tokens_per_second": epoch_result["tokens_per_second"],
                        "steps": epoch_result["steps"], "tokens": epoch_result["tokens"],
                        "seconds": epoch_result["seconds"]})
        logging.info("LM epoch %d: %s", epoch + 1, history[-1])
        if eval_result["loss"] < best_loss:
            best_loss, best_weights, stale = eval_result["loss"], model.get_weights(), 0
        else:
            stale += 1
            if stale >= config.early_stopping_patience:
                break
    progress.on_train_end()
    model.set_weights(best_weights)
    train_seconds = sum(row["seconds"] for row in history)
    train_tokens = sum(row["tokens"] for row in history)
    return {
        "initial_eval_loss": initial["loss"],
        "initial_eval_token_accuracy": initial["token_accuracy"],
        "best_eval_loss": best_loss,
        "epochs_run": len(history),
        "train_steps_run": sum(row["steps"] for row in history),
        "train_tokens": train_tokens,
        "train_seconds": round(train_seconds, 2),
        "train_tokens_per_second": train_tokens / max(train_seconds, 1e-9),
        "history": history,
        **mix,
    }
