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

CONFIG = dict(num_trades=2000, num_positions=400, num_risk_reports=48,
              start_date=datetime(2023, 1, 1), end_date=datetime(2023, 12, 31), seed=11)
KEYS = ["book", "commodity", "region", "delivery_period", "option_type", "strike",
        "expiry_date"]
# The quoting conventions a trader expects (currency/unit) for the markets that differ.
QUOTES = {("natural_gas", "europe"): ("EUR", "MWh"), ("natural_gas", "uk"): ("GBX", "therm"),
          ("natural_gas", "north_america"): ("USD", "MMBtu"),
          ("crude_oil", "europe"): ("USD", "bbl"), ("crude_oil", "uk"): ("USD", "bbl"),
          ("coal", "europe"): ("USD", "t"), ("lng", "uk"): ("USD", "MMBtu"),
          ("power", "uk"): ("GBP", "MWh"), ("power", "nordics"): ("EUR", "MWh"),
          ("emissions", "europe"): ("EUR", "tCO2"), ("emissions", "uk"): ("GBP", "tCO2")}


@pytest.fixture(scope="module")
def generator():
    return SyntheticETRMDataGenerator(ETRMDataConfig(**CONFIG))


@pytest.fixture(scope="module")
def dataset(generator):
    return generator.generate_complete_dataset()


@pytest.fixture(scope="module")
def opening(generator, dataset):
    return generator.generate_opening_trades()


@pytest.fixture(scope="module")
def texts(generator):
    return generator.generate_text_records()


def _legs(trades):
    """Monthly legs of trades, rebuilt with pandas (a strip splits its volume evenly)."""
    months = trades["delivery_months"].to_numpy()
    legs = trades.loc[trades.index.repeat(months)].reset_index(drop=True)
    offset = legs.groupby("trade_id").cumcount().to_numpy()
    first = pd.PeriodIndex(legs["trade_date"], freq="M") + legs["tenor_months"].to_numpy()
    legs["delivery_period"] = (first + offset).strftime("%Y-%m")
    legs["month_end"] = (first + offset).to_timestamp(how="end").strftime("%Y-%m-%d")
    sign = np.where(legs["direction"] == "buy", 1.0, -1.0)
    legs["leg_volume"] = legs["volume"] / legs["delivery_months"]
    legs["signed_volume"] = sign * legs["leg_volume"]
    legs["signed_notional"] = sign * legs["leg_volume"] * legs["price"]
    return legs


# Trades -------------------------------------------------------------------------------------

def test_trades_happen_on_exchange_days_within_market_hours(dataset):
    trades = dataset["trades"]
    days = pd.to_datetime(trades["trade_date"], format="%Y-%m-%d")
    assert (days.dt.dayofweek < 5).all()
    assert not trades["trade_date"].str.slice(5).isin(["12-25", "01-01"]).any()
    assert days.between("2023-01-01", "2023-12-31").all()
    assert (trades["timestamp"].str.slice(0, 10) == trades["trade_date"]).all()
    assert trades["timestamp"].str.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}").all()
    clock = trades["timestamp"].str.slice(11)
    assert ((clock >= "08:00:00") & (clock < "18:00:00")).all()
    assert trades["timestamp"].is_monotonic_increasing


def test_markets_quote_in_their_own_currency_and_unit(dataset):
    trades = dataset["trades"]
    quoted = trades.groupby(["commodity", "region"])[["currency", "unit"]].agg(set)
    for pair, (currency, unit) in QUOTES.items():
        assert quoted.loc[pair, "currency"] == {currency}, pair
        assert quoted.loc[pair, "unit"] == {unit}, pair
    fx = dataset["metadata"]["fx_usd_per_unit"]
    linear = trades["instrument"] != "option"
    assert (trades.loc[linear, "notional"]
            == trades.loc[linear, "volume"] * trades.loc[linear, "price"]).all()
    assert (trades.loc[~linear, "notional"]
            == trades.loc[~linear, "volume"] * trades.loc[~linear, "forward_price"]).all()
    assert (trades["notional_usd"] == trades["notional"] * trades["currency"].map(fx)).all()
    assert (trades["volume"] > 0).all() and (trades["price"] > 0).all()


