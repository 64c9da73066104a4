"""Natural-language records rendered from the tables: every number comes from a record field.

Three kinds: ``trade_confirmation`` (one per trade), ``risk_summary`` (one per risk report, a
multi-section text whose sections are ``RISK_SUMMARY_SECTIONS``) and ``compliance_note`` (one
per late regulatory report and per limit breach). Phrasing varies by template choice, drawn
from the (seed, start_date) stream. Texts are single lines.

Number formats (what "equals its record's value" means): volumes and USD risk amounts with
thousands separators and no decimals, prices with the commodity's tick decimals, notionals with
two decimals, volatility and utilisation as percentages with one decimal (value x 100), dates
as YYYY-MM-DD, times as HH:MM:SS. Besides record values, texts contain only the confidence-level
labels "95%" and "99%".
"""
from typing import Dict, List, Sequence, Tuple

import numpy as np
import pandas as pd

from ml.synthetic.catalog import COMMODITY_CATALOG, REGION_CATALOG
from ml.synthetic.config import ETRMDataConfig
from ml.synthetic.trades import window_stream

TEXT_KINDS = ("trade_confirmation", "risk_summary", "compliance_note")
CONFIDENCE_LABELS = ("95%", "99%")
_STREAM_NAMESPACE = 5

TRADE_CONFIRMATION_TEMPLATES: Tuple[str, ...] = (
    "Trade confirmation {trade_id}: on {trade_date} at {time} {trader} ({book}) {action} "
    "{volume} {unit} of {region} {commodity} ({instrument}, delivery {delivery_period}) "
    "{preposition} {counterparty}, rated {rating}, at {price} {currency}/{unit}; notional "
    "{currency} {notional}.",
    "{trader} of {book} confirmed a {instrument} {action_noun} with {counterparty} ({rating}): "
    "{volume} {unit} of {region} {commodity} for {delivery_period}, {tenor_phrase}, priced at "
    "{price} {currency}/{unit} for a total of {currency} {notional}. Reference {trade_id}, "
    "executed {trade_date} {time}.",
    "{trade_id} | {trade_date} {time} | {action_upper} {volume} {unit} {commodity} "
    "({region}) {instrument}, {delivery_period} delivery @ {price} {currency}/{unit} | "
    "notional {currency} {notional} | counterparty {counterparty} ({rating}) | trader "
    "{trader}, book {book} | realised volatility {volatility}.",
    "We confirm that on {trade_date} {counterparty} {counterparty_action} {volume} {unit} of "
    "{commodity} for {region} delivery in {delivery_period} through a {instrument} at {price} "
    "{currency} per {unit}, notional {currency} {notional}. Counterparty rating {rating}; "
    "realised volatility at execution {volatility}; booked by {trader} in {book} "
    "({trade_id}, {time}).",
)

RISK_SUMMARY_OPENINGS: Tuple[str, ...] = (
    "Daily risk summary for {book} on {report_date}.",
    "Risk summary {report_date}, book {book}.",
    "{book} end-of-day risk report for {report_date}.",
)

# (heading, condition, phrasings when the condition holds, phrasings when it does not).
# The headings are the sections every daily risk summary contains, in this order.
RISK_SUMMARY_SECTION_TEMPLATES: Tuple[Tuple[str, str, Tuple[str, ...], Tuple[str, ...]], ...] = (
    ("Portfolio overview", "has_exposure",
     ("{open_positions}, net exposure USD {net_exposure}, gross exposure USD "
      "{gross_exposure}; the largest exposure is {top_region} {top_commodity} at USD "
      "{top_exposure}.",
      "the book holds {open_positions} with gross exposure of USD {gross_exposure} (net USD "
      "{net_exposure}), led by {top_commodity} in {top_region} (USD {top_exposure}).",
      "gross USD {gross_exposure} and net USD {net_exposure} across {open_positions}; "
      "{top_region} {top_commodity} is the largest at USD {top_exposure}."),
     ("the book is flat with no net exposure.",
      "no net exposure on this date: the book is flat.")),
    ("VaR", "has_exposure",
     ("one-day historical VaR is USD {var_95} at 95% and USD {var_99} at 99%; expected "
      "shortfall is USD {es_95} (95%) and USD {es_99} (99%).",
      "95% VaR USD {var_95}, 99% VaR USD {var_99}; expected shortfall USD {es_95} and USD "
      "{es_99} at the same levels, one-day horizon.",
      "historical-simulation VaR stands at USD {var_95} (95%) and USD {var_99} (99%), with "
      "expected shortfall of USD {es_95} and USD {es_99} respectively."),
     ("VaR and expected shortfall are USD {var_95} at 95% and USD {var_99} at 99%.",)),
    ("Limits", "has_exposure",
     ("VaR limit USD {var_limit} with utilisation {limit_utilisation}; gross exposure limit USD "
      "{exposure_limit} with utilisation {exposure_utilisation}.",
      "{limit_utilisation} of the USD {var_limit} VaR limit and {exposure_utilisation} of the "
      "USD {exposure_limit} exposure limit are in use.",
      "utilisation is {limit_utilisation} against the VaR limit (USD {var_limit}) and "
      "{exposure_utilisation} against the gross exposure limit (USD {exposure_limit})."),
     ("VaR limit USD {var_limit} and exposure limit USD {exposure_limit}, both unused.",)),
    ("Breaches", "has_breaches",
     ("{breach_list}; escalated to the head of market risk.",
      "{breach_list}; the desk must cut risk before the next close.",
      "{breach_list}; the CRO has been notified."),
     ("none.", "no limit breached.", "all limits respected.")),
)
RISK_SUMMARY_SECTIONS: Tuple[str, ...] = tuple(
    heading for heading, _, _, _ in RISK_SUMMARY_SECTION_TEMPLATES)

