"""Natural-language records rendered from the tables: every number comes from a record field.

Three kinds: ``trade_confirmation`` (one per trade), ``risk_summary`` (one per risk report, a
multi-section text whose sections are ``RISK_SUMMARY_SECTIONS``, written from its risk record
by ml.synthetic.risk_summary) and ``compliance_note`` (one per late regulatory report and per
limit breach). Phrasing varies by template choice, drawn
from the (seed, start_date) stream. Texts are single lines.

Trade confirmations come in TRADE_CONFIRMATION_TEMPLATES styles (formal, narrative, pipe
ticket, confirmation letter, broker recap, email, short ticket, deal capture, matched
confirmation, voice log). Option confirmations state the option's terms: call/put, strike,
expiry date and the premium per unit and in total; the notional of an option is named
"underlying notional". Multi-month strips state their delivery range ("2024-01 to 2024-06
(6 months)"); one-month deliveries their month.

Number formats (what "equals its record's value" means): volumes and USD risk amounts with
thousands separators and no decimals; prices, option strikes and premia per unit with the
tick decimals of the trade's quote (``price_decimals``) and thousands separators; notionals and
total option premia with thousands separators and two decimals; volatility and utilisation as
percentages with one decimal (value x 100); tenors, delivery month counts and days late as
integers; dates as YYYY-MM-DD, delivery months as YYYY-MM, times as HH:MM:SS. Besides record
values, texts contain only the confidence-level labels "95%" and "99%".

Region names read as nouns with their article where English needs one ("in the UK", "in the
Nordics", ``region_noun``) and as adjectives before a commodity ("Nordic power",
``region_adjective``); articles before instruments follow their sound ("an option").

Trade columns read: trade_id, trade_date, timestamp, commodity, region, instrument, direction,
volume, unit, price, currency, delivery_period, delivery_months, tenor_months, option_type,
strike, expiry_date, premium, counterparty, counterparty_rating, trader, book, volatility,
notional. Confirmations are rendered column-wise (``confirmation_columns``: each field once
per distinct value, one join per text), 200k in under 3 s. Compliance columns read include
contract_type.
"""
import itertools
import string
from typing import Dict, List, Sequence, Tuple

import numpy as np
import pandas as pd

from ml.synthetic.catalog import quote
from ml.synthetic.risk_summary import (RISK_SUMMARY_SECTIONS, conditioned_summaries,
                                       counterfactual_reports, render_risk_summaries)
from ml.synthetic.wording import (display_commodity, display_region, money, percent,
                                  region_adjective, region_noun)
from ml.synthetic.config import ETRMDataConfig
from ml.synthetic.string_columns import fixed_point, fixed_width_slice, objects, string_array
from ml.synthetic.trades import window_stream


TEXT_KINDS = ("trade_confirmation", "risk_summary", "compliance_note")
CONFIDENCE_LABELS = ("95%", "99%")
_STREAM_NAMESPACE = 5
_COUNTERFACTUAL_NAMESPACE = 7
_COUNTERFACTUAL_PHRASING_NAMESPACE = 8

