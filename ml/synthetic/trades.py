"""Vectorised trade sampling: one numpy draw per column, no per-trade Python loop.

Randomness comes from (seed, start_date), so a window is regenerated exactly from its config.
Every random array is drawn whatever the drift scenarios, so the trades before a scenario's
start date are identical to those of the same config without it (a clean reference window).
String columns are built from categorical codes through small lookup arrays; ids and
timestamps are assembled as fixed-width byte matrices.
"""
from typing import Dict, List, Tuple

import numpy as np
import pandas as pd

from ml.synthetic.catalog import (COMMODITY_CATALOG, FX_USD_PER_UNIT, INSTRUMENTS, RATINGS,
                                  REGION_CATALOG, TENOR_SCALE_AND_MAX, CommoditySpec,
                                  commodity_region_affinity, region_currency)
from ml.synthetic.config import ETRMDataConfig, as_day, trading_days
from ml.synthetic.prices import PriceSeries
from ml.synthetic.risk_label import RiskFeatures, high_risk_probability
from ml.synthetic.universe import Universe

MARKET_OPEN_SECONDS = 8 * 3600
MARKET_CLOSE_SECONDS = 18 * 3600
PRICE_NOISE = 0.002
BUY_PROBABILITY = 0.5
_STREAM_NAMESPACE = 3

TRADE_COLUMNS: Tuple[str, ...] = (
    "trade_id", "trade_date", "timestamp", "commodity", "region", "instrument", "direction",
    "volume", "unit", "price", "currency", "delivery_start", "delivery_end", "delivery_period",
    "tenor_months", "counterparty", "counterparty_rating", "trader", "book", "volatility",
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


def _delivery_columns(window: np.ndarray, day_in_window: np.ndarray, tenor: np.ndarray
                      ) -> Dict[str, np.ndarray]:
    """delivery_start/end/period strings: the month `tenor` months after the trade month.

    Prompt trades (tenor 0) deliver from the next calendar day to the end of the month.
    """
    delivery_month = window[day_in_window].astype("datetime64[M]") + tenor
    first_month = delivery_month.min()
    months = np.arange(first_month, delivery_month.max() + 1)
    month_index = (delivery_month - first_month).astype(np.int64)
    month_start = months.astype("datetime64[D]")
    month_end = (months + 1).astype("datetime64[D]") - 1
    next_day = np.minimum(window + 1, (window.astype("datetime64[M]") + 1)
                          .astype("datetime64[D]") - 1)
    return {
        "delivery_start": np.where(
            tenor == 0, _strings(np.datetime_as_string(next_day, unit="D"))[day_in_window],
            _strings(np.datetime_as_string(month_start, unit="D"))[month_index]),
        "delivery_end": _strings(np.datetime_as_string(month_end, unit="D"))[month_index],
        "delivery_period": _strings(np.datetime_as_string(months, unit="M"))[month_index],
    }


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


def _trade_ids(config: ETRMDataConfig, n: int) -> np.ndarray:
    """'TRD-<window start YYYYMMDD>-<sequence>': unique within and across windows."""
    prefix = f"TRD-{as_day(config.start_date).astype(object):%Y%m%d}-"
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


def sample_trades(config: ETRMDataConfig, prices: PriceSeries, universe: Universe
                  ) -> pd.DataFrame:
    """The trades table of one window, labels included (see TRADE_COLUMNS)."""
    rng = window_stream(config, _STREAM_NAMESPACE)
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

    day_in_window, second_of_day = np.divmod(clock, 86400)
    days = window[day_in_window]
    commodity, region = _sample_commodity_and_region(
        config, commodity_names, region_names, days, pair_u, new_category_u)
    specs = [COMMODITY_CATALOG[c] for c in commodity_names]
    instrument, tenor = _sample_instrument_and_tenor(specs, commodity, instrument_u, tenor_u)

    def per_commodity(values):
        return np.array(values)[commodity]

    lot = per_commodity([s.lot_size for s in specs])
    median_lots = per_commodity([s.median_volume / s.lot_size for s in specs])
    volume = np.maximum(np.rint(median_lots * np.exp(
        per_commodity([s.volume_log_sigma for s in specs]) * volume_z)), 1.0) * lot

    series = np.array([[prices.column(c, r) for r in region_names] for c in commodity_names]
                      )[commodity, region]
    history_row = prices.day_index(window)[day_in_window]
    mid = prices.prices[history_row, series]
    quoted = mid * (1.0 + np.where(buy, 1.0, -1.0) * per_commodity([s.half_spread for s in specs])
                    + PRICE_NOISE * price_noise)
    decimals = per_commodity([s.price_decimals for s in specs])
    price = np.maximum(np.where(decimals == 2, np.round(quoted, 2), np.round(quoted, 3)),
                       10.0 ** -decimals.astype(float))
    notional = volume * price
    currency_codes = [region_currency(r) for r in region_names]
    notional_usd = notional * np.array([FX_USD_PER_UNIT[c] for c in currency_codes])[region]
    volatility = prices.volatility[history_row, series]

    rating_score = universe.counterparty_rating_scores[counterparty]
    features = RiskFeatures(
        notional_usd=notional_usd, volatility=volatility, tenor_months=tenor.astype(float),
        rating_score=rating_score.astype(float),
        is_option=(instrument == INSTRUMENTS.index("option")).astype(float),
        is_power=per_commodity([c == "power" for c in commodity_names]).astype(float),
        is_emissions=per_commodity([c == "emissions" for c in commodity_names]).astype(float),
        is_sell=(~buy).astype(float), counterparty_share=universe.counterparty_shares[counterparty])
    probability = high_risk_probability(
        features, _latest_magnitude(days, config.scenarios("concept_change")))
    high_risk = (label_u < probability).astype(np.int64)
    if config.shuffle_labels:
        high_risk = rng.permutation(high_risk)

    delivery = _delivery_columns(window, day_in_window, tenor)
    return pd.DataFrame({
        "trade_id": _trade_ids(config, n),
        "trade_date": _strings(np.datetime_as_string(window, unit="D"))[day_in_window],
        "timestamp": _timestamps(window, day_in_window, second_of_day),
        "commodity": _strings(commodity_names)[commodity],
        "region": _strings(region_names)[region],
        "instrument": _strings(INSTRUMENTS)[instrument],
        "direction": _strings(("sell", "buy"))[buy.astype(np.int64)],
        "volume": volume,
        "unit": _strings(s.unit for s in specs)[commodity],
        "price": price,
        "currency": _strings(currency_codes)[region],
        "delivery_start": delivery["delivery_start"],
        "delivery_end": delivery["delivery_end"],
        "delivery_period": delivery["delivery_period"],
        "tenor_months": tenor,
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
