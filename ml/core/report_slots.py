"""The record slots of a conditioned risk summary: one owner for their names and their syntax.

A risk summary the language model learns is written with each figure of its risk record as a
slot token ("USD ⟨var_95⟩"); the served `summarize` signature replaces each slot the model
writes with the record's value. So the model chooses what to state, in which words and order,
and never writes a figure itself: a number in a conditioned summary is a record value by
construction, and which value stands where is what the evaluation checks.

Decision slots (DECISION_SLOT_NAMES) print nothing. A summary carries one at the start of each
section whose words depend on a fact of the record (which limits are breached, whether there
is a previous report): "Breaches:⟨breaches_var⟩ VaR limit breached ...". A record holds exactly
one decision slot per section (value DECISION_HOLDS, the others ""), and `summarize` never
writes a slot whose value is empty, so the section is written right after the record's own
fact instead of from the prompt's words a hundred tokens back (the sampler's breach sentences
contradicted the prompt in 3 of 100 summaries before, BENCHMARKS.md "Report language model").

The generator renders training texts with these slots (ml.synthetic.risk_summary), the
tokenizer keeps one fixed token per slot (models.lm.tokenizer) and clients send the values in
SLOT_NAMES order.
"""
from __future__ import annotations

from typing import Mapping, Sequence, Tuple

VALUE_SLOT_NAMES: Tuple[str, ...] = (
    "book", "report_date", "previous_date", "open_positions",
    "net_exposure", "gross_exposure", "top_commodity", "top_region_adj", "top_region_noun",
    "top_exposure", "top2_commodity", "top2_region_adj", "top2_exposure", "top3_commodity",
    "top3_region_adj", "top3_exposure", "var_95", "var_99", "es_95", "es_99",
    "var_limit", "exposure_limit", "limit_utilisation", "exposure_utilisation",
    "move_metric", "move_direction", "move_by", "move_pct", "move_to",
)
# Per section, its decision slots: the Breaches section's by the breached limits, the Changes
# section's by whether the book has a previous report.
BREACH_DECISIONS: Tuple[str, ...] = (
    "breaches_none", "breaches_var", "breaches_exposure", "breaches_both")
PREVIOUS_DECISIONS: Tuple[str, ...] = ("previous_none", "previous_yes")
DECISION_SLOT_NAMES: Tuple[str, ...] = BREACH_DECISIONS + PREVIOUS_DECISIONS
DECISION_HOLDS = "holds"
SLOT_NAMES: Tuple[str, ...] = VALUE_SLOT_NAMES + DECISION_SLOT_NAMES
SLOT_OPEN, SLOT_CLOSE = "\u27e8", "\u27e9"
# A slot is one tokenizer piece, with the space before it if any (RE2 syntax).
SLOT_PIECE_PATTERN = f" ?{SLOT_OPEN}[a-z0-9_]+{SLOT_CLOSE}"


def slot_token(name: str) -> str:
    """The text of a slot in a training summary: ⟨name⟩."""
    if name not in SLOT_NAMES:
        raise KeyError(f"unknown record slot {name!r}; slots: {', '.join(SLOT_NAMES)}")
    return f"{SLOT_OPEN}{name}{SLOT_CLOSE}"


def slot_values(values: Mapping[str, str]) -> Tuple[str, ...]:
    """A record's values in SLOT_NAMES order (what `summarize` takes); every slot must be given."""
    missing = [name for name in SLOT_NAMES if name not in values]
    if missing:
        raise ValueError(f"record has no value for slots {missing}")
    return tuple(str(values[name]) for name in SLOT_NAMES)


def decision_values(breaches_var: bool, breaches_exposure: bool, has_previous: bool
                    ) -> dict:
    """The decision slots' values of a record: DECISION_HOLDS for its own, "" for the others."""
    breach = BREACH_DECISIONS[int(breaches_var) + 2 * int(breaches_exposure)]
    previous = PREVIOUS_DECISIONS[int(has_previous)]
    return {name: DECISION_HOLDS if name in (breach, previous) else ""
            for name in DECISION_SLOT_NAMES}


def printed_value(name: str, value: str) -> str:
    """What a slot prints: its value, nothing for a decision slot."""
    return "" if name in DECISION_SLOT_NAMES else value


def fill_slots(text: str, values: Sequence[str]) -> str:
    """A slotted text with each slot replaced by what it prints (values in SLOT_NAMES order)."""
    for name, value in zip(SLOT_NAMES, values):
        text = text.replace(slot_token(name), printed_value(name, value))
    return text
