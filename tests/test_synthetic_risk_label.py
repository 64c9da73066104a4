"""The risk label (ml.synthetic.risk_label): closed forms against Monte Carlo of the same model,
monotonicity in the inputs, extreme inputs, the trades-table round trip and the calibration."""
import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest

from ml.core.metrics import roc_auc
from ml.synthetic import risk_label as rl
from ml.synthetic.catalog import RATING_PROBABILITIES, RATINGS
from ml.synthetic.options import black76_price, strike_for_delta
from ml.synthetic.risk_label import (LOSS_HORIZON_YEARS, LOSS_THRESHOLD_USD, RiskFeatures,
                                     high_risk_probability, risk_features_from_trades)

DRAWS = 200_000


def generator_like_features(n=200_000, seed=7):
    """Risk inputs distributed like the generator's trades (the calibration population)."""
    rng = np.random.default_rng(seed)
    notional_usd = np.exp(14.0 + 1.2 * rng.standard_normal(n))
    is_power = rng.random(n) < 0.26
    tenor = np.minimum(np.floor(rng.exponential(4.0, n)), 24.0)
    base = np.where(is_power, 0.55, 0.38)
    vol = np.clip(base * np.exp(0.35 * rng.standard_normal(n)) * (1 + 0.6 * np.exp(-tenor / 3)),
                  0.15, 1.2)
    forward = np.where(is_power, 90.0, 60.0) * np.exp(0.5 * rng.standard_normal(n))
    fx = rng.choice([1.0, 1.08, 1.27], n, p=[0.5, 0.35, 0.15])
    volume = notional_usd / (forward * fx)
    option = rng.random(n) < 0.15
    is_call = rng.random(n) < 0.5
    code = np.where(option, np.where(is_call, 1.0, -1.0), 0.0)
    days_to_start = np.where(tenor == 0, 1.0, tenor * 30.4 - rng.uniform(0, 29, n))
    expiry = np.maximum(days_to_start - 3.0, 1.0) / 365.0
    delta = rng.uniform(0.1, 0.9, n)
    strike = np.where(option, strike_for_delta(forward, vol, expiry, delta, is_call), 0.0)
    swap = ~option & (rng.random(n) < 0.25)
    months = np.where(swap, rng.integers(1, 25, n), 1)
    end = (days_to_start + 30.4 * months) / 365.0
    rating = rng.choice(len(RATINGS), n, p=RATING_PROBABILITIES).astype(float)
    share = 1.0 / (np.arange(40) + 1.0) ** 0.8
    share /= share.sum()
    cp_share = share[rng.choice(40, n, p=share)]
    return RiskFeatures(
        forward_price=forward, strike=strike, option_code=code,
        time_to_expiry_years=np.where(option, expiry, 0.0), volume=volume, fx_to_usd=fx,
        direction_sign=np.where(rng.random(n) < 0.5, 1.0, -1.0), volatility=vol,
        time_to_delivery_end_years=end, rating_score=rating, counterparty_share=cp_share)


def _features(n=1, **overrides):
    """One linear BBB buy of about USD 1.2m notional (10,000 units at 120) by default."""
    values = dict(forward_price=120.0, strike=0.0, option_code=0.0, time_to_expiry_years=0.0,
                  volume=10_000.0, fx_to_usd=1.0, direction_sign=1.0, volatility=0.6,
                  time_to_delivery_end_years=0.5, rating_score=3.0, counterparty_share=0.02)
    values.update(overrides)
    return RiskFeatures(**{k: np.broadcast_to(np.asarray(v, dtype=float), (n,)).copy()
                           for k, v in values.items()})


def _forward_draws(forward, volatility, horizon, seed):
    sd = volatility * np.sqrt(horizon)
    z = np.random.default_rng(seed).standard_normal(DRAWS)
    return forward * np.exp(sd * z - 0.5 * sd ** 2)


def _assert_within_three_standard_errors(probability, hits):
    estimate = hits.mean()
    standard_error = np.sqrt(max(probability * (1 - probability), 1e-6) / DRAWS)
    assert abs(probability - estimate) < 3 * standard_error, (probability, estimate)


@pytest.mark.parametrize("direction", [1.0, -1.0])
def test_linear_market_probability_matches_monte_carlo(direction):
    f = _features(direction_sign=direction, volume=25_000.0)
    forward_h = _forward_draws(120.0, 0.6, LOSS_HORIZON_YEARS, seed=1)
    loss = -direction * 25_000.0 * (forward_h - 120.0)
    probability = rl.market_loss_probability(f)[0]
    assert 0.05 < probability < 0.45
    _assert_within_three_standard_errors(probability, loss > LOSS_THRESHOLD_USD)


