"""The firm's static reference data: counterparties, traders and books.

Drawn from the seed alone (never from the window), so every window of one history trades with
the same counterparties, through the same traders and books.
"""
from dataclasses import dataclass

import numpy as np

from ml.synthetic.catalog import (BOOK_NAMES, COUNTERPARTY_LEGAL_FORMS, COUNTERPARTY_SECTORS,
                                  COUNTERPARTY_STEMS, RATING_PROBABILITIES, RATINGS,
                                  TRADER_FIRST_NAMES, TRADER_SURNAMES)
from ml.synthetic.config import ETRMDataConfig

_STREAM_NAMESPACE = 2
# Zipf exponent of counterparty trading shares: a few large counterparties dominate.
COUNTERPARTY_ZIPF_EXPONENT = 0.8


@dataclass(frozen=True)
class Universe:
    """Counterparty master data, trader roster and book structure."""

    counterparty_names: np.ndarray
    counterparty_ratings: np.ndarray
    counterparty_rating_scores: np.ndarray
    counterparty_shares: np.ndarray
    trader_names: np.ndarray
    trader_books: np.ndarray
    book_names: np.ndarray
    book_limit_headroom: np.ndarray


def _unique_combinations(rng, count, *parts):
    sizes = [len(p) for p in parts]
    flat = rng.choice(int(np.prod(sizes)), size=count, replace=False)
    indices = np.unravel_index(flat, sizes)
    return np.array([" ".join(p[i] for p, i in zip(parts, combo))
                     for combo in zip(*indices)], dtype=object)


def _ratings_by_activity(rng, shares: np.ndarray) -> np.ndarray:
    """Rating scores such that the activity-weighted rating mix follows RATING_PROBABILITIES.

    Counterparties are walked in random order and rated by where the middle of their share of
    activity falls on the rating distribution: the trades' rating mix then hardly depends on the
    seed, although a few counterparties carry much of the activity.
    """
    order = rng.permutation(len(shares))
    cumulative = np.cumsum(shares[order])
    middle = cumulative - shares[order] / 2
    scores = np.empty(len(shares), dtype=np.int64)
    scores[order] = np.searchsorted(np.cumsum(RATING_PROBABILITIES), middle)
    return np.minimum(scores, len(RATINGS) - 1)


def build_universe(config: ETRMDataConfig) -> Universe:
    """Counterparties (name, rating, share of activity), traders (each in one book) and books."""
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, _STREAM_NAMESPACE]))
    n_cp = config.num_counterparties
    names = _unique_combinations(rng, n_cp, COUNTERPARTY_STEMS, COUNTERPARTY_SECTORS,
                                 COUNTERPARTY_LEGAL_FORMS)
    size_rank = rng.permutation(n_cp)
    shares = 1.0 / (size_rank + 1.0) ** COUNTERPARTY_ZIPF_EXPONENT
    shares /= shares.sum()
    scores = _ratings_by_activity(rng, shares)
    ratings = np.array(RATINGS, dtype=object)[scores]

    traders = _unique_combinations(rng, config.num_traders, TRADER_FIRST_NAMES, TRADER_SURNAMES)
    books = np.array(BOOK_NAMES[: config.num_books], dtype=object)
    first_book = rng.integers(config.num_books)
    trader_books = (np.arange(config.num_traders) + first_book) % config.num_books
    headroom = rng.uniform(1.3, 1.8, size=config.num_books)
    return Universe(names, ratings, scores.astype(np.int64), shares, traders,
                    trader_books.astype(np.int64), books, headroom)
