"""Exchange and regional calendars: holidays, substitute/observed days, business-day arithmetic,
and that trades and the price history never fall on an exchange holiday."""
from datetime import date, datetime

import numpy as np
import pytest

from ml.synthetic import calendar
from ml.synthetic.calendar import (business_day_count, business_day_offset, easter_sunday,
                                   exchange_holidays, is_business_day, regional_holidays,
                                   trading_days)
from ml.synthetic.config import (PRICE_WARMUP_TRADING_DAYS, ETRMDataConfig, price_history_start)
from ml.synthetic import config as config_module
from ml.synthetic.generator import SyntheticETRMDataGenerator


def _days(*texts):
    return np.array(texts, dtype="datetime64[D]")


@pytest.mark.parametrize("year, expected", [
    (2019, date(2019, 4, 21)), (2023, date(2023, 4, 9)), (2024, date(2024, 3, 31)),
    (2025, date(2025, 4, 20)), (2038, date(2038, 4, 25))])
def test_easter_sunday(year, expected):
    assert easter_sunday(year) == expected


def test_fallback_easter_algorithm_matches_dateutil(monkeypatch):
    library = [easter_sunday(y) for y in range(1900, 2101)]
    monkeypatch.setattr(calendar, "_dateutil_easter", None)
    assert [easter_sunday(y) for y in range(1900, 2101)] == library


def test_exchange_holidays_2024():
    np.testing.assert_array_equal(
        exchange_holidays(datetime(2024, 1, 1), datetime(2024, 12, 31)),
        _days("2024-01-01", "2024-03-29", "2024-04-01", "2024-12-25", "2024-12-26"))


def test_trading_days_skip_weekends_and_exchange_holidays():
    days = trading_days(datetime(2024, 1, 1), datetime(2024, 12, 31))
    assert days.dtype == np.dtype("datetime64[D]")
    assert len(days) == 262 - 5
    assert np.all(np.is_busday(days))
    for holiday in ("2024-01-01", "2024-03-29", "2024-04-01", "2024-12-25", "2024-12-26"):
        assert np.datetime64(holiday) not in days
    assert np.datetime64("2024-12-27") in days


def test_config_trading_days_delegates_to_the_calendar():
    first, last = datetime(2022, 12, 20), datetime(2023, 1, 10)
    np.testing.assert_array_equal(config_module.trading_days(first, last),
                                  trading_days(first, last))
    assert np.datetime64("2022-12-26") not in config_module.trading_days(first, last)


def test_price_history_start_counts_exchange_trading_days():
    anchor = datetime(2020, 1, 1)  # a holiday: the history is anchored on 2020-01-02
    start = price_history_start(anchor)
    assert isinstance(start, np.datetime64)
    assert len(trading_days(start, datetime(2020, 1, 1))) == PRICE_WARMUP_TRADING_DAYS
    assert is_business_day(start, "exchange")


def test_target2_closing_days():
    np.testing.assert_array_equal(
        regional_holidays("europe", "2024-01-01", "2024-12-31"),
        _days("2024-01-01", "2024-03-29", "2024-04-01", "2024-05-01", "2024-12-25",
              "2024-12-26"))
    np.testing.assert_array_equal(regional_holidays("nordics", "2024-01-01", "2024-12-31"),
                                  regional_holidays("europe", "2024-01-01", "2024-12-31"))


def test_uk_bank_holidays_with_substitute_days():
    np.testing.assert_array_equal(
        regional_holidays("uk", "2021-12-01", "2022-12-31"),
        _days("2021-12-27", "2021-12-28",   # 25 Dec Saturday, 26 Dec Sunday
              "2022-01-03",                 # 1 Jan Saturday
              "2022-04-15", "2022-04-18", "2022-05-02", "2022-06-02", "2022-06-03",
              "2022-08-29", "2022-09-19",
              "2022-12-26", "2022-12-27"))  # 25 Dec Sunday: Boxing Day Mon, Christmas Tue
    assert np.datetime64("2022-05-30") not in regional_holidays("uk", "2022-01-01",
                                                                 "2022-12-31")