@pytest.mark.parametrize("direction", [1.0, -1.0])
def test_linear_replacement_cost_probability_matches_monte_carlo(direction):
    f = _features(direction_sign=direction, fx_to_usd=1.27, volume=4_000.0)
    horizon = rl.exposure_horizon_years(f)[0]
    forward_t = _forward_draws(120.0, 0.6, horizon, seed=2)
    replacement_cost = np.maximum(direction * 4_000.0 * 1.27 * (forward_t - 120.0), 0.0)
    probability = rl.replacement_cost_probability(f)[0]
    assert 0.05 < probability < 0.45
    _assert_within_three_standard_errors(probability, replacement_cost > LOSS_THRESHOLD_USD)


OPTION_CASES = [  # (is_call, direction, strike, time to expiry, volume)
    (True, 1.0, 130.0, 0.5, 40_000.0), (False, 1.0, 110.0, 0.5, 40_000.0),
    (True, -1.0, 125.0, 0.25, 30_000.0), (False, -1.0, 115.0, 0.25, 30_000.0),
    (True, -1.0, 120.0, 0.02, 30_000.0),  # expires inside the horizon: intrinsic at the horizon
    (False, 1.0, 150.0, 1.5, 20_000.0)]


@pytest.mark.parametrize("is_call, direction, strike, expiry, volume", OPTION_CASES)
def test_option_market_probability_matches_monte_carlo_revaluation(is_call, direction, strike,
                                                                   expiry, volume):
    f = _features(option_code=1.0 if is_call else -1.0, direction_sign=direction, strike=strike,
                  time_to_expiry_years=expiry, volume=volume)
    forward_h = _forward_draws(120.0, 0.6, LOSS_HORIZON_YEARS, seed=3)
    value_now = black76_price(120.0, strike, 0.6, expiry, is_call)
    value_h = black76_price(forward_h, strike, 0.6, max(expiry - LOSS_HORIZON_YEARS, 0.0),
                            is_call)
    loss = direction * volume * (value_now - value_h)
    probability = rl.market_loss_probability(f)[0]
    assert 0.02 < probability < 0.98
    _assert_within_three_standard_errors(probability, loss > LOSS_THRESHOLD_USD)


@pytest.mark.parametrize("is_call", [True, False])
def test_long_option_replacement_cost_matches_monte_carlo_and_short_has_none(is_call):
    f = _features(n=2, option_code=1.0 if is_call else -1.0, direction_sign=[1.0, -1.0],
                  strike=120.0, time_to_expiry_years=0.3, volume=20_000.0,
                  time_to_delivery_end_years=0.4)
    forward_t = _forward_draws(120.0, 0.6, 0.4, seed=4)
    value_t = 20_000.0 * black76_price(forward_t, 120.0, 0.6, 0.0, is_call)
    probability = rl.replacement_cost_probability(f)
    _assert_within_three_standard_errors(probability[0], value_t > LOSS_THRESHOLD_USD)
    assert probability[1] == 0.0


def test_long_option_worth_less_than_the_threshold_cannot_lose_it():
    # 5,000 units of a far out-of-the-money call worth well under USD 150k in total.
    f = _features(n=2, option_code=[1.0, -1.0], strike=[200.0, 60.0], time_to_expiry_years=0.5,
                  volume=5_000.0)
    premium_usd = 5_000.0 * black76_price(120.0, np.array([200.0, 60.0]), 0.6, 0.5,
                                          np.array([True, False]))
    assert np.all(premium_usd < LOSS_THRESHOLD_USD)
    np.testing.assert_array_equal(rl.market_loss_probability(f), 0.0)
    # Shorting the same options can lose more than the threshold.
    assert np.all(rl.market_loss_probability(dataclasses.replace(
        f, direction_sign=np.array([-1.0, -1.0]), volume=np.array([50_000.0, 50_000.0]))) > 0)


@pytest.mark.parametrize("option_code, direction", [(0.0, 1.0), (0.0, -1.0), (1.0, 1.0),
                                                    (-1.0, -1.0)])
