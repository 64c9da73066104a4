"""Daily spot prices and forward curves of every market, from one seed.

Markets are linked the way they are in reality, in USD per natural unit, then quoted by each
market's convention (``catalog.quote``):

* hubs (natural gas, crude oil, coal, emissions, hydrogen): a log price
  ln H = ln base + season + x + xi + spike, with ``x`` a short-term Ornstein-Uhlenbeck
  deviation (fast reversion for gas, slow for crude), ``xi`` a long-term level (OU at 0.4 a
  year; gas and coal share one, so the coal/gas ratio is stationary), ``spike`` decaying gas
  jumps, and a slope factor ``zeta`` that tilts the curve (a moving risk premium: contango
  when negative, backwardation when positive);
* regions of a hub price at the hub times exp(basis), the basis an OU around the regional
  level: regional prices are cointegrated. The EUA trades in Europe and the Nordics as one
  market (basis 0); Henry Hub gas drifts far from TTF but still reverts;
* derived markets are linear in their inputs plus a mean-reverting arithmetic spread:
  refined products (gasoil, USD/t) = 7.45 x (crude + crack); LNG = regional gas + premium;
  power = heat rate x fuel (gas, or coal in Asia-Pacific) + carbon intensity x carbon +
  clean spark/dark spread. The spread's mean carries the region's own demand season
  (summer air-conditioning peaks in North America and Asia-Pacific, winter elsewhere);
* spot power (day-ahead) is the prompt forward times a fast daily deviation, plus spikes
  (additive, proportional to the level, more in peak season) and renewable gluts that push
  the price below zero where the market allows it (Europe, Nordics, North America, UK).

Forward curves. F(t, T) for delivery month T (mid-month, tau years ahead) is the model's
expectation: for a hub, ln F = ln base + season(T) + x e^{-kappa tau} + xi e^{-kappa_L tau}
+ spike d^{days} + zeta (1 - e^{-tau}) + V(tau) / 2, times the basis forward
exp(mu_b + (b - mu_b) e^{-kappa_b tau}); spreads revert to their seasonal mean as
mu(T) + (s - mu(t)) e^{-kappa_s tau}. So near contracts move with spot and far ones with the
long-term level: volatility falls with time to delivery (the Samuelson effect), and the
curve's shape (seasonal humps, contango or backwardation) moves with the state.

``forwards[t, j, m]`` holds day t's forward of series j for the delivery month m months after
t's month (m = 0 is the balance of the current month). Realised volatility by tenor is the
annualised std of the last 20 daily log returns of the same contract.

Every random stream is a separate numpy Generator seeded from (seed, stream id) and drawn in
day-major order with a fixed number of columns, so the first k days are identical whatever the
end date: windows generated separately see the same prices on the same days. Drift scenarios
change nothing before their start date.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from ml.synthetic.catalog import (COMMODITY_CATALOG, REGION_CATALOG, TRADING_DAYS_PER_YEAR,
                                  quote, usd_base_price, usd_per_quote_unit)
from ml.synthetic.config import ETRMDataConfig, as_day, price_history_start, trading_days

VOLATILITY_WINDOW = 20
FORWARD_MONTHS = 61
LONG_TERM_MEAN_REVERSION = 0.4
LONG_TERM_VOLATILITY = 0.14
SLOPE_MEAN_REVERSION = 1.0
SLOPE_VOLATILITY = 0.05
STOCHASTIC_VOL_PERSISTENCE = 0.98
STOCHASTIC_VOL_SCALE = 0.25
GLOBAL_LOADING = 0.45
COMMODITY_LOADING = 0.75
WINTER_PEAK_DAY_OF_YEAR = 15
SUMMER_PEAK_DAY_OF_YEAR = 196
GLUT_PEAK_DAY_OF_YEAR = 135
BARRELS_PER_TONNE_GASOIL = 7.45

HUBS = ("natural_gas", "crude_oil", "coal", "emissions", "hydrogen")
HUB_REGION = "europe"
# Which long-term level each hub follows: gas and coal share one (fuel switching).
LONG_TERM_FACTOR = {"natural_gas": "fuels", "coal": "fuels", "crude_oil": "oil",
                    "emissions": "carbon", "hydrogen": "hydrogen"}
# Regional basis (stationary sd of ln(regional / hub) around its level, reversion per year);
# (0, 0) is the hub's own market.
DEFAULT_BASIS = (0.08, 3.0)
BASIS: Dict[Tuple[str, str], Tuple[float, float]] = {
    ("natural_gas", "europe"): (0.0, 0.0), ("natural_gas", "uk"): (0.04, 10.0),
    ("natural_gas", "nordics"): (0.04, 10.0), ("natural_gas", "north_america"): (0.35, 0.6),
    ("natural_gas", "asia_pacific"): (0.10, 4.0), ("natural_gas", "latin_america"): (0.20, 1.5),
    ("crude_oil", "europe"): (0.0, 0.0), ("crude_oil", "uk"): (0.0, 0.0),
    ("crude_oil", "nordics"): (0.0, 0.0), ("crude_oil", "north_america"): (0.03, 4.0),
    ("crude_oil", "asia_pacific"): (0.02, 6.0), ("crude_oil", "latin_america"): (0.04, 4.0),
    ("coal", "europe"): (0.0, 0.0), ("coal", "uk"): (0.02, 8.0), ("coal", "nordics"): (0.02, 8.0),
    ("coal", "north_america"): (0.25, 0.8), ("coal", "asia_pacific"): (0.10, 2.0),
    ("emissions", "europe"): (0.0, 0.0), ("emissions", "nordics"): (0.0, 0.0),
    ("emissions", "uk"): (0.15, 1.0), ("emissions", "north_america"): (0.30, 0.5),
    ("emissions", "asia_pacific"): (0.30, 0.5), ("emissions", "latin_america"): (0.30, 0.5),
    ("hydrogen", "europe"): (0.0, 0.0),
}


@dataclass(frozen=True)
class SpreadLink:
    """derived = factor x (input + spread) for refined products, factor x input + spread
    otherwise, where spread is an arithmetic OU (USD per natural unit of the derived market
    for power and LNG, of the input for the crack) around a seasonal mean."""

    underlying: str
    factor: float
    stationary_sd: float
    reversion: float


DERIVED: Dict[str, SpreadLink] = {
    "refined_products": SpreadLink("crude_oil", BARRELS_PER_TONNE_GASOIL, 7.0, 3.0),
    "lng": SpreadLink("natural_gas", 1.0, 1.2, 4.0),
}


@dataclass(frozen=True)
class PowerMarket:
    """Power price formation of one region: the marginal plant's fuel and carbon cost plus a
    clean spark (gas) or dark (coal) spread with the region's demand season."""

    fuel: str
    heat_rate: float            # fuel natural units per MWh
    carbon_intensity: float     # tCO2 per MWh paid at the region's carbon price
    spread_sd: float            # stationary sd of the spread, USD/MWh
    spread_reversion: float
    winter_share: float         # seasonal amplitude of the spread, share of the base price
    summer_share: float
    glut_probability: float     # daily chance of a renewable glut (0: never negative)


