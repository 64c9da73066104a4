"""Regulatory reporting rules: REMIT standard/non-standard deadlines, business-day deadlines,
submissions and days_late on the regulator's calendar, per-regime independent lateness."""
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from ml.synthetic.calendar import business_day_count, is_business_day
from ml.synthetic.compliance import (COMPLIANCE_COLUMNS, VENUE_EXECUTED_SHARE,
                                     build_compliance_records, regulator_calendars)
from ml.synthetic.config import ETRMDataConfig, trading_days
from ml.synthetic.generator import SyntheticETRMDataGenerator

CONFIG = ETRMDataConfig(num_trades=10, num_risk_reports=0, start_date=datetime(2023, 1, 1),
                        end_date=datetime(2024, 12, 31))
RISK_COLUMNS = ["report_id", "report_date", "book", "var_limit_breach", "exposure_limit_breach",
                "var_95", "var_limit", "limit_utilisation", "gross_exposure", "exposure_limit",
                "exposure_utilisation"]


def _trades(rows):
    """A minimal trades table: (trade_date, commodity, region, instrument[, time])."""
    frame = pd.DataFrame([{
        "trade_id": f"TRD-T-{i:07d}", "trade_date": row[0],
        "timestamp": f"{row[0]}T{row[4] if len(row) > 4 else '10:00:00'}",
        "commodity": row[1], "region": row[2], "instrument": row[3], "book": "FLOW_TRADING",
        "notional_usd": 1_000_000.0 + i} for i, row in enumerate(rows)])
    return frame


def _no_reports():
    return pd.DataFrame({c: pd.Series(dtype=object if c in ("report_id", "report_date", "book")
                                      else float) for c in RISK_COLUMNS})


def _records(trades, config=CONFIG):
    records = build_compliance_records(config, trades, _no_reports())
    return records[records["record_type"] == "regulatory_report"]


def _random_trades(n, seed=0, regions=("europe", "uk", "nordics", "north_america"),
                   instruments=("future", "forward", "swap", "option"), after_hours=False):
    rng = np.random.default_rng(seed)
    days = trading_days(datetime(2023, 1, 1), datetime(2024, 12, 31))
    rows = [(str(d), c, r, i, "17:30:00" if after_hours else "10:00:00") for d, c, r, i in zip(
        np.sort(rng.choice(days, n)), rng.choice(["power", "natural_gas", "lng"], n),
        rng.choice(list(regions), n), rng.choice(list(instruments), n))]
    return _trades(rows)


def test_contract_type_is_the_last_column_and_empty_for_limit_breaches():
    assert COMPLIANCE_COLUMNS[-1] == "contract_type"
    reports = pd.DataFrame([{
        "report_id": "RSK-1", "report_date": "2024-03-04", "book": "FLOW_TRADING",
        "var_limit_breach": 1, "exposure_limit_breach": 0, "var_95": 2.0, "var_limit": 1.0,
        "limit_utilisation": 2.0, "gross_exposure": 1.0, "exposure_limit": 5.0,
        "exposure_utilisation": 0.2}])
    records = build_compliance_records(
        CONFIG, _trades([("2024-03-04", "power", "europe", "future")]), reports)
    assert list(records.columns) == COMPLIANCE_COLUMNS
    assert records.loc[records["record_type"] == "limit_breach", "contract_type"].tolist() == [""]
    assert set(records.loc[records["record_type"] == "regulatory_report", "contract_type"]) == {
        "standard"}


@pytest.mark.parametrize("day, region, instrument, regime, deadline", [
    ("2024-03-28", "europe", "future", "REMIT", "2024-04-02"),   # Good Friday, Easter Monday
    ("2024-03-28", "europe", "option", "EMIR", "2024-04-02"),
    ("2024-05-03", "uk", "future", "REMIT", "2024-05-07"),       # UK early May bank holiday
    ("2024-05-03", "nordics", "future", "REMIT", "2024-05-06"),  # TARGET2 open on 6 May
    ("2024-04-30", "europe", "future", "EMIR", "2024-05-02"),    # 1 May TARGET2 closed
    ("2024-07-03", "north_america", "swap", "CFTC", "2024-07-05"),
    ("2024-11-27", "north_america", "option", "CFTC", "2024-11-29"),
    ("2024-05-06", "uk", "future", "REMIT", "2024-05-07"),       # trade on a UK holiday
])
def test_t_plus_one_deadlines_are_business_days_of_the_regulator(day, region, instrument,
                                                                regime, deadline):
    records = _records(_trades([(day, "power", region, instrument)]))
    record = records[records["regime"] == regime].iloc[0]
    assert record["deadline"] == deadline
    if instrument in ("future", "option"):
        assert record["contract_type"] == "standard"


def test_remit_standard_forwards_and_swaps_are_due_next_business_day():
    trades = _random_trades(4000, seed=1, regions=("europe", "uk"),
                            instruments=("forward", "swap"))
    remit = _records(trades).query("regime == 'REMIT'")
    standard = remit[remit["contract_type"] == "standard"]
    assert len(standard) / len(remit) == pytest.approx(VENUE_EXECUTED_SHARE, abs=0.03)
    calendars = np.where(standard["region"] == "uk", "uk", "europe").astype(object)
    days = standard["event_date"].to_numpy().astype("datetime64[D]")
    deadline = standard["deadline"].to_numpy().astype("datetime64[D]")
    # T+1: exactly one business day after the trade day and no business day in between.
    assert np.all(deadline > days)
    np.testing.assert_array_equal(
        business_day_count(days + 1, deadline, calendars), np.zeros(len(days), dtype=int))
    assert np.all(is_business_day(deadline, calendars))


