"""Black-76 prices and Greeks of European options on a forward, vectorised over numpy arrays.

The synthetic market's options are European calls and puts on the forward of their delivery
period, priced with Black (1976):

    call = D [F N(d1) - K N(d2)],   put = D [K N(-d2) - F N(-d1)],
    d1 = (ln(F / K) + sigma^2 T / 2) / (sigma sqrt(T)),   d2 = d1 - sigma sqrt(T),

F the forward, K the strike, sigma the annualised volatility of the forward, T the time to
expiry in years and D the discount factor to the premium's payment date. The generator ignores
interest rates, so D defaults to 1.0 (premium = undiscounted expected payoff); pass
D = exp(-r T) to price with a rate, as in the textbook examples the tests check.

Greeks are with respect to the forward: delta = D N(d1) (call), D (N(d1) - 1) (put);
gamma = D n(d1) / (F sigma sqrt(T)); vega = D F n(d1) sqrt(T) (per unit of volatility, not
per percentage point). ``strike_for_delta`` inverts the undiscounted forward delta in closed
form (how strikes are picked at 25- or 50-delta).

Expiry: where sigma sqrt(T) is 0 (T = 0 or sigma = 0) the price is the intrinsic value
D max(+-(F - K), 0), delta is the step D 1{F > K} (1/2 at the money) for calls and minus
D 1{F < K} for puts, gamma and vega are 0. No NaN and no numpy warnings come out for these
inputs (T <= 0 counts as expired).

Year fractions: ``year_fraction(start, end)`` is ACT/365 between two dates (what the time to
expiry of a trade is measured in).
"""
import numpy as np
from scipy.special import ndtr, ndtri

DAYS_PER_YEAR = 365.0
_SQRT_2PI = np.sqrt(2.0 * np.pi)


def year_fraction(start, end) -> np.ndarray:
    """ACT/365 years from start to end (dates as datetime64, 'YYYY-MM-DD' strings or datetimes)."""
    days = (np.asarray(end, dtype="datetime64[D]") - np.asarray(start, dtype="datetime64[D]"))
    return days.astype(np.int64) / DAYS_PER_YEAR


def _call_flag(is_call) -> np.ndarray:
    return np.asarray(is_call, dtype=bool)


def total_sd(volatility, time_to_expiry):
    """sigma sqrt(T), the mask of live (sigma sqrt(T) > 0) entries, and sigma sqrt(T) with 1
    where expired (safe to divide by)."""
    sd = np.asarray(volatility, dtype=float) * np.sqrt(
        np.maximum(np.asarray(time_to_expiry, dtype=float), 0.0))
    live = sd > 0
    return sd, live, np.where(live, sd, 1.0)


def _d1_d2(forward, strike, volatility, time_to_expiry):
    """d1, d2 and sigma sqrt(T), with a mask of the live (sigma sqrt(T) > 0) entries.

    Expired entries get d1 = d2 = +-inf by the sign of ln(F / K) (0 at the money), which is the
    limit of d1 as sigma sqrt(T) -> 0 and makes N(d1) the delta step.
    """
    forward = np.asarray(forward, dtype=float)
    strike = np.asarray(strike, dtype=float)
    sd, live, safe_sd = total_sd(volatility, time_to_expiry)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_moneyness = np.log(forward / strike)
    d1_live = (log_moneyness + 0.5 * safe_sd ** 2) / safe_sd
    expired_d1 = np.where(log_moneyness > 0, np.inf, np.where(log_moneyness < 0, -np.inf, 0.0))
    d1 = np.where(live, d1_live, expired_d1)
    d2 = np.where(live, d1_live - safe_sd, d1)
    return d1, d2, sd, live


def black76_price(forward, strike, volatility, time_to_expiry, is_call, discount=1.0
                  ) -> np.ndarray:
    """Black-76 premium per unit of underlying (intrinsic value at expiry), arrays broadcast."""
    forward = np.asarray(forward, dtype=float)
    strike = np.asarray(strike, dtype=float)
    d1, d2, _, live = _d1_d2(forward, strike, volatility, time_to_expiry)
    return np.asarray(discount, dtype=float) * undiscounted_value(forward, strike, d1, d2, live,
                                                                  _call_flag(is_call))


