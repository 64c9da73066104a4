"""Internal consistency of a generated dataset: every table follows from the ones before it.

Each check recomputes a table (or a number) independently from the tables it is built from,
so a generator change that breaks the chain prices -> trades -> positions -> risk ->
compliance -> texts fails here.
"""
import re
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from ml.synthetic_data_generator import ETRMDataConfig, SyntheticETRMDataGenerator

CONFIG = dict(num_trades=2000, num_risk_reports=48, start_date=datetime(2023, 1, 1),
              end_date=datetime(2023, 12, 31), seed=11)
KEYS = ["book", "commodity", "region", "delivery_period"]
UNITS = {"power": "MWh", "natural_gas": "MMBtu", "lng": "MMBtu", "crude_oil": "bbl",
         "refined_products": "t", "coal": "t", "emissions": "tCO2"}
CURRENCIES = {"north_america": "USD", "europe": "EUR", "uk": "GBP", "nordics": "EUR",
              "asia_pacific": "USD"}


@pytest.fixture(scope="module")
def generator():
    return SyntheticETRMDataGenerator(ETRMDataConfig(**CONFIG))


@pytest.fixture(scope="module")
def dataset(generator):
    return generator.generate_complete_dataset()


@pytest.fixture(scope="module")
def texts(generator):
    return generator.generate_text_records()


def _signed(trades):
    sign = np.where(trades["direction"] == "buy", 1.0, -1.0)
    return trades.assign(signed_volume=sign * trades["volume"],
                         signed_notional=sign * trades["notional"])


# Trades -------------------------------------------------------------------------------------

def test_trades_happen_on_weekdays_within_market_hours(dataset):
    trades = dataset["trades"]
    days = pd.to_datetime(trades["trade_date"], format="%Y-%m-%d")
    assert (days.dt.dayofweek < 5).all()
    assert days.between("2023-01-01", "2023-12-31").all()
    assert (trades["timestamp"].str.slice(0, 10) == trades["trade_date"]).all()
    assert trades["timestamp"].str.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}").all()
    clock = trades["timestamp"].str.slice(11)
    assert ((clock >= "08:00:00") & (clock < "18:00:00")).all()
    assert trades["timestamp"].is_monotonic_increasing


def test_units_and_currencies_follow_commodity_and_region(dataset):
    trades = dataset["trades"]
    assert (trades["unit"] == trades["commodity"].map(UNITS)).all()
    assert (trades["currency"] == trades["region"].map(CURRENCIES)).all()
    fx = dataset["metadata"]["fx_usd_per_unit"]
    assert (trades["notional"] == trades["volume"] * trades["price"]).all()
    assert (trades["notional_usd"] == trades["notional"] * trades["currency"].map(fx)).all()
    assert (trades["volume"] > 0).all() and (trades["price"] > 0).all()


def test_delivery_fields_agree_with_tenor(dataset):
    trades = dataset["trades"]
    trade_month = pd.PeriodIndex(trades["trade_date"], freq="M")
    delivery_month = pd.PeriodIndex(trades["delivery_period"], freq="M")
    assert ((delivery_month - trade_month).map(lambda d: d.n) == trades["tenor_months"]).all()
    month_end = delivery_month.to_timestamp(how="end").strftime("%Y-%m-%d")
    assert (trades["delivery_end"] == month_end).all()
    forward = trades["tenor_months"] > 0
    assert (trades.loc[forward, "delivery_start"]
            == trades.loc[forward, "delivery_period"] + "-01").all()
    assert (trades["delivery_start"] >= trades["trade_date"]).all()
    assert (trades["delivery_start"] <= trades["delivery_end"]).all()
    assert (trades["delivery_start"].str.slice(0, 7) == trades["delivery_period"]).all()
    assert (trades["tenor_months"] >= 0).all()


def test_trade_prices_and_volatility_come_from_the_price_series(dataset):
    trades, prices = dataset["trades"], dataset["price_series"]
    rows = prices.day_index(trades["trade_date"])
    columns = [prices.column(c, r) for c, r in zip(trades["commodity"], trades["region"])]
    mid = prices.prices[rows, columns]
    assert np.all(np.abs(trades["price"] / mid - 1) < 0.02)
    buys = trades["direction"] == "buy"
    assert (trades.loc[buys, "price"] / mid[buys]).mean() > (
        trades.loc[~buys, "price"] / mid[~buys]).mean()
    np.testing.assert_array_equal(trades["volatility"], prices.volatility[rows, columns])


def test_reference_data_is_consistent_across_trades(dataset):
    trades = dataset["trades"]
    assert trades.groupby("counterparty")["counterparty_rating"].nunique().eq(1).all()
    assert trades.groupby("counterparty")["counterparty_exposure_share"].nunique().eq(1).all()
    assert trades.groupby("trader")["book"].nunique().eq(1).all()


