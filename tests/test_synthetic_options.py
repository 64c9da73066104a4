"""Black-76 prices and Greeks (ml.synthetic.options) against independent reference values."""
import warnings

import numpy as np
import pytest

from ml.synthetic.options import (black76_delta, black76_gamma, black76_price, black76_vega,
                                  strike_for_delta, year_fraction)


def test_hull_black76_put_example():
    # Hull, Options, Futures and Other Derivatives (Black's model): F = K = 20, r = 9%,
    # sigma = 25%, T = 4 months: put = 1.12.
    discount = np.exp(-0.09 * 4 / 12)
    assert black76_price(20.0, 20.0, 0.25, 4 / 12, False, discount) == pytest.approx(1.12, abs=5e-3)


def test_reference_value_computed_by_hand():
    # F=100, K=110, sigma=0.3, T=0.5: sd=0.212132, d1=(ln(100/110)+0.0225)/sd=-0.343224,
    # d2=-0.555356; N(d1)=0.365712, N(d2)=0.289326; call = 36.5712 - 31.8259 = 4.7453.
    assert black76_price(100.0, 110.0, 0.3, 0.5, True) == pytest.approx(4.7453, abs=1e-3)


def test_put_call_parity():
    rng = np.random.default_rng(0)
    forward, strike = rng.uniform(5, 200, 500), rng.uniform(5, 200, 500)
    vol, t, d = rng.uniform(0.05, 2.0, 500), rng.uniform(0.0, 3.0, 500), rng.uniform(0.8, 1, 500)
    call = black76_price(forward, strike, vol, t, True, d)
    put = black76_price(forward, strike, vol, t, False, d)
    np.testing.assert_allclose(call - put, d * (forward - strike), atol=1e-9)


@pytest.mark.parametrize("is_call", [True, False])
def test_delta_gamma_vega_match_finite_differences(is_call):
    forward = np.array([50.0, 100.0, 80.0, 12.0])
    strike = np.array([55.0, 100.0, 60.0, 15.0])
    vol, t, d = np.array([0.3, 0.8, 0.5, 1.2]), np.array([0.25, 1.0, 0.05, 2.0]), 0.97
    h = 1e-4 * forward
    up = black76_price(forward + h, strike, vol, t, is_call, d)
    down = black76_price(forward - h, strike, vol, t, is_call, d)
    mid = black76_price(forward, strike, vol, t, is_call, d)
    np.testing.assert_allclose(black76_delta(forward, strike, vol, t, is_call, d),
                               (up - down) / (2 * h), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(black76_gamma(forward, strike, vol, t, is_call, d),
                               (up - 2 * mid + down) / h ** 2, rtol=1e-4)
    dv = 1e-5
    np.testing.assert_allclose(
        black76_vega(forward, strike, vol, t, is_call, d),
        (black76_price(forward, strike, vol + dv, t, is_call, d)
         - black76_price(forward, strike, vol - dv, t, is_call, d)) / (2 * dv), rtol=1e-6)


def test_expiry_gives_intrinsic_value_and_delta_step_without_warnings():
    forward = np.array([120.0, 80.0, 100.0, 120.0, 80.0, 100.0])
    call = np.array([True, True, True, False, False, False])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for t, vol in [(0.0, 0.3), (-0.01, 0.3), (1.0, 0.0)]:
            price = black76_price(forward, 100.0, vol, t, call)
            np.testing.assert_array_equal(price, [20, 0, 0, 0, 20, 0])
            np.testing.assert_array_equal(black76_delta(forward, 100.0, vol, t, call),
                                          [1, 0, 0.5, 0, -1, -0.5])
            np.testing.assert_array_equal(black76_gamma(forward, 100.0, vol, t, call), 0)
            np.testing.assert_array_equal(black76_vega(forward, 100.0, vol, t, call), 0)
        tiny = black76_price(forward, 100.0, 0.3, 1e-12, call)
    np.testing.assert_allclose(tiny, [20, 0, 0, 0, 20, 0], atol=1e-4)


def test_strike_for_delta_round_trip():
    rng = np.random.default_rng(1)
    n = 1000
    forward, vol, t = rng.uniform(1, 300, n), rng.uniform(0.05, 2.5, n), rng.uniform(1e-3, 3, n)
    delta, call = rng.uniform(0.01, 0.99, n), rng.random(n) < 0.5
    strike = strike_for_delta(forward, vol, t, delta, call)
    np.testing.assert_allclose(np.abs(black76_delta(forward, strike, vol, t, call)), delta,
                               atol=1e-10)
    # Signed put deltas mean the same strike; a 50-delta call sits above the forward.
    np.testing.assert_array_equal(strike_for_delta(100, 0.3, 0.5, -0.25, False),
                                  strike_for_delta(100, 0.3, 0.5, 0.25, False))
    assert strike_for_delta(100, 0.3, 0.5, 0.5, True) == pytest.approx(100 * np.exp(0.0225))
    assert strike_for_delta(100, 0.3, 0.0, 0.25, True) == 100.0
    with pytest.raises(ValueError):
        strike_for_delta(100, 0.3, 0.5, 1.0, True)


def test_year_fraction_is_act_365():
    assert year_fraction("2024-01-01", "2025-01-01") == pytest.approx(366 / 365)
    np.testing.assert_allclose(
        year_fraction(np.array(["2024-03-01", "2024-03-01"], dtype="datetime64[D]"),
                      np.array(["2024-03-01", "2024-03-31"], dtype="datetime64[D]")), [0, 30 / 365])