def test_delivery_fields_agree_with_tenor_and_strip_length(dataset):
    trades = dataset["trades"]
    trade_month = pd.PeriodIndex(trades["trade_date"], freq="M")
    first = pd.PeriodIndex(trades["delivery_period"].str.slice(0, 7), freq="M")
    last = first + (trades["delivery_months"].to_numpy() - 1)
    assert ((first - trade_month).map(lambda d: d.n) == trades["tenor_months"]).all()
    assert (trades["delivery_end"] == last.to_timestamp(how="end").strftime("%Y-%m-%d")).all()
    strips = trades["delivery_months"] > 1
    assert (trades.loc[strips, "delivery_period"] == first[strips].strftime("%Y-%m") + "/"
            + last[strips].strftime("%Y-%m")).all()
    assert set(trades.loc[strips, "instrument"]) == {"swap"}
    assert trades.loc[trades["instrument"] == "swap", "delivery_months"].max() >= 12
    forward = trades["tenor_months"] > 0
    assert (trades.loc[forward, "delivery_start"]
            == first[forward].strftime("%Y-%m") + "-01").all()
    # Prompt trades deliver from the next day, never on the trade day itself.
    assert (trades["delivery_start"] > trades["trade_date"]).all()
    assert (trades["delivery_start"] <= trades["delivery_end"]).all()


def test_linear_trades_are_priced_off_the_curve_at_bid_or_ask(dataset):
    trades, prices = dataset["trades"], dataset["price_series"]
    rows = prices.day_index(trades["trade_date"])
    columns = prices.columns_of(trades["commodity"], trades["region"])
    tenor, months = trades["tenor_months"].to_numpy(), trades["delivery_months"].to_numpy()
    strip = np.array([prices.forwards[r, j, t:t + m].mean()
                      for r, j, t, m in zip(rows, columns, tenor, months)])
    np.testing.assert_allclose(trades["forward_price"], strip, rtol=1e-12)
    linear = (trades["instrument"] != "option").to_numpy()
    ratio = trades["price"].to_numpy() / strip
    buys = (trades["direction"] == "buy").to_numpy()
    assert np.all(np.abs(ratio[linear] - 1) < 0.03)
    assert ratio[linear & buys].mean() > 1 > ratio[linear & ~buys].mean()
    middle = tenor + (months - 1) // 2
    np.testing.assert_array_equal(trades["volatility"],
                                  prices.tenor_volatility()[rows, columns, middle])


def test_options_have_terms_and_a_black76_premium(dataset):
    from ml.synthetic.options import black76_delta, black76_price, year_fraction
    trades = dataset["trades"]
    options = trades[trades["instrument"] == "option"]
    others = trades[trades["instrument"] != "option"]
    assert len(options) > 50 and set(options["option_type"]) == {"call", "put"}
    assert (others["option_type"] == "none").all() and (others["strike"] == 0).all()
    assert (others["expiry_date"] == "").all() and (others["premium"] == 0).all()
    expiry = pd.to_datetime(options["expiry_date"])
    assert (expiry > pd.to_datetime(options["trade_date"])).all()
    assert (expiry < pd.to_datetime(options["delivery_start"])).all()
    assert (expiry.dt.dayofweek < 5).all()
    years = year_fraction(options["trade_date"].to_numpy(), options["expiry_date"].to_numpy())
    call = (options["option_type"] == "call").to_numpy()
    fair = black76_price(options["forward_price"].to_numpy(), options["strike"].to_numpy(),
                         options["volatility"].to_numpy(), years, call)
    ratio = options["price"].to_numpy() / fair
    sensible = fair > 0.05 * options["forward_price"].to_numpy() * 0.01
    assert np.all(np.abs(ratio[sensible] - 1) < 0.05)
    delta = np.abs(black76_delta(options["forward_price"].to_numpy(),
                                 options["strike"].to_numpy(), options["volatility"].to_numpy(),
                                 years, call))
    assert 0.1 < delta.min() and delta.max() < 0.9
    np.testing.assert_array_equal(options["premium"], options["volume"] * options["price"])


def test_reference_data_is_consistent_across_trades(dataset):
    trades = dataset["trades"]
    assert trades.groupby("counterparty")["counterparty_rating"].nunique().eq(1).all()
    assert trades.groupby("counterparty")["counterparty_exposure_share"].nunique().eq(1).all()
    assert trades.groupby("trader")["book"].nunique().eq(1).all()


# Opening portfolio and positions ------------------------------------------------------------

