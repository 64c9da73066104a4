"""Serving signatures of etrm_report_lm: pure TensorFlow graphs that TF Serving can run.

- generate(prompt [None] string, max_new_tokens int32, temperature float32, top_k int32)
  -> text [None] string: the prompt followed by its continuation. The decoding loop is a
  tf.while_loop in the graph over a key/value cache (decoding.py); temperature 0 picks the
  most likely token (deterministic), top_k <= 0 samples from the whole vocabulary.
- summarize(prompt [None] string, slot_values [None, len(SLOT_NAMES)] string, max_new_tokens,
  temperature, top_k) -> text [None] string: a risk summary conditioned on a record. The prompt
  is the record's (ml.synthetic.risk_summary.RiskRecord.prompt), the values its slot values in
  SLOT_NAMES order; every slot the model writes comes out as the record's value, so a figure
  in the summary is always the record's, and a slot the record leaves empty (the move of a
  first report, a market the book does not hold, a decision slot of another record's facts)
  is never written; a decision slot prints nothing (ml.core.report_slots). The text is the
  summary alone, without the prompt.
- score(text [None] string) -> log_likelihood [None] float32 (natural log, summed over the
  predicted tokens, end token included), num_tokens [None] int32.

`token_statistics` and `tokenize` are saved as plain functions (not signatures) for the
evaluator, so it measures exactly what is served.
"""
from __future__ import annotations

import json
import os
import tempfile
from typing import Dict, Optional

import tensorflow as tf

from ml.core.report_slots import SLOT_NAMES
from models.lm import sequences
from models.lm.config import ModelConfig
from models.lm.decoding import CachedDecoder
from models.lm.tokenizer import BOS_ID, EOS_ID, FIRST_SLOT_ID, PAD_ID, UNK_ID, Tokenizer

TRAINING_REPORT_ASSET = "training_report.json"
NEG_INF = -1e9
NEVER_GENERATED = (PAD_ID, BOS_ID, UNK_ID)


def next_token(logits: tf.Tensor, temperature: tf.Tensor, top_k: tf.Tensor,
               unwritable: Optional[tf.Tensor] = None) -> tf.Tensor:
    """[batch, vocab] logits -> [batch] int64 ids: argmax at temperature 0, else top-k sampling;
    never a token of NEVER_GENERATED, nor one where `unwritable` [batch, vocab] is True."""
    vocabulary_size = tf.shape(logits)[-1]
    banned = tf.scatter_nd(tf.constant([[i] for i in NEVER_GENERATED]),
                           tf.ones([len(NEVER_GENERATED)], tf.bool), [vocabulary_size])
    logits = tf.where(banned[tf.newaxis, :], NEG_INF, logits)
    if unwritable is not None:
        logits = tf.where(unwritable, NEG_INF, logits)

    def sample():
        k = tf.where(top_k > 0, tf.minimum(top_k, vocabulary_size), vocabulary_size)
        kth_best = tf.math.top_k(logits, k=k).values[:, -1:]
        filtered = tf.where(logits < kth_best, NEG_INF, logits)
        return tf.random.categorical(filtered / temperature, 1, dtype=tf.int64)[:, 0]

    def greedy():
        return tf.argmax(logits, axis=-1, output_type=tf.int64)

    return tf.cond(temperature > 0.0, sample, greedy)


def empty_slot_tokens(slot_values: tf.Tensor, vocabulary_size: tf.Tensor) -> tf.Tensor:
    """[batch, SLOT_NAMES] values -> [batch, vocab] True at the tokens of the slots a record
    leaves empty (both forms of each, with and without its space): a summary of a book without
    a previous report cannot write the move, nor one of two markets a third market."""
    per_token = tf.repeat(tf.equal(slot_values, ""), 2, axis=1)
    batch = tf.shape(slot_values)[0]
    after = vocabulary_size - FIRST_SLOT_ID - 2 * len(SLOT_NAMES)
    return tf.concat([tf.zeros([batch, FIRST_SLOT_ID], tf.bool), per_token,
                      tf.zeros([batch, after], tf.bool)], axis=1)


