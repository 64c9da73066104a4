"""Text rendering: articles, region names, template variety, option terms and strip ranges,
and every number in a text equal to its record's value under the documented formats."""
import re

import numpy as np
import pandas as pd
import pytest

from ml.synthetic.catalog import REGION_CATALOG
from ml.synthetic.text import (LATE_REPORT_TEMPLATES, RISK_SUMMARY_SECTIONS,
                               TRADE_CONFIRMATION_TEMPLATES, confirmation_fields,
                               price_decimals, render_compliance_notes, render_risk_summaries,
                               render_trade_confirmations)

REGIONS = list(REGION_CATALOG)
NUMBER = re.compile(r"\d{4}-\d{2}-\d{2}|\d{2}:\d{2}:\d{2}|\d{4}-\d{2}|-?\d[\d,]*(?:\.\d+)?%?")


def _trade(i, instrument="forward", region="uk", commodity="natural_gas", **overrides):
    row = {
        "trade_id": f"TRD-20240101-{i:07d}", "trade_date": "2024-01-15",
        "timestamp": "2024-01-15T09:41:07", "commodity": commodity, "region": region,
        "instrument": instrument, "direction": "buy" if i % 2 else "sell",
        "volume": 125_000.0, "unit": "MWh", "price": 31.257, "currency": "EUR",
        "delivery_start": "2024-03-01", "delivery_end": "2024-03-31",
        "delivery_period": "2024-03", "delivery_months": 1, "tenor_months": 2,
        "forward_price": 31.2, "option_type": "none", "strike": 0.0, "expiry_date": "",
        "premium": 0.0, "counterparty": "Atlas Energy Trading AG", "counterparty_rating": "BBB",
        "trader": "Anna Novak", "book": "FLOW_TRADING", "volatility": 0.4567,
        "notional": 3_907_125.0, "high_risk": 0, "high_risk_probability": 0.1,
        "notional_usd": 4_219_695.0, "counterparty_exposure_share": 0.03}
    row.update(overrides)
    return row


def _option(i, option_type="call", region="europe"):
    return _trade(i, instrument="option", region=region, option_type=option_type,
                  price=1.234, strike=32.5, expiry_date="2024-02-27", premium=154_250.0,
                  notional=125_000.0 * 31.2)


def _strip(i, region="nordics"):
    return _trade(i, instrument="swap", region=region, commodity="power",
                  delivery_start="2024-04-01", delivery_end="2024-09-30",
                  delivery_period="2024-04/2024-09", delivery_months=6, tenor_months=3,
                  volume=4_392.0, notional=4_392.0 * 31.257)


def _all_templates(row):
    fields = confirmation_fields(row)
    return [template.format(**fields) for template in TRADE_CONFIRMATION_TEMPLATES]


def _allowed_numbers(row):
    d = price_decimals(row["commodity"], row["region"])
    allowed = {row["trade_date"], row["timestamp"][11:], f"{row['volume']:,.0f}",
               f"{row['price']:,.{d}f}", f"{row['notional']:,.2f}",
               f"{row['volatility'] * 100:.1f}%", str(row["tenor_months"])}
    allowed |= set(row["delivery_period"].split("/"))
    if row["delivery_months"] > 1:
        allowed.add(str(row["delivery_months"]))
    if row["instrument"] == "option":
        allowed |= {f"{row['strike']:,.{d}f}", row["expiry_date"], f"{row['premium']:,.2f}"}
    return allowed


def _numbers(text, identifiers=()):
    for identifier in identifiers:
        text = text.replace(identifier, " ")
    return NUMBER.findall(text)


def test_there_are_at_least_eight_confirmation_styles_and_all_get_used():
    assert len(TRADE_CONFIRMATION_TEMPLATES) >= 8
    trades = pd.DataFrame([_trade(i) for i in range(400)])
    texts = render_trade_confirmations(trades, np.random.default_rng(0))
    starts = {text.split(" ")[0] for text in texts}
    assert len(starts) >= 8


@pytest.mark.parametrize("row", [_trade(1), _trade(2, "future", "europe"),
                                 _option(3), _option(4, "put", "nordics"), _strip(5),
                                 _strip(6, "north_america"), _trade(7, "swap", "asia_pacific")],
                         ids=["forward", "future", "call", "put", "strip", "strip-na", "swap"])
def test_every_number_in_every_template_is_a_record_value(row):
    allowed = _allowed_numbers(row)
    for text in _all_templates(row):
        found = _numbers(text, [row["trade_id"]])
        assert found, text
        stray = [n for n in found if n not in allowed]
        assert not stray, (stray, text)
        assert row["trade_id"] in text