def test_books_open_with_num_positions_trades_still_delivering(dataset, opening):
    assert len(opening) == CONFIG["num_positions"]
    assert (opening["trade_date"] < "2023-01-01").all()
    assert (opening["trade_date"] >= "2022-01-01").all()
    assert (opening["delivery_end"] >= "2023-01-02").all()
    options = opening["instrument"] == "option"
    assert (opening.loc[options, "expiry_date"] >= "2023-01-02").all()
    assert opening["trade_id"].str.startswith("OPN-").all()
    assert set(opening["book"]) == set(dataset["trades"]["book"])
    first = dataset["risk_reports"].query("report_date == report_date.min()")
    assert len(first) == 6 and (first["gross_exposure"] > 0).all()


def test_positions_are_exactly_the_groupby_of_the_monthly_legs(dataset, opening):
    legs = _legs(pd.concat([opening, dataset["trades"]], ignore_index=True))
    positions = dataset["positions"]
    expected = legs.groupby(KEYS).agg(
        num_trades=("trade_id", "size"), net_volume=("signed_volume", "sum"),
        gross_volume=("leg_volume", "sum"), net_notional=("signed_notional", "sum"),
        first_trade_date=("trade_date", "min"), last_trade_date=("trade_date", "max"),
        delivery_end=("month_end", "first"), unit=("unit", "first"),
        currency=("currency", "first")).reset_index()
    pd.testing.assert_frame_equal(positions[expected.columns], expected, check_exact=False,
                                  rtol=1e-12)
    assert positions["num_opening_trades"].sum() == int(
        legs["trade_id"].str.startswith("OPN-").sum())
    np.testing.assert_allclose(positions["buy_volume"] - positions["sell_volume"],
                               positions["net_volume"], rtol=1e-12, atol=1e-6)


def test_positions_are_valued_settled_or_expired_at_the_valuation_date(dataset):
    from ml.synthetic.options import black76_price, year_fraction
    positions, prices = dataset["positions"], dataset["price_series"]
    valuation = dataset["metadata"]["window"]["valuation_date"]
    assert valuation == "2023-12-29" and (positions["valuation_date"] == valuation).all()
    row = prices.day_index([valuation])[0]
    month = pd.PeriodIndex(positions["delivery_period"], freq="M")
    ahead = (month - pd.Period(valuation, freq="M")).map(lambda d: d.n).to_numpy()
    columns = prices.columns_of(positions["commodity"], positions["region"])
    linear = (positions["option_type"] == "none").to_numpy()
    status = positions["status"].to_numpy()
    assert set(status) == {"open", "delivered", "expired"}
    open_linear = linear & (status == "open")
    np.testing.assert_array_equal(positions["mark_price"][open_linear],
                                  prices.forwards[row, columns[open_linear], ahead[open_linear]])
    open_options = ~linear & (status == "open")
    years = year_fraction(np.datetime64(valuation), positions["expiry_date"][open_options]
                          .to_numpy())
    value = black76_price(prices.forwards[row, columns[open_options], ahead[open_options]],
                          positions["strike"][open_options].to_numpy(),
                          prices.tenor_volatility()[row, columns[open_options],
                                                    ahead[open_options]],
                          years, (positions["option_type"][open_options] == "call").to_numpy())
    np.testing.assert_allclose(positions["mark_price"][open_options], value, rtol=1e-12)
    is_open = status == "open"
    np.testing.assert_allclose(positions["market_value"][is_open],
                               (positions["net_volume"] * positions["mark_price"])[is_open])
    np.testing.assert_allclose(positions["unrealised_pnl"][is_open],
                               (positions["market_value"] - positions["net_notional"])[is_open])
    # Delivered months settle at the month's average spot: realised, nothing left to mark.
    delivered = status == "delivered"
    spot = prices.to_frame()
    average = spot.groupby(spot.index.to_period("M")).mean()
    settlement = [average.loc[m, f"{c}/{r}"] for m, c, r in zip(
        month[delivered], positions["commodity"][delivered], positions["region"][delivered])]
    np.testing.assert_allclose(positions["mark_price"][delivered], settlement, rtol=1e-12)
    np.testing.assert_allclose(positions["realised_pnl"][delivered], (
        positions["net_volume"] * positions["mark_price"] - positions["net_notional"]
    )[delivered])
    assert (positions["unrealised_pnl"][~is_open] == 0).all()
    assert (positions["market_value"][~is_open] == 0).all()


# Risk reports -------------------------------------------------------------------------------

