"""The simulated market as a risk analyst would check it (fixed seed, so deterministic):
curve shapes, the Samuelson effect, related markets, spot power, quoting and drift."""
from datetime import datetime

import numpy as np
import pytest

from ml.synthetic.prices import POWER_MARKETS
from ml.synthetic_data_generator import DriftScenario, ETRMDataConfig, SyntheticETRMDataGenerator

ALL_REGIONS = ["north_america", "europe", "uk", "nordics", "asia_pacific"]


@pytest.fixture(scope="module")
def prices():
    return SyntheticETRMDataGenerator(ETRMDataConfig()).generate_price_series()


def _spot(prices, commodity, region):
    return prices.prices[:, prices.column(commodity, region)]


def _reversion_per_year(series: np.ndarray) -> float:
    """-ln(phi) x 252 of an AR(1) fit of the daily series: how fast it returns to its mean."""
    x = series - series.mean()
    phi = np.dot(x[1:], x[:-1]) / np.dot(x[:-1], x[:-1])
    return -np.log(phi) * 252


def _usd(prices, commodity, region):
    """Spot in USD per natural unit (MMBtu for gas), for spreads across quoting conventions."""
    from ml.synthetic.catalog import usd_per_quote_unit
    return _spot(prices, commodity, region) * usd_per_quote_unit(commodity, region)


def test_history_covers_a_warm_up_year_and_the_window(prices):
    assert prices.dates[0] < np.datetime64("2019-01-15")
    assert prices.dates[-1] == np.datetime64("2024-12-31")
    assert prices.forwards.shape == (len(prices.dates), len(prices.names), 61)
    assert np.isfinite(prices.forwards).all() and (prices.forwards > 0).all()
    days = prices.dates.astype(str)
    assert not any(day[5:] in ("12-25", "01-01") for day in days)


def test_markets_sit_at_realistic_levels_in_their_own_quotes(prices):
    medians = {name: np.median(prices.prices[:, j]) for j, name in enumerate(prices.names)}
    assert 25 < medians["natural_gas/europe"] < 70          # TTF, EUR/MWh
    assert 60 < medians["natural_gas/uk"] < 160             # NBP, pence/therm
    assert 1.5 < medians["natural_gas/north_america"] < 8   # Henry Hub, USD/MMBtu
    assert 60 < medians["crude_oil/europe"] < 110           # Brent, USD/bbl
    assert 60 < medians["emissions/europe"] < 120           # EUA, EUR/t
    assert 70 < medians["power/europe"] < 160               # EUR/MWh
    units = dict(zip(prices.names, zip(prices.currencies, prices.units)))
    assert units["natural_gas/uk"] == ("GBX", "therm")
    assert units["natural_gas/europe"] == ("EUR", "MWh")
    assert {units[f"crude_oil/{r}"] for r in ALL_REGIONS} == {("USD", "bbl")}
    assert {units[f"coal/{r}"] for r in ALL_REGIONS} == {("USD", "t")}
    assert {units[f"lng/{r}"] for r in ALL_REGIONS} == {("USD", "MMBtu")}


def _seasonal_shape(prices, commodity, region):
    """Mean forward by delivery month of year, relative to the same day's curve average,
    over every day of the history and the deliveries 1-24 months ahead."""
    j = prices.column(commodity, region)
    curve = prices.forwards[:, j, 1:25]
    relative = curve / curve.mean(axis=1, keepdims=True)
    month_of_year = ((prices.months.astype(int)[:, None] + np.arange(1, 25)) % 12) + 1
    return {m: relative[month_of_year == m].mean() for m in range(1, 13)}


def test_forward_curves_carry_each_markets_season(prices):
    """Winter gas trades above summer gas; North American power peaks in summer
    (air-conditioning), European power in winter."""
    gas = _seasonal_shape(prices, "natural_gas", "europe")
    assert gas[1] > 1.15 * gas[7]
    america = _seasonal_shape(prices, "power", "north_america")
    assert america[7] > 1.05 * america[4] and america[7] == max(america.values())
    europe = _seasonal_shape(prices, "power", "europe")
    assert europe[1] > 1.1 * europe[5] and europe[1] == max(europe.values())


def test_curves_move_between_contango_and_backwardation(prices):
    crude = prices.column("crude_oil", "europe")
    slope = np.log(prices.forwards[:, crude, 12] / prices.forwards[:, crude, 1])
    assert (slope > 0.02).mean() > 0.1 and (slope < -0.02).mean() > 0.1


def test_volatility_falls_with_time_to_delivery(prices):
    """Samuelson effect: near contracts move with spot, far ones with the long-term level."""
    volatility = prices.tenor_volatility()
    for commodity in ("power", "natural_gas", "crude_oil"):
        j = prices.column(commodity, "europe")
        by_tenor = np.median(volatility[300:, j, [0, 3, 12, 36]], axis=0)
        assert np.all(np.diff(by_tenor) < 0), (commodity, by_tenor)
    power = prices.column("power", "europe")
    assert np.median(volatility[300:, power, 0]) > 2.5 * np.median(volatility[300:, power, 24])