LATE_REPORT_TEMPLATES: Tuple[str, ...] = (
    "{regime} report for trade {trade_id} ({region} {commodity}, book {book}) was submitted on "
    "{submission_date}, {days_late} after the {deadline} deadline; severity {severity}.",
    "Late {regime} submission: {trade_id}, traded {event_date} in {book}, due {deadline}, "
    "filed {submission_date} ({days_late} late). Severity: {severity}.",
    "Compliance flagged trade {trade_id}: the {regime} report due on {deadline} reached the "
    "trade repository on {submission_date}, {days_late} late (severity {severity}).",
)
LIMIT_BREACH_TEMPLATES: Tuple[str, ...] = (
    "Book {book} breached its {limit_name} on {event_date}: USD {value} against a limit of USD "
    "{limit} ({utilisation} utilised); severity {severity}, see {report_id}.",
    "Limit breach in {book} on {event_date}: {limit_name} at {utilisation} (USD {value} vs USD "
    "{limit}). Severity {severity}; report {report_id}.",
    "{report_id}: the {limit_name} of USD {limit} was exceeded by {book} on {event_date} with "
    "USD {value} ({utilisation}); severity {severity}.",
)
LIMIT_NAMES = {"var_95": "VaR limit", "gross_exposure": "gross exposure limit"}


def money(value: float) -> str:
    """USD risk amounts: thousands separators, no decimals."""
    return f"{value:,.0f}"


def percent(value: float) -> str:
    """A ratio as a percentage with one decimal."""
    return f"{value * 100:.1f}%"


def display_commodity(name: str) -> str:
    return COMMODITY_CATALOG[name].display_name if name in COMMODITY_CATALOG else name


def display_region(name: str) -> str:
    return REGION_CATALOG[name].display_name if name in REGION_CATALOG else name


def _choose(rng: np.random.Generator, n: int, options: Sequence) -> np.ndarray:
    return rng.integers(len(options), size=n)


def render_trade_confirmations(trades: pd.DataFrame, rng: np.random.Generator) -> List[str]:
    """One confirmation per trade."""
    choice = _choose(rng, len(trades), TRADE_CONFIRMATION_TEMPLATES)
    decimals = {name: spec.price_decimals for name, spec in COMMODITY_CATALOG.items()}
    texts = []
    for i, row in enumerate(trades[[
            "trade_id", "trade_date", "timestamp", "commodity", "region", "instrument",
            "direction", "volume", "unit", "price", "currency", "delivery_period",
            "tenor_months", "counterparty", "counterparty_rating", "trader", "book",
            "volatility", "notional"]].itertuples(index=False, name=None)):
        (trade_id, trade_date, timestamp, commodity, region, instrument, direction, volume,
         unit, price, currency, period, tenor, counterparty, rating, trader, book, vol,
         notional) = row
        buy = direction == "buy"
        texts.append(TRADE_CONFIRMATION_TEMPLATES[choice[i]].format(
            trade_id=trade_id, trade_date=trade_date, time=timestamp[11:], trader=trader,
            book=book, action="bought" if buy else "sold",
            action_noun="purchase" if buy else "sale", action_upper="BUY" if buy else "SELL",
            preposition="from" if buy else "to",
            counterparty_action="sold us" if buy else "bought from us",
            volume=f"{volume:,.0f}", unit=unit, commodity=display_commodity(commodity),
            region=display_region(region), instrument=instrument, delivery_period=period,
            tenor_phrase="prompt delivery" if tenor == 0 else (
                f"{tenor} month{'s' if tenor != 1 else ''} forward"),
            counterparty=counterparty, rating=rating,
            price=f"{price:,.{decimals.get(commodity, 2)}f}", currency=currency,
            notional=f"{notional:,.2f}", volatility=percent(vol)))
    return texts


