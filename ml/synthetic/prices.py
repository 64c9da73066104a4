"""Daily price simulation for every commodity/region pair of the catalog.

Model (log price of series j on trading day t, all parameters in ``catalog.py``):

    log P[t,j] = log base[j] + season[t,j] + x[t,j] + xi[t,j] + spike[t,j] + shift[t,j]

* ``x``: short-term Ornstein-Uhlenbeck deviation, x[t] = phi_j x[t-1] + sigma_j v[t,j] sqrt(dt)
  eps[t,j] with phi_j = exp(-kappa_j dt): fast mean reversion for power, slow for crude.
* ``xi``: slow long-term level (OU with kappa 0.4/year), so levels wander for years but revert.
* ``season``: winter premium (gas, LNG, power, coal, products) peaking mid-January plus a
  semi-annual term for power (winter and summer peak seasons).
* ``spike``: jumps J ~ Exponential(mean size) arriving with a daily probability (power most,
  more often in its peak seasons), decaying geometrically: spike[t] = d spike[t-1] + J[t].
* ``v``: volatility multiplier = stochastic volatility (AR(1) in log, per commodity) x winter
  volatility boost x drift shocks.
* ``eps``: correlated shocks from a factor model: a global energy factor, one factor per
  commodity, one per region (power and gas of a region co-move), and power also loads on the
  gas factor (gas sets the marginal power price), plus idiosyncratic noise.
* ``shift``: price_shift drift scenarios (permanent level change from their start date).

Every random stream is a separate numpy Generator seeded from (seed, stream id) and drawn in
day-major order with a fixed number of columns, so the first k days are identical whatever the
end date: windows generated separately see the same prices on the same days.
"""
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np
import pandas as pd

from ml.synthetic.catalog import (COMMODITY_CATALOG, REGION_CATALOG, TRADING_DAYS_PER_YEAR,
                                  local_base_price, region_currency)
from ml.synthetic.config import ETRMDataConfig, as_day, price_history_start, trading_days

VOLATILITY_WINDOW = 20
LONG_TERM_MEAN_REVERSION = 0.4
LONG_TERM_VOLATILITY = 0.12
STOCHASTIC_VOL_PERSISTENCE = 0.98
STOCHASTIC_VOL_SCALE = 0.25
GLOBAL_LOADING = 0.40
COMMODITY_LOADING = 0.60
REGION_LOADING = 0.40
POWER_COMMODITY_LOADING = 0.40
POWER_GAS_LOADING = 0.45
WINTER_PEAK_DAY_OF_YEAR = 15
_STREAM_SHORT, _STREAM_LONG, _STREAM_VOL, _STREAM_SPIKE_TIMES, _STREAM_SPIKE_SIZES = range(5)
_STREAM_NAMESPACE = 1


