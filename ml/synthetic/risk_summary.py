"""Daily risk summaries: the risk record of a book-day, its summary text, and the conditioned
form the report language model learns.

A ``RiskRecord`` holds what a summary may state (``values``, keyed by the slots of
ml.core.report_slots, in the number formats of ml.synthetic.text), among them the analysis of
the day: the book's three largest exposures by market, and the largest move since the book's
previous report in the same table (the biggest relative change among VaR, expected shortfall
and gross exposure; none for a book's first report). Its facts choose the summary's words:
how many markets it holds (a flat book holds none), which limits are breached, whether there
is a previous report.

Every summary has the sections ``RISK_SUMMARY_SECTIONS`` in order. ``render_risk_summaries``
writes them with the record's figures; ``conditioned_summaries`` writes the same texts as
(prompt, slotted summary): the prompt states the record's facts in words, the summary has
each record value as its slot. The language model learns the second form, so it learns which
value to state where and in which words, never the values themselves.

One week holds few book-days (30), and some facts are rare in any week (a gross-exposure limit
breach: 10 of 234 book-days at 5,000 trades per span). ``counterfactual_reports`` therefore
adds, for the training texts only, copies of each report with its limits moved so that one
breach flips and the other is drawn at random: the pairs stay exact (each copy's text is its
own record's), every combination of breaches is seen every week, and the only difference
between a report's texts that the model can explain is the prompt.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from ml.core.report_slots import (BREACH_DECISIONS, PREVIOUS_DECISIONS, SLOT_NAMES,
                                  decision_values, slot_token)
from ml.synthetic.portfolio import LARGEST_POSITION_RANKS
from ml.synthetic.wording import (display_commodity, money, percent, region_adjective,
                                  region_noun)

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
      "{gross_exposure}; the largest exposure is {top_region_adj} {top_commodity} at USD "
      "{top_exposure}{runners_up}.",
      "the book holds {open_positions} with gross exposure of USD {gross_exposure} (net USD "
      "{net_exposure}), led by {top_commodity} in {top_region_noun} (USD {top_exposure})"
      "{runners_up}.",
      "gross USD {gross_exposure} and net USD {net_exposure} across {open_positions}; "
      "{top_region_adj} {top_commodity} is the largest at USD {top_exposure}{runners_up}."),
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
    ("Changes", "has_previous",
     ("since {previous_date} the largest move is {move_metric}, {move_direction} USD {move_by} "
      "({move_pct}) to USD {move_to}.",
      "{move_metric} moved most since {previous_date}: {move_direction} USD {move_by} "
      "({move_pct}) to USD {move_to}.",
      "against {previous_date}, {move_metric} changed most, {move_direction} USD {move_by} "
      "({move_pct}) to USD {move_to}."),
     ("no earlier report in this window to compare with.",
      "first report of the window, nothing to compare.")),
)
RISK_SUMMARY_SECTIONS: Tuple[str, ...] = tuple(
    heading for heading, _, _, _ in RISK_SUMMARY_SECTION_TEMPLATES)
# The breach list: one clause per breached limit, joined by " and ".
BREACH_CLAUSES: Tuple[Tuple[str, str], ...] = (
    ("var_limit_breach", "VaR limit breached (USD {var_95} against USD {var_limit})"),
    ("exposure_limit_breach",
     "gross exposure limit exceeded (USD {gross_exposure} against USD {exposure_limit})"),
)
# After the largest exposure, the next largest (a book may hold fewer markets): the clause
# for each number of markets a summary names, from one.
RUNNER_UP_CLAUSES: Tuple[str, ...] = (
    "",
    ", then {top2_region_adj} {top2_commodity} (USD {top2_exposure})",
    ", then {top2_region_adj} {top2_commodity} (USD {top2_exposure}) and {top3_region_adj} "
    "{top3_commodity} (USD {top3_exposure})",
)
MARKET_COUNTS = ("one market", "two markets", "three or more markets")
BREACH_NAMES = {"var_limit_breach": "VaR limit", "exposure_limit_breach": "gross exposure limit"}
# Figures whose move since the previous report a summary names (the largest relative one).
MOVE_METRICS: Tuple[Tuple[str, str], ...] = (
    ("var_95", "95% VaR"), ("var_99", "99% VaR"), ("es_95", "95% expected shortfall"),
    ("es_99", "99% expected shortfall"), ("gross_exposure", "gross exposure"))
# The sections whose wording a record's decision slot chooses (ml.core.report_slots).
SECTION_DECISIONS = {"Breaches": BREACH_DECISIONS, "Changes": PREVIOUS_DECISIONS}
PROMPT_END = "Summary:"
COUNTERFACTUAL_SUFFIX = "-CF"
# Counterfactual copies of each report in the training texts (one flips each breach); six
# made breaches right every time but the Changes phrasings less exact (BENCHMARKS.md,
# "Report language model").
COUNTERFACTUAL_COPIES = 2
FIGURES = ("net_exposure", "gross_exposure", "top_exposure", "var_95", "var_99", "es_95",
           "es_99", "var_limit", "exposure_limit", "limit_utilisation", "exposure_utilisation")


@dataclasses.dataclass(frozen=True)
class RiskRecord:
    """One book-day's risk record: what its summary states and the facts that choose its words."""

    book: str
    report_date: str
    values: Dict[str, str]          # every slot of SLOT_NAMES, as the summary writes it
    figures: Dict[str, float]       # the raw numbers of FIGURES, for consistency checks
    has_exposure: bool
    markets_named: int              # largest exposures the summary names (0 for a flat book)
    breached: Tuple[str, ...]       # BREACH_NAMES keys, in BREACH_CLAUSES order
    move_metric: Optional[str]      # a MOVE_METRICS key; None without a previous report
    move_up: bool = False

    @property
    def has_previous(self) -> bool:
        return self.move_metric is not None

    def conditions(self) -> Dict[str, bool]:
        return {"has_exposure": self.has_exposure, "has_breaches": bool(self.breached),
                "has_previous": self.has_previous}

    def prompt(self) -> str:
        """The conditioning prompt: the record's facts in words, no figure."""
        breaches = " and ".join(BREACH_NAMES[name] for name in self.breached) or "none"
        exposure = (f"positions in {MARKET_COUNTS[self.markets_named - 1]}"
                    if self.markets_named else "flat book")
        previous = "yes" if self.has_previous else "none, first report"
        return (f"Risk record: {exposure}; breaches: {breaches}; previous report: {previous}. "
                f"{PROMPT_END}")

    def slot_values(self) -> Tuple[str, ...]:
        return tuple(self.values[name] for name in SLOT_NAMES)