def undiscounted_value(forward, strike, d1, d2, live, call) -> np.ndarray:
    """Black-76 from d1 and d2 already known (for a caller that moves only the forward, such
    as a bisection over it): the premium where live, the intrinsic value elsewhere."""
    call_value = forward * ndtr(d1) - strike * ndtr(d2)
    put_value = strike * ndtr(-d2) - forward * ndtr(-d1)
    value = np.where(call, call_value, put_value)
    intrinsic = np.maximum(np.where(call, forward - strike, strike - forward), 0.0)
    # At expiry N(+-inf) is exact already; the where only removes 0 * inf style artefacts.
    return np.where(live, np.maximum(value, 0.0), intrinsic)


def black76_delta(forward, strike, volatility, time_to_expiry, is_call, discount=1.0
                  ) -> np.ndarray:
    """dV/dF: D N(d1) for calls, D (N(d1) - 1) for puts; the step (1/2 at the money) at expiry."""
    d1, _, _, _ = _d1_d2(forward, strike, volatility, time_to_expiry)
    n_d1 = ndtr(d1)
    return np.asarray(discount, dtype=float) * np.where(_call_flag(is_call), n_d1, n_d1 - 1.0)


def _normal_pdf(x):
    with np.errstate(over="ignore"):
        return np.exp(-0.5 * np.square(x)) / _SQRT_2PI


def black76_gamma(forward, strike, volatility, time_to_expiry, is_call=True, discount=1.0
                  ) -> np.ndarray:
    """d2V/dF2 = D n(d1) / (F sigma sqrt(T)), the same for calls and puts; 0 at expiry."""
    forward = np.asarray(forward, dtype=float)
    d1, _, sd, live = _d1_d2(forward, strike, volatility, time_to_expiry)
    pdf = _normal_pdf(np.where(live, d1, 0.0))
    gamma = np.where(live, pdf / (forward * np.where(live, sd, 1.0)), 0.0)
    return np.asarray(discount, dtype=float) * gamma * np.ones_like(_call_flag(is_call), float)


def black76_vega(forward, strike, volatility, time_to_expiry, is_call=True, discount=1.0
                 ) -> np.ndarray:
    """dV/dsigma = D F n(d1) sqrt(T) per unit of volatility, calls and puts alike; 0 at expiry."""
    forward = np.asarray(forward, dtype=float)
    d1, _, _, live = _d1_d2(forward, strike, volatility, time_to_expiry)
    root_t = np.sqrt(np.maximum(np.asarray(time_to_expiry, dtype=float), 0.0))
    vega = np.where(live, forward * _normal_pdf(np.where(live, d1, 0.0)) * root_t, 0.0)
    return np.asarray(discount, dtype=float) * vega * np.ones_like(_call_flag(is_call), float)


def strike_for_delta(forward, volatility, time_to_expiry, delta, is_call) -> np.ndarray:
    """Strike whose undiscounted Black-76 forward delta is ``delta``: K = F exp(sd^2/2 - sd d1).

    d1 = N^-1(delta) for calls (delta in (0, 1)), N^-1(1 - |delta|) for puts: a put's delta may
    be given signed (-0.25) or as its absolute value (0.25), both mean the 25-delta put. Where
    sigma sqrt(T) is 0 every strike but the forward is a digital 0/1 delta, so the forward is
    returned. Deltas outside (0, 1) in absolute value raise ValueError.
    """
    delta = np.abs(np.asarray(delta, dtype=float))
    if np.any((delta <= 0) | (delta >= 1)):
        raise ValueError("strike_for_delta: |delta| must lie strictly between 0 and 1")
    forward = np.asarray(forward, dtype=float)
    sd = np.asarray(volatility, dtype=float) * np.sqrt(
        np.maximum(np.asarray(time_to_expiry, dtype=float), 0.0))
    d1 = ndtri(np.where(_call_flag(is_call), delta, 1.0 - delta))
    return forward * np.exp(0.5 * sd ** 2 - sd * d1)