class ReportLMServingModule(tf.Module):
    """Holds the model's variables and call, and the tokenizer (with its vocabulary asset).

    Only the variables are tracked, not the Keras model: tracking it would make the export
    trace every layer again for Keras metadata that serving never reads.
    """

    def __init__(self, model: tf.keras.Model, tokenizer: Tokenizer, config: ModelConfig,
                 training_report_file: Optional[str] = None):
        super().__init__()
        self._call_model = model.__call__
        self.decoder = CachedDecoder(model, config.max_length)
        self.model_variables = list(model.variables)
        self.tokenizer = tokenizer
        self.max_length = config.max_length
        self.vocabulary_size = tf.Variable(tokenizer.vocabulary_size, dtype=tf.int32,
                                           trainable=False, name="vocabulary_size")
        if training_report_file:
            self.training_report = tf.saved_model.Asset(training_report_file)

    def _logits(self, token_ids: tf.Tensor) -> tf.Tensor:
        return self._call_model(token_ids, training=False)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")], autograph=False)
    def token_statistics(self, text):
        """Per text: summed log-likelihood, predicted tokens, and how many were the argmax."""
        inputs, targets = sequences.padded_pairs(self.tokenizer, text, self.max_length)
        logits = self._logits(inputs)
        log_probs = tf.nn.log_softmax(logits, axis=-1)
        target_log_probs = tf.gather(log_probs, targets, batch_dims=2)
        mask = tf.not_equal(targets, PAD_ID)
        hits = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int64), targets) & mask
        return {"log_likelihood": tf.reduce_sum(tf.where(mask, target_log_probs, 0.0), axis=1),
                "num_tokens": tf.reduce_sum(tf.cast(mask, tf.int32), axis=1),
                "num_correct": tf.reduce_sum(tf.cast(hits, tf.int32), axis=1)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")], autograph=False)
    def tokenize(self, text):
        """Token ids with start and end tokens, padded, and each text's length."""
        ids = sequences.token_sequences(self.tokenizer, text, self.max_length)
        return {"token_ids": ids.to_tensor(PAD_ID), "lengths": tf.cast(ids.row_lengths(), tf.int32)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")], autograph=False)
    def score(self, text):
        statistics = self.token_statistics(text)
        return {"log_likelihood": statistics["log_likelihood"],
                "num_tokens": statistics["num_tokens"]}

    def _continue(self, prompt, max_new_tokens, temperature, top_k,
                  slot_values=None) -> tf.RaggedTensor:
        """[batch] prompts -> [batch, (new tokens)] ids: the decoding loop of both signatures.
        With slot_values, a slot whose value is empty is never written."""
        prompt_ids = self.tokenizer.encode(prompt)
        batch = prompt_ids.nrows()
        bos = tf.fill([batch, 1], tf.constant(BOS_ID, tf.int64))
        # The newest max_length - 1 prompt tokens fit the window with room for one new token.
        context = tf.concat([bos, prompt_ids[:, -(self.max_length - 1):]], axis=1)
        prompt_lengths = context.row_lengths()
        logits, caches = self.decoder.prefill(context.to_tensor(PAD_ID))
        last = tf.gather(logits, prompt_lengths - 1, batch_dims=1)
        unwritable = (None if slot_values is None
                      else empty_slot_tokens(slot_values, tf.shape(last)[-1]))
        buffer = context.to_tensor(PAD_ID, shape=[None, self.max_length])
        done = tf.greater_equal(prompt_lengths, self.max_length)
        rows = tf.range(batch, dtype=tf.int64)

        def keep_going(step, buffer, lengths, done, last, caches):
            return (step < max_new_tokens) & tf.logical_not(tf.reduce_all(done))

        def decode_step(step, buffer, lengths, done, last, caches):
            chosen = next_token(last, temperature, top_k, unwritable)
            write_at = tf.stack([rows, tf.minimum(lengths, self.max_length - 1)], axis=1)
            buffer = tf.tensor_scatter_nd_update(
                buffer, write_at, tf.where(done, tf.gather_nd(buffer, write_at), chosen))
            grew = tf.logical_not(done)
            lengths = lengths + tf.cast(grew, tf.int64)
            done = done | (grew & tf.equal(chosen, EOS_ID)) | tf.greater_equal(lengths, self.max_length)
            newest = tf.stack([rows, lengths - 1], axis=1)
            last, caches = self.decoder.step(tf.gather_nd(buffer, newest), lengths - 1, caches)
            return step + 1, buffer, lengths, done, last, caches

        _, buffer, lengths, _, _, _ = tf.while_loop(
            keep_going, decode_step,
            [tf.constant(0, tf.int32), buffer, prompt_lengths, done, last, caches])
        generated = tf.RaggedTensor.from_tensor(buffer, lengths=lengths)
        positions = tf.ragged.range(lengths)
        return tf.ragged.boolean_mask(generated, positions >= tf.expand_dims(prompt_lengths, 1))

    @tf.function(input_signature=[
        tf.TensorSpec([None], tf.string, name="prompt"),
        tf.TensorSpec([], tf.int32, name="max_new_tokens"),
        tf.TensorSpec([], tf.float32, name="temperature"),
        tf.TensorSpec([], tf.int32, name="top_k")], autograph=False)
    def generate(self, prompt, max_new_tokens, temperature, top_k):
        continuation = self._continue(prompt, max_new_tokens, temperature, top_k)
        return {"text": tf.strings.join([prompt, self.tokenizer.decode(continuation)])}

    @tf.function(input_signature=[
        tf.TensorSpec([None], tf.string, name="prompt"),
        tf.TensorSpec([None, len(SLOT_NAMES)], tf.string, name="slot_values"),
        tf.TensorSpec([], tf.int32, name="max_new_tokens"),
        tf.TensorSpec([], tf.float32, name="temperature"),
        tf.TensorSpec([], tf.int32, name="top_k")], autograph=False)
    def summarize(self, prompt, slot_values, max_new_tokens, temperature, top_k):
        """The summary the model writes after a record's prompt, with every slot it writes
        replaced by that record's value (without the prompt)."""
        continuation = self._continue(prompt, max_new_tokens, temperature, top_k, slot_values)
        text = self.tokenizer.decode(continuation, slot_values)
        return {"text": tf.strings.strip(text)}


def export(model: tf.keras.Model, tokenizer: Tokenizer, config: ModelConfig, export_dir: str,
           training_report: Dict) -> None:
    """Writes the SavedModel with the `generate` and `score` signatures and its assets."""
    with tempfile.TemporaryDirectory() as asset_dir:
        report_file = os.path.join(asset_dir, TRAINING_REPORT_ASSET)
        with open(report_file, "w") as handle:
            json.dump(training_report, handle, indent=2, sort_keys=True)
        module = ReportLMServingModule(model, tokenizer, config, report_file)
        tf.saved_model.save(module, export_dir, signatures={
            "generate": module.generate.get_concrete_function(),
            "score": module.score.get_concrete_function(),
            "summarize": module.summarize.get_concrete_function(),
        })