def _open_positions(count: int) -> str:
    return f"{count} open position" + ("" if count == 1 else "s")


def _largest_move(report, previous) -> Tuple[Optional[str], float, float]:
    """(metric, previous value, current value) of the largest relative move, or (None, 0, 0)."""
    if previous is None:
        return None, 0.0, 0.0
    best, best_change = None, -1.0
    for metric, _ in MOVE_METRICS:
        before, now = float(getattr(previous, metric)), float(getattr(report, metric))
        if before > 0 and abs(now / before - 1.0) > best_change:
            best, best_change = metric, abs(now / before - 1.0)
    if best is None:
        return None, 0.0, 0.0
    return best, float(getattr(previous, best)), float(getattr(report, best))




def _names_market(commodity) -> bool:
    """Whether a rank's commodity column names one (empty or missing, as NaN from a CSV: no)."""
    return isinstance(commodity, str) and bool(commodity)


def _markets_named(report) -> int:
    """How many of the largest-exposure ranks a report fills (none for a flat book; a table
    written before the runners-up were reported names one)."""
    if not report.gross_exposure > 0:
        return 0
    return sum(_names_market(getattr(report, f"{rank}_commodity", ""))
               for rank in LARGEST_POSITION_RANKS)


def _largest_exposures(report) -> Dict[str, str]:
    """The slots of the book's largest exposures ("" for a rank the book does not hold)."""
    values, named = {}, _markets_named(report)
    for index, (rank, slot) in enumerate(zip(LARGEST_POSITION_RANKS, ("top", "top2", "top3"))):
        commodity, region = (getattr(report, f"{rank}_commodity", ""),
                             getattr(report, f"{rank}_region", ""))
        held = index < named
        values[f"{slot}_commodity"] = display_commodity(commodity) if held else ""
        values[f"{slot}_region_adj"] = region_adjective(region) if held else ""
        if slot == "top":
            values["top_region_noun"] = region_noun(region) if held else ""
        values[f"{slot}_exposure"] = money(getattr(report, rank)) if held else ""
    return values


