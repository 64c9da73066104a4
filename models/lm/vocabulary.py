"""The tokenizer's vocabulary: which learned words follow the reserved tokens.

Transform computes it with `tft.vocabulary` (see preprocessing.py); `build_vocabulary` is the
same rule in plain Python for benchmarks and tests that train without a pipeline: reserved
tokens first, then pieces seen at least `min_frequency` times, by decreasing frequency then
reverse byte order (TFT's order), at most `vocab_size` entries in all.
"""
from __future__ import annotations

import collections
import os
from typing import Iterable, List, Sequence

from models.lm import tokenizer

MIN_TOKEN_FREQUENCY = 2
VOCABULARY_NAME = "report_lm_vocabulary"


def learned_capacity(vocab_size: int) -> int:
    """How many learned tokens fit beside the reserved ones."""
    capacity = vocab_size - len(tokenizer.RESERVED_TOKENS)
    if capacity <= 0:
        raise ValueError(f"ModelConfig.vocab_size must exceed the {len(tokenizer.RESERVED_TOKENS)} "
                         f"reserved tokens, got {vocab_size}")
    return capacity


def build_vocabulary(texts: Iterable[str], vocab_size: int,
                     min_frequency: int = MIN_TOKEN_FREQUENCY, batch_size: int = 4096) -> List[str]:
    """Reserved tokens followed by the most frequent pieces of `texts`."""
    import tensorflow as tf

    capacity = learned_capacity(vocab_size)
    counts: collections.Counter = collections.Counter()
    batch: List[str] = []

    def count(batch_texts: Sequence[str]) -> None:
        pieces = tokenizer.pretokenize(tf.constant(list(batch_texts), tf.string))
        counts.update(pieces.flat_values.numpy().tolist())

    for text in texts:
        batch.append(text)
        if len(batch) == batch_size:
            count(batch)
            batch = []
    if batch:
        count(batch)
    reserved = {token.encode("utf-8") for token in tokenizer.RESERVED_TOKENS}
    ranked = sorted(((n, piece) for piece, n in counts.items() if n >= min_frequency),
                    reverse=True)[:capacity]
    learned = [piece.decode("utf-8") for _, piece in ranked if piece not in reserved]
    return list(tokenizer.RESERVED_TOKENS) + learned


def write_vocabulary(tokens: Sequence[str], path: str) -> str:
    """One token per line; refuses tokens that would break the line-per-token format."""
    bad = [token for token in tokens if not token or "\n" in token or "\r" in token]
    if bad:
        raise ValueError(f"vocabulary tokens must be non-empty single-line strings: {bad[:5]}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("".join(f"{token}\n" for token in tokens))
    return path