@pytest.mark.parametrize("day, region, deadline", [
    ("2024-01-31", "europe", "2024-02-29"),   # clipped to the month's last day
    ("2024-05-31", "europe", "2024-06-28"),   # 30 June is a Sunday: rolled back
    ("2024-11-25", "uk", "2024-12-24"),       # 25 Dec is a holiday: rolled back
    ("2024-03-01", "uk", "2024-03-28"),       # 1 Apr Easter Monday, back over Good Friday
])
def test_remit_non_standard_deadline_is_one_month_rolled_back(day, region, deadline):
    trades = _random_trades(400, seed=2, regions=(region,), instruments=("forward",))
    trades["trade_date"] = day
    trades["timestamp"] = f"{day}T10:00:00"
    remit = _records(trades).query("regime == 'REMIT' and contract_type == 'non_standard'")
    assert len(remit) > 50
    assert set(remit["deadline"]) == {deadline}


def test_futures_and_options_are_always_standard():
    trades = _random_trades(2000, seed=3, instruments=("future", "option"))
    assert set(_records(trades)["contract_type"]) == {"standard"}


def test_submissions_are_business_days_and_days_late_counts_business_days():
    trades = _random_trades(20000, seed=4, after_hours=True)
    records = _records(trades)
    assert len(records) > 10000
    calendars = np.where(records["regime"] == "CFTC", "north_america",
                         np.where(records["region"] == "uk", "uk", "europe")).astype(object)
    day = records["event_date"].to_numpy().astype("datetime64[D]")
    deadline = records["deadline"].to_numpy().astype("datetime64[D]")
    submitted = records["submission_date"].to_numpy().astype("datetime64[D]")
    assert np.all(is_business_day(deadline, calendars))
    assert np.all(is_business_day(submitted, calendars))
    late = (records["status"] == "late").to_numpy()
    assert 0.03 < late.mean() < 0.15
    assert np.all((submitted[~late] >= day[~late]) & (submitted[~late] <= deadline[~late]))
    assert np.all(submitted[late] > deadline[late])
    np.testing.assert_array_equal(records["days_late"].to_numpy()[late],
                                  business_day_count(deadline[late], submitted[late],
                                                     calendars[late]))
    assert np.all(records["days_late"].to_numpy()[~late] == 0)
    # Over Christmas/Easter the calendar gap exceeds the business-day count somewhere.
    assert np.any((submitted[late] - deadline[late]).astype(int)
                  > records["days_late"].to_numpy()[late])
    severity = np.where(records["days_late"] > 3, "high", np.where(late, "medium", "none"))
    np.testing.assert_array_equal(records["severity"].to_numpy(), severity)


def test_lateness_is_independent_between_remit_and_emir_for_the_same_trade():
    # Power options in Europe after hours: reported under REMIT and EMIR, p(late) = 0.10 each.
    n = 30000
    trades = _random_trades(n, seed=5, regions=("europe",), instruments=("option",),
                            after_hours=True)
    records = _records(trades)
    flags = records.pivot(index="trade_id", columns="regime", values="status") == "late"
    assert len(flags) == n
    remit, emir = flags["REMIT"].to_numpy(float), flags["EMIR"].to_numpy(float)
    assert remit.mean() == pytest.approx(0.10, abs=0.01)
    assert emir.mean() == pytest.approx(0.10, abs=0.01)
    assert abs(np.corrcoef(remit, emir)[0, 1]) < 0.03
    assert (remit * emir).mean() == pytest.approx(0.01, abs=0.004)


def test_records_are_indexed_by_trade_row_not_by_reportable_position():
    trades = _random_trades(3000, seed=6)
    changed = trades.copy()
    later = changed["trade_date"] >= "2024-01-01"
    # As a new-category drift would: later trades move to a region no regime reports.
    changed.loc[later, "region"] = "latin_america"
    before = _records(trades)
    after = _records(changed)
    early = lambda frame: frame[frame["event_date"] < "2024-01-01"].drop(  # noqa: E731
        columns="record_id").reset_index(drop=True)
    assert len(early(before)) > 500
    pd.testing.assert_frame_equal(early(before), early(after))
    assert (after["event_date"] >= "2024-01-01").sum() == 0


def test_regulator_calendars():
    trades = _trades([("2024-03-04", "power", r, "swap") for r in ("europe", "uk", "nordics")])
    assert regulator_calendars(trades, "REMIT").tolist() == ["europe", "uk", "europe"]
    assert regulator_calendars(trades, "CFTC").tolist() == ["north_america"] * 3


def test_generated_compliance_follows_the_calendars():
    config = ETRMDataConfig(num_trades=4000, num_risk_reports=12,
                            start_date=datetime(2023, 12, 1), end_date=datetime(2024, 4, 30))
    records = SyntheticETRMDataGenerator(config).generate_compliance()
    reports = records[records["record_type"] == "regulatory_report"]
    calendars = np.where(reports["regime"] == "CFTC", "north_america",
                         np.where(reports["region"] == "uk", "uk", "europe")).astype(object)
    submitted = reports["submission_date"].to_numpy().astype("datetime64[D]")
    assert np.all(is_business_day(submitted, calendars))
    assert set(reports["contract_type"]) == {"standard", "non_standard"}
    assert set(records.loc[records["record_type"] == "limit_breach", "contract_type"]) <= {""}