TRADE_CONFIRMATION_TEMPLATES: Tuple[str, ...] = (
    # formal
    "Trade confirmation {trade_id}: on {trade_date} at {time} {trader} ({book}) {action} "
    "{volume} {unit} of {region_adj} {commodity} ({product}, delivery {delivery}) "
    "{preposition} {counterparty}, rated {rating}, {price_clause}; {notional_label} "
    "{currency} {notional}.",
    # narrative
    "{trader} of {book} confirmed {a_product} {action_noun} with {counterparty} ({rating}): "
    "{volume} {unit} of {region_adj} {commodity} for delivery {delivery}, {tenor_phrase}, "
    "{price_clause}, {notional_label} {currency} {notional}. Reference {trade_id}, executed "
    "{trade_date} {time}.",
    # pipe ticket
    "{trade_id} | {trade_date} {time} | {action_upper} {volume} {unit} {commodity} "
    "({region}) {product}, delivery {delivery} {price_ticket} | {notional_label} {currency} "
    "{notional} | counterparty {counterparty} ({rating}) | trader {trader}, book {book} | "
    "forward volatility {volatility}.",
    # confirmation letter
    "We confirm that on {trade_date} {counterparty} {counterparty_action} {volume} {unit} of "
    "{commodity} for {region_adj} delivery in {delivery} through {a_product} {price_clause}, "
    "{notional_label} {currency} {notional}. Counterparty rating {rating}; forward "
    "volatility at execution {volatility}; booked by {trader} in {book} ({trade_id}, {time}).",
    # broker recap
    "Broker recap {trade_id}, {trade_date} {time}: {book} {action} {volume} {unit} "
    "{region_adj} {commodity} {product}, delivery {delivery}, {price_clause}, {preposition} "
    "{counterparty} ({rating}); {notional_label} {currency} {notional}; trader {trader}.",
    # email
    "Subject: confirmation of trade {trade_id}. Dear {counterparty} team, we are pleased to "
    "confirm {a_product} agreed on {trade_date} at {time} in which you {counterparty_action} "
    "{volume} {unit} of {region_adj} {commodity}, delivery {delivery}, {price_clause}; "
    "{notional_label} {currency} {notional}. Your credit rating on file is {rating}. Kind "
    "regards, {trader}, {book}.",
    # short ticket
    "TKT {trade_id} {trade_date} {time} {action_upper} {volume} {unit} {region_adj} {commodity} "
    "{product} {delivery} {price_ticket} vs {counterparty} ({rating}) {trader}/{book} "
    "{notional_label} {currency} {notional}",
    # deal capture
    "Deal {trade_id} captured in {book}: {trader} {action} {volume} {unit} of {commodity} in "
    "{region_noun} {preposition} {counterparty} (rating {rating}) on {trade_date} at {time} "
    "as {a_product} for delivery {delivery}, {price_clause}; {notional_label} {currency} "
    "{notional}, forward volatility {volatility}.",
    # matched confirmation
    "Confirmation matched for {trade_id}: {counterparty} ({rating}) and {book} agree that "
    "{trader} {action} {volume} {unit} of {region_adj} {commodity} on {trade_date} {time} "
    "under {a_product}, delivery {delivery}, {tenor_phrase}, {price_clause}. "
    "{notional_label_cap} {currency} {notional}.",
    # voice log
    "Voice trade {trade_id} recorded {trade_date} {time}: {trader} ({book}) agreed with "
    "{counterparty}, rated {rating}, to {action_base} {volume} {unit} of {commodity} "
    "delivered in {region_noun}, {a_product} for delivery {delivery}, {price_clause}; "
    "{notional_label} {currency} {notional}.",
)