def _report_risk(legs, prices, day, fx):
    """Exposures and VaR/ES of one book's legs open on ``day``, recomputed independently."""
    from ml.synthetic.options import black76_delta, black76_gamma, year_fraction
    row = prices.day_index([day])[0]
    alive = legs["expiry_date"].where(legs["option_type"] != "none", legs["month_end"])
    open_legs = legs[(legs["trade_date"] <= day) & (legs["month_end"] >= day) & (alive >= day)]
    ahead = (pd.PeriodIndex(open_legs["delivery_period"], freq="M")
             - pd.Period(day, freq="M")).map(lambda d: d.n).to_numpy()
    columns = prices.columns_of(open_legs["commodity"], open_legs["region"])
    forward = prices.forwards[row, columns, ahead]
    usd = open_legs["currency"].map(fx).to_numpy()
    option = (open_legs["option_type"] != "none").to_numpy()
    delta = np.ones(len(open_legs))
    gamma = np.zeros(len(open_legs))
    if option.any():
        years = year_fraction(np.datetime64(day), open_legs["expiry_date"][option].to_numpy())
        volatility = prices.tenor_volatility()[row, columns[option], ahead[option]]
        call = (open_legs["option_type"][option] == "call").to_numpy()
        strike = open_legs["strike"][option].to_numpy()
        delta[option] = black76_delta(forward[option], strike, volatility, years, call)
        gamma[option] = black76_gamma(forward[option], strike, volatility, years, call)
    volume = open_legs["signed_volume"].to_numpy()
    returns = np.expm1(prices.contract_log_returns()[row - 250:row][:, columns, ahead])
    pnl = returns @ (volume * delta * forward * usd) + (returns ** 2) @ (
        0.5 * volume * gamma * forward ** 2 * usd)
    losses = -pnl
    var95, var99 = np.quantile(losses, 0.95), np.quantile(losses, 0.99)
    exposure = pd.Series(volume * delta * forward * usd).groupby(
        [columns, ahead]).sum()
    return {"var_95": var95, "var_99": var99, "es_95": losses[losses >= var95].mean(),
            "es_99": losses[losses >= var99].mean(), "net_exposure": exposure.sum(),
            "gross_exposure": exposure.abs().sum()}


def test_every_risk_report_recomputes_from_the_legs_open_on_its_date(dataset, opening):
    legs = _legs(pd.concat([opening, dataset["trades"]], ignore_index=True))
    prices, reports = dataset["price_series"], dataset["risk_reports"]
    fx = dataset["metadata"]["fx_usd_per_unit"]
    assert reports["report_id"].is_unique
    assert reports.groupby("report_date")["book"].nunique().eq(6).all()
    assert len(reports) == 48
    for day in sorted(reports["report_date"].unique())[::3]:
        for _, report in reports[reports["report_date"] == day].iterrows():
            expected = _report_risk(legs[legs["book"] == report["book"]], prices, day, fx)
            for key, value in expected.items():
                assert report[key] == pytest.approx(value, rel=1e-9, abs=1e-3), (day, key)
            assert report["var_99"] >= report["var_95"] and report["es_95"] >= report["var_95"]


def test_limits_are_set_monthly_from_data_before_the_month(dataset):
    reports = dataset["risk_reports"]
    np.testing.assert_allclose(reports["limit_utilisation"],
                               reports["var_95"] / reports["var_limit"], rtol=1e-12)
    np.testing.assert_allclose(reports["exposure_utilisation"],
                               reports["gross_exposure"] / reports["exposure_limit"], rtol=1e-12)
    month = reports["report_date"].str.slice(0, 7)
    assert reports.groupby(["book", month])["var_limit"].nunique().eq(1).all()
    assert (reports["var_limit"] % 1000 == 0).all()
    assert (reports["exposure_limit"] % 100_000 == 0).all()
    assert (reports["var_limit_breach"] == (reports["limit_utilisation"] > 1)).all()
    assert (reports["exposure_limit_breach"] == (reports["exposure_utilisation"] > 1)).all()
    assert (reports["breaches"]
            == reports["var_limit_breach"] + reports["exposure_limit_breach"]).all()
    assert 0 < reports["breaches"].sum() < 0.5 * len(reports)


