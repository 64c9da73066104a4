"""Vectorised trade sampling: one numpy draw per column, no per-trade Python loop.

Randomness comes from (seed, start_date), so a window is regenerated exactly from its config.
Every random array is drawn whatever the drift scenarios, so the trades before a scenario's
start date are identical to those of the same config without it (a clean reference window).
String columns are built from categorical codes through small lookup arrays; ids and
timestamps are assembled as fixed-width byte matrices.
"""
import copy
from datetime import datetime
from typing import Dict, List, Tuple

import numpy as np
import pandas as pd

from ml.synthetic.calendar import exchange_holidays
from ml.synthetic.catalog import (COMMODITY_CATALOG, FX_USD_PER_UNIT, INSTRUMENTS, RATINGS,
                                  REGION_CATALOG, TENOR_SCALE_AND_MAX, CommoditySpec,
                                  commodity_region_affinity, quote)
from ml.synthetic.config import ETRMDataConfig, as_day, trading_days
from ml.synthetic.options import black76_price, strike_for_delta, year_fraction
from ml.synthetic.prices import FORWARD_MONTHS, PriceSeries
from ml.synthetic.risk_label import RiskFeatures, high_risk_probability
from ml.synthetic.universe import Universe

MARKET_OPEN_SECONDS = 8 * 3600
MARKET_CLOSE_SECONDS = 18 * 3600
PRICE_NOISE = 0.002
BUY_PROBABILITY = 0.5
CALL_PROBABILITY = 0.5
# Options are struck between the 15- and 85-delta of their forward (|delta| drawn uniformly).
OPTION_DELTA_RANGE = (0.15, 0.85)
OPTION_HALF_SPREAD = 0.02
# Swap strips: month, quarter, season, calendar year, two years.
SWAP_STRIP_MONTHS = (1, 3, 6, 12, 24)
SWAP_STRIP_WEIGHTS = (0.20, 0.30, 0.20, 0.25, 0.05)
_STREAM_NAMESPACE = 3
_OPENING_NAMESPACE = 6
OPENING_LOOKBACK_DAYS = 365

TRADE_COLUMNS: Tuple[str, ...] = (
    "trade_id", "trade_date", "timestamp", "commodity", "region", "instrument", "direction",
    "volume", "unit", "price", "currency", "delivery_start", "delivery_end", "delivery_period",
    "delivery_months", "tenor_months", "forward_price", "option_type", "strike", "expiry_date",
    "premium", "counterparty", "counterparty_rating", "trader", "book", "volatility",
    "notional", "high_risk", "high_risk_probability", "notional_usd",
    "counterparty_exposure_share")


def window_stream(config: ETRMDataConfig, namespace: int) -> np.random.Generator:
    """Random generator for one component of one window: (seed, component, start_date)."""
    start = int(as_day(config.start_date).astype(np.int64))
    return np.random.default_rng(np.random.SeedSequence([config.seed, namespace, start]))


def _strings(values) -> np.ndarray:
    """Small lookup array of Python str (not numpy.str_) for categorical codes."""
    strings = [str(value) for value in values]
    array = np.empty(len(strings), dtype=object)
    array[:] = strings
    return array


def _day_text(days: np.ndarray) -> np.ndarray:
    """'YYYY-MM-DD' str per element of a long datetime64[D] array, each distinct day once."""
    codes, uniques = pd.factorize(days.astype(np.int64))
    return _strings(np.datetime_as_string(uniques.astype("datetime64[D]"), unit="D"))[codes]


def _fixed_width_strings(parts) -> np.ndarray:
    """Concatenate (n, k) uint8 ASCII blocks column-wise into an object array of n str.

    The rows are laid out in one byte buffer with newline separators, then decoded and split in
    C: much faster than numpy's per-element unicode conversion.
    """
    n = len(parts[0])
    width = sum(part.shape[1] for part in parts)
    rows = np.empty((n, width + 1), dtype=np.uint8)
    offset = 0
    for part in parts:
        rows[:, offset:offset + part.shape[1]] = part
        offset += part.shape[1]
    rows[:, width] = ord("\n")
    strings = np.empty(n, dtype=object)
    strings[:] = rows.tobytes().decode("ascii").split("\n")[:-1]
    return strings