POWER_MARKETS: Dict[str, PowerMarket] = {
    "north_america": PowerMarket("natural_gas", 7.0, 0.18, 10.0, 4.0, 0.05, 0.22, 0.010),
    "europe": PowerMarket("natural_gas", 6.8, 0.37, 16.0, 4.0, 0.12, 0.0, 0.015),
    "uk": PowerMarket("natural_gas", 6.8, 0.37, 16.0, 4.0, 0.12, 0.0, 0.004),
    "nordics": PowerMarket("natural_gas", 3.0, 0.18, 10.0, 1.5, 0.25, 0.0, 0.010),
    "asia_pacific": PowerMarket("coal", 0.40, 0.90, 12.0, 3.0, 0.03, 0.12, 0.0),
    "latin_america": PowerMarket("natural_gas", 4.0, 0.0, 10.0, 2.0, 0.06, 0.0, 0.0),
}
POWER_FLOOR_SHARE = 0.3
POWER_DAILY_SD = 0.10
POWER_DAILY_REVERSION = 60.0
POWER_SPIKE_MEAN = 0.35
POWER_SPIKE_DECAY = 0.55
GLUT_DEPTH_RANGE = (0.6, 1.45)

(_STREAM_SHORT, _STREAM_LONG, _STREAM_VOL, _STREAM_SPIKE_TIMES, _STREAM_SPIKE_SIZES,
 _STREAM_BASIS, _STREAM_SPREAD, _STREAM_SLOPE, _STREAM_DAILY, _STREAM_GLUT) = range(10)
_STREAM_NAMESPACE = 11


