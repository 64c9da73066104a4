"""Statistical properties of the simulated price series (fixed seed, so deterministic)."""
from datetime import datetime

import numpy as np
import pytest

from ml.synthetic_data_generator import DriftScenario, ETRMDataConfig, SyntheticETRMDataGenerator


@pytest.fixture(scope="module")
def prices():
    return SyntheticETRMDataGenerator(ETRMDataConfig()).generate_price_series()


def _columns(prices, commodity):
    return [j for j, name in enumerate(prices.commodities) if name == commodity]


def _months(prices):
    return prices.dates.astype("datetime64[M]").astype(int) % 12 + 1


def test_history_covers_a_warm_up_year_and_the_window(prices):
    assert str(prices.dates[0]) < "2019-01-10" and str(prices.dates[-1]) == "2024-12-31"
    assert np.all(np.is_busday(prices.dates))
    assert len(prices.names) == 7 * 5
    assert np.all(np.isfinite(prices.prices)) and np.all(prices.prices > 0)


def test_prices_sit_at_realistic_levels(prices):
    median = {name: np.median(prices.prices[:, j]) for j, name in enumerate(prices.names)}
    assert 25 < median["power/north_america"] < 120
    assert 1.5 < median["natural_gas/north_america"] < 6
    assert 50 < median["crude_oil/north_america"] < 110
    assert 50 < median["emissions/europe"] < 120
    assert 50 < median["power/uk"] < 200


@pytest.mark.parametrize("commodity, max_coefficient", [
    ("power", -0.02), ("natural_gas", -0.008), ("lng", -0.006), ("crude_oil", -0.002)])
def test_log_prices_mean_revert(prices, commodity, max_coefficient):
    """Regressing the daily change on the previous level gives a clearly negative slope."""
    for j in _columns(prices, commodity):
        level = np.log(prices.prices[:, j])
        deviation = level - level.mean()
        slope = np.polyfit(deviation[:-1], np.diff(deviation), 1)[0]
        assert slope < max_coefficient, (prices.names[j], slope)


def test_gas_is_dearer_in_winter_than_in_summer(prices):
    months = _months(prices)
    winter, summer = np.isin(months, [12, 1, 2]), np.isin(months, [6, 7, 8])
    log_prices = np.log(prices.prices)
    premium = [log_prices[winter, j].mean() - log_prices[summer, j].mean()
               for j in _columns(prices, "natural_gas")]
    assert min(premium) > 0.1 and np.mean(premium) > 0.2, premium


def test_power_spikes_and_spikes_cluster_in_peak_seasons(prices):
    returns = np.diff(np.log(prices.prices), axis=0)
    power, crude = returns[:, _columns(prices, "power")], returns[:, _columns(prices, "crude_oil")]

    def tail_share(x):
        robust_sd = 1.4826 * np.median(np.abs(x - np.median(x, axis=0)), axis=0)
        return np.mean(x / robust_sd > 4)

    assert tail_share(power) > 4 * tail_share(crude)
    assert power.max() > 0.3
    months = _months(prices)[1:]
    spikes = power > 0.15
    peak, shoulder = np.isin(months, [1, 2, 7, 8]), np.isin(months, [4, 5, 10, 11])
    assert spikes[peak].mean() > 1.5 * spikes[shoulder].mean()


def test_commodities_are_positively_correlated(prices):
    correlation = np.corrcoef(np.diff(np.log(prices.prices), axis=0).T)
    for region in ("north_america", "europe", "uk", "nordics", "asia_pacific"):
        assert correlation[prices.column("power", region),
                           prices.column("natural_gas", region)] > 0.25
    off_diagonal = correlation[np.triu_indices(len(correlation), 1)]
    assert off_diagonal.mean() > 0.15 and off_diagonal.min() > -0.05


def test_volatility_is_the_trailing_realised_volatility(prices):
    log_prices = np.log(prices.prices)
    for day in (30, 400, len(prices.dates) - 1):
        window = np.diff(log_prices[day - 21:day], axis=0)
        expected = window.std(axis=0, ddof=1) * np.sqrt(252)
        np.testing.assert_allclose(prices.volatility[day], expected, rtol=1e-12)
    assert 0.05 < prices.volatility.min() and prices.volatility.max() < 5
    assert 0.3 < np.median(prices.volatility[:, _columns(prices, "power")]) < 1.2
    assert np.median(prices.volatility[:, _columns(prices, "crude_oil")]) < 0.5


DRIFT_START = datetime(2024, 1, 1)


def _pair(drift):
    base = SyntheticETRMDataGenerator(ETRMDataConfig()).generate_price_series()
    drifted = SyntheticETRMDataGenerator(
        ETRMDataConfig(drift_scenarios=[drift])).generate_price_series()
    before = base.dates < np.datetime64(DRIFT_START.date())
    return base, drifted, before


def test_volatility_shock_raises_volatility_only_after_its_start():
    base, drifted, before = _pair(DriftScenario("volatility_shock", DRIFT_START, 1.0,
                                                commodities=["power", "natural_gas"]))
    np.testing.assert_array_equal(base.prices[before], drifted.prices[before])
    after = ~before
    ratio = (np.diff(np.log(drifted.prices[after]), axis=0).std(axis=0)
             / np.diff(np.log(base.prices[after]), axis=0).std(axis=0))
    shocked = np.isin(drifted.commodities, ["power", "natural_gas"])
    assert np.all(ratio[shocked] > 1.6)
    np.testing.assert_allclose(ratio[~shocked], 1.0)


def test_price_shift_moves_levels_by_the_magnitude_from_its_start():
    base, drifted, before = _pair(DriftScenario("price_shift", DRIFT_START, 0.3))
    np.testing.assert_array_equal(base.prices[before], drifted.prices[before])
    np.testing.assert_allclose(drifted.prices[~before] / base.prices[~before], 1.3, rtol=1e-12)