LATE_REPORT_TEMPLATES: Tuple[str, ...] = (
    "{regime} report for trade {trade_id} ({region_adj} {commodity}, book {book}) was submitted "
    "on {submission_date}, {days_late} after the {deadline} deadline; severity {severity}.",
    "Late {regime} submission: {trade_id}, traded {event_date} in {book}, due {deadline}, "
    "filed {submission_date} ({days_late} late). Severity: {severity}.",
    "Compliance flagged trade {trade_id}: the {regime} report{contract_phrase} due on "
    "{deadline} reached the trade repository on {submission_date}, {days_late} late (severity "
    "{severity}).",
    "{regime} filing for {trade_id} ({commodity} in {region_noun}) missed its {deadline} "
    "deadline by {days_late} and was filed on {submission_date}; severity {severity}.",
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
# Price phrasings of a confirmation: (for an option, for a linear trade).
PRICE_CLAUSES: Dict[str, Tuple[str, str]] = {
    "price_clause": ("struck at {strike} {per}, expiring {expiry_date}, for a premium of "
                     "{price} {per} ({currency} {premium} in total)", "at {price} {per}"),
    "price_ticket": ("{option_upper} K {strike} {per} exp {expiry_date} prem {price} {per} "
                     "total {currency} {premium}", "@ {price} {per}"),
}


def indefinite_article(phrase: str) -> str:
    """ "an" before a vowel sound ("an option"), else "a" (phrases here start with a word)."""
    return "an" if phrase[:1].lower() in "aeiou" else "a"


def _with_article(phrase: str) -> str:
    return f"{indefinite_article(phrase)} {phrase}"


def price_decimals(commodity: str, region: str) -> int:
    """Tick decimals of the trade's quote (``catalog.quote``)."""
    return int(quote(commodity, region).price_decimals)


def per_unit(value: float, decimals: int) -> str:
    """Prices, strikes and premia per unit: the quote's tick decimals, thousands separators."""
    return f"{value:,.{decimals}f}"


def amount(value: float) -> str:
    """Notionals and total premia: thousands separators, two decimals."""
    return f"{value:,.2f}"


def delivery_phrase(period: str, months: int) -> str:
    """ "2024-03" for one month; "2024-01 to 2024-06 (6 months)" for a strip."""
    if int(months) <= 1 or "/" not in period:
        return period
    first, last = period.split("/", 1)
    return f"{first} to {last} ({int(months)} months)"


def _choose(rng: np.random.Generator, n: int, options: Sequence) -> np.ndarray:
    return rng.integers(len(options), size=n)


def _objects(values) -> np.ndarray:
    return objects(values)


def _mapped(values, function) -> np.ndarray:
    """function applied once per distinct value of a long column."""
    codes, uniques = pd.factorize(pd.Series(values))
    return _objects([function(value) for value in uniques])[codes]


def _mapped_pairs(first, second, function) -> np.ndarray:
    """function(a, b) applied once per distinct pair of values of two long columns."""
    return _mapped_factorized_pairs(pd.factorize(pd.Series(first)),
                                    pd.factorize(pd.Series(second)), function)


def _mapped_factorized_pairs(first: tuple, second: tuple, function) -> np.ndarray:
    """_mapped_pairs of two columns given as (codes, distinct values)."""
    (first_codes, first_values), (second_codes, second_values) = first, second
    codes, pairs = pd.factorize(first_codes * len(second_values) + second_codes)
    return _objects([function(first_values[pair // len(second_values)],
                              second_values[pair % len(second_values)])
                     for pair in pairs.tolist()])[codes]


def _per_unit_column(values: np.ndarray, decimals: np.ndarray) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for places in pd.unique(decimals):
        chosen = decimals == places
        out[chosen] = fixed_point(values[chosen], int(places))
    return out


def _either(condition: np.ndarray, when_true: str, when_false: str) -> np.ndarray:
    return _objects([when_false, when_true])[np.asarray(condition, dtype=np.intp)]


def confirmation_columns(trades: pd.DataFrame) -> Dict[str, np.ndarray]:
    """Template fields of every trade, one array of str per field (computed column-wise:
    each distinct categorical value is rendered once, numbers by ``fixed_point``)."""
    fields, terms, is_option = _confirmation_parts(trades)
    for name, (when_option, when_linear) in PRICE_CLAUSES.items():
        fields[name] = _choose_rendered(is_option, when_option, when_linear, terms)
    return fields


def _confirmation_parts(trades: pd.DataFrame
                        ) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray], np.ndarray]:
    """(fields but the price clauses, the price clauses' own fields, is_option)."""
    factorized: Dict[str, tuple] = {}

    def factorize(name: str) -> tuple:
        if name not in factorized:
            factorized[name] = pd.factorize(trades[name])
        return factorized[name]

    def mapped(name: str, function) -> np.ndarray:
        """function of each distinct value of the column (each column factorized once)."""
        codes, uniques = factorize(name)
        return _objects([function(value) for value in uniques])[codes]

    def mapped_pairs(first: str, second: str, function) -> np.ndarray:
        return _mapped_factorized_pairs(factorize(first), factorize(second), function)

    text = {name: string_array(trades[name])
            for name in ("trade_id", "trade_date", "trader", "book", "counterparty",
                         "counterparty_rating", "currency", "unit", "expiry_date")}
    buy = (trades["direction"] == "buy").to_numpy()
    is_option = ((trades["instrument"] == "option")
                 & trades["option_type"].isin(["call", "put"])).to_numpy()
    decimals = mapped_pairs("commodity", "region", price_decimals).astype(np.int64)
    price = _per_unit_column(trades["price"].to_numpy(float), decimals)
    strike = _per_unit_column(trades["strike"].to_numpy(float), decimals)
    premium = fixed_point(trades["premium"].to_numpy(float), 2)
    per = mapped_pairs("currency", "unit", lambda currency, unit: f"{currency}/{unit}")
    product = np.where(is_option, mapped("option_type", lambda kind: f"{kind} option"),
                       trades["instrument"].to_numpy(dtype=object)).astype(object)
    a_product = np.where(
        is_option, mapped("option_type", lambda kind: _with_article(f"{kind} option")),
        mapped("instrument", _with_article)).astype(object)
    terms = {"strike": strike, "price": price, "premium": premium, "per": per,
             "currency": text["currency"], "expiry_date": text["expiry_date"],
             "option_upper": mapped("option_type", str.upper)}
    fields = {
        "trade_id": text["trade_id"], "trade_date": text["trade_date"],
        "time": fixed_width_slice(trades["timestamp"], 11, 8),
        "trader": text["trader"], "book": text["book"],
        "action": _either(buy, "bought", "sold"), "action_base": _either(buy, "buy", "sell"),
        "action_noun": _either(buy, "purchase", "sale"),
        "action_upper": _either(buy, "BUY", "SELL"), "preposition": _either(buy, "from", "to"),
        "counterparty_action": _either(buy, "sold us", "bought from us"),
        "volume": fixed_point(trades["volume"].to_numpy(float), 0), "unit": text["unit"],
        "commodity": mapped("commodity", display_commodity),
        "region": mapped("region", display_region),
        "region_adj": mapped("region", region_adjective),
        "region_noun": mapped("region", region_noun),
        "product": product,
        "a_product": a_product,
        "delivery": _mapped_pairs(trades["delivery_period"].astype(str),
                                  trades["delivery_months"], delivery_phrase),
        "tenor_phrase": mapped("tenor_months", lambda tenor: (
            "prompt delivery" if tenor == 0 else
            f"{tenor} month{'s' if tenor != 1 else ''} forward")),
        "counterparty": text["counterparty"], "rating": text["counterparty_rating"],
        "currency": text["currency"],
        "notional_label": _either(is_option, "underlying notional", "notional"),
        "notional_label_cap": _either(is_option, "Underlying notional", "Notional"),
        "notional": fixed_point(trades["notional"].to_numpy(float), 2),
        "volatility": fixed_point(trades["volatility"].to_numpy(float) * 100, 1, "") + "%",
    }
    return fields, terms, is_option