@dataclass(frozen=True, eq=False)
class PriceSeries:
    """Spot prices and forward curves (quoted currency per quoted unit), one column per pair.

    ``prices[t, j]`` is spot (day-ahead for power, which can be negative);
    ``forwards[t, j, m]`` the forward for the delivery month m months after t's month;
    ``volatility[t, j]`` the realised volatility of the balance-of-month contract known at t
    (see ``tenor_volatility`` for every tenor). Arrays are read-only: a generator hands out
    the same instance to every caller.
    """

    dates: np.ndarray
    commodities: Tuple[str, ...]
    regions: Tuple[str, ...]
    prices: np.ndarray
    forwards: np.ndarray
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        for array in (self.dates, self.prices, self.forwards):
            array.setflags(write=False)

    @property
    def currencies(self) -> Tuple[str, ...]:
        return tuple(quote(c, r).currency for c, r in zip(self.commodities, self.regions))

    @property
    def units(self) -> Tuple[str, ...]:
        return tuple(quote(c, r).unit for c, r in zip(self.commodities, self.regions))

    @property
    def names(self) -> Tuple[str, ...]:
        """Column names as 'commodity/region'."""
        return tuple(f"{c}/{r}" for c, r in zip(self.commodities, self.regions))

    @property
    def months(self) -> np.ndarray:
        """Calendar month (datetime64[M]) of each day: forward column m delivers months + m."""
        return self.dates.astype("datetime64[M]")

    def column(self, commodity: str, region: str) -> int:
        """Column index of one commodity/region pair."""
        try:
            return self.names.index(f"{commodity}/{region}")
        except ValueError:
            raise KeyError(f"no price series for {commodity}/{region}") from None

    def columns_of(self, commodities, regions) -> np.ndarray:
        """Column indices for parallel sequences of commodities and regions."""
        lookup = {name: j for j, name in enumerate(self.names)}
        commodity_codes, commodity_names = pd.factorize(
            pd.Series(commodities, dtype=object).astype(str))
        region_codes, region_names = pd.factorize(pd.Series(regions, dtype=object).astype(str))
        pair_codes, pairs = pd.factorize(commodity_codes * len(region_names) + region_codes)
        keys = [f"{commodity_names[pair // len(region_names)]}/"
                f"{region_names[pair % len(region_names)]}" for pair in pairs.tolist()]
        missing = [key for key in keys if key not in lookup]
        if missing:
            raise KeyError(f"no price series for {missing[0]}")
        return np.array([lookup[key] for key in keys], dtype=np.int64)[pair_codes]

    def day_index(self, days) -> np.ndarray:
        """Row indices of trading days (datetime64[D] or 'YYYY-MM-DD' strings)."""
        wanted = np.asarray(days, dtype="datetime64[D]")
        index = np.searchsorted(self.dates, wanted)
        if np.any(index >= len(self.dates)) or np.any(self.dates[np.minimum(
                index, len(self.dates) - 1)] != wanted):
            raise KeyError("some days are not trading days of this price history")
        return index

    def contract_log_returns(self) -> np.ndarray:
        """Daily log returns of each contract: row k, column m is the move from day k to k + 1
        of the contract delivering m months after day k's month; when that contract has
        expired by day k + 1 (m = 0 at a month end), the move of the new front contract."""
        if "returns" not in self._cache:
            roll = (self.months[1:] - self.months[:-1]).astype(np.int64)[:, None]
            columns = np.arange(FORWARD_MONTHS)[None, :]
            shape = self.forwards[1:].shape
            ahead = np.take_along_axis(self.forwards[1:], np.broadcast_to(
                np.maximum(columns - roll, 0)[:, None, :], shape), axis=2)
            before = np.take_along_axis(self.forwards[:-1], np.broadcast_to(
                np.maximum(columns, roll)[:, None, :], shape), axis=2)
            self._cache["returns"] = np.log(ahead / before)
        return self._cache["returns"]

    def tenor_volatility(self) -> np.ndarray:
        """[t, j, m]: annualised std of the 20 daily log returns of that contract up to the
        previous trading day (what a trader knows at t); the first 21 days reuse the first
        full-window value."""
        if "volatility" not in self._cache:
            returns = self.contract_log_returns()
            totals = np.concatenate([np.zeros((1,) + returns.shape[1:]),
                                     np.cumsum(returns, axis=0)])
            squares = np.concatenate([np.zeros((1,) + returns.shape[1:]),
                                      np.cumsum(returns ** 2, axis=0)])
            n = VOLATILITY_WINDOW
            sums = totals[n:] - totals[:-n]
            sums_sq = squares[n:] - squares[:-n]
            variance = np.maximum((sums_sq - sums ** 2 / n) / (n - 1), 0.0)
            rolling = np.sqrt(variance * TRADING_DAYS_PER_YEAR)
            volatility = np.empty_like(self.forwards)
            first = n + 1
            volatility[first:] = rolling[: len(self.dates) - first]
            volatility[:first] = rolling[0]
            volatility.setflags(write=False)
            self._cache["volatility"] = volatility
        return self._cache["volatility"]

    @property
    def volatility(self) -> np.ndarray:
        """Realised volatility of each series' balance-of-month contract, [t, j]."""
        return self.tenor_volatility()[:, :, 0]

    def strip_forward(self, rows, columns, first_month, months) -> np.ndarray:
        """Mean forward over months first_month .. first_month + months - 1 (a strip)."""
        if "cumulative" not in self._cache:
            self._cache["cumulative"] = np.concatenate(
                [np.zeros(self.forwards.shape[:2] + (1,)), np.cumsum(self.forwards, axis=2)],
                axis=2)
        cumulative = self._cache["cumulative"]
        last = first_month + months
        return (cumulative[rows, columns, last] - cumulative[rows, columns, first_month]) / months

    def series(self, commodity: str, region: str) -> pd.Series:
        """One pair's spot prices indexed by date."""
        return pd.Series(self.prices[:, self.column(commodity, region)],
                         index=pd.DatetimeIndex(self.dates), name=f"{commodity}/{region}")

    def to_frame(self) -> pd.DataFrame:
        """All spot prices, one column per 'commodity/region', indexed by date."""
        return pd.DataFrame(self.prices, index=pd.DatetimeIndex(self.dates, name="date"),
                            columns=list(self.names))

    def select(self, pairs: Sequence[Tuple[str, str]]) -> "PriceSeries":
        """The same history restricted to some commodity/region pairs, in the given order."""
        columns = [self.column(c, r) for c, r in pairs]
        return PriceSeries(self.dates, tuple(c for c, _ in pairs), tuple(r for _, r in pairs),
                           self.prices[:, columns], self.forwards[:, columns])

    @classmethod
    def from_npz_arrays(cls, arrays) -> "PriceSeries":
        """Inverse of to_npz_arrays (e.g. from numpy.load of price_series.npz)."""
        return cls(np.asarray(arrays["dates"]).astype("datetime64[D]"),
                   tuple(str(c) for c in arrays["commodities"]),
                   tuple(str(r) for r in arrays["regions"]),
                   np.asarray(arrays["prices"], dtype=float),
                   np.asarray(arrays["forwards"], dtype=float))

    def to_npz_arrays(self) -> Dict[str, np.ndarray]:
        """Plain arrays for price_series.npz (no pickled objects)."""
        return {"dates": np.datetime_as_string(self.dates, unit="D"),
                "commodities": np.array(self.commodities), "regions": np.array(self.regions),
                "currencies": np.array(self.currencies), "units": np.array(self.units),
                "prices": self.prices, "forwards": self.forwards,
                "volatility": self.volatility}