def _ascii_matrix(strings: np.ndarray, width: int) -> np.ndarray:
    return np.frombuffer(np.asarray(strings, dtype=f"S{width}").tobytes(),
                         dtype=np.uint8).reshape(-1, width)


_TWO_DIGITS = _ascii_matrix(np.array([f"{i:02d}" for i in range(100)]), 2)


def _constant(text: str, n: int) -> np.ndarray:
    return np.broadcast_to(np.frombuffer(text.encode("ascii"), dtype=np.uint8), (n, len(text)))


def _sequence_digits(n: int, width: int) -> np.ndarray:
    """Zero-padded digits of 1..n as an (n, width) ASCII matrix, without integer division.

    Digit k (from the right) of consecutive integers repeats each value 10**k times in a cycle
    of 10**(k+1), so every column is a tiled, repeated arange(10).
    """
    digits = np.empty((n, width), dtype=np.uint8)
    ascii_digits = np.arange(ord("0"), ord("9") + 1, dtype=np.uint8)
    for k in range(width):
        run = 10 ** k
        if run > n:
            digits[:, width - 1 - k] = ord("0")
            continue
        digits[:, width - 1 - k] = np.resize(np.repeat(ascii_digits, run), n + 1)[1:]
    return digits


def _categorical(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    cdf = np.cumsum(weights / weights.sum())
    return np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), len(cdf) - 1)


def _mix_regimes(config: ETRMDataConfig, pairs: List[Tuple[str, str]]
                 ) -> List[Tuple[np.datetime64, np.ndarray]]:
    """(first day, pair weights) of the baseline mix and of each mix_change scenario."""
    commodities = list(dict.fromkeys(c for c, _ in pairs))
    regions = list(dict.fromkeys(r for _, r in pairs))
    base_c = {c: COMMODITY_CATALOG[c].mix_weight if c in config.commodities else 0.0
              for c in commodities}
    base_r = {r: REGION_CATALOG[r].mix_weight if r in config.regions else 0.0 for r in regions}

    def pair_weights(cw: Dict[str, float], rw: Dict[str, float]) -> np.ndarray:
        return np.array([cw[c] * rw[r] * commodity_region_affinity(c, r) for c, r in pairs])

    def normalised(weights: Dict[str, float]) -> Dict[str, float]:
        total = sum(weights.values())
        return {k: v / total for k, v in weights.items()}

    def reversed_ranking(weights: Dict[str, float]) -> Dict[str, float]:
        active = [k for k, v in weights.items() if v > 0]
        ordered = sorted(active, key=lambda k: weights[k])
        target = dict.fromkeys(weights, 0.0)
        target.update(zip(ordered, sorted((weights[k] for k in active), reverse=True)))
        return target

    regimes = [(np.datetime64("1970-01-01"), pair_weights(base_c, base_r))]
    for scenario in sorted(config.scenarios("mix_change"), key=lambda s: s.start_date):
        given = scenario.target_mix or {}
        target_c = ({c: given.get(c, 0.0) for c in commodities}
                    if any(c in given for c in commodities) else reversed_ranking(base_c))
        target_r = ({r: given.get(r, 0.0) for r in regions}
                    if any(r in given for r in regions) else reversed_ranking(base_r))
        m = scenario.magnitude
        blend_c = {c: (1 - m) * w + m * t for (c, w), t in
                   zip(normalised(base_c).items(), normalised(target_c).values())}
        blend_r = {r: (1 - m) * w + m * t for (r, w), t in
                   zip(normalised(base_r).items(), normalised(target_r).values())}
        regimes.append((as_day(scenario.start_date), pair_weights(blend_c, blend_r)))
    return regimes


