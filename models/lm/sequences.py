"""Next-token training pairs from report texts, shared by training, scoring and evaluation.

A text becomes <s> tokens </s>, cut to max_length + 1 tokens; the model reads all but the
last token and predicts all but the first. Batches group texts of similar length and pad
them on the right, so little compute goes to padding without mixing texts in one sequence.
"""
from __future__ import annotations

from typing import Optional, Tuple

import tensorflow as tf

from models.lm.tokenizer import PAD_ID, Tokenizer, with_boundaries

LENGTH_BUCKET_WIDTH = 32


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
    """Batches of texts -> one int64 id vector per text."""
    def encode(texts):
        ids = token_sequences(tokenizer, texts, max_length)
        return ids.to_tensor(PAD_ID), ids.row_lengths()

    return (text_batches.map(encode, num_parallel_calls=tf.data.AUTOTUNE)
            .unbatch()
            .map(lambda ids, length: ids[:length]))


def training_batches(sequences: tf.data.Dataset, batch_size: int, max_length: int,
                     shuffle_seed: Optional[int] = None) -> tf.data.Dataset:
    """(inputs, targets) batches grouped by length; shuffled when shuffle_seed is given."""
    if shuffle_seed is not None:
        sequences = sequences.shuffle(100_000, seed=shuffle_seed, reshuffle_each_iteration=True)
    boundaries = list(range(LENGTH_BUCKET_WIDTH, max_length + 1, LENGTH_BUCKET_WIDTH))
    batched = sequences.bucket_by_sequence_length(
        element_length_func=lambda ids: tf.shape(ids)[0],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        padding_values=tf.constant(PAD_ID, tf.int64))
    return batched.map(next_token_pairs, num_parallel_calls=tf.data.AUTOTUNE)
