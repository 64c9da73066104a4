"""Configuration rules added with the market-realism change: new_category shares, scenario
dates inside the window, ramp_days, num_positions, holiday-aware trading days."""
from datetime import datetime

import pytest

from ml.synthetic.config import DriftScenario, ETRMDataConfig


def _refused(words, **kwargs):
    with pytest.raises(ValueError) as error:
        ETRMDataConfig(**kwargs)
    message = str(error.value)
    assert "allowed" in message, message
    for word in words:
        assert word in message, (word, message)


@pytest.mark.parametrize("field, shares, total", [
    ("commodity", (0.6, 0.5), "1.1"), ("region", (0.7, 0.4), "1.1"),
    ("commodity", (0.4, 0.4, 0.4), "1.2")])
def test_new_category_shares_of_one_field_above_one_are_refused(field, shares, total):
    scenarios = [DriftScenario("new_category", datetime(2024, 1 + k, 1), share,
                               category_field=field) for k, share in enumerate(shares)]
    _refused(["DriftScenario.magnitude", "drift_scenarios", f"sum to {total} > 1",
              repr(field)], drift_scenarios=scenarios)


def test_new_category_shares_up_to_one_per_field_are_accepted():
    ETRMDataConfig(drift_scenarios=[
        DriftScenario("new_category", datetime(2024, 1, 1), 0.5),
        DriftScenario("new_category", datetime(2024, 2, 1), 0.5),
        DriftScenario("new_category", datetime(2024, 1, 1), 0.8, category_field="region")])


def test_scenario_starting_after_end_date_is_refused():
    _refused(["DriftScenario.start_date", "2025-01-02", "after end_date", "2024-12-31"],
             drift_scenarios=[DriftScenario("price_shift", datetime(2025, 1, 2), 0.2)])
    ETRMDataConfig(drift_scenarios=[DriftScenario("price_shift", datetime(2024, 12, 31), 0.2)])


def test_ramp_days_defaults_to_zero_and_round_trips():
    scenario = DriftScenario("price_shift", datetime(2024, 3, 1), 0.3, ramp_days=20)
    assert DriftScenario("price_shift", datetime(2024, 3, 1), 0.3).ramp_days == 0
    data = scenario.to_dict()
    assert data["ramp_days"] == 20
    assert DriftScenario.from_dict(data) == scenario
    del data["ramp_days"]
    assert DriftScenario.from_dict(data).ramp_days == 0
    config = ETRMDataConfig(drift_scenarios=[scenario])
    assert ETRMDataConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("value", [-1, 1.5, True, "5"])
def test_bad_ramp_days_are_refused(value):
    with pytest.raises(ValueError) as error:
        DriftScenario("price_shift", datetime(2024, 3, 1), 0.3, ramp_days=value)
    assert "DriftScenario.ramp_days" in str(error.value)
    assert "an integer >= 0" in str(error.value)


def test_num_positions_is_the_opening_portfolio_size():
    doc = ETRMDataConfig.__doc__
    assert "opening portfolio" in doc
    assert "traded before start_date and still delivering" in doc
    assert ETRMDataConfig(num_positions=0).num_positions == 0
    _refused(["num_positions", ">= 0"], num_positions=-1)
    _refused(["num_positions", "integer"], num_positions=2.5)


def test_a_window_of_exchange_holidays_only_has_no_trading_day():
    _refused(["end_date", "trading day", "exchange holidays"],
             start_date=datetime(2024, 12, 25), end_date=datetime(2024, 12, 26))
    ETRMDataConfig(start_date=datetime(2024, 12, 25), end_date=datetime(2024, 12, 27))