def confirmation_fields(row: dict) -> Dict[str, str]:
    """Template fields of one trade (a dict of trades-table columns)."""
    return {name: values[0] for name, values in
            confirmation_columns(pd.DataFrame([row])).items()}


def _render(template: str, fields: Dict[str, np.ndarray], rows: np.ndarray) -> np.ndarray:
    """str.format of one template for many rows at once: one join per row over the template's
    literal pieces and the rows' field values."""
    pieces = []
    for literal, name, _, _ in string.Formatter().parse(template):
        if literal:
            pieces.append(itertools.repeat(literal))
        if name is not None:
            pieces.append(fields[name][rows])
    return _objects(list(map("".join, zip(*pieces))) if len(rows) else [])


def _choose_rendered(condition: np.ndarray, when_true: str, when_false: str,
                     fields: Dict[str, np.ndarray]) -> np.ndarray:
    """Per row, the rendering of one of two templates."""
    out = np.empty(len(condition), dtype=object)
    for flag, template in ((True, when_true), (False, when_false)):
        rows = np.flatnonzero(condition == flag)
        out[rows] = _render(template, fields, rows)
    return out


def render_trade_confirmations(trades: pd.DataFrame, rng: np.random.Generator) -> List[str]:
    """One confirmation per trade (template drawn per trade from rng)."""
    return _confirmation_texts(trades, rng).tolist()


def _confirmation_texts(trades: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    choice = _choose(rng, len(trades), TRADE_CONFIRMATION_TEMPLATES)
    texts = np.empty(len(trades), dtype=object)
    if len(trades) == 0:
        return texts
    fields, terms, is_option = _confirmation_parts(trades)
    fields.update(terms)
    for k, template in enumerate(TRADE_CONFIRMATION_TEMPLATES):
        for flag in (True, False):
            rows = np.flatnonzero((choice == k) & (is_option == flag))
            texts[rows] = _render(_with_price_clauses(template, flag), fields, rows)
    return texts


def _with_price_clauses(template: str, is_option: bool) -> str:
    """The template with its price clause written out for options or linear trades, so a
    confirmation is rendered in one join (the same text as filling in the rendered clause)."""
    for name, (when_option, when_linear) in PRICE_CLAUSES.items():
        template = template.replace("{" + name + "}", when_option if is_option else when_linear)
    return template


def _days(count: int) -> str:
    """Days late are business days of the regulator's calendar."""
    return f"{count} business day" if count == 1 else f"{count} business days"


def _contract_phrase(regime: str, contract_type: str) -> str:
    """REMIT's standard/non-standard distinction (it sets the deadline); "" for other regimes."""
    if regime != "REMIT":
        return ""
    return {"standard": " (standard contract)", "non_standard": " (non-standard contract)"
            }.get(contract_type or "", "")


def _mapped_column(values, function) -> np.ndarray:
    """function of each distinct value of a column."""
    codes, distinct = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=False)
    return _objects([function(value) for value in distinct])[codes]


def _late_report_fields(late: pd.DataFrame) -> Dict[str, np.ndarray]:
    """LATE_REPORT_TEMPLATES fields of late regulatory reports, one array of str per field."""
    contract_type = (late["contract_type"].to_numpy(dtype=object) if "contract_type" in late
                     else np.full(len(late), "", dtype=object))
    regime = late["regime"].to_numpy(dtype=object)
    fields = {name: string_array(late[name]) for name in (
        "regime", "trade_id", "book", "submission_date", "deadline", "event_date", "severity")}
    fields.update(
        region_adj=_mapped_column(late["region"], region_adjective),
        region_noun=_mapped_column(late["region"], region_noun),
        contract_phrase=_mapped_factorized_pairs(
            pd.factorize(regime, use_na_sentinel=False),
            pd.factorize(contract_type, use_na_sentinel=False), _contract_phrase),
        commodity=_mapped_column(late["commodity"], display_commodity),
        days_late=_mapped_column(late["days_late"].tolist(), _days))
    return fields