def test_each_months_limit_comes_from_the_books_risk_before_the_month(
        generator, dataset, opening):
    legs = _legs(pd.concat([opening, dataset["trades"]], ignore_index=True))
    prices, reports = dataset["price_series"], dataset["risk_reports"]
    fx = dataset["metadata"]["fx_usd_per_unit"]
    headroom = dict(zip(generator.universe.book_names, generator.universe.book_limit_headroom))
    window_days = pd.to_datetime(dataset["trades"]["trade_date"]).sort_values()
    for month, month_reports in list(reports.groupby(reports["report_date"].str.slice(0, 7)))[:3]:
        first_day = prices.dates[np.searchsorted(prices.dates, np.datetime64(month + "-01"))]
        review_day = str(prices.dates[prices.day_index([first_day])[0] - 1])
        assert review_day < month + "-01" and window_days.iloc[0] >= pd.Timestamp("2023-01-01")
        for _, report in month_reports.drop_duplicates("book").iterrows():
            book_legs = legs[legs["book"] == report["book"]]
            risk = _report_risk(book_legs, prices, review_day, fx)
            expected = max(np.ceil(headroom[report["book"]] * risk["var_95"] / 1000), 1) * 1000
            assert report["var_limit"] == expected, (month, report["book"])


def test_limits_do_not_depend_on_the_number_of_reports(dataset):
    more = SyntheticETRMDataGenerator(ETRMDataConfig(**dict(CONFIG, num_risk_reports=6 * 30))
                                      ).generate_complete_dataset()["risk_reports"]
    month = "report_date.str.slice(0, 7)"
    limits = [r.assign(month=r.eval(month, engine="python")).groupby(["book", "month"])[
        ["var_limit", "exposure_limit"]].first() for r in (dataset["risk_reports"], more)]
    common = limits[0].index.intersection(limits[1].index)
    assert len(common) >= 6 * 6
    pd.testing.assert_frame_equal(limits[0].loc[common], limits[1].loc[common])


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
    quotes = dataset["metadata"]["quotes"]
    for record in confirmations.itertuples():
        trade = trades[record.record_id]
        assert record.date == trade["trade_date"]
        decimals = quotes[f"{trade['commodity']}/{trade['region']}"]["price_decimals"]
        price = f"{trade['price']:,.{decimals}f}"
        periods = trade["delivery_period"].split("/")
        required = [record.record_id, trade["trade_date"], trade["timestamp"][11:],
                    f"{trade['volume']:,.0f}", price, f"{trade['notional']:,.2f}", *periods]
        if trade["option_type"] != "none":
            required += [f"{trade['strike']:,.{decimals}f}", trade["expiry_date"],
                         f"{trade['premium']:,.2f}"]
            assert trade["option_type"] in record.text
        optional = [f"{trade['tenor_months']} month", _percent(trade["volatility"]),
                    f"({trade['delivery_months']} months)", trade["unit"]]
        _assert_numbers_come_from(record.text, required + optional, required)


def _moves_since_previous_report(reports: pd.DataFrame) -> dict:
    """Per report id, the renderings of its Changes section: the book's previous report date
    and the largest relative move among VaR, ES and gross exposure (none for a first report)."""
    metrics = ["var_95", "var_99", "es_95", "es_99", "gross_exposure"]
    found = {}
    for _, book in reports.sort_values("report_date", kind="stable").groupby("book", sort=False):
        previous = None
        for _, report in book.iterrows():
            if previous is None:
                found[report["report_id"]] = []
            else:
                changes = {m: abs(report[m] / previous[m] - 1) for m in metrics if previous[m] > 0}
                metric = max(changes, key=changes.get)
                found[report["report_id"]] = [
                    previous["report_date"], _money(abs(report[metric] - previous[metric])),
                    _percent(changes[metric]), _money(report[metric])]
            previous = report
    return found


def test_every_number_in_a_risk_summary_equals_its_report(dataset, texts):
    reports = dataset["risk_reports"].set_index("report_id")
    summaries = texts[texts["kind"] == "risk_summary"]
    assert sorted(summaries["record_id"]) == sorted(reports.index)
    moves = _moves_since_previous_report(dataset["risk_reports"])
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
        with_exposure += [_money(report[rank]) for rank in ("top2_exposure", "top3_exposure")
                          if report[f"{rank}_commodity"]]
        required = always + (with_exposure if report["gross_exposure"] > 0 else [])
        move = moves[record.record_id]
        _assert_numbers_come_from(record.text, always + with_exposure + move, required + move)


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
                        f"{days} business day" + ("s" if days != 1 else "")]
            optional = [entry["event_date"]]
        else:
            required = [entry["report_id"], entry["event_date"], _money(entry["value_usd"]),
                        _money(entry["limit_usd"]), _percent(entry["utilisation"])]
            optional = []
        _assert_numbers_come_from(record.text, required + optional, required)