def test_worse_rating_and_larger_share_give_a_higher_probability(option_code, direction):
    f = _features(n=len(RATINGS), rating_score=np.arange(len(RATINGS)), option_code=option_code,
                  direction_sign=direction, strike=125.0, time_to_expiry_years=0.4,
                  volume=20_000.0)
    by_rating = high_risk_probability(f)
    short_option = option_code != 0 and direction < 0
    if short_option:  # the premium was received: no replacement cost, the rating is irrelevant
        np.testing.assert_array_equal(by_rating, by_rating[0])
        return
    assert np.all(np.diff(by_rating) > 0)
    shares = _features(n=3, counterparty_share=[0.01, 0.04, 0.16], option_code=option_code,
                       direction_sign=direction, strike=125.0, time_to_expiry_years=0.4,
                       rating_score=5.0, volume=20_000.0)
    by_share = high_risk_probability(shares)
    assert by_share[0] == by_share[1] < by_share[2]


@pytest.mark.parametrize("option_code, direction", [(0.0, 1.0), (0.0, -1.0), (1.0, 1.0),
                                                    (-1.0, 1.0), (1.0, -1.0), (-1.0, -1.0)])
def test_larger_notional_and_higher_volatility_give_a_higher_probability(option_code, direction):
    volume = np.geomspace(1e3, 1e6, 12)
    f = _features(n=12, volume=volume, option_code=option_code, direction_sign=direction,
                  strike=120.0, time_to_expiry_years=0.3)
    by_size = high_risk_probability(f)
    assert np.all(np.diff(by_size) >= -1e-12) and by_size[-1] > by_size[0] + 0.2
    g = _features(n=6, volatility=np.linspace(0.15, 1.2, 6), volume=20_000.0,
                  option_code=option_code, direction_sign=direction, strike=120.0,
                  time_to_expiry_years=0.3)
    by_volatility = high_risk_probability(g)
    assert by_volatility[-1] > by_volatility[0] + 0.1


