"""Interpolated Kneser-Ney n-gram model over token ids: the baseline the LM must beat.

Fitted on the same training tokens as the candidate (tokenized by the candidate's own
tokenizer), it predicts the same targets: every token after <s>, </s> included. The top level
uses raw counts, lower levels continuation counts (in how many contexts a word follows), and
the unigram level is interpolated with a uniform distribution, so no token has probability 0.
N-grams are int64 keys (base vocabulary_size) counted with numpy, not Python dicts.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Iterable, List

import numpy as np

from models.lm.tokenizer import BOS_ID

DEFAULT_DISCOUNT = 0.75


@dataclasses.dataclass
class _Level:
    """Counts of k-grams (sorted keys) and, per (k-1)-token context, their total and types."""

    keys: np.ndarray
    counts: np.ndarray
    context_keys: np.ndarray
    context_totals: np.ndarray
    context_types: np.ndarray


def _windows(sequences: Iterable[np.ndarray], order: int) -> np.ndarray:
    """[positions, order] windows: each predicted token (all but the leading <s>) with its
    order-1 predecessors, left-padded with <s>."""
    rows: List[np.ndarray] = []
    for sequence in sequences:
        sequence = np.asarray(sequence, dtype=np.int64)
        if len(sequence) < 2:
            continue
        padded = np.concatenate([np.full(order - 1, BOS_ID, np.int64), sequence[1:]])
        rows.append(np.lib.stride_tricks.sliding_window_view(padded, order))
    if not rows:
        return np.zeros((0, order), np.int64)
    return np.concatenate(rows)


def _encode(windows: np.ndarray, base: int) -> np.ndarray:
    keys = np.zeros(len(windows), np.int64)
    for column in range(windows.shape[1]):
        keys = keys * base + windows[:, column]
    return keys


def _level(keys: np.ndarray, counts: np.ndarray, base: int) -> _Level:
    contexts = keys // base
    context_keys, first, types = np.unique(contexts, return_index=True, return_counts=True)
    totals = np.add.reduceat(counts, first) if len(counts) else np.zeros(0, counts.dtype)
    return _Level(keys, counts, context_keys, totals.astype(np.float64), types.astype(np.float64))


def _lookup(sorted_keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """values[key] for each query key, 0 where the key is absent."""
    if len(sorted_keys) == 0:
        return np.zeros(len(queries), np.float64)
    index = np.minimum(np.searchsorted(sorted_keys, queries), len(sorted_keys) - 1)
    found = sorted_keys[index] == queries
    return np.where(found, values[index], 0).astype(np.float64)


class KneserNeyLanguageModel:
    """Interpolated Kneser-Ney of a given order over ids in [0, vocabulary_size)."""

    def __init__(self, order: int = 3, vocabulary_size: int = 10000,
                 discount: float = DEFAULT_DISCOUNT):
        if not 1 <= order <= 4:
            raise ValueError(f"ngram order must be in 1..4, got {order}")
        if vocabulary_size <= 0 or vocabulary_size ** order >= 2 ** 62:
            raise ValueError(f"vocabulary_size {vocabulary_size} does not fit order {order} keys")
        if not 0.0 < discount < 1.0:
            raise ValueError(f"discount must be in (0, 1), got {discount}")
        self.order, self.vocabulary_size, self.discount = order, vocabulary_size, discount
        self.levels: Dict[int, _Level] = {}
        self.training_tokens = 0

    def fit(self, sequences: Iterable[np.ndarray]) -> "KneserNeyLanguageModel":
        """Counts n-grams of token-id sequences that start with <s> (and end with </s>)."""
        windows = _windows(sequences, self.order)
        if len(windows) == 0:
            raise ValueError("the n-gram baseline needs at least one training token")
        if windows.max() >= self.vocabulary_size or windows.min() < 0:
            raise ValueError(f"token ids must be in [0, {self.vocabulary_size})")
        self.training_tokens = len(windows)
        base = self.vocabulary_size
        keys, counts = np.unique(_encode(windows, base), return_counts=True)
        self.levels = {self.order: _level(keys, counts, base)}
        for k in range(self.order - 1, 0, -1):
            shorter = self.levels[k + 1].keys % (base ** k)
            keys, counts = np.unique(shorter, return_counts=True)
            self.levels[k] = _level(keys, counts, base)
        return self

    def log_probabilities(self, sequences: Iterable[np.ndarray]) -> np.ndarray:
        """Natural-log probability of every predicted token, in sequence order."""
        if not self.levels:
            raise ValueError("fit the n-gram model before scoring")
        windows = _windows(sequences, self.order)
        base, discount = self.vocabulary_size, self.discount
        words = windows[:, -1]
        unigrams = self.levels[1]
        total, types = unigrams.context_totals[0], unigrams.context_types[0]
        counts = _lookup(unigrams.keys, unigrams.counts, words)
        probability = (np.maximum(counts - discount, 0.0) / total
                       + discount * types / total / base)
        for k in range(2, self.order + 1):
            level = self.levels[k]
            grams = _encode(windows[:, -k:], base)
            context_total = _lookup(level.context_keys, level.context_totals, grams // base)
            context_types = _lookup(level.context_keys, level.context_types, grams // base)
            counts = _lookup(level.keys, level.counts, grams)
            seen = context_total > 0
            safe_total = np.where(seen, context_total, 1.0)
            interpolated = (np.maximum(counts - discount, 0.0) / safe_total
                            + discount * context_types / safe_total * probability)
            probability = np.where(seen, interpolated, probability)
        return np.log(probability)

    def perplexity(self, sequences: Iterable[np.ndarray]) -> float:
        log_probabilities = self.log_probabilities(sequences)
        return float(np.exp(-log_probabilities.mean()))
