"""Next-token training pairs from report texts, shared by training, scoring and evaluation.

A text becomes <s> tokens </s>, cut to max_length + 1 tokens; the model reads all but the
last token and predicts all but the first. Batches group texts of similar length and pad
them on the right, so little compute goes to padding without mixing texts in one sequence.

Report kinds are very unequal (one trade confirmation per trade, a few daily risk summaries
per week), so training can draw kinds with probability proportional to count ** exponent:
1 keeps the data's mix, 0.5 (the default) lets the long, rare risk summaries be seen often
enough to learn their sections without drowning the confirmations.
"""
from __future__ import annotations

import collections
from typing import Dict, Optional, Tuple

import tensorflow as tf

from models.lm.tokenizer import PAD_ID, Tokenizer, with_boundaries

LENGTH_BUCKET_WIDTH = 32
VALIDATION_BUCKETS = 10
SHUFFLE_BUFFER = 100_000


def in_validation_holdout(texts: tf.Tensor) -> tf.Tensor:
    """True for the texts kept out of training for early stopping: one hash bucket in ten.

    Decided by content, so the Trainer and the evaluator's n-gram baseline agree on it
    whatever order they read the files in.
    """
    return tf.equal(tf.strings.to_hash_bucket_fast(texts, VALIDATION_BUCKETS), 0)


def token_sequences(tokenizer: Tokenizer, texts: tf.Tensor, max_length: int) -> tf.RaggedTensor:
    """[batch] texts -> [batch, (<= max_length + 1)] ids with start and end tokens."""
    return with_boundaries(tokenizer.encode(texts), max_length + 1)


def next_token_pairs(sequences: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """[batch, time + 1] padded ids -> (inputs [batch, time], targets [batch, time])."""
    return sequences[:, :-1], sequences[:, 1:]


def padded_pairs(tokenizer: Tokenizer, texts: tf.Tensor, max_length: int) -> Tuple[tf.Tensor, tf.Tensor]:
    """Inputs and targets of a batch of texts, padded to the longest one."""
    return next_token_pairs(token_sequences(tokenizer, texts, max_length).to_tensor(PAD_ID))


def sequence_dataset(text_batches: tf.data.Dataset, tokenizer: Tokenizer,
                     max_length: int) -> tf.data.Dataset:
    """Batches of (texts, kinds) -> one (int64 id vector, kind) per text."""
    def encode(texts, kinds):
        ids = token_sequences(tokenizer, texts, max_length)
        return ids.to_tensor(PAD_ID), ids.row_lengths(), kinds

    return (text_batches.map(encode, num_parallel_calls=tf.data.AUTOTUNE)
            .unbatch()
            .map(lambda ids, length, kind: (ids[:length], kind)))


def kind_counts(sequences: tf.data.Dataset) -> Dict[str, int]:
    """How many texts of each kind a (ids, kind) dataset holds."""
    counts: collections.Counter = collections.Counter()
    for kinds in sequences.map(lambda ids, kind: kind).batch(4096).as_numpy_iterator():
        counts.update(kind.decode("utf-8") for kind in kinds)
    return dict(counts)


def kind_weights(counts: Dict[str, int], exponent: float) -> Dict[str, float]:
    """Sampling probability of each kind, proportional to count ** exponent."""
    raw = {kind: count ** exponent for kind, count in counts.items() if count > 0}
    total = sum(raw.values())
    return {kind: value / total for kind, value in raw.items()}


def kind_balanced(sequences: tf.data.Dataset, weights: Dict[str, float], seed: int) -> tf.data.Dataset:
    """An endless stream of id vectors drawing kinds by `weights`, each kind reshuffled."""
    kinds = sorted(weights)
    streams = [sequences.filter(lambda ids, kind, name=name: tf.equal(kind, name))
               .map(lambda ids, kind: ids)
               .shuffle(SHUFFLE_BUFFER, seed=seed + index, reshuffle_each_iteration=True)
               .repeat()
               for index, name in enumerate(kinds)]
    return tf.data.Dataset.sample_from_datasets(streams, [weights[k] for k in kinds], seed=seed)


def training_batches(sequences: tf.data.Dataset, batch_size: int, max_length: int,
                     shuffle_seed: Optional[int] = None) -> tf.data.Dataset:
    """(inputs, targets) batches of an id-vector dataset, grouped by length; shuffled first
    when shuffle_seed is given."""
    if shuffle_seed is not None:
        sequences = sequences.shuffle(SHUFFLE_BUFFER, seed=shuffle_seed, reshuffle_each_iteration=True)
    boundaries = list(range(LENGTH_BUCKET_WIDTH, max_length + 1, LENGTH_BUCKET_WIDTH))
    batched = sequences.bucket_by_sequence_length(
        element_length_func=lambda ids: tf.shape(ids)[0],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        padding_values=tf.constant(PAD_ID, tf.int64))
    return batched.map(next_token_pairs, num_parallel_calls=tf.data.AUTOTUNE)


def ids_only(sequences: tf.data.Dataset) -> tf.data.Dataset:
    return sequences.map(lambda ids, kind: ids)