# Positions ----------------------------------------------------------------------------------

def test_positions_are_exactly_the_groupby_of_trades(dataset):
    trades, positions = _signed(dataset["trades"]), dataset["positions"]
    expected = trades.groupby(KEYS).agg(
        num_trades=("trade_id", "size"), net_volume=("signed_volume", "sum"),
        gross_volume=("volume", "sum"), net_notional=("signed_notional", "sum"),
        gross_notional=("notional", "sum"), first_trade_date=("trade_date", "min"),
        last_trade_date=("trade_date", "max"), delivery_end=("delivery_end", "max"),
        unit=("unit", "first"), currency=("currency", "first")).reset_index()
    pd.testing.assert_frame_equal(positions[expected.columns], expected, check_exact=True)
    assert positions["num_trades"].sum() == len(trades)
    assert (positions["buy_volume"] - positions["sell_volume"] == positions["net_volume"]).all()


def test_positions_are_marked_at_the_valuation_date(dataset):
    positions, prices = dataset["positions"], dataset["price_series"]
    valuation = dataset["metadata"]["window"]["valuation_date"]
    assert valuation == "2023-12-29" and (positions["valuation_date"] == valuation).all()
    row = prices.day_index([valuation])[0]
    mark = [prices.prices[row, prices.column(c, r)]
            for c, r in zip(positions["commodity"], positions["region"])]
    np.testing.assert_array_equal(positions["mark_price"], mark)
    np.testing.assert_array_equal(positions["market_value"],
                                  positions["net_volume"] * positions["mark_price"])
    np.testing.assert_array_equal(positions["unrealised_pnl"],
                                  positions["market_value"] - positions["net_notional"])
    assert ((positions["status"] == "open") == (positions["delivery_end"] >= valuation)).all()


# Risk reports -------------------------------------------------------------------------------

def _exposures(open_positions, prices, row, fx):
    by_series = open_positions.groupby(["commodity", "region", "currency"])["net_volume"].sum()
    exposures = np.zeros(len(prices.names))
    for (commodity, region, currency), volume in by_series.items():
        j = prices.column(commodity, region)
        exposures[j] = volume * prices.prices[row, j] * fx[currency]
    return exposures


def _historical_risk(exposures, prices, row):
    moves = np.diff(np.log(prices.prices), axis=0)[row - 250:row]
    losses = -(np.expm1(moves) @ exposures)
    var95, var99 = np.quantile(losses, 0.95), np.quantile(losses, 0.99)
    return var95, var99, losses[losses >= var95].mean(), losses[losses >= var99].mean()


def _check_report(report, exposures, prices, row):
    assert report["net_exposure"] == pytest.approx(exposures.sum(), rel=1e-9, abs=1e-6)
    assert report["gross_exposure"] == pytest.approx(np.abs(exposures).sum(), rel=1e-9, abs=1e-6)
    expected = _historical_risk(exposures, prices, row)
    actual = [report[k] for k in ("var_95", "var_99", "es_95", "es_99")]
    np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=1e-6)
    assert report["var_99"] >= report["var_95"] - 1e-9
    assert report["es_95"] >= report["var_95"] - 1e-9


def test_final_risk_reports_recompute_from_the_positions_table(dataset):
    positions, prices, reports = (dataset["positions"], dataset["price_series"],
                                  dataset["risk_reports"])
    fx = dataset["metadata"]["fx_usd_per_unit"]
    valuation = dataset["metadata"]["window"]["valuation_date"]
    row = prices.day_index([valuation])[0]
    final = reports[reports["report_date"] == valuation]
    assert len(final) == 6
    for _, report in final.iterrows():
        book_open = positions[(positions["book"] == report["book"])
                              & (positions["status"] == "open")]
        assert report["num_open_positions"] == len(book_open)
        _check_report(report, _exposures(book_open, prices, row, fx), prices, row)


def test_every_risk_report_recomputes_from_positions_as_of_its_date(dataset):
    trades, prices, reports = (_signed(dataset["trades"]), dataset["price_series"],
                               dataset["risk_reports"])
    fx = dataset["metadata"]["fx_usd_per_unit"]
    assert len(reports) == CONFIG["num_risk_reports"] and reports["report_id"].is_unique
    assert reports["report_date"].nunique() == 8
    for day, day_reports in reports.groupby("report_date"):
        traded = trades[trades["trade_date"] <= day]
        as_of = traded.groupby(KEYS + ["currency"]).agg(
            net_volume=("signed_volume", "sum"), delivery_end=("delivery_end", "first")
        ).reset_index()
        open_positions = as_of[as_of["delivery_end"] >= day]
        row = prices.day_index([day])[0]
        for _, report in day_reports.iterrows():
            book_open = open_positions[open_positions["book"] == report["book"]]
            assert report["num_trades_to_date"] == (traded["book"] == report["book"]).sum()
            assert report["num_open_positions"] == len(book_open)
            _check_report(report, _exposures(book_open, prices, row, fx), prices, row)