def test_extreme_inputs_give_finite_probabilities_in_the_unit_interval():
    grid = np.array(np.meshgrid(
        [1e-3, 1.0, 1e4, 1e9],          # volume
        [0.01, 0.6, 3.0],               # volatility
        [0.0, 1.0, -1.0],               # linear, call, put
        [1.0, -1.0],                    # direction
        [0.0, 1e-9, 0.01, 5.0],         # time to expiry
        [0.0, 6.0],                     # rating AAA, CCC
        [0.001, 0.5])).reshape(7, -1)   # counterparty share
    n = grid.shape[1]
    f = _features(n=n, volume=grid[0], volatility=grid[1], option_code=grid[2],
                  direction_sign=grid[3], time_to_expiry_years=grid[4], rating_score=grid[5],
                  counterparty_share=grid[6], strike=np.where(grid[2] != 0, 100.0, 0.0),
                  time_to_delivery_end_years=np.where(grid[4] > 1, 5.5, 0.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for weight in (0.0, 0.5, 1.0):
            p = high_risk_probability(f, weight)
            assert np.all(np.isfinite(p)) and np.all((p >= 0) & (p <= 1))
    huge = high_risk_probability(f)[grid[0] == 1e9]
    assert huge.max() > 0.99


def test_concept_weight_blends_log_odds_and_leaves_unweighted_trades_unchanged():
    f = generator_like_features(2_000, seed=3)
    base = high_risk_probability(f)
    weight = np.where(np.arange(2_000) % 2 == 0, 0.0, 0.7)
    blended = high_risk_probability(f, weight)
    np.testing.assert_array_equal(blended[weight == 0], base[weight == 0])
    logit = rl._logit
    np.testing.assert_allclose(
        logit(blended[weight > 0]),
        0.3 * logit(base[weight > 0]) + 0.7 * logit(rl.alternative_probability(f)[weight > 0]),
        rtol=1e-6, atol=1e-9)  # logit(sigmoid(x)) loses digits where p is within 1e-9 of 1
    np.testing.assert_allclose(high_risk_probability(f, 1.0), rl.alternative_probability(f),
                               rtol=1e-9, atol=2e-15)


def _hand_built_trades():
    return pd.DataFrame({
        "trade_id": ["T1", "T2", "T3", "T4"],
        "trade_date": ["2024-03-04", "2024-03-04", "2024-03-05", "2024-03-06"],
        "instrument": ["swap", "option", "option", "future"],
        "direction": ["buy", "sell", "buy", "sell"],
        "volume": [60_000.0, 20_000.0, 500_000.0, 3_000.0],
        "price": [95.1, 4.2, 0.81, 12.47],
        "delivery_start": ["2024-05-01", "2024-07-01", "2024-04-01", "2024-04-01"],
        "delivery_end": ["2024-10-31", "2024-07-31", "2024-04-30", "2024-04-30"],
        "delivery_months": [6, 1, 1, 1],
        "tenor_months": [2, 4, 1, 1],
        "forward_price": [95.0, 120.0, 12.5, 12.5],
        "option_type": ["none", "put", "call", "none"],
        "strike": [0.0, 110.0, 13.0, 0.0],
        "expiry_date": ["", "2024-06-27", "2024-03-27", ""],
        "premium": [0.0, 84_000.0, 405_000.0, 0.0],
        "counterparty_rating": ["BBB", "CCC", "AA", "B"],
        "volatility": [0.55, 0.9, 0.45, 0.5],
        "notional": [5_706_000.0, 2_400_000.0, 6_250_000.0, 37_410.0],
        "notional_usd": [6_162_480.0, 3_048_000.0, 6_250_000.0, 37_410.0 * 1.08],
        "counterparty_exposure_share": [0.02, 0.08, 0.165, 0.01],
    })


def test_risk_features_from_trades_rebuilds_every_input():
    f = risk_features_from_trades(_hand_built_trades())
    np.testing.assert_array_equal(f.option_code, [0, -1, 1, 0])
    np.testing.assert_array_equal(f.strike, [0, 110, 13, 0])
    np.testing.assert_allclose(f.time_to_expiry_years, [0, 115 / 365, 22 / 365, 0])
    np.testing.assert_allclose(f.fx_to_usd, [1.08, 1.27, 1.0, 1.08])
    np.testing.assert_array_equal(f.direction_sign, [1, -1, 1, -1])
    np.testing.assert_array_equal(f.rating_score, [3, 6, 1, 5])
    np.testing.assert_allclose(f.time_to_delivery_end_years, [241 / 365, 149 / 365, 56 / 365,
                                                              55 / 365])
    np.testing.assert_array_equal(f.volume, [60_000, 20_000, 500_000, 3_000])
    np.testing.assert_array_equal(f.counterparty_share, [0.02, 0.08, 0.165, 0.01])
    direct = RiskFeatures(
        forward_price=np.array([95.0, 120.0, 12.5, 12.5]), strike=np.array([0, 110, 13, 0.0]),
        option_code=np.array([0, -1, 1, 0.0]),
        time_to_expiry_years=np.array([0, 115, 22, 0]) / 365,
        volume=np.array([60_000, 20_000, 500_000, 3_000.0]),
        fx_to_usd=np.array([1.08, 1.27, 1.0, 1.08]), direction_sign=np.array([1, -1, 1, -1.0]),
        volatility=np.array([0.55, 0.9, 0.45, 0.5]),
        time_to_delivery_end_years=np.array([241, 149, 56, 55]) / 365,
        rating_score=np.array([3, 6, 1, 5.0]),
        counterparty_share=np.array([0.02, 0.08, 0.165, 0.01]))
    np.testing.assert_allclose(high_risk_probability(f), high_risk_probability(direct),
                               rtol=1e-12)
    p = high_risk_probability(f)
    # The USD 40k future cannot lose USD 150k (the forward would have to go below zero).
    assert np.all((p[:3] > 0) & (p[:3] < 1)) and p[3] == 0.0


def test_calibration_base_rate_and_bayes_optimal_auc():
    f = generator_like_features(100_000, seed=11)
    p = high_risk_probability(f)
    labels = np.random.default_rng(12).random(len(p)) < p
    assert 0.12 <= labels.mean() <= 0.30
    assert 0.80 <= roc_auc(labels=labels, scores=p) <= 0.93
    option = f.option_code != 0
    # Every input matters: shuffling it costs Bayes AUC (direction: among options).
    rng = np.random.default_rng(13)
    for field, subset in [("volume", None), ("volatility", None), ("rating_score", None),
                          ("counterparty_share", None), ("direction_sign", option)]:
        rows = np.arange(len(p)) if subset is None else np.flatnonzero(subset)
        values = getattr(f, field).copy()
        values[rows] = values[rng.permutation(rows)]
        shuffled = high_risk_probability(dataclasses.replace(f, **{field: values}))
        assert (roc_auc(labels=labels[rows], scores=shuffled[rows])
                < roc_auc(labels=labels[rows], scores=p[rows]) - 0.002), field