def _stream(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, _STREAM_NAMESPACE, stream]))


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


def _stationary_ou(draws: np.ndarray, sd, reversion, scale=1.0) -> np.ndarray:
    """Daily OU per column with stationary sd ``sd`` and reversion per year, started in its
    stationary distribution; ``scale`` multiplies each day's innovation (volatility regimes
    and shocks). Columns with sd 0 stay 0."""
    sd = np.broadcast_to(np.asarray(sd, dtype=float), draws.shape[1:])
    reversion = np.broadcast_to(np.asarray(reversion, dtype=float), draws.shape[1:])
    phi = np.exp(-reversion / TRADING_DAYS_PER_YEAR)
    out = _ar1(draws * (sd * np.sqrt(1.0 - phi ** 2)) * scale, phi)
    out[0] = draws[0] * sd
    return out


def _soft_floor(values: np.ndarray, scale: float) -> np.ndarray:
    """values where they are well above ``scale``, bending smoothly to scale / 2 at 0: fuel
    and carbon costs keep the forward power price positive without a kink."""
    return 0.5 * (values + np.sqrt(values ** 2 + scale ** 2))


def _day_of_year(days: np.ndarray) -> np.ndarray:
    return (days - days.astype("datetime64[Y]")).astype(np.int64) + 1


def _cycle(days: np.ndarray, peak_day: int, harmonic: int = 1) -> np.ndarray:
    return np.cos(harmonic * 2 * np.pi * (_day_of_year(days) - peak_day) / 365.25)


