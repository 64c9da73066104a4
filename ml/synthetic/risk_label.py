"""Risk ground truth: the probability that a trade loses more than a threshold, market or credit.

``high_risk_probability`` is the probability of a defined outcome, computed in closed form (or
by a one-dimensional root search) from the generator's own forward model and the trade's
columns; ``high_risk`` ~ Bernoulli(high_risk_probability). It is ground truth for measuring the
best achievable AUC and must never be a model feature.

Outcome. A trade is high risk when, within the documented horizons, the firm loses more than
``LOSS_THRESHOLD_USD`` on it, either

* market: its mark-to-market falls by more than the threshold over the next
  ``LOSS_HORIZON_TRADING_DAYS`` (10 trading days, the Basel liquidation horizon), or
* credit: its counterparty defaults within the exposure horizon while the trade's replacement
  cost (what the firm loses by re-buying the trade elsewhere) exceeds the threshold,

and p = 1 - (1 - p_market) (1 - p_credit) (the two treated as independent).

Forward model (the generator's martingale forward, constant volatility): over a horizon of
h years, ln F_h = ln F + sigma sqrt(h) Z - sigma^2 h / 2, Z ~ N(0, 1), F = forward_price,
sigma = the trade's ``volatility`` (annualised; 252 trading days = 365 calendar days = one
year). Position sizes: q = volume x fx_to_usd is the USD change of the trade's value per unit
change of the forward; ``volume`` is the TOTAL volume of the delivery period, so a strip's q
already covers all its months (it is not multiplied by delivery_months again). s = +1 buy,
-1 sell.

* Linear (future, forward, swap), marked at the mid forward (the spread paid is sunk):
  value change s q (F_h - F). A buy loses more than H when F_h < F - H / q, a sell when
  F_h > F + H / q: normal CDFs of the log-normal, P = 0 where the bound is not positive.
* Options: position value s q V(F_h, K, sigma, T - h), V the Black-76 premium per unit
  (``ml.synthetic.options``, no discounting), marked at mid against s q V(F, K, sigma, T), so
  the loss includes the time decay over the horizon. V is monotone in F_h, so the event is
  "F_h beyond a critical forward", found by vectorised bisection on Z in [-40, 40]
  (``BISECTION_STEPS`` halvings, error below 1e-10 in Z). A long option cannot lose more than
  its value: P = 0 when q V(F, K, sigma, T) <= H; a short put cannot lose more than q K.
  Options expiring inside the horizon (T < h) are valued at intrinsic max(+-(F_h - K), 0) at
  the horizon: the forward at the horizon stands in for the forward at expiry (an
  approximation; the payoff is assumed held as cash until the horizon).

Credit: P(default within t) = 1 - (1 - PD)^t with PD the annual default probability of the
counterparty's rating x ``PD_STRESS_MULTIPLIER`` (a downturn/stressed PD), t the exposure
horizon = the time from trade date to delivery end, floored at the loss horizon (the margin
period of risk) and capped at ``EXPOSURE_HORIZON_CAP_YEARS``. The replacement cost at t is
max(s q (F_t - F), 0) for linear trades, q V(F_t, K, sigma, max(T - t, 0)) for long options
(premium paid up front; after expiry the exercised payoff max(+-(F_t - K), 0)) and 0 for short
options (the premium was received, the counterparty owes nothing). p_credit =
min(1, P(default) x concentration) x P(replacement cost at t > H), with concentration
(c / 0.04)^CONCENTRATION_ELASTICITY for counterparty_exposure_share c above 0.04 (a large
share of the book on one name: wrong-way risk and a close-out that moves the market), 1
otherwise. Default and the forward are independent apart from that multiplier.

Annual PDs (``ANNUAL_DEFAULT_PROBABILITY``): approximate S&P Global long-run average one-year
corporate default rates (1981-2023): AAA 0.01%, AA 0.02%, A 0.05%, BBB 0.15%, BB 0.60%,
B 3.0%, CCC/C 25%.

Concept change (``concept_weight`` w per trade): logit p = (1 - w) logit p_baseline +
w logit p_alternative, where the alternative outcome is a wave of counterparty failures: the
trade is high risk when its counterparty defaults within the exposure horizon, whatever the
trade's size (``default_probability`` with the PD multiplied by a further
ALTERNATIVE_PD_MULTIPLIER). Rating, concentration and tenor then drive the risk and size no
longer does (on 20k generator trades: the correlation of log notional with the label falls
from 0.40 to 0.06, the rating's rises from 0.03 to 0.40, the base rate stays about 14%, and
the baseline probability ranks the new labels at AUC 0.55). Trades with w = 0 get p_baseline
exactly.
Probabilities lie in [0, 1]; exact 0 happens (long options whose value is below H, small
trades whose tail probability underflows).

Calibration (``tests/test_synthetic_risk_label.py::generator_like_features``: notional_usd
log-normal around e^14 USD with log sd 1.2, volatility 0.15-1.2 (power higher, short tenors
higher), ratings AAA..CCC with probabilities (0.03, 0.10, 0.27, 0.35, 0.15, 0.07, 0.03),
the generator's Zipf(0.8) shares of 40 counterparties, 15% options half calls with strikes at
forward deltas 0.1-0.9, tenors 0-24 months, a quarter of linear trades 1-24 month strips),
200k trades, threshold USD 150k over 10 trading days, PD stress x5, concentration elasticity 2:

* base rate 16.3% (market 15.2%, credit 1.3% on average); Bayes-optimal AUC
  roc_auc(Bernoulli labels, probability) = 0.838 (0.838-0.842 on 20k trades, three seeds);
  options alone 0.903. Deciles of the probability run from 0.0 to 0.47 (mean of the top
  decile): a 10-day loss of a linear trade is symmetric, so p_market stays below 1/2 and
  only credit (CCC, concentrated) or long options' time decay push p above it (max 0.95);
  2.2% of trades have p = 0 exactly.
* mean p by rating AAA 0.151, AA 0.153, A 0.154, BBB 0.156, BB 0.164, B 0.193, CCC 0.282.
* Every input matters; Bayes AUC with that input shuffled across trades: size (volume) 0.554,
  volatility 0.800, rating 0.828, delivery end 0.835, counterparty share 0.835 (all from
  0.838); among options, direction 0.836 and strike/expiry 0.769 (from 0.903).
* On the generator's own trades (seed 42, 200k trades, 2023-2024): base rate 13.1%, Bayes
  AUC 0.879; the linear trades' realised 10-day loss beyond the threshold in the generator's
  price paths occurs at 13.6% against a mean probability of 13.8%, ranked at AUC 0.86.
"""
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtr

from ml.synthetic.catalog import RATINGS, TRADING_DAYS_PER_YEAR
from ml.synthetic.options import black76_price, total_sd, undiscounted_value, year_fraction

LOSS_HORIZON_TRADING_DAYS = 10
LOSS_HORIZON_YEARS = LOSS_HORIZON_TRADING_DAYS / TRADING_DAYS_PER_YEAR
LOSS_THRESHOLD_USD = 150_000.0
# Approximate S&P long-run average one-year default rates, AAA .. CCC (RATINGS order).
ANNUAL_DEFAULT_PROBABILITY = np.array([0.0001, 0.0002, 0.0005, 0.0015, 0.006, 0.03, 0.25])
PD_STRESS_MULTIPLIER = 5.0
EXPOSURE_HORIZON_CAP_YEARS = 1.0
CONCENTRATION_THRESHOLD_SHARE = 0.04
CONCENTRATION_ELASTICITY = 2.0
ALTERNATIVE_PD_MULTIPLIER = 10.0
BISECTION_STEPS = 40
_Z_BOUND = 40.0
_LOGIT_CLIP = 1e-15

OPTION_CODES = {"call": 1.0, "put": -1.0, "none": 0.0}


@dataclass(frozen=True)
class RiskFeatures:
    """Per-trade inputs of the risk function: numpy float arrays of equal length.

    forward_price: mid forward of the delivery period on the trade day, trade currency per unit.
    strike: option strike, trade currency per unit (ignored for linear trades; 0.0 there).
    option_code: +1 call, -1 put, 0 linear (future/forward/swap): ``OPTION_CODES``.
    time_to_expiry_years: options: ACT/365 years from trade date to expiry_date
        (``options.year_fraction``); ignored for linear trades (0.0 there).
    volume: TOTAL volume over the delivery period, in the trade's unit (> 0).
    fx_to_usd: USD per unit of the trade currency (= notional_usd / notional; GBX is GBP/100).
    direction_sign: +1 buy, -1 sell.
    volatility: annualised volatility of the delivery period's forward (the trade column).
    time_to_delivery_end_years: ACT/365 years from trade date to delivery_end (credit exposure).
    rating_score: counterparty rating index in RATINGS, AAA 0 .. CCC 6.
    counterparty_share: counterparty_exposure_share, in (0, 1].
    """

    forward_price: np.ndarray
    strike: np.ndarray
    option_code: np.ndarray
    time_to_expiry_years: np.ndarray
    volume: np.ndarray
    fx_to_usd: np.ndarray
    direction_sign: np.ndarray
    volatility: np.ndarray
    time_to_delivery_end_years: np.ndarray
    rating_score: np.ndarray
    counterparty_share: np.ndarray