def _latest_magnitude(days: np.ndarray, scenarios) -> np.ndarray:
    """Per day, the magnitude of the latest scenario already started (0 before any)."""
    magnitude = np.zeros(len(days))
    for scenario in sorted(scenarios, key=lambda s: s.start_date):
        magnitude = np.where(days >= as_day(scenario.start_date), scenario.magnitude, magnitude)
    return magnitude


def _tenor_cdfs() -> List[np.ndarray]:
    cdfs = []
    for instrument in INSTRUMENTS:
        scale, maximum = TENOR_SCALE_AND_MAX[instrument]
        weights = np.exp(-np.arange(maximum + 1) / scale)
        cdfs.append(np.cumsum(weights) / weights.sum())
    return cdfs


def _month_text(months: np.ndarray) -> np.ndarray:
    return _strings(np.datetime_as_string(months, unit="M"))


def _delivery_columns(trade_days: np.ndarray, first_month: np.ndarray, months: np.ndarray
                      ) -> Dict[str, np.ndarray]:
    """delivery_start/end/period strings of a delivery of ``months`` months from first_month.

    Prompt trades (first month = trade month) deliver from the next calendar day to the end of
    the month; a strip's period is 'first/last' month.
    """
    last_month = first_month + months - 1
    month_start = first_month.astype("datetime64[D]")
    start = np.where(first_month == trade_days.astype("datetime64[M]"), trade_days + 1,
                     month_start)
    end = (last_month + 1).astype("datetime64[D]") - 1
    span = (first_month.astype(np.int64) * 100 + np.minimum(months, 99))
    codes, uniques = pd.factorize(span)
    unique_first = (uniques // 100).astype("datetime64[M]")
    unique_last = unique_first + (uniques % 100) - 1
    periods = [first if n == 1 else f"{first}/{last}" for first, last, n in zip(
        np.datetime_as_string(unique_first, unit="M"),
        np.datetime_as_string(unique_last, unit="M"), uniques % 100)]
    return {"delivery_start": _day_text(start), "delivery_end": _day_text(end),
            "delivery_period": _strings(periods)[codes]}


def _timestamps(window: np.ndarray, day_in_window: np.ndarray, second_of_day: np.ndarray
                ) -> np.ndarray:
    """'YYYY-MM-DDTHH:MM:SS' strings assembled from byte blocks."""
    n = len(day_in_window)
    hours, remainder = np.divmod(second_of_day.astype(np.int32), 3600)
    minutes, seconds = np.divmod(remainder, 60)
    day_text = np.datetime_as_string(window, unit="D")
    return _fixed_width_strings([
        _ascii_matrix(day_text, 10)[day_in_window], _constant("T", n), _TWO_DIGITS[hours],
        _constant(":", n), _TWO_DIGITS[minutes], _constant(":", n), _TWO_DIGITS[seconds]])


def _trade_ids(config: ETRMDataConfig, n: int, kind: str = "TRD") -> np.ndarray:
    """'<kind>-<window start YYYYMMDD>-<sequence>': unique within and across windows."""
    prefix = f"{kind}-{as_day(config.start_date).astype(object):%Y%m%d}-"
    return _fixed_width_strings([_constant(prefix, n), _sequence_digits(n, max(7, len(str(n))))])


def _sample_commodity_and_region(config: ETRMDataConfig, commodity_names: List[str],
                                 region_names: List[str], days: np.ndarray, pair_u: np.ndarray,
                                 new_category_u: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Commodity and region codes per trade, following the mix regimes and new categories."""
    pairs = [(c, r) for c in commodity_names for r in region_names]
    pair = np.empty(len(days), dtype=np.int64)
    regimes = _mix_regimes(config, pairs)
    regime_of_trade = np.searchsorted([start for start, _ in regimes], days, side="right") - 1
    for regime, (_, weights) in enumerate(regimes):
        chosen = regime_of_trade == regime
        cdf = np.cumsum(weights / weights.sum())
        pair[chosen] = np.minimum(np.searchsorted(cdf, pair_u[chosen], side="right"),
                                  len(pairs) - 1)
    commodity, region = np.divmod(pair, len(region_names))
    band_start = {"commodity": 0.0, "region": 0.0}
    for scenario in config.scenarios("new_category"):
        low = band_start[scenario.category_field]
        band_start[scenario.category_field] = low + scenario.magnitude
        switched = ((days >= as_day(scenario.start_date)) & (new_category_u >= low)
                    & (new_category_u < low + scenario.magnitude))
        if scenario.category_field == "commodity":
            commodity[switched] = commodity_names.index(scenario.category_name)
        else:
            region[switched] = region_names.index(scenario.category_name)
    return commodity, region


def _sample_instrument_and_tenor(specs: List[CommoditySpec], commodity: np.ndarray,
                                 instrument_u: np.ndarray, tenor_u: np.ndarray
                                 ) -> Tuple[np.ndarray, np.ndarray]:
    """Instrument by the commodity's instrument mix; tenor by the instrument's tenor curve."""
    instrument_cdf = np.cumsum([s.instrument_weights for s in specs], axis=1)
    instrument_cdf /= instrument_cdf[:, -1:]
    instrument = (instrument_u[:, None] > instrument_cdf[commodity, :-1]).sum(axis=1)
    tenor = np.empty(len(commodity), dtype=np.int64)
    for code, cdf in enumerate(_tenor_cdfs()):
        chosen = instrument == code
        tenor[chosen] = np.minimum(np.searchsorted(cdf, tenor_u[chosen], side="right"),
                                   len(cdf) - 1)
    return instrument, tenor


def _strip_months(instrument: np.ndarray, strip_u: np.ndarray) -> np.ndarray:
    """Delivery months per trade: swaps are strips (month, quarter, season, calendar year or
    two), everything else delivers one month."""
    cdf = np.cumsum(SWAP_STRIP_WEIGHTS) / np.sum(SWAP_STRIP_WEIGHTS)
    strip = np.array(SWAP_STRIP_MONTHS)[np.minimum(np.searchsorted(cdf, strip_u, side="right"),
                                                   len(cdf) - 1)]
    return np.where(instrument == INSTRUMENTS.index("swap"), strip, 1).astype(np.int64)


def _option_expiry(first_month: np.ndarray, holidays: np.ndarray) -> np.ndarray:
    """Options expire on the last exchange business day before their delivery month."""
    return np.busday_offset(first_month.astype("datetime64[D]"), -1, roll="forward",
                            holidays=holidays)


def _schedule(days: np.ndarray, instrument: np.ndarray, tenor: np.ndarray,
              months: np.ndarray, holidays: np.ndarray, open_on=None
              ) -> Tuple[np.ndarray, np.ndarray]:
    """(tenor, option expiry) after the calendar rules.

    A prompt trade on its month's last day (nothing left to deliver) and an option whose
    expiry would not be after its trade day move to the next month; a strip never reaches
    beyond the curve; opening positions (``open_on``) still deliver on that day.
    """
    trade_month = days.astype("datetime64[M]")
    month_end = (trade_month + 1).astype("datetime64[D]") - 1
    tenor = np.where((tenor == 0) & (days >= month_end), 1, tenor)
    is_option = instrument == INSTRUMENTS.index("option")
    if open_on is not None:
        months_to_open = (np.datetime64(open_on, "M") - trade_month).astype(np.int64)
        tenor = np.maximum(tenor, months_to_open + is_option)
    tenor = np.where(is_option, np.maximum(tenor, 1), tenor)
    expiry = _option_expiry(trade_month + tenor, holidays)
    tenor = np.where(is_option & (expiry <= days), tenor + 1, tenor)
    tenor = np.minimum(tenor, FORWARD_MONTHS - months)
    expiry = _option_expiry(trade_month + tenor, holidays)
    return tenor, expiry


def _round_price(values: np.ndarray, decimals: np.ndarray) -> np.ndarray:
    out = np.empty_like(values)
    for places in np.unique(decimals):
        chosen = decimals == places
        out[chosen] = np.maximum(np.round(values[chosen], int(places)), 10.0 ** -int(places))
    return out


def sample_trades(config: ETRMDataConfig, prices: PriceSeries, universe: Universe, *,
                  namespace: int = _STREAM_NAMESPACE, id_prefix: str = "TRD",
                  open_on=None) -> pd.DataFrame:
    """The trades table of one window, labels included (see TRADE_COLUMNS).

    ``open_on`` (a day) makes every trade still deliver on that day: how a window's opening
    portfolio is drawn from the year before it.
    """
    rng = window_stream(config, namespace)
    n = config.num_trades
    commodity_names = list(dict.fromkeys(prices.commodities))
    region_names = list(dict.fromkeys(prices.regions))
    window = trading_days(config.start_date, config.end_date)

    # Draw order is fixed: every array is drawn whatever the configuration's drift scenarios.
    clock = np.sort(rng.integers(len(window), size=n) * 86400
                    + rng.integers(MARKET_OPEN_SECONDS, MARKET_CLOSE_SECONDS, size=n))
    pair_u = rng.random(n)
    new_category_u = rng.random(n)
    instrument_u = rng.random(n)
    tenor_u = rng.random(n)
    buy = rng.random(n) < BUY_PROBABILITY
    volume_z = rng.standard_normal(n)
    price_noise = rng.standard_normal(n)
    counterparty = _categorical(rng, universe.counterparty_shares, n)
    trader = rng.integers(len(universe.trader_names), size=n)
    label_u = rng.random(n)
    strip_u = rng.random(n)
    call = rng.random(n) < CALL_PROBABILITY
    option_delta = rng.uniform(*OPTION_DELTA_RANGE, size=n)

    day_in_window, second_of_day = np.divmod(clock, 86400)
    days = window[day_in_window]
    commodity, region = _sample_commodity_and_region(
        config, commodity_names, region_names, days, pair_u, new_category_u)
    specs = [COMMODITY_CATALOG[c] for c in commodity_names]
    instrument, tenor = _sample_instrument_and_tenor(specs, commodity, instrument_u, tenor_u)
    months = _strip_months(instrument, strip_u)
    holidays = exchange_holidays(window[0] - 7, window[-1] + 31 * (FORWARD_MONTHS + 1))
    tenor, expiry = _schedule(days, instrument, tenor, months, holidays, open_on)
    is_option = instrument == INSTRUMENTS.index("option")

    pair_quotes = [[quote(c, r) for r in region_names] for c in commodity_names]

    pair_code = commodity * len(region_names) + region

    def per_pair(attribute):
        return np.array([getattr(q, attribute) for row in pair_quotes for q in row])[pair_code]

    def per_pair_text(attribute):
        return _strings([getattr(q, attribute) for row in pair_quotes for q in row])[pair_code]

    natural_per_unit = per_pair("natural_per_unit")
    lot = per_pair("lot_size")
    median_natural = np.array([s.median_volume for s in specs])[commodity]
    log_sigma = np.array([s.volume_log_sigma for s in specs])[commodity]
    monthly = median_natural * np.exp(log_sigma * volume_z) / natural_per_unit
    volume = np.maximum(np.rint(monthly * months / lot), 1.0) * lot

    series = np.array([[prices.column(c, r) for r in region_names] for c in commodity_names]
                      )[commodity, region]
    history_row = prices.day_index(window)[day_in_window]
    forward = prices.strip_forward(history_row, series, tenor, months)
    volatility = prices.tenor_volatility()[history_row, series, tenor + (months - 1) // 2]
    half_spread = np.array([s.half_spread for s in specs])[commodity]
    side = np.where(buy, 1.0, -1.0)
    decimals = per_pair("price_decimals")
    time_to_expiry = year_fraction(days, expiry)
    strike = np.where(is_option, _round_price(strike_for_delta(
        forward, volatility, time_to_expiry, np.where(call, option_delta, -option_delta), call),
        decimals), 0.0)
    option_value = black76_price(forward, np.where(is_option, strike, forward), volatility,
                                 time_to_expiry, call)
    traded = np.where(is_option, option_value * (1.0 + side * OPTION_HALF_SPREAD),
                      forward * (1.0 + side * half_spread + PRICE_NOISE * price_noise))
    price = _round_price(traded, decimals)
    notional = volume * np.where(is_option, forward, price)
    currency_codes = per_pair_text("currency")
    fx = np.array([FX_USD_PER_UNIT[q.currency] for row in pair_quotes for q in row])[pair_code]
    notional_usd = notional * fx

    rating_score = universe.counterparty_rating_scores[counterparty]
    trade_month = days.astype("datetime64[M]")
    delivery_end = (trade_month + tenor + months).astype("datetime64[D]") - 1
    features = RiskFeatures(
        forward_price=forward, strike=strike,
        option_code=np.where(is_option, np.where(call, 1.0, -1.0), 0.0),
        time_to_expiry_years=np.where(is_option, time_to_expiry, 0.0), volume=volume,
        fx_to_usd=notional_usd / notional, direction_sign=side, volatility=volatility,
        time_to_delivery_end_years=year_fraction(days, delivery_end),
        rating_score=rating_score.astype(float),
        counterparty_share=universe.counterparty_shares[counterparty])
    probability = high_risk_probability(
        features, _latest_magnitude(days, config.scenarios("concept_change")))
    high_risk = (label_u < probability).astype(np.int64)
    if config.shuffle_labels:
        high_risk = rng.permutation(high_risk)

    delivery = _delivery_columns(days, trade_month + tenor, months)
    return pd.DataFrame({
        "trade_id": _trade_ids(config, n, id_prefix),
        "trade_date": _strings(np.datetime_as_string(window, unit="D"))[day_in_window],
        "timestamp": _timestamps(window, day_in_window, second_of_day),
        "commodity": _strings(commodity_names)[commodity],
        "region": _strings(region_names)[region],
        "instrument": _strings(INSTRUMENTS)[instrument],
        "direction": _strings(("sell", "buy"))[buy.astype(np.int64)],
        "volume": volume,
        "unit": per_pair_text("unit"),
        "price": price,
        "currency": currency_codes,
        "delivery_start": delivery["delivery_start"],
        "delivery_end": delivery["delivery_end"],
        "delivery_period": delivery["delivery_period"],
        "delivery_months": months,
        "tenor_months": tenor,
        "forward_price": forward,
        "option_type": _strings(("none", "call", "put"))[
            np.where(is_option, np.where(call, 1, 2), 0)],
        "strike": strike,
        "expiry_date": np.where(is_option, _day_text(expiry), "").astype(object),
        "premium": np.where(is_option, volume * price, 0.0),
        "counterparty": universe.counterparty_names[counterparty],
        "counterparty_rating": _strings(RATINGS)[rating_score],
        "trader": universe.trader_names[trader],
        "book": universe.book_names[universe.trader_books[trader]],
        "volatility": volatility,
        "notional": notional,
        "high_risk": high_risk,
        "high_risk_probability": probability,
        "notional_usd": notional_usd,
        "counterparty_exposure_share": universe.counterparty_shares[counterparty],
    }, copy=False)


def sample_opening_trades(config: ETRMDataConfig, prices: PriceSeries, universe: Universe
                          ) -> pd.DataFrame:
    """num_positions trades from the year before the window, all delivering on its first
    day: the books' opening portfolio (drawn from their own stream, ids OPN-...)."""
    if config.num_positions == 0:
        return sample_trades(config, prices, universe).iloc[:0]
    first_day = trading_days(config.start_date, config.end_date)[0]
    before = copy.copy(config)
    before.start_date = (first_day - OPENING_LOOKBACK_DAYS).astype(datetime)
    before.end_date = (first_day - 1).astype(datetime)
    before.num_trades = config.num_positions
    return sample_trades(before, prices, universe, namespace=_OPENING_NAMESPACE,
                         id_prefix="OPN", open_on=first_day)
