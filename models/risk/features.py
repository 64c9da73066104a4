"""Which raw trade columns the risk model reads, and how each is transformed.

`high_risk_probability` is the generator's ground truth: kept in the data for the Bayes-optimal
AUC, never a feature. Categorical vocabularies start with the known values (reserved tokens) so
ids stay stable across spans, which keeps warm-started embeddings meaningful.
"""
from __future__ import annotations

from ml.synthetic import catalog

LABEL_KEY = "high_risk"
BAYES_PROBABILITY_KEY = "high_risk_probability"

# Heavy-tailed and positive: log1p before z-scoring.
LOG_NUMERIC_FEATURES = ["volume", "price", "notional", "notional_usd", "forward_price", "strike",
                        "premium"]
NUMERIC_FEATURES = ["volatility", "tenor_months", "delivery_months",
                    "counterparty_exposure_share"]

CATEGORICAL_DOMAINS = {
    "commodity": list(catalog.DEFAULT_COMMODITIES),
    "region": list(catalog.DEFAULT_REGIONS),
    "instrument": list(catalog.INSTRUMENTS),
    "option_type": ["none", "call", "put"],
    "direction": ["buy", "sell"],
    "counterparty_rating": list(catalog.RATINGS),
}
OOV_BUCKETS = 1

RAW_FEATURES = LOG_NUMERIC_FEATURES + NUMERIC_FEATURES + list(CATEGORICAL_DOMAINS)
NOT_FEATURES = [LABEL_KEY, BAYES_PROBABILITY_KEY]


def transformed_name(key: str) -> str:
    return f"{key}_xf"


def vocabulary_name(key: str) -> str:
    return f"{key}_vocab"