def record_of(report, previous=None) -> RiskRecord:
    """The record of one risk-report row (a namedtuple of risk_reports columns), with the
    book's previous report row, if any, for the move since then."""
    metric, before, now = _largest_move(report, previous)
    values = {
        "book": str(report.book), "report_date": str(report.report_date),
        "previous_date": str(previous.report_date) if metric else "",
        "open_positions": _open_positions(int(report.num_open_positions)),
        "net_exposure": money(report.net_exposure), "gross_exposure": money(report.gross_exposure),
        **_largest_exposures(report),
        "var_95": money(report.var_95), "var_99": money(report.var_99),
        "es_95": money(report.es_95), "es_99": money(report.es_99),
        "var_limit": money(report.var_limit), "exposure_limit": money(report.exposure_limit),
        "limit_utilisation": percent(report.limit_utilisation),
        "exposure_utilisation": percent(report.exposure_utilisation),
        "move_metric": dict(MOVE_METRICS)[metric] if metric else "",
        "move_direction": ("up" if now >= before else "down") if metric else "",
        "move_by": money(abs(now - before)) if metric else "",
        "move_pct": percent(abs(now / before - 1.0)) if metric else "",
        "move_to": money(now) if metric else "",
        **decision_values(bool(report.var_limit_breach), bool(report.exposure_limit_breach),
                          metric is not None),
    }
    return RiskRecord(
        book=str(report.book), report_date=str(report.report_date), values=values,
        figures={name: float(getattr(report, name)) for name in FIGURES},
        has_exposure=bool(report.gross_exposure > 0),
        markets_named=_markets_named(report),
        breached=tuple(name for name, _ in BREACH_CLAUSES if bool(getattr(report, name))),
        move_metric=metric, move_up=bool(now >= before))


def risk_records(risk_reports: pd.DataFrame) -> List[RiskRecord]:
    """One record per report row, in row order; a book's previous report is its latest earlier
    report in the table."""
    rows = list(risk_reports.itertuples(index=False))
    order = sorted(range(len(rows)), key=lambda i: (rows[i].report_date, i))
    latest: Dict[str, object] = {}
    records: List[Optional[RiskRecord]] = [None] * len(rows)
    for i in order:
        records[i] = record_of(rows[i], latest.get(rows[i].book))
        latest[rows[i].book] = rows[i]
    return records


def summary_fields(record: RiskRecord, slotted: bool = False) -> Dict[str, str]:
    """Template fields of a record's summary: its values, or slot tokens in their place."""
    fields = ({name: slot_token(name) for name in SLOT_NAMES} if slotted
              else dict(record.values))
    fields["runners_up"] = (RUNNER_UP_CLAUSES[record.markets_named - 1].format(**fields)
                            if record.markets_named else "")
    fields["breach_list"] = " and ".join(
        clause.format(**fields) for name, clause in BREACH_CLAUSES if name in record.breached)
    return fields


def _decision_token(record: RiskRecord, heading: str) -> str:
    """The record's decision slot at the start of a section that has them (ml.core.report_slots)."""
    decisions = SECTION_DECISIONS.get(heading, ())
    return "".join(slot_token(name) for name in decisions if record.values[name])


