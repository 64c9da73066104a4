"""Risk ground truth: the probability that a trade is high risk, as a function of its features.

The formula is documented in ``ml.synthetic_data_generator``'s module docstring; the constants
below are its coefficients. It only uses columns of the trades table (notional_usd, volatility,
tenor_months, counterparty_rating, instrument, commodity, direction,
counterparty_exposure_share), so a model can learn it; ``high_risk_probability`` itself is
ground truth for measuring the best achievable AUC and must never be a model feature.
"""
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.synthetic.catalog import RATINGS

NOTIONAL_LOG_CENTER = 14.0
NOTIONAL_LOG_SCALE = 1.2
CONCENTRATION_THRESHOLD_SHARE = 0.04
BASELINE_INTERCEPT = -4.4
ALTERNATIVE_INTERCEPT = -6.0


@dataclass(frozen=True)
class RiskFeatures:
    """Per-trade inputs of the risk function, as numpy arrays of equal length."""

    notional_usd: np.ndarray
    volatility: np.ndarray
    tenor_months: np.ndarray
    rating_score: np.ndarray
    is_option: np.ndarray
    is_power: np.ndarray
    is_emissions: np.ndarray
    is_sell: np.ndarray
    counterparty_share: np.ndarray


def risk_features_from_trades(trades: pd.DataFrame) -> RiskFeatures:
    """Rebuild the risk function's inputs from a trades table (for audits and tests)."""
    rating_score = pd.Series(range(len(RATINGS)), index=list(RATINGS))
    return RiskFeatures(
        notional_usd=trades["notional_usd"].to_numpy(float),
        volatility=trades["volatility"].to_numpy(float),
        tenor_months=trades["tenor_months"].to_numpy(float),
        rating_score=trades["counterparty_rating"].map(rating_score).to_numpy(float),
        is_option=(trades["instrument"] == "option").to_numpy(float),
        is_power=(trades["commodity"] == "power").to_numpy(float),
        is_emissions=(trades["commodity"] == "emissions").to_numpy(float),
        is_sell=(trades["direction"] == "sell").to_numpy(float),
        counterparty_share=trades["counterparty_exposure_share"].to_numpy(float),
    )


def sigmoid(x):
    """Logistic function, overflow-free for large |x|."""
    return np.exp(-np.logaddexp(0.0, -np.asarray(x, dtype=float)))


def _size(f: RiskFeatures) -> np.ndarray:
    return (np.log(f.notional_usd) - NOTIONAL_LOG_CENTER) / NOTIONAL_LOG_SCALE


def _volatility_regime(f: RiskFeatures) -> np.ndarray:
    return np.tanh((f.volatility - 0.5) / 0.25)


def baseline_log_odds(f: RiskFeatures) -> np.ndarray:
    """Log-odds of high risk in the normal regime (see the module docs for the formula)."""
    size = _size(f)
    long_tenor = np.log1p(f.tenor_months)
    concentration = np.maximum(np.log(f.counterparty_share / CONCENTRATION_THRESHOLD_SHARE), 0)
    return (BASELINE_INTERCEPT
            + 1.2 * size + 0.3 * np.maximum(size - 0.5, 0.0) ** 2
            + 2.4 * _volatility_regime(f)
            + 0.5 * f.rating_score
            + 0.35 * long_tenor
            + 0.5 * f.is_power
            + 0.3 * f.is_option
            + 1.8 * f.is_option * sigmoid((f.volatility - 0.6) / 0.08)
            + 0.35 * np.maximum(f.rating_score - 3.0, 0.0) * long_tenor
            + 0.8 * f.is_option * f.is_sell
            + 0.9 * concentration)


def alternative_log_odds(f: RiskFeatures) -> np.ndarray:
    """Log-odds after a concept change: credit quality, tenor and emissions drive the risk."""
    size = _size(f)
    long_tenor = np.log1p(f.tenor_months)
    return (ALTERNATIVE_INTERCEPT
            + 0.3 * size
            - 1.0 * _volatility_regime(f)
            + 0.9 * f.rating_score
            + 0.8 * long_tenor
            - 0.6 * f.is_power
            + 1.5 * f.is_emissions
            + 0.8 * f.is_sell)


def high_risk_probability(features: RiskFeatures, concept_weight=0.0) -> np.ndarray:
    """P(high_risk) = sigmoid((1 - w) * baseline + w * alternative), w per trade or scalar."""
    weight = np.asarray(concept_weight, dtype=float)
    log_odds = baseline_log_odds(features)
    if np.any(weight != 0):
        log_odds = (1.0 - weight) * log_odds + weight * alternative_log_odds(features)
    return sigmoid(log_odds)