def test_limits_utilisation_and_breaches_are_consistent(dataset):
    reports = dataset["risk_reports"]
    np.testing.assert_allclose(reports["limit_utilisation"],
                               reports["var_95"] / reports["var_limit"], rtol=1e-12)
    np.testing.assert_allclose(reports["exposure_utilisation"],
                               reports["gross_exposure"] / reports["exposure_limit"], rtol=1e-12)
    assert reports.groupby("book")["var_limit"].nunique().eq(1).all()
    assert (reports["var_limit"] % 1000 == 0).all()
    assert (reports["exposure_limit"] % 100_000 == 0).all()
    headroom = reports["var_limit"] / reports.groupby("book")["var_95"].transform("median")
    assert headroom.between(1.3, 1.8 + 1e-3).all()
    assert (reports["var_limit_breach"] == (reports["limit_utilisation"] > 1)).all()
    assert (reports["exposure_limit_breach"] == (reports["exposure_utilisation"] > 1)).all()
    assert (reports["breaches"]
            == reports["var_limit_breach"] + reports["exposure_limit_breach"]).all()
    assert 0 < reports["breaches"].sum() < len(reports)


# Compliance ---------------------------------------------------------------------------------

def _expected_reports(trades):
    european = trades["region"].isin(["europe", "uk", "nordics"])
    rules = {
        "REMIT": trades["commodity"].isin(["power", "natural_gas", "lng"]) & european,
        "EMIR": trades["instrument"].isin(["future", "swap", "option"]) & european,
        "CFTC": trades["instrument"].isin(["swap", "option"])
        & (trades["region"] == "north_america"),
    }
    return {(trade_id, regime) for regime, mask in rules.items()
            for trade_id in trades.loc[mask, "trade_id"]}


def test_regulatory_reports_cover_exactly_the_reportable_trades(dataset):
    trades, compliance = dataset["trades"], dataset["compliance"]
    reports = compliance[compliance["record_type"] == "regulatory_report"]
    actual = list(zip(reports["trade_id"], reports["regime"]))
    assert len(actual) == len(set(actual))
    assert set(actual) == _expected_reports(trades)
    merged = reports.merge(trades, on="trade_id", suffixes=("", "_trade"))
    assert (merged["event_date"] == merged["trade_date"]).all()
    assert (merged["value_usd"] == merged["notional_usd"]).all()
    assert (merged["book"] == merged["book_trade"]).all()


def test_deadlines_and_late_reports_follow_the_rules(dataset):
    trades, compliance = dataset["trades"], dataset["compliance"]
    reports = compliance[compliance["record_type"] == "regulatory_report"].merge(
        trades[["trade_id", "instrument"]], on="trade_id")
    trade_day = reports["event_date"].to_numpy().astype("datetime64[D]")
    next_business_day = np.busday_offset(trade_day, 1, roll="forward")
    non_standard = ((reports["regime"] == "REMIT")
                    & reports["instrument"].isin(["forward", "swap"])).to_numpy()
    expected_deadline = np.where(non_standard, trade_day + np.timedelta64(30, "D"),
                                 next_business_day)
    deadline = reports["deadline"].to_numpy().astype("datetime64[D]")
    submitted = reports["submission_date"].to_numpy().astype("datetime64[D]")
    np.testing.assert_array_equal(deadline, expected_deadline)
    late = submitted > deadline
    assert ((reports["status"] == "late") == late).all()
    assert (submitted >= trade_day).all()
    np.testing.assert_array_equal(reports["days_late"],
                                  np.where(late, (submitted - deadline).astype(int), 0))
    assert ((reports["severity"] == "high") == (reports["days_late"] > 3)).all()
    assert 0 < late.mean() < 0.15


