"""The record slots of a conditioned risk summary: one owner for their names and their syntax.

A risk summary the language model learns is written with each figure of its risk record as a
slot token ("USD ⟨var_95⟩"); the served `summarize` signature replaces each slot the model
writes with the record's value. So the model chooses what to state, in which words and order,
and never writes a figure itself: a number in a conditioned summary is a record value by
construction, and which value stands where is what the evaluation checks.

The generator renders training texts with these slots (ml.synthetic.risk_summary), the
tokenizer keeps one fixed token per slot (models.lm.tokenizer) and clients send the values in
SLOT_NAMES order.
"""
from __future__ import annotations

from typing import Mapping, Sequence, Tuple

SLOT_NAMES: Tuple[str, ...] = (
    "book", "report_date", "previous_date", "open_positions",
    "net_exposure", "gross_exposure", "top_commodity", "top_region_adj", "top_region_noun",
    "top_exposure", "top2_commodity", "top2_region_adj", "top2_exposure", "top3_commodity",
    "top3_region_adj", "top3_exposure", "var_95", "var_99", "es_95", "es_99",
    "var_limit", "exposure_limit", "limit_utilisation", "exposure_utilisation",
    "move_metric", "move_direction", "move_by", "move_pct", "move_to",
)
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


def fill_slots(text: str, values: Sequence[str]) -> str:
    """A slotted text with each slot replaced by its value (values in SLOT_NAMES order)."""
    for name, value in zip(SLOT_NAMES, values):
        text = text.replace(slot_token(name), value)
    return text