def risk_features_from_trades(trades: pd.DataFrame) -> RiskFeatures:
    """Rebuild the risk function's inputs from a trades table (for audits and tests).

    Uses instrument, option_type, forward_price, strike, expiry_date, trade_date, volatility,
    volume, notional, notional_usd, direction, delivery_end, counterparty_rating and
    counterparty_exposure_share.
    """
    is_option = (trades["instrument"] == "option").to_numpy()
    option_code = np.where(is_option, trades["option_type"].map(OPTION_CODES).to_numpy(float),
                           0.0)
    trade_day = pd.to_datetime(trades["trade_date"]).to_numpy("datetime64[D]")
    expiry = np.where(is_option, trades["expiry_date"].astype(str), "1970-01-01")
    expiry_day = pd.to_datetime(pd.Series(expiry, index=trades.index)).to_numpy("datetime64[D]")
    delivery_end = pd.to_datetime(trades["delivery_end"]).to_numpy("datetime64[D]")
    rating_score = pd.Series(range(len(RATINGS)), index=list(RATINGS), dtype=float)
    return RiskFeatures(
        forward_price=trades["forward_price"].to_numpy(float),
        strike=np.where(is_option, trades["strike"].to_numpy(float), 0.0),
        option_code=option_code,
        time_to_expiry_years=np.where(is_option, year_fraction(trade_day, expiry_day), 0.0),
        volume=trades["volume"].to_numpy(float),
        fx_to_usd=(trades["notional_usd"].to_numpy(float) / trades["notional"].to_numpy(float)),
        direction_sign=np.where(trades["direction"] == "buy", 1.0, -1.0),
        volatility=trades["volatility"].to_numpy(float),
        time_to_delivery_end_years=year_fraction(trade_day, delivery_end),
        rating_score=trades["counterparty_rating"].map(rating_score).to_numpy(float),
        counterparty_share=trades["counterparty_exposure_share"].to_numpy(float),
    )


def sigmoid(x):
    """Logistic function, overflow-free for large |x|."""
    return np.exp(-np.logaddexp(0.0, -np.asarray(x, dtype=float)))


def _logit(p):
    p = np.clip(p, _LOGIT_CLIP, 1.0 - _LOGIT_CLIP)
    return np.log(p) - np.log1p(-p)


def _standard_normal_bound(forward, bound, sd):
    """z with F_tau = bound, i.e. (ln(bound / F) + sd^2 / 2) / sd; -inf where bound <= 0.

    Where sd = 0 the forward does not move: z = -inf if bound < F, +inf if bound > F.
    """
    positive = bound > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.log(np.where(positive, bound, 1.0) / forward)
        z = np.where(sd > 0, (log_ratio + 0.5 * sd ** 2) / np.where(sd > 0, sd, 1.0),
                     np.where(log_ratio > 0, np.inf, -np.inf))
    return np.where(positive, z, -np.inf)