def test_limit_breach_records_match_the_risk_reports(dataset):
    compliance, reports = dataset["compliance"], dataset["risk_reports"]
    breaches = compliance[compliance["record_type"] == "limit_breach"]
    expected = {(r, "var_95") for r in reports.loc[reports["var_limit_breach"] == 1, "report_id"]}
    expected |= {(r, "gross_exposure")
                 for r in reports.loc[reports["exposure_limit_breach"] == 1, "report_id"]}
    assert set(zip(breaches["report_id"], breaches["limit_type"])) == expected
    merged = breaches.merge(reports, on="report_id", suffixes=("", "_report"))
    var = merged["limit_type"] == "var_95"
    assert (merged.loc[var, "value_usd"] == merged.loc[var, "var_95"]).all()
    assert (merged.loc[var, "limit_usd"] == merged.loc[var, "var_limit"]).all()
    assert (merged.loc[~var, "value_usd"] == merged.loc[~var, "gross_exposure"]).all()
    assert (merged["event_date"] == merged["report_date"]).all()
    assert (merged["utilisation"] > 1).all()
    assert compliance["record_id"].is_unique
    assert compliance["event_date"].is_monotonic_increasing


# Texts --------------------------------------------------------------------------------------

def _money(value):
    return f"{value:,.0f}"


def _percent(value):
    return f"{value * 100:.1f}%"


def _contains_whole(text, value):
    """value occurs in text and is not part of a longer number."""
    start = text.find(value)
    while start >= 0:
        before = text[start - 1:start]
        after = text[start + len(value):start + len(value) + 2]
        extends_before = before.isdigit() or before in (",", ".")
        extends_after = after[:1].isdigit() or (after[:1] in (",", ".") and after[1:].isdigit())
        if not extends_before and not extends_after:
            return True
        start = text.find(value, start + 1)
    return False


def _assert_numbers_come_from(text, renderings, required):
    """Every digit of text belongs to a rendering of a record value (or a 95%/99% label)."""
    for value in required:
        assert _contains_whole(text, value), (value, text)
    remaining = text
    for value in sorted(set(renderings) | {"95%", "99%"}, key=len, reverse=True):
        remaining = remaining.replace(value, " ")
    assert not re.search(r"\d", remaining), (text, remaining)


def test_every_number_in_a_trade_confirmation_equals_its_trade(dataset, texts):
    trades = dataset["trades"].set_index("trade_id", drop=False).to_dict("index")
    confirmations = texts[texts["kind"] == "trade_confirmation"]
    assert sorted(confirmations["record_id"]) == sorted(trades)
    decimals = dataset["metadata"]["price_decimals"]
    for record in confirmations.itertuples():
        trade = trades[record.record_id]
        assert record.date == trade["trade_date"]
        price = f"{trade['price']:,.{decimals[trade['commodity']]}f}"
        required = [record.record_id, trade["trade_date"], trade["timestamp"][11:],
                    f"{trade['volume']:,.0f}", price, f"{trade['notional']:,.2f}",
                    trade["delivery_period"]]
        optional = [f"{trade['tenor_months']} month", _percent(trade["volatility"]),
                    trade["unit"]]
        _assert_numbers_come_from(record.text, required + optional, required)


def test_every_number_in_a_risk_summary_equals_its_report(dataset, texts):
    reports = dataset["risk_reports"].set_index("report_id")
    summaries = texts[texts["kind"] == "risk_summary"]
    assert sorted(summaries["record_id"]) == sorted(reports.index)
    for record in summaries.itertuples():
        report = reports.loc[record.record_id]
        assert record.date == report["report_date"]
        always = [report["report_date"], _money(report["var_95"]), _money(report["var_99"]),
                  _money(report["var_limit"]), _money(report["exposure_limit"])]
        with_exposure = [f"{report['num_open_positions']} open position",
                         _money(report["net_exposure"]), _money(report["gross_exposure"]),
                         _money(report["top_exposure"]), _money(report["es_95"]),
                         _money(report["es_99"]), _percent(report["limit_utilisation"]),
                         _percent(report["exposure_utilisation"])]
        required = always + (with_exposure if report["gross_exposure"] > 0 else [])
        _assert_numbers_come_from(record.text, always + with_exposure, required)


def test_every_number_in_a_compliance_note_equals_its_record(dataset, texts):
    compliance = dataset["compliance"].set_index("record_id")
    notes = texts[texts["kind"] == "compliance_note"]
    notable = compliance[compliance["status"].isin(["late", "breach"])]
    assert sorted(notes["record_id"]) == sorted(notable.index)
    assert {"late", "breach"} <= set(notable["status"])
    for record in notes.itertuples():
        entry = compliance.loc[record.record_id]
        assert record.date == entry["event_date"]
        if entry["status"] == "late":
            days = entry["days_late"]
            required = [entry["trade_id"], entry["deadline"], entry["submission_date"],
                        f"{days} day" + ("s" if days != 1 else "")]
            optional = [entry["event_date"]]
        else:
            required = [entry["report_id"], entry["event_date"], _money(entry["value_usd"]),
                        _money(entry["limit_usd"]), _percent(entry["utilisation"])]
            optional = []
        _assert_numbers_come_from(record.text, required + optional, required)