def write_summary(record: RiskRecord, opening: int, phrasings: Sequence[int],
                  slotted: bool = False) -> str:
    """The summary of a record with the given opening and per-section phrasing draws; slotted,
    with the record's decision slot right after each heading that has them."""
    fields = summary_fields(record, slotted)
    conditions = record.conditions()
    parts = [RISK_SUMMARY_OPENINGS[opening].format(**fields)]
    for k, (heading, condition, when_true, when_false) in enumerate(RISK_SUMMARY_SECTION_TEMPLATES):
        options = when_true if conditions[condition] else when_false
        decision = _decision_token(record, heading) if slotted else ""
        parts.append(f"{heading}:{decision} {options[phrasings[k] % len(options)].format(**fields)}")
    return " ".join(parts)


def _draws(rng: np.random.Generator, n: int) -> Tuple[np.ndarray, np.ndarray]:
    opening = rng.integers(len(RISK_SUMMARY_OPENINGS), size=n)
    phrasing = rng.integers(0, 1 << 30, size=(n, len(RISK_SUMMARY_SECTION_TEMPLATES)))
    return opening, phrasing


def render_risk_summaries(risk_reports: pd.DataFrame, rng: np.random.Generator) -> List[str]:
    """One multi-section summary per risk report, with the record's figures."""
    records = risk_records(risk_reports)
    opening, phrasing = _draws(rng, len(records))
    return [write_summary(record, opening[i], phrasing[i]) for i, record in enumerate(records)]


def counterfactual_reports(risk_reports: pd.DataFrame, rng: np.random.Generator,
                           copies: int = COUNTERFACTUAL_COPIES) -> List[pd.DataFrame]:
    """Copies of the reports with exposure (a flat book has no limit to breach) whose limits
    are moved: in odd-numbered copies the gross-exposure breach flips and the VaR breach is
    drawn at random, in even-numbered ones the other way round. Each copy is a table of its
    own (a copy's previous report is in the same copy); ids end in COUNTERFACTUAL_SUFFIX and
    the copy's number."""
    held = risk_reports[risk_reports["gross_exposure"] > 0]
    tables = []
    for number in range(1, copies + 1):
        flipped = ("exposure_limit_breach", "var_limit_breach")[(number - 1) % 2]
        copy = held.copy()
        n = len(copy)
        breach = {name: rng.random(n) < 0.5 for name in ("var_limit_breach", "exposure_limit_breach")}
        breach[flipped] = ~copy[flipped].astype(bool).to_numpy()
        var_use = np.where(breach["var_limit_breach"], rng.uniform(1.01, 1.6, n),
                           rng.uniform(0.3, 0.99, n))
        exposure_use = np.where(breach["exposure_limit_breach"], rng.uniform(1.01, 1.3, n),
                                rng.uniform(0.4, 0.99, n))
        copy["var_limit"] = copy["var_95"].to_numpy() / var_use
        copy["exposure_limit"] = copy["gross_exposure"].to_numpy() / exposure_use
        copy["limit_utilisation"] = copy["var_95"] / copy["var_limit"]
        copy["exposure_utilisation"] = copy["gross_exposure"] / copy["exposure_limit"]
        copy["var_limit_breach"] = (copy["limit_utilisation"] > 1.0).astype(int)
        copy["exposure_limit_breach"] = (copy["exposure_utilisation"] > 1.0).astype(int)
        copy["breaches"] = copy["var_limit_breach"] + copy["exposure_limit_breach"]
        copy["report_id"] = copy["report_id"].astype(str) + f"{COUNTERFACTUAL_SUFFIX}{number}"
        tables.append(copy.reset_index(drop=True))
    return tables


def conditioned_summaries(risk_reports: pd.DataFrame, rng: np.random.Generator) -> List[str]:
    """What the language model learns of each report: its prompt, a space, then the same
    summary as render_risk_summaries (same draws from the same rng state) with slots."""
    records = risk_records(risk_reports)
    opening, phrasing = _draws(rng, len(records))
    return [f"{record.prompt()} {write_summary(record, opening[i], phrasing[i], slotted=True)}"
            for i, record in enumerate(records)]