def _limit_breach_fields(breaches: pd.DataFrame) -> Dict[str, np.ndarray]:
    """LIMIT_BREACH_TEMPLATES fields of limit breaches, one array of str per field (amounts
    as money(), utilisation as percent(), by fixed_point)."""
    fields = {name: string_array(breaches[name])
              for name in ("book", "event_date", "severity", "report_id")}
    fields.update(
        limit_name=_mapped_column(breaches["limit_type"], LIMIT_NAMES.__getitem__),
        value=fixed_point(breaches["value_usd"].to_numpy(float), 0),
        limit=fixed_point(breaches["limit_usd"].to_numpy(float), 0),
        utilisation=fixed_point(breaches["utilisation"].to_numpy(float) * 100, 1, "") + "%")
    return fields


def render_compliance_notes(compliance: pd.DataFrame, rng: np.random.Generator
                            ) -> Tuple[List[str], pd.DataFrame]:
    """Notes for late regulatory reports and limit breaches; returns (texts, their records).
    Rendered column-wise per template (fields once per distinct value or by fixed_point):
    the same texts as str.format of each note's template."""
    notable = compliance[(compliance["status"] == "late") | (compliance["status"] == "breach")]
    # One draw per note, in date order: a note's phrasing does not depend on how many notes
    # come after it (so a drift scenario leaves earlier notes unchanged).
    phrasing = rng.integers(0, 1 << 30, size=len(notable))
    is_late = (notable["status"] == "late").to_numpy()
    texts = np.empty(len(notable), dtype=object)
    for flag, templates, fields_of in ((True, LATE_REPORT_TEMPLATES, _late_report_fields),
                                       (False, LIMIT_BREACH_TEMPLATES, _limit_breach_fields)):
        rows = np.flatnonzero(is_late == flag)
        fields = fields_of(notable.iloc[rows])
        choice = phrasing[rows] % len(templates)
        for k, template in enumerate(templates):
            chosen = np.flatnonzero(choice == k)
            texts[rows[chosen]] = _render(template, fields, chosen)
    return texts.tolist(), notable


def render_text_records(config: ETRMDataConfig, trades: pd.DataFrame, risk_reports: pd.DataFrame,
                        compliance: pd.DataFrame, conditioned: bool = False) -> pd.DataFrame:
    """All texts as a table: text, kind, record_id, date (YYYY-MM-DD), ordered by date.

    conditioned: risk summaries in the form the language model learns (its record's prompt and
    the summary with slots, ``risk_summary.conditioned_summaries``), followed by those of the
    reports' counterfactual copies (``risk_summary.counterfactual_reports``, drawn from their
    own stream); the other texts are the same either way."""
    rng = window_stream(config, _STREAM_NAMESPACE)
    confirmations = _confirmation_texts(trades, rng)
    summarized = risk_reports
    if conditioned:
        summaries = conditioned_summaries(risk_reports, rng)
        copies = counterfactual_reports(risk_reports, window_stream(config, _COUNTERFACTUAL_NAMESPACE))
        phrasing = window_stream(config, _COUNTERFACTUAL_PHRASING_NAMESPACE)
        for copy in copies:
            summaries += conditioned_summaries(copy, phrasing)
        summarized = pd.concat([risk_reports, *copies], ignore_index=True)
    else:
        summaries = render_risk_summaries(risk_reports, rng)
    notes, noted = render_compliance_notes(compliance, rng)
    parts = [(confirmations, trades["trade_id"], trades["trade_date"]),
             (summaries, summarized["report_id"], summarized["report_date"]),
             (notes, noted["record_id"], noted["event_date"])]
    counts = [len(texts) for texts, _, _ in parts]
    columns = {
        "text": np.concatenate([confirmations, _objects(summaries), _objects(notes)]),
        "kind": np.repeat(_objects(TEXT_KINDS), counts),
        "record_id": np.concatenate([ids.to_numpy(dtype=object) for _, ids, _ in parts]),
        "date": np.concatenate([dates.to_numpy(dtype=object) for _, _, dates in parts]),
    }
    kind_order = np.repeat(np.arange(len(parts)), counts)
    date_order, _ = pd.factorize(columns["date"], sort=True)
    order = np.lexsort((kind_order, date_order))
    return pd.DataFrame({name: values[order] for name, values in columns.items()}, copy=False)