def test_us_federal_holidays_with_observed_days():
    holidays = regional_holidays("north_america", "2021-01-01", "2021-12-31")
    np.testing.assert_array_equal(holidays, _days(
        "2021-01-01", "2021-01-18", "2021-02-15", "2021-05-31", "2021-06-18", "2021-07-05",
        "2021-09-06", "2021-10-11", "2021-11-11", "2021-11-25", "2021-12-24",
        "2021-12-31"))  # New Year's Day 2022 (Saturday) observed on Friday 2021-12-31
    assert np.datetime64("2023-01-02") in regional_holidays("north_america", "2023-01-01",
                                                            "2023-01-31")


def test_asia_pacific_sunday_substitute():
    holidays = regional_holidays("asia_pacific", "2023-01-01", "2023-12-31")
    np.testing.assert_array_equal(holidays, _days(
        "2023-01-02", "2023-04-07", "2023-05-01", "2023-08-09", "2023-12-25"))


def test_business_day_offset_and_count():
    assert business_day_offset(np.datetime64("2024-03-28"), 1, "europe") == np.datetime64(
        "2024-04-02")
    assert business_day_offset(np.datetime64("2024-05-03"), 1, "uk") == np.datetime64(
        "2024-05-07")
    assert business_day_offset(np.datetime64("2024-05-03"), 1, "europe") == np.datetime64(
        "2024-05-06")
    out = business_day_offset(_days("2024-07-03", "2024-07-03"), [1, 1],
                              np.array(["north_america", "europe"], dtype=object))
    np.testing.assert_array_equal(out, _days("2024-07-05", "2024-07-04"))
    assert business_day_count("2024-03-28", "2024-04-03", "uk") == 2
    # A holiday start day rolled backward then +1 gives the first business day after it.
    assert business_day_offset(np.datetime64("2024-05-06"), 1, "uk",
                               roll="backward") == np.datetime64("2024-05-07")
    assert len(business_day_offset(np.array([], dtype="datetime64[D]"), 1, "uk")) == 0


def test_business_day_offset_over_long_ranges_is_vectorised():
    days = np.arange(np.datetime64("2000-01-01"), np.datetime64("2030-12-31"))
    out = business_day_offset(days, 5, "uk")
    assert np.all(is_business_day(out, "uk")) and np.all(out > days)


def test_unknown_region_is_refused_naming_the_allowed_ones():
    with pytest.raises(ValueError, match=r"region.*'mars'.*allowed: .*europe.*uk"):
        regional_holidays("mars", "2024-01-01", "2024-12-31")
    with pytest.raises(ValueError, match="region"):
        business_day_offset(np.datetime64("2024-01-02"), 1, "mars")


def test_generated_trades_and_prices_skip_exchange_holidays():
    config = ETRMDataConfig(num_trades=3000, num_risk_reports=6,
                            start_date=datetime(2023, 12, 18), end_date=datetime(2024, 4, 5))
    generator = SyntheticETRMDataGenerator(config)
    trades = generator.generate_trades()
    closed = {str(d) for d in exchange_holidays(datetime(2023, 12, 1), datetime(2024, 4, 30))}
    assert closed >= {"2023-12-25", "2023-12-26", "2024-01-01", "2024-03-29", "2024-04-01"}
    assert not set(trades["trade_date"]) & closed
    assert {"2023-12-27", "2024-01-02", "2024-04-02"} <= set(trades["trade_date"])
    prices = generator.generate_price_series()
    assert not {str(d) for d in prices.dates} & {
        str(d) for d in exchange_holidays(prices.dates[0], prices.dates[-1])}
    assert len(exchange_holidays(prices.dates[0], prices.dates[-1])) > 0