@dataclass(frozen=True)
class _Scenarios:
    """Per day and commodity: shock multiplier on innovations and log level shift."""

    volatility: np.ndarray
    log_shift: np.ndarray


def _scenario_effects(config: ETRMDataConfig, dates: np.ndarray) -> _Scenarios:
    commodities = list(COMMODITY_CATALOG)
    volatility = np.ones((len(dates), len(commodities)))
    log_shift = np.zeros((len(dates), len(commodities)))
    for scenario in config.scenarios("volatility_shock"):
        rows = dates >= as_day(scenario.start_date)
        cols = [c in (scenario.commodities or commodities) for c in commodities]
        volatility[np.ix_(rows, cols)] *= 1.0 + scenario.magnitude
    for scenario in config.scenarios("price_shift"):
        start = as_day(scenario.start_date)
        ramp = int(getattr(scenario, "ramp_days", 0) or 0)
        steps = np.cumsum(dates >= start)
        fraction = np.minimum(steps / max(ramp, 1), 1.0)
        cols = [c in (scenario.commodities or commodities) for c in commodities]
        log_shift[:, cols] += np.log1p(scenario.magnitude) * fraction[:, None]
    return _Scenarios(volatility, log_shift)


def _delivery_times(dates: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(tau in years, mid-delivery day) for each day and forward month index."""
    months = dates.astype("datetime64[M]")[:, None] + np.arange(FORWARD_MONTHS)[None, :]
    starts = months.astype("datetime64[D]")
    ends = (months + 1).astype("datetime64[D]") - 1
    first = np.maximum(starts, dates[:, None] + 1)
    first = np.minimum(first, ends)
    middle = first + (ends - first) // 2
    tau = (middle - dates[:, None]).astype(np.int64) / 365.25
    return tau, middle


class _Model:
    """The simulated state of every market (USD per natural unit) and its forward curves."""

    def __init__(self, config: ETRMDataConfig):
        self.config = config
        self.dates = trading_days(price_history_start(config.price_anchor_date).astype(object),
                                  config.end_date)
        self.n = len(self.dates)
        self.commodities = list(COMMODITY_CATALOG)
        self.regions = list(REGION_CATALOG)
        self.scenarios = _scenario_effects(config, self.dates)
        self.tau, self.delivery_day = _delivery_times(self.dates)
        self.dt = 1.0 / TRADING_DAYS_PER_YEAR
        self._draw_streams()
        self._simulate_hubs()
        self._simulate_deviations()
        self._simulate_regions()

    def _c(self, commodity: str) -> int:
        return self.commodities.index(commodity)

    def _draw_streams(self):
        seed, n = self.config.seed, self.n
        k, r = len(self.commodities), len(self.regions)
        self.short_draws = _stream(seed, _STREAM_SHORT).standard_normal((n, 1 + k + k))
        self.long_draws = _stream(seed, _STREAM_LONG).standard_normal((n, 8))
        self.vol_draws = _stream(seed, _STREAM_VOL).standard_normal((n, k))
        self.spike_u = _stream(seed, _STREAM_SPIKE_TIMES).random((n, k * r))
        self.spike_sizes = _stream(seed, _STREAM_SPIKE_SIZES).exponential(1.0, (n, k * r))
        self.basis_draws = _stream(seed, _STREAM_BASIS).standard_normal((n, k * r))
        self.spread_draws = _stream(seed, _STREAM_SPREAD).standard_normal((n, k * r))
        self.slope_draws = _stream(seed, _STREAM_SLOPE).standard_normal((n, k))
        self.daily_draws = _stream(seed, _STREAM_DAILY).standard_normal((n, r))
        glut = _stream(seed, _STREAM_GLUT).random((n, 2 * r))
        self.glut_u = glut[:, :r]
        low, high = GLUT_DEPTH_RANGE
        self.glut_depth = low + (high - low) * glut[:, r:]

    def _volatility_regime(self) -> np.ndarray:
        """Stochastic volatility x winter boost x shocks, per day and commodity."""
        p = STOCHASTIC_VOL_PERSISTENCE
        state = _ar1(np.sqrt(1 - p ** 2) * self.vol_draws, p,
                     np.full(len(self.commodities), 1.0 / np.sqrt(1 - p ** 2)))
        stochastic = np.exp(STOCHASTIC_VOL_SCALE * state - STOCHASTIC_VOL_SCALE ** 2 / 2)
        boost = np.array([COMMODITY_CATALOG[c].winter_volatility_boost
                          for c in self.commodities])
        winter = _cycle(self.dates, WINTER_PEAK_DAY_OF_YEAR)
        return stochastic * (1 + boost * winter[:, None]) * self.scenarios.volatility

    def _simulate_hubs(self):
        """Short-term, long-term, slope and spike states of each hub (and the regime)."""
        k = len(self.commodities)
        self.regime = self._volatility_regime()
        draws = self.short_draws
        own = np.sqrt(1 - GLOBAL_LOADING ** 2 - COMMODITY_LOADING ** 2)
        shocks = (GLOBAL_LOADING * draws[:, :1] + COMMODITY_LOADING * draws[:, 1:1 + k]
                  + own * draws[:, 1 + k:1 + 2 * k])
        sigma = np.array([COMMODITY_CATALOG[c].annual_volatility for c in self.commodities])
        kappa = np.array([COMMODITY_CATALOG[c].mean_reversion_per_year
                          for c in self.commodities])
        self.kappa = kappa
        self.sigma = sigma
        phi = np.exp(-kappa * self.dt)
        self.x = _ar1(sigma * np.sqrt(self.dt) * self.regime * shocks, phi,
                      1.0 / np.sqrt(1 - phi ** 2))
        factors = sorted(set(LONG_TERM_FACTOR.values()))
        phi_long = np.exp(-LONG_TERM_MEAN_REVERSION * self.dt)
        long_states = _ar1(LONG_TERM_VOLATILITY * np.sqrt(self.dt)
                           * self.long_draws[:, :len(factors)], phi_long,
                           1.0 / np.sqrt(1 - phi_long ** 2))
        self.xi = np.zeros((self.n, k))
        for commodity, factor in LONG_TERM_FACTOR.items():
            self.xi[:, self._c(commodity)] = long_states[:, factors.index(factor)]
        self.zeta = _stationary_ou(self.slope_draws, SLOPE_VOLATILITY, SLOPE_MEAN_REVERSION)
        specs = [COMMODITY_CATALOG[c] for c in self.commodities]
        peak = (1 + _cycle(self.dates, WINTER_PEAK_DAY_OF_YEAR, 2)) / 2
        probability = np.array([s.spike_probability_per_day for s in specs]) * (
            0.4 + 1.8 * peak[:, None])
        hub_column = np.arange(k) * len(self.regions) + self.regions.index(HUB_REGION)
        jumps = np.where(self.spike_u[:, hub_column] < probability,
                         self.spike_sizes[:, hub_column]
                         * np.array([s.spike_mean_log_size for s in specs])
                         * self.scenarios.volatility, 0.0)
        self.spike_decay = np.array([s.spike_decay_per_day for s in specs])
        self.spikes = _ar1(jumps, self.spike_decay)

    def _season(self, commodity: str, days: np.ndarray) -> np.ndarray:
        spec = COMMODITY_CATALOG[commodity]
        return (spec.winter_amplitude * _cycle(days, WINTER_PEAK_DAY_OF_YEAR)
                + spec.semiannual_amplitude * _cycle(days, WINTER_PEAK_DAY_OF_YEAR, 2))

    def hub_forward(self, commodity: str) -> np.ndarray:
        """[t, m] forward of a hub (USD per natural unit), before scenario shifts."""
        c = self._c(commodity)
        tau = self.tau
        kappa, sigma = self.kappa[c], self.sigma[c]
        regime = self.regime[:, c:c + 1]
        variance = (sigma ** 2 * regime ** 2 * (1 - np.exp(-2 * kappa * tau)) / (2 * kappa)
                    + LONG_TERM_VOLATILITY ** 2 * (1 - np.exp(-2 * LONG_TERM_MEAN_REVERSION
                                                              * tau))
                    / (2 * LONG_TERM_MEAN_REVERSION))
        decay_days = tau * TRADING_DAYS_PER_YEAR
        spike = (self.spikes[:, c:c + 1] * self.spike_decay[c] ** decay_days
                 if self.spike_decay[c] > 0 else 0.0)
        log_forward = (np.log(usd_base_price(commodity, HUB_REGION))
                       + self._season(commodity, self.delivery_day)
                       + self.x[:, c:c + 1] * np.exp(-kappa * tau)
                       + self.xi[:, c:c + 1] * np.exp(-LONG_TERM_MEAN_REVERSION * tau)
                       + spike + self.zeta[:, c:c + 1] * (1 - np.exp(-tau))
                       + variance / 2)
        return np.exp(log_forward)

    def hub_spot(self, commodity: str) -> np.ndarray:
        c = self._c(commodity)
        return np.exp(np.log(usd_base_price(commodity, HUB_REGION))
                      + self._season(commodity, self.dates) + self.x[:, c] + self.xi[:, c]
                      + self.spikes[:, c])

    def _column(self, commodity: str, region: str) -> int:
        return self._c(commodity) * len(self.regions) + self.regions.index(region)

    def _spread_parameters(self, commodity: str, region: str) -> Tuple[float, float]:
        if commodity == "power":
            market = POWER_MARKETS[region]
            return market.spread_sd, market.spread_reversion
        if commodity in DERIVED:
            return DERIVED[commodity].stationary_sd, DERIVED[commodity].reversion
        return 0.0, 1.0

    def _simulate_deviations(self):
        """Every regional basis, spread and daily power deviation, one vector step per day."""
        columns = [(c, r) for c in self.commodities for r in self.regions]
        commodity_of = np.array([self._c(c) for c, _ in columns])
        basis = [BASIS.get(pair, DEFAULT_BASIS) if pair[0] in HUBS else (0.0, 1.0)
                 for pair in columns]
        self.basis_reversion = np.array([kappa for _, kappa in basis])
        self.basis_deviation = _stationary_ou(
            self.basis_draws, [sd for sd, _ in basis], self.basis_reversion,
            self.scenarios.volatility[:, commodity_of])
        spreads = [self._spread_parameters(c, r) for c, r in columns]
        self.spread_reversion = np.array([kappa for _, kappa in spreads])
        self.spread_deviation = _stationary_ou(
            self.spread_draws, [sd for sd, _ in spreads], self.spread_reversion,
            self.regime[:, commodity_of])
        power = self._c("power")
        scale = self.regime[:, power:power + 1] * np.array(
            [REGION_CATALOG[r].volatility_multiplier for r in self.regions])
        self.daily_deviation = _stationary_ou(self.daily_draws, POWER_DAILY_SD,
                                              POWER_DAILY_REVERSION, scale)

    def _basis(self, commodity: str, region: str):
        """(spot multiplier [t], forward multiplier [t, m]) of a region against its hub."""
        level = np.log(usd_base_price(commodity, region) / usd_base_price(commodity, HUB_REGION))
        column = self._column(commodity, region)
        deviation = self.basis_deviation[:, column]
        decay = np.exp(-self.basis_reversion[column] * self.tau)
        return np.exp(level + deviation), np.exp(level + deviation[:, None] * decay)

    def _spread(self, commodity: str, region: str, mean_spot, mean_forward):
        """(spot [t], forward [t, m]) of an arithmetic OU spread around a seasonal mean."""
        column = self._column(commodity, region)
        deviation = self.spread_deviation[:, column]
        decay = np.exp(-self.spread_reversion[column] * self.tau)
        return mean_spot + deviation, mean_forward + deviation[:, None] * decay

    def _simulate_regions(self):
        """Spot and forward of every (commodity, region) in USD per natural unit."""
        self.spot: Dict[Tuple[str, str], np.ndarray] = {}
        self.forward: Dict[Tuple[str, str], np.ndarray] = {}
        for commodity in HUBS:
            hub_spot, hub_forward = self.hub_spot(commodity), self.hub_forward(commodity)
            for region in self.regions:
                spot_basis, forward_basis = self._basis(commodity, region)
                self.spot[commodity, region] = hub_spot * spot_basis
                self.forward[commodity, region] = hub_forward * forward_basis
        for commodity, link in DERIVED.items():
            for region in self.regions:
                base = usd_base_price(commodity, region)
                under = usd_base_price(link.underlying, region)
                if commodity == "refined_products":
                    mean = base / link.factor - under
                else:
                    mean = base - link.factor * under
                season_spot = mean * (1 + self._season(commodity, self.dates))
                season_forward = mean * (1 + self._season(commodity, self.delivery_day))
                spread_spot, spread_forward = self._spread(commodity, region, season_spot,
                                                           season_forward)
                if commodity == "refined_products":
                    self.spot[commodity, region] = link.factor * (
                        self.spot[link.underlying, region] + spread_spot)
                    self.forward[commodity, region] = link.factor * (
                        self.forward[link.underlying, region] + spread_forward)
                else:
                    self.spot[commodity, region] = (link.factor * self.spot[link.underlying,
                                                                            region]
                                                    + spread_spot)
                    self.forward[commodity, region] = (link.factor * self.forward[
                        link.underlying, region] + spread_forward)
        for region in self.regions:
            self._simulate_power(region)

    def _power_season(self, market: PowerMarket, base: float, days: np.ndarray) -> np.ndarray:
        return base * (market.winter_share * _cycle(days, WINTER_PEAK_DAY_OF_YEAR)
                       + market.summer_share * _cycle(days, SUMMER_PEAK_DAY_OF_YEAR))

    def _simulate_power(self, region: str):
        market = POWER_MARKETS[region]
        base = usd_base_price("power", region)
        fuel_cost = market.heat_rate * usd_base_price(market.fuel, region)
        carbon_cost = market.carbon_intensity * usd_base_price("emissions", region)
        mean = base - fuel_cost - carbon_cost
        spread_spot, spread_forward = self._spread(
            "power", region, mean + self._power_season(market, base, self.dates),
            mean + self._power_season(market, base, self.delivery_day))
        forward = (market.heat_rate * self.forward[market.fuel, region]
                   + market.carbon_intensity * self.forward["emissions", region]
                   + spread_forward)
        prompt = (market.heat_rate * self.spot[market.fuel, region]
                  + market.carbon_intensity * self.spot["emissions", region] + spread_spot)
        self.forward["power", region] = _soft_floor(forward, POWER_FLOOR_SHARE * base)
        self.spot["power", region] = self._power_spot(region, market, _soft_floor(
            prompt, POWER_FLOOR_SHARE * base))

    def _power_spot(self, region: str, market: PowerMarket, prompt: np.ndarray) -> np.ndarray:
        """Day-ahead power: prompt level x fast daily deviation x (1 + spikes), or a glut."""
        r = self.regions.index(region)
        c = self._c("power")
        spec = COMMODITY_CATALOG["power"]
        daily = self.daily_deviation[:, r]
        peak = (1 + _cycle(self.dates, WINTER_PEAK_DAY_OF_YEAR, 2)) / 2
        probability = spec.spike_probability_per_day * (0.4 + 1.8 * peak)
        column = self._column("power", region)
        jumps = np.where(self.spike_u[:, column] < probability,
                         POWER_SPIKE_MEAN * self.spike_sizes[:, column]
                         * self.scenarios.volatility[:, c], 0.0)
        spikes = _ar1(jumps[:, None], POWER_SPIKE_DECAY)[:, 0]
        spot = prompt * np.exp(daily) * (1 + spikes)
        glut_chance = market.glut_probability * (1 + _cycle(self.dates, GLUT_PEAK_DAY_OF_YEAR))
        glut = self.glut_u[:, r] < glut_chance
        return np.where(glut, prompt * np.exp(daily) * (1 - self.glut_depth[:, r]), spot)

    def series(self, pairs: Sequence[Tuple[str, str]]) -> Tuple[np.ndarray, np.ndarray]:
        """(spot [t, j], forwards [t, j, m]) in quoted units, scenario shifts applied."""
        spot = np.empty((self.n, len(pairs)))
        forwards = np.empty((self.n, len(pairs), FORWARD_MONTHS))
        for j, (commodity, region) in enumerate(pairs):
            factor = 1.0 / usd_per_quote_unit(commodity, region)
            shift = np.exp(self.scenarios.log_shift[:, self._c(commodity)])
            spot[:, j] = self.spot[commodity, region] * shift * factor
            forwards[:, j] = self.forward[commodity, region] * shift[:, None] * factor
        return spot, forwards


def simulate_prices(config: ETRMDataConfig, pairs: Sequence[Tuple[str, str]]) -> PriceSeries:
    """Simulate the markets from the history start to the config's end date."""
    model = _Model(config)
    spot, forwards = model.series(pairs)
    return PriceSeries(model.dates, tuple(c for c, _ in pairs), tuple(r for _, r in pairs),
                       spot, forwards)


def traded_pairs(config: ETRMDataConfig) -> List[Tuple[str, str]]:
    """Pairs a dataset can trade: configured ones plus any new-category drift pairs."""
    commodities, regions = list(config.commodities), list(config.regions)
    for scenario in config.scenarios("new_category"):
        target = commodities if scenario.category_field == "commodity" else regions
        if scenario.category_name not in target:
            target.append(scenario.category_name)
    return [(c, r) for c in commodities for r in regions]


def generate_price_series(config: ETRMDataConfig,
                          pairs: Optional[Sequence[Tuple[str, str]]] = None) -> PriceSeries:
    """The dataset's price history: traded pairs from the history start to end_date."""
    return simulate_prices(config, traded_pairs(config) if pairs is None else pairs)