def _risk_fields(report) -> Dict[str, str]:
    return {
        "book": report.book, "report_date": report.report_date,
        "open_positions": (f"{report.num_open_positions} open position"
                           + ("" if report.num_open_positions == 1 else "s")),
        "net_exposure": money(report.net_exposure),
        "gross_exposure": money(report.gross_exposure),
        "top_commodity": display_commodity(report.top_exposure_commodity),
        "top_region": display_region(report.top_exposure_region),
        "top_exposure": money(report.top_exposure),
        "var_95": money(report.var_95), "var_99": money(report.var_99),
        "es_95": money(report.es_95), "es_99": money(report.es_99),
        "var_limit": money(report.var_limit), "exposure_limit": money(report.exposure_limit),
        "limit_utilisation": percent(report.limit_utilisation),
        "exposure_utilisation": percent(report.exposure_utilisation),
    }


def _breach_list(report, fields: Dict[str, str]) -> str:
    parts = []
    if report.var_limit_breach:
        parts.append(f"VaR limit breached (USD {fields['var_95']} against USD "
                     f"{fields['var_limit']})")
    if report.exposure_limit_breach:
        parts.append(f"gross exposure limit exceeded (USD {fields['gross_exposure']} against "
                     f"USD {fields['exposure_limit']})")
    return " and ".join(parts)


def render_risk_summaries(risk_reports: pd.DataFrame, rng: np.random.Generator) -> List[str]:
    """One multi-section summary per risk report: an opening line then every section."""
    n = len(risk_reports)
    opening = _choose(rng, n, RISK_SUMMARY_OPENINGS)
    phrasing = rng.integers(0, 1 << 30, size=(n, len(RISK_SUMMARY_SECTION_TEMPLATES)))
    texts = []
    for i, report in enumerate(risk_reports.itertuples(index=False)):
        fields = _risk_fields(report)
        fields["breach_list"] = _breach_list(report, fields)
        conditions = {"has_exposure": report.gross_exposure > 0,
                      "has_breaches": report.breaches > 0}
        parts = [RISK_SUMMARY_OPENINGS[opening[i]].format(**fields)]
        for k, (heading, condition, when_true, when_false) in enumerate(
                RISK_SUMMARY_SECTION_TEMPLATES):
            options = when_true if conditions[condition] else when_false
            parts.append(f"{heading}: {options[phrasing[i, k] % len(options)].format(**fields)}")
        texts.append(" ".join(parts))
    return texts


def _days(count: int) -> str:
    return f"{count} day" if count == 1 else f"{count} days"


def render_compliance_notes(compliance: pd.DataFrame, rng: np.random.Generator
                            ) -> Tuple[List[str], pd.DataFrame]:
    """Notes for late regulatory reports and limit breaches; returns (texts, their records)."""
    notable = compliance[(compliance["status"] == "late") | (compliance["status"] == "breach")]
    late_choice = _choose(rng, len(notable), LATE_REPORT_TEMPLATES)
    breach_choice = _choose(rng, len(notable), LIMIT_BREACH_TEMPLATES)
    texts = []
    for i, record in enumerate(notable.itertuples(index=False)):
        if record.status == "late":
            texts.append(LATE_REPORT_TEMPLATES[late_choice[i]].format(
                regime=record.regime, trade_id=record.trade_id,
                region=display_region(record.region),
                commodity=display_commodity(record.commodity), book=record.book,
                submission_date=record.submission_date, days_late=_days(record.days_late),
                deadline=record.deadline, event_date=record.event_date,
                severity=record.severity))
        else:
            texts.append(LIMIT_BREACH_TEMPLATES[breach_choice[i]].format(
                book=record.book, limit_name=LIMIT_NAMES[record.limit_type],
                event_date=record.event_date, value=money(record.value_usd),
                limit=money(record.limit_usd), utilisation=percent(record.utilisation),
                severity=record.severity, report_id=record.report_id))
    return texts, notable


def render_text_records(config: ETRMDataConfig, trades: pd.DataFrame, risk_reports: pd.DataFrame,
                        compliance: pd.DataFrame) -> pd.DataFrame:
    """All texts as a table: text, kind, record_id, date (YYYY-MM-DD), ordered by date."""
    rng = window_stream(config, _STREAM_NAMESPACE)
    confirmations = render_trade_confirmations(trades, rng)
    summaries = render_risk_summaries(risk_reports, rng)
    notes, noted = render_compliance_notes(compliance, rng)
    parts: List[Tuple[str, List[str], pd.Series, pd.Series]] = [
        ("trade_confirmation", confirmations, trades["trade_id"], trades["trade_date"]),
        ("risk_summary", summaries, risk_reports["report_id"], risk_reports["report_date"]),
        ("compliance_note", notes, noted["record_id"], noted["event_date"]),
    ]
    frame = pd.concat([pd.DataFrame({"text": pd.Series(texts, dtype=object), "kind": kind,
                                     "record_id": ids.to_numpy(), "date": dates.to_numpy()})
                       for kind, texts, ids, dates in parts], ignore_index=True)
    frame["kind_order"] = frame["kind"].map({k: i for i, k in enumerate(TEXT_KINDS)})
    frame = frame.sort_values(["date", "kind_order"], kind="mergesort").drop(columns="kind_order")
    return frame.reset_index(drop=True).astype(object)