def test_regional_prices_are_cointegrated_with_their_hub(prices):
    def correlation(a, b):
        moves = [np.diff(np.log(_spot(prices, *pair))) for pair in (a, b)]
        return np.corrcoef(*moves)[0, 1]
    assert correlation(("natural_gas", "europe"), ("natural_gas", "uk")) > 0.9
    assert correlation(("crude_oil", "europe"), ("crude_oil", "north_america")) > 0.9
    # The spread reverts within months, while each price itself wanders for years.
    nbp_ttf = np.log(_usd(prices, "natural_gas", "uk") / _usd(prices, "natural_gas", "europe"))
    brent_wti = _usd(prices, "crude_oil", "europe") - _usd(prices, "crude_oil", "north_america")
    crude = _reversion_per_year(np.log(_spot(prices, "crude_oil", "europe")))
    assert _reversion_per_year(nbp_ttf) > max(4, 3 * crude)
    assert _reversion_per_year(brent_wti) > max(2, crude)
    assert 1.0 < np.median(brent_wti) < 8.0                # Brent over WTI, USD/bbl


def test_one_eua_market_for_europe_and_the_nordics(prices):
    np.testing.assert_array_equal(_spot(prices, "emissions", "europe"),
                                  _spot(prices, "emissions", "nordics"))
    np.testing.assert_array_equal(prices.forwards[:, prices.column("emissions", "europe")],
                                  prices.forwards[:, prices.column("emissions", "nordics")])


def test_crack_spark_and_dark_spreads_mean_revert(prices):
    crack = (_usd(prices, "refined_products", "europe") / 7.45
             - _usd(prices, "crude_oil", "europe"))
    assert 15 < np.median(crack) < 40 and _reversion_per_year(crack) > 1.5
    market = POWER_MARKETS["europe"]
    spark = (_usd(prices, "power", "europe") - market.heat_rate
             * _usd(prices, "natural_gas", "europe") - market.carbon_intensity
             * _usd(prices, "emissions", "europe"))
    assert _reversion_per_year(spark) > 3
    dark_ratio = np.log(_usd(prices, "coal", "europe") / _usd(prices, "natural_gas", "europe"))
    assert _reversion_per_year(dark_ratio) > 1.5


def test_spot_power_spikes_and_goes_negative_where_the_market_allows(prices):
    for region in ALL_REGIONS:
        power = _spot(prices, "power", region)
        gas = _spot(prices, "natural_gas", region)
        change = np.diff(power) / np.abs(power[:-1]).mean()
        gas_change = np.diff(gas) / gas[:-1].mean()
        kurtosis = ((change - change.mean()) ** 4).mean() / change.var() ** 2
        gas_kurtosis = ((gas_change - gas_change.mean()) ** 4).mean() / gas_change.var() ** 2
        assert kurtosis > gas_kurtosis, region
        assert (power < 0).any() == (POWER_MARKETS[region].glut_probability > 0), region
    europe = _spot(prices, "power", "europe")
    assert np.percentile(europe, 1) < 30 and np.percentile(europe, 99) > 180
    assert (np.diff(europe) / europe[:-1].clip(10) > 0.5).sum() >= 3


def test_commodities_are_positively_correlated(prices):
    returns = np.diff(np.log(prices.forwards[:, :, 1]), axis=0)
    assert np.corrcoef(returns[:, prices.column("natural_gas", "europe")],
                       returns[:, prices.column("power", "europe")])[0, 1] > 0.3
    assert np.corrcoef(returns[:, prices.column("crude_oil", "europe")],
                       returns[:, prices.column("refined_products", "europe")])[0, 1] > 0.7


def test_tenor_volatility_is_the_trailing_realised_volatility_of_the_contract(prices):
    returns = prices.contract_log_returns()
    j, m, t = prices.column("natural_gas", "uk"), 3, 400
    expected = returns[t - 21:t - 1, j, m].std(ddof=1) * np.sqrt(252)
    assert prices.tenor_volatility()[t, j, m] == pytest.approx(expected, rel=1e-9)
    np.testing.assert_array_equal(prices.volatility, prices.tenor_volatility()[:, :, 0])


def _shocked(kind, magnitude, **extra):
    start = datetime(2024, 1, 2)
    config = ETRMDataConfig(num_trades=10, drift_scenarios=[
        DriftScenario(kind, start, magnitude, **extra)])
    return SyntheticETRMDataGenerator(config).generate_price_series(), np.datetime64(start, "D")


def test_volatility_shock_raises_volatility_only_after_its_start(prices):
    shocked, start = _shocked("volatility_shock", 1.0)
    before = prices.dates < start
    np.testing.assert_array_equal(shocked.forwards[before], prices.forwards[before])
    after = prices.dates >= start + 30
    ratio = (np.median(shocked.tenor_volatility()[after][:, :, 1], axis=0)
             / np.median(prices.tenor_volatility()[after][:, :, 1], axis=0))
    assert np.all(ratio > 1.5) and np.median(ratio) > 1.8


def test_price_shift_ramps_the_level_without_a_volatility_shock(prices):
    shocked, start = _shocked("price_shift", 0.3, ramp_days=20)
    before = prices.dates < start
    np.testing.assert_array_equal(shocked.prices[before], prices.prices[before])
    later = prices.dates >= start + 60
    np.testing.assert_allclose(shocked.forwards[later] / prices.forwards[later], 1.3,
                               rtol=1e-9)
    ramp = (prices.dates >= start) & (prices.dates < start + 40)
    ratio = np.median(shocked.tenor_volatility()[ramp][:, :, 1], axis=0) / np.median(
        prices.tenor_volatility()[ramp][:, :, 1], axis=0)
    assert np.all(ratio < 1.15)