def _option_crossing_z(forward, strike, volatility, remaining, is_call, sd, level):
    """z* where V(F e^{sd z - sd^2/2}, K, sigma, remaining) crosses ``level``, in [-40, 40].

    V increases in z for calls and decreases for puts; bisection keeps the bracket [lo, hi]
    with V(lo) on the "below level" side (calls) or "above" side (puts). z* = -40 (+40)
    means the crossing lies beyond the bracket, which the normal CDF turns into 0 or 1.

    V is Black-76 (ml.synthetic.options.black76_price) with what does not depend on z taken
    out of the loop: sigma sqrt(T), ln K, and ln(F/K) as a sum instead of a log per step.
    """
    is_call = np.asarray(is_call, dtype=bool)
    strike = np.asarray(strike, dtype=float)
    _, live, safe_sd = total_sd(volatility, remaining)
    half_variance = 0.5 * safe_sd ** 2
    log_forward = np.log(forward) - 0.5 * sd ** 2
    log_moneyness_at_zero = log_forward - np.log(strike)
    lo = np.full(log_forward.shape, -_Z_BOUND)
    hi = np.full(log_forward.shape, _Z_BOUND)
    for _ in range(BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        moved = np.exp(log_forward + sd * mid)
        d1 = (log_moneyness_at_zero + sd * mid + half_variance) / safe_sd
        value = undiscounted_value(moved, strike, d1, d1 - safe_sd, live, is_call)
        up = np.where(is_call, value > level, value <= level)
        hi = np.where(up, mid, hi)
        lo = np.where(up, lo, mid)
    return 0.5 * (lo + hi)


def _option_value_probability(forward, strike, volatility, remaining, is_call, sd, level,
                              above: bool):
    """P(V(F_tau) > level) (above) or P(V(F_tau) < level) for one option per entry."""
    return _value_probability(
        _option_crossing_z(forward, strike, volatility, remaining, is_call, sd, level),
        is_call, above)


def _value_probability(z, is_call, above: bool):
    """P(V > level) (above) or P(V < level) from the crossing z*: a call is worth more than
    the level iff Z > z*, a put iff Z < z*."""
    sign = np.where(is_call, -1.0, 1.0) if above else np.where(is_call, 1.0, -1.0)
    return ndtr(sign * z)


def _horizon_sd(f: RiskFeatures, horizon_years) -> np.ndarray:
    return np.maximum(np.asarray(f.volatility, dtype=float), 0.0) * np.sqrt(horizon_years)


def _position_terms(f: RiskFeatures, horizon_years):
    """(forward, sd of ln F over the horizon, forward move worth LOSS_THRESHOLD_USD, is buy,
    is option) per trade."""
    forward = np.asarray(f.forward_price, dtype=float)
    sd = _horizon_sd(f, horizon_years) * np.ones_like(forward)
    step = LOSS_THRESHOLD_USD / (np.asarray(f.volume, dtype=float)
                                 * np.asarray(f.fx_to_usd, dtype=float))
    return (forward, sd, step, np.asarray(f.direction_sign) > 0,
            np.asarray(f.option_code) != 0)


def _linear_move_probability(forward, step, sd, down) -> np.ndarray:
    """P(F_h < F - step) where ``down``, else P(F_h > F + step), under the log-normal."""
    return np.where(down, ndtr(_standard_normal_bound(forward, forward - step, sd)),
                    ndtr(-_standard_normal_bound(forward, forward + step, sd)))


def market_loss_probability(f: RiskFeatures) -> np.ndarray:
    """P(mark-to-market loss over LOSS_HORIZON_YEARS > LOSS_THRESHOLD_USD), per trade."""
    forward, sd, step, buy, option = _position_terms(f, LOSS_HORIZON_YEARS)
    probability = _linear_move_probability(forward, step, sd, down=buy)
    if np.any(option):
        probability = probability.copy()
        i = np.flatnonzero(option)
        is_call, strike, vol, expiry = _option_terms(f, i, forward)
        value_now = black76_price(forward[i], strike, vol, expiry, is_call)
        remaining = np.maximum(expiry - LOSS_HORIZON_YEARS, 0.0)
        long = buy[i]
        # Long: value must fall below value_now - H/q; short: rise above value_now + H/q.
        level = np.where(long, value_now - step[i], value_now + step[i])
        # One crossing serves both sides: P(V > level) = 1 - P(V < level) (V is continuous).
        z = _option_crossing_z(forward[i], strike, vol, remaining, is_call, sd[i], level)
        p_long = _value_probability(z, is_call, above=False)
        p_short = _value_probability(z, is_call, above=True)
        # Exact zeros: a long option cannot lose more than its value, a short put more than K.
        impossible = np.where(long, level <= 0, ~is_call & (level >= strike))
        probability[i] = np.where(impossible, 0.0, np.where(long, p_long, p_short))
    return probability


def _option_terms(f: RiskFeatures, rows: np.ndarray, forward: np.ndarray):
    """(is_call, strike, volatility, time to expiry) of the option trades at ``rows``."""
    ones = np.ones_like(forward)
    return (np.asarray(f.option_code)[rows] > 0, np.asarray(f.strike, dtype=float)[rows],
            (np.asarray(f.volatility, dtype=float) * ones)[rows],
            (np.asarray(f.time_to_expiry_years, dtype=float) * ones)[rows])


def exposure_horizon_years(f: RiskFeatures) -> np.ndarray:
    """Credit exposure horizon: time to delivery end within [loss horizon, cap]."""
    return np.clip(np.asarray(f.time_to_delivery_end_years, dtype=float), LOSS_HORIZON_YEARS,
                   EXPOSURE_HORIZON_CAP_YEARS)


def default_probability(f: RiskFeatures, pd_multiplier=1.0) -> np.ndarray:
    """P(counterparty default within the exposure horizon t), stressed and concentration-scaled.

    1 - exp(-lambda m c t): lambda = -ln(1 - PD) the rating's annual default intensity,
    m = PD_STRESS_MULTIPLIER x pd_multiplier, c the concentration multiplier.
    """
    annual = ANNUAL_DEFAULT_PROBABILITY[np.asarray(f.rating_score).astype(np.int64)]
    share = np.asarray(f.counterparty_share, dtype=float)
    concentration = (np.maximum(share / CONCENTRATION_THRESHOLD_SHARE, 1.0)
                     ** CONCENTRATION_ELASTICITY)
    intensity = -np.log1p(-annual) * PD_STRESS_MULTIPLIER * pd_multiplier * concentration
    return -np.expm1(-intensity * exposure_horizon_years(f))


def replacement_cost_probability(f: RiskFeatures) -> np.ndarray:
    """P(replacement cost at the exposure horizon > LOSS_THRESHOLD_USD), per trade."""
    horizon = exposure_horizon_years(f) * np.ones_like(np.asarray(f.forward_price, dtype=float))
    forward, sd, step, buy, option = _position_terms(f, horizon)
    probability = _linear_move_probability(forward, step, sd, down=~buy)
    if np.any(option):
        probability = probability.copy()
        i = np.flatnonzero(option)
        is_call, strike, vol, expiry = _option_terms(f, i, forward)
        remaining = np.maximum(expiry - horizon[i], 0.0)
        p_long = _option_value_probability(forward[i], strike, vol, remaining, is_call, sd[i],
                                           step[i], above=True)
        # A put is worth at most K: it never exceeds a level >= K. Short options owe, never owed.
        p_long = np.where(~is_call & (step[i] >= strike), 0.0, p_long)
        probability[i] = np.where(buy[i], p_long, 0.0)
    return probability


def credit_loss_probability(f: RiskFeatures, pd_multiplier=1.0) -> np.ndarray:
    """P(default within the exposure horizon and replacement cost > threshold)."""
    return default_probability(f, pd_multiplier) * replacement_cost_probability(f)


def _combine(p_market, p_credit):
    return 1.0 - (1.0 - p_market) * (1.0 - p_credit)


def baseline_probability(f: RiskFeatures) -> np.ndarray:
    """1 - (1 - p_market)(1 - p_credit): the normal regime's P(high risk)."""
    return _combine(market_loss_probability(f), credit_loss_probability(f))


def alternative_probability(f: RiskFeatures) -> np.ndarray:
    """Concept-changed P(high risk): the counterparty defaults within the exposure horizon."""
    return default_probability(f, ALTERNATIVE_PD_MULTIPLIER)


def baseline_log_odds(f: RiskFeatures) -> np.ndarray:
    """logit of baseline_probability, probabilities clipped to [1e-15, 1 - 1e-15]."""
    return _logit(baseline_probability(f))


def alternative_log_odds(f: RiskFeatures) -> np.ndarray:
    """logit of alternative_probability, probabilities clipped to [1e-15, 1 - 1e-15]."""
    return _logit(alternative_probability(f))


def high_risk_probability(features: RiskFeatures, concept_weight=0.0) -> np.ndarray:
    """P(high_risk): baseline_probability, or sigmoid((1 - w) L_base + w L_alt) where w != 0.

    ``concept_weight`` w is a scalar or one weight per trade, in [0, 1].
    """
    probability = baseline_probability(features)
    weight = np.broadcast_to(np.asarray(concept_weight, dtype=float), probability.shape)
    if np.any(weight != 0):
        blended = sigmoid((1.0 - weight) * _logit(probability)
                          + weight * alternative_log_odds(features))
        probability = np.where(weight != 0, blended, probability)
    return probability