@pytest.mark.parametrize("option_type", ["call", "put"])
def test_option_texts_state_their_terms(option_type):
    row = _option(1, option_type)
    for text in _all_templates(row):
        assert re.search(rf"\b{option_type}\b", text, re.IGNORECASE), text
        assert "32.500 EUR/MWh" in text, text              # strike, currency/unit
        assert "2024-02-27" in text, text                  # expiry
        assert "1.234 EUR/MWh" in text, text               # premium per unit
        assert "EUR 154,250.00" in text, text              # total premium
        assert "underlying notional" in text.lower(), text
        assert "EUR 3,900,000.00" in text, text


def test_strip_texts_state_their_delivery_range():
    row = _strip(1)
    for text in _all_templates(row):
        assert "2024-04 to 2024-09 (6 months)" in text, text
        assert "2024-04/2024-09" not in text


def test_one_month_deliveries_state_the_month():
    for text in _all_templates(_trade(1)):
        assert "2024-03" in text and " months)" not in text


@pytest.mark.parametrize("region", REGIONS)
def test_articles_and_region_names_read_correctly(region):
    rows = [_trade(1, region=region), _option(2, region=region), _strip(3, region=region),
            _trade(4, "future", region=region)]
    for row in rows:
        for text in _all_templates(row):
            assert not re.search(r"\ba [aeiouAEIOU]", text), text
            assert not re.search(r"\b(in|In) (UK|Nordics)\b", text), text
            assert not re.search(r"\bNordics (power|natural gas|LNG|coal|crude)", text), text
            assert not re.search(r"\ban [^aeiouAEIOU]", text), text


def test_an_option_article_when_option_type_is_missing():
    texts = _all_templates(_trade(1, instrument="option"))
    assert any("an option" in t for t in texts)
    assert not any("a option" in t for t in texts)


def test_uk_and_nordics_take_the_article_as_nouns():
    uk = " ".join(_all_templates(_trade(1, region="uk")))
    nordics = " ".join(_all_templates(_trade(1, region="nordics")))
    assert "in the UK" in uk and "UK natural gas" in uk
    assert "in the Nordics" in nordics and "Nordic natural gas" in nordics


def _risk_report(i, region, breaches=0):
    return {
        "report_id": f"RSK-{i}", "report_date": "2024-01-15", "book": "FLOW_TRADING",
        "num_open_positions": 3, "net_exposure": 1_200_000.0, "gross_exposure": 2_500_000.0,
        "top_exposure_commodity": "power", "top_exposure_region": region,
        "top_exposure": 900_000.0, "var_95": 80_000.0, "var_99": 120_000.0, "es_95": 100_000.0,
        "es_99": 150_000.0, "var_limit": 100_000.0, "exposure_limit": 5_000_000.0,
        "limit_utilisation": 0.8, "exposure_utilisation": 0.5, "var_limit_breach": 0,
        "exposure_limit_breach": 0, "breaches": breaches}


@pytest.mark.parametrize("region", REGIONS)
def test_risk_summaries_keep_their_sections_in_order_and_name_regions_right(region):
    reports = pd.DataFrame([_risk_report(i, region) for i in range(60)])
    texts = render_risk_summaries(reports, np.random.default_rng(1))
    assert RISK_SUMMARY_SECTIONS == ("Portfolio overview", "VaR", "Limits", "Breaches", "Changes")
    for text in texts:
        positions = [text.index(f"{heading}: ") for heading in RISK_SUMMARY_SECTIONS]
        assert positions == sorted(positions)
        assert not re.search(r"\bin (UK|Nordics)\b", text), text
        assert not re.search(r"\bNordics power\b", text), text
    if region == "uk":
        assert any("in the UK" in t for t in texts) and any("UK power" in t for t in texts)
    if region == "nordics":
        assert any("in the Nordics" in t for t in texts)
        assert any("Nordic power" in t for t in texts)


@pytest.mark.parametrize("region", ["uk", "nordics", "europe", "north_america"])
def test_late_report_notes_name_regions_and_business_days(region):
    record = {"record_id": "CMP-1", "record_type": "regulatory_report", "regime": "REMIT",
              "status": "late", "event_date": "2024-03-28", "deadline": "2024-04-02",
              "submission_date": "2024-04-05", "days_late": 3, "trade_id": "TRD-X-0000001",
              "report_id": "", "book": "FLOW_TRADING", "commodity": "power", "region": region,
              "limit_type": "", "value_usd": 1.0, "limit_usd": np.nan, "utilisation": np.nan,
              "severity": "medium", "contract_type": "non_standard"}
    compliance = pd.DataFrame([record] * 200)
    texts, _ = render_compliance_notes(compliance, np.random.default_rng(2))
    assert len({" ".join(t.split(" ")[:2]) for t in texts}) == len(LATE_REPORT_TEMPLATES)
    for text in texts:
        assert "3 business days" in text, text
        assert not re.search(r"\bin (UK|Nordics)\b", text), text
        assert not re.search(r"\bNordics power\b", text), text
        stray = [n for n in _numbers(text, ["TRD-X-0000001"])
                 if n not in {"2024-03-28", "2024-04-02", "2024-04-05", "3"}]
        assert not stray, (stray, text)