@dataclass(frozen=True, eq=False)
class PriceSeries:
    """Daily mid prices (local currency per unit) and realised volatility, one column per pair.

    ``volatility[t, j]`` is the annualised standard deviation of the 20 daily log returns up to
    the previous trading day (what a trader knows at t); the first 21 days of the history reuse
    the first full-window value. The arrays are read-only: a generator hands out the same
    instance to every caller.
    """

    dates: np.ndarray
    commodities: Tuple[str, ...]
    regions: Tuple[str, ...]
    prices: np.ndarray
    volatility: np.ndarray

    def __post_init__(self):
        for array in (self.dates, self.prices, self.volatility):
            array.setflags(write=False)

    @property
    def currencies(self) -> Tuple[str, ...]:
        return tuple(region_currency(r) for r in self.regions)

    @property
    def units(self) -> Tuple[str, ...]:
        return tuple(COMMODITY_CATALOG[c].unit for c in self.commodities)

    @property
    def names(self) -> Tuple[str, ...]:
        """Column names as 'commodity/region'."""
        return tuple(f"{c}/{r}" for c, r in zip(self.commodities, self.regions))

    def column(self, commodity: str, region: str) -> int:
        """Column index of one commodity/region pair."""
        try:
            return self.names.index(f"{commodity}/{region}")
        except ValueError:
            raise KeyError(f"no price series for {commodity}/{region}") from None

    def columns_of(self, commodities, regions) -> np.ndarray:
        """Column indices for parallel sequences of commodities and regions."""
        lookup = {name: j for j, name in enumerate(self.names)}
        keys = pd.Series(commodities, dtype=object).astype(str) + "/" + pd.Series(
            regions, dtype=object).astype(str).to_numpy()
        index = keys.map(lookup)
        if index.isna().any():
            raise KeyError(f"no price series for {keys[index.isna()].iloc[0]}")
        return index.to_numpy(np.int64)

    def day_index(self, days) -> np.ndarray:
        """Row indices of trading days (datetime64[D] or 'YYYY-MM-DD' strings)."""
        wanted = np.asarray(days, dtype="datetime64[D]")
        index = np.searchsorted(self.dates, wanted)
        if np.any(index >= len(self.dates)) or np.any(self.dates[np.minimum(
                index, len(self.dates) - 1)] != wanted):
            raise KeyError("some days are not trading days of this price history")
        return index

    def log_returns(self) -> np.ndarray:
        """Daily log returns; row k is the move from day k to day k + 1."""
        return np.diff(np.log(self.prices), axis=0)

    def series(self, commodity: str, region: str) -> pd.Series:
        """One pair's prices indexed by date."""
        return pd.Series(self.prices[:, self.column(commodity, region)],
                         index=pd.DatetimeIndex(self.dates), name=f"{commodity}/{region}")

    def to_frame(self) -> pd.DataFrame:
        """All prices, one column per 'commodity/region', indexed by date."""
        return pd.DataFrame(self.prices, index=pd.DatetimeIndex(self.dates, name="date"),
                            columns=list(self.names))

    def select(self, pairs: Sequence[Tuple[str, str]]) -> "PriceSeries":
        """The same history restricted to some commodity/region pairs, in the given order."""
        columns = [self.column(c, r) for c, r in pairs]
        return PriceSeries(self.dates, tuple(c for c, _ in pairs), tuple(r for _, r in pairs),
                           self.prices[:, columns], self.volatility[:, columns])

    @classmethod
    def from_npz_arrays(cls, arrays) -> "PriceSeries":
        """Inverse of to_npz_arrays (e.g. from numpy.load of price_series.npz)."""
        return cls(np.asarray(arrays["dates"]).astype("datetime64[D]"),
                   tuple(str(c) for c in arrays["commodities"]),
                   tuple(str(r) for r in arrays["regions"]),
                   np.asarray(arrays["prices"], dtype=float),
                   np.asarray(arrays["volatility"], dtype=float))

    def to_npz_arrays(self) -> Dict[str, np.ndarray]:
        """Plain arrays for price_series.npz (no pickled objects)."""
        return {"dates": np.datetime_as_string(self.dates, unit="D"),
                "commodities": np.array(self.commodities), "regions": np.array(self.regions),
                "currencies": np.array(self.currencies), "units": np.array(self.units),
                "prices": self.prices, "volatility": self.volatility}


def catalog_pairs() -> List[Tuple[str, str]]:
    """Every commodity/region pair in a fixed order (the random streams' column order)."""
    return [(c, r) for c in COMMODITY_CATALOG for r in REGION_CATALOG]


def _stream(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, _STREAM_NAMESPACE, stream]))


def _factor_loadings(pairs: List[Tuple[str, str]]) -> np.ndarray:
    """Loadings of each series on [global, commodity factors, region factors, own noise]."""
    commodities, regions = list(COMMODITY_CATALOG), list(REGION_CATALOG)
    n_factors = 1 + len(commodities) + len(regions)
    loadings = np.zeros((len(pairs), n_factors + len(pairs)))
    for j, (commodity, region) in enumerate(pairs):
        loadings[j, 0] = GLOBAL_LOADING
        own = POWER_COMMODITY_LOADING if commodity == "power" else COMMODITY_LOADING
        loadings[j, 1 + commodities.index(commodity)] = own
        loadings[j, 1 + len(commodities) + regions.index(region)] = REGION_LOADING
        if commodity == "power":
            loadings[j, 1 + commodities.index("natural_gas")] = POWER_GAS_LOADING
        loadings[j, n_factors + j] = np.sqrt(1.0 - np.sum(loadings[j, :n_factors] ** 2))
    return loadings


def _combine_factors(draws: np.ndarray, loadings: np.ndarray) -> np.ndarray:
    """draws @ loadings.T, summed term by term in a fixed order.

    A BLAS matrix product may block differently for different row counts, which changes the
    last bits; element-wise sums keep day t identical whatever the history length.
    """
    shocks = np.zeros((len(draws), len(loadings)))
    for j, row in enumerate(loadings):
        for k in np.flatnonzero(row):
            shocks[:, j] += row[k] * draws[:, k]
    return shocks


def _ar1(innovations: np.ndarray, phi, start_scale=1.0) -> np.ndarray:
    """x[t] = phi x[t-1] + innovations[t] per column (phi scalar or per column).

    x[0] = start_scale x innovations[0]: with 1 / sqrt(1 - phi^2) the process starts in its
    stationary distribution. One vector step per day, in day order.
    """
    phi = np.broadcast_to(np.asarray(phi, dtype=float), innovations.shape[1:])
    out = np.empty_like(innovations)
    out[0] = innovations[0] * start_scale
    for t in range(1, len(innovations)):
        out[t] = phi * out[t - 1] + innovations[t]
    return out


def _seasonal_cycles(dates: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """cos cycles peaking mid-January: annual (winter) and semi-annual (winter and summer)."""
    day_of_year = (dates - dates.astype("datetime64[Y]")).astype(np.int64) + 1
    phase = 2 * np.pi * (day_of_year - WINTER_PEAK_DAY_OF_YEAR) / 365.25
    return np.cos(phase), np.cos(2 * phase)


def _drift_effects(config: ETRMDataConfig, dates: np.ndarray,
                   pairs: List[Tuple[str, str]]) -> Tuple[np.ndarray, np.ndarray]:
    """Volatility multipliers and log level shifts from price-affecting drift scenarios."""
    volatility = np.ones((len(dates), len(pairs)))
    log_shift = np.zeros((len(dates), len(pairs)))
    for kind, target, update in (
            ("volatility_shock", volatility, lambda a, m: a * (1.0 + m)),
            ("price_shift", log_shift, lambda a, m: a + np.log1p(m))):
        for scenario in config.scenarios(kind):
            rows = dates >= as_day(scenario.start_date)
            affected = scenario.commodities or list(COMMODITY_CATALOG)
            cols = np.array([c in affected for c, _ in pairs])
            target[np.ix_(rows, cols)] = update(target[np.ix_(rows, cols)], scenario.magnitude)
    return volatility, log_shift


def simulate_catalog_prices(config: ETRMDataConfig) -> PriceSeries:
    """Simulate every catalog pair from the history start to the config's end date."""
    pairs = catalog_pairs()
    dates = trading_days(price_history_start(config.price_anchor_date).astype(object),
                         config.end_date)
    n_days, n_series = len(dates), len(pairs)
    dt = 1.0 / TRADING_DAYS_PER_YEAR
    specs = [COMMODITY_CATALOG[c] for c, _ in pairs]
    commodity_names = list(COMMODITY_CATALOG)
    commodity_of = np.array([commodity_names.index(c) for c, _ in pairs])
    sigma = np.array([s.annual_volatility * REGION_CATALOG[r].volatility_multiplier
                      for s, (_, r) in zip(specs, pairs)])
    kappa = np.array([s.mean_reversion_per_year for s in specs])
    winter, semiannual = _seasonal_cycles(dates)
    shock_volatility, log_shift = _drift_effects(config, dates, pairs)

    loadings = _factor_loadings(pairs)
    short_shocks = _combine_factors(_stream(config.seed, _STREAM_SHORT).standard_normal(
        (n_days, loadings.shape[1])), loadings)
    long_shocks = _combine_factors(_stream(config.seed, _STREAM_LONG).standard_normal(
        (n_days, loadings.shape[1])), loadings)

    persistence = STOCHASTIC_VOL_PERSISTENCE
    vol_state = _ar1(np.sqrt(1 - persistence ** 2) * _stream(config.seed, _STREAM_VOL)
                     .standard_normal((n_days, len(commodity_names))), persistence,
                     np.full(len(commodity_names), 1.0 / np.sqrt(1 - persistence ** 2)))
    stochastic_vol = np.exp(STOCHASTIC_VOL_SCALE * vol_state - STOCHASTIC_VOL_SCALE ** 2 / 2)
    boost = np.array([s.winter_volatility_boost for s in specs])
    vol_multiplier = (stochastic_vol[:, commodity_of] * (1 + boost * winter[:, None])
                      * shock_volatility)

    phi = np.exp(-kappa * dt)
    short_term = _ar1(sigma * np.sqrt(dt) * vol_multiplier * short_shocks, phi,
                      1.0 / np.sqrt(1 - phi ** 2))
    phi_long = np.exp(-LONG_TERM_MEAN_REVERSION * dt)
    long_term = _ar1(LONG_TERM_VOLATILITY * np.sqrt(dt) * long_shocks, phi_long,
                     1.0 / np.sqrt(1 - phi_long ** 2))

    peak_season = (1 + semiannual) / 2
    spike_probability = np.array([s.spike_probability_per_day for s in specs]) * (
        0.4 + 1.8 * peak_season[:, None])
    spike_arrivals = _stream(config.seed, _STREAM_SPIKE_TIMES).random((n_days, n_series))
    spike_sizes = _stream(config.seed, _STREAM_SPIKE_SIZES).exponential(1.0, (n_days, n_series))
    jumps = np.where(spike_arrivals < spike_probability,
                     spike_sizes * np.array([s.spike_mean_log_size for s in specs])
                     * shock_volatility, 0.0)
    spikes = _ar1(jumps, [s.spike_decay_per_day for s in specs])

    season = (np.array([s.winter_amplitude for s in specs]) * winter[:, None]
              + np.array([s.semiannual_amplitude for s in specs]) * semiannual[:, None])
    base = np.log([local_base_price(c, r) for c, r in pairs])
    log_price = base + season + short_term + long_term + spikes + log_shift
    prices = np.exp(log_price)
    return PriceSeries(dates, tuple(c for c, _ in pairs), tuple(r for _, r in pairs),
                       prices, realised_volatility(log_price))


def realised_volatility(log_price: np.ndarray) -> np.ndarray:
    """Annualised std of the last VOLATILITY_WINDOW daily log returns before each day."""
    returns = np.diff(log_price, axis=0)
    windows = np.lib.stride_tricks.sliding_window_view(returns, VOLATILITY_WINDOW, axis=0)
    rolling = windows.std(axis=-1, ddof=1) * np.sqrt(TRADING_DAYS_PER_YEAR)
    volatility = np.empty_like(log_price)
    first = VOLATILITY_WINDOW + 1
    volatility[first:] = rolling[: len(log_price) - first]
    volatility[:first] = rolling[0]
    return volatility


def traded_pairs(config: ETRMDataConfig) -> List[Tuple[str, str]]:
    """Pairs a dataset can trade: configured ones plus any new-category drift pairs."""
    commodities, regions = list(config.commodities), list(config.regions)
    for scenario in config.scenarios("new_category"):
        target = commodities if scenario.category_field == "commodity" else regions
        if scenario.category_name not in target:
            target.append(scenario.category_name)
    return [(c, r) for c in commodities for r in regions]


def generate_price_series(config: ETRMDataConfig) -> PriceSeries:
    """The dataset's price history: traded pairs from the history start to end_date."""
    return simulate_catalog_prices(config).select(traded_pairs(config))
