"""Checks a written daily risk summary against its risk record: the parser the benchmark, the
evaluation and the tests share.

A summary is cut at its section headings (RISK_SUMMARY_SECTIONS, in order); the opening and
each section must read as one of the generator's phrasings of that part, as a regular
expression made from the template, so every figure is read with its meaning ("USD x at 95%" is
the 95% VaR). Then:

- factual: every part parsed, every figure and name stated equals the record's value, and no
  number appears that is not one of the record's (the confidence labels 95% and 99% aside);
- structured: every section present, in order;
- consistent: no stated expected shortfall below the VaR stated at the same level, and a breach
  stated exactly where utilisation of its limit exceeds 100%.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
import re
import string
from typing import Dict, List, Optional, Tuple

from ml.synthetic.catalog import COMMODITY_CATALOG, REGION_CATALOG
from ml.synthetic.risk_summary import (BREACH_CLAUSES, MOVE_METRICS, RISK_SUMMARY_OPENINGS,
                                       RISK_SUMMARY_SECTION_TEMPLATES, RISK_SUMMARY_SECTIONS,
                                       RUNNER_UP_CLAUSES, RiskRecord)
from ml.synthetic.wording import display_commodity, region_adjective, region_noun

NUMBER = re.compile(r"\d{4}-\d{2}-\d{2}|-?\d+(?:,\d{3})*(?:\.\d+)?%?")
LABELS = frozenset({"95%", "99%"})
# Stated figure -> the utilisation that makes its limit breached (for the consistency rule).
BREACH_UTILISATION = {"var_limit_breach": "limit_utilisation",
                      "exposure_limit_breach": "exposure_utilisation"}
ES_AT_LEVEL = (("es_95", "var_95"), ("es_99", "var_99"))


@dataclasses.dataclass(frozen=True)
class Phrasing:
    """One way a part of a summary reads: its regex and what choosing it says about the record."""

    pattern: re.Pattern
    condition: Optional[str] = None     # the section's condition
    holds: bool = True                  # whether this phrasing is for the condition holding
    breaches: Tuple[str, ...] = ()      # breaches a Breaches phrasing states
    markets: Optional[int] = None       # largest exposures an overview phrasing names


@dataclasses.dataclass(frozen=True)
class SummaryCheck:
    """What the checker found in one summary."""

    structured: bool
    factual: bool
    consistent: bool
    problems: Tuple[str, ...]
    stated: Dict[str, str]
    foreign_numbers: Tuple[str, ...]


def _one_of(values) -> str:
    return "(?:" + "|".join(re.escape(v) for v in sorted(set(values), key=len, reverse=True)) + ")"


_AMOUNT = r"-?\d+(?:,\d{3})*"
_PERCENT = r"\d+(?:,\d{3})*\.\d%"
_DATE = r"\d{4}-\d{2}-\d{2}"
# What each field can look like, whatever its value: a wrong figure still parses (and is
# reported as wrong); a field never swallows the words around it.
FIELD_PATTERNS = {
    "book": r"[A-Z][A-Z0-9_]*", "report_date": _DATE, "previous_date": _DATE,
    "open_positions": r"\d+ open positions?",
    **{f"{rank}_commodity": _one_of(display_commodity(name) for name in COMMODITY_CATALOG)
       for rank in ("top", "top2", "top3")},
    **{f"{rank}_region_adj": _one_of(region_adjective(name) for name in REGION_CATALOG)
       for rank in ("top", "top2", "top3")},
    "top_region_noun": _one_of(region_noun(name) for name in REGION_CATALOG),
    "limit_utilisation": _PERCENT, "exposure_utilisation": _PERCENT, "move_pct": _PERCENT,
    "move_metric": _one_of(label for _, label in MOVE_METRICS), "move_direction": "up|down",
}


def template_pattern(template: str) -> str:
    """A str.format template as a regex: literals escaped, each field a named group of its
    FIELD_PATTERNS shape (amounts otherwise); a field used again must repeat its value."""
    parts, seen = [], set()
    for literal, name, _, _ in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if name is None:
            continue
        shape = FIELD_PATTERNS.get(name, _AMOUNT)
        parts.append(f"(?P={name})" if name in seen else f"(?P<{name}>{shape})")
        seen.add(name)
    return "".join(parts)


def _breach_lists() -> List[Tuple[Tuple[str, ...], str]]:
    """Every breach list a summary can state: (breaches, the list's template)."""
    found = []
    for size in range(1, len(BREACH_CLAUSES) + 1):
        for chosen in itertools.combinations(BREACH_CLAUSES, size):
            found.append((tuple(name for name, _ in chosen),
                          " and ".join(clause for _, clause in chosen)))
    return found


@functools.lru_cache(maxsize=1)
def phrasings() -> Dict[str, List[Phrasing]]:
    """The phrasings of the opening ("") and of each section, compiled once."""
    table = {"": [Phrasing(re.compile(template_pattern(t))) for t in RISK_SUMMARY_OPENINGS]}
    for heading, condition, when_true, when_false in RISK_SUMMARY_SECTION_TEMPLATES:
        options = []
        for holds, templates in ((True, when_true), (False, when_false)):
            for template in templates:
                if "{runners_up}" in template:
                    options += [Phrasing(re.compile(template_pattern(
                        template.replace("{runners_up}", clause))), condition, holds,
                        markets=markets)
                        for markets, clause in enumerate(RUNNER_UP_CLAUSES, start=1)]
                elif "{breach_list}" in template:
                    options += [Phrasing(re.compile(template_pattern(
                        template.replace("{breach_list}", listed))), condition, holds, breaches)
                        for breaches, listed in _breach_lists()]
                else:
                    options.append(Phrasing(re.compile(template_pattern(template)), condition, holds))
        table[heading] = options
    return table


def split_sections(text: str) -> Tuple[Dict[str, str], bool]:
    """{"": opening, heading: body} of the sections found in order, and whether all were."""
    parts, position, previous = {}, 0, ""
    for heading in RISK_SUMMARY_SECTIONS:
        found = text.find(f" {heading}: ", position)
        if found < 0:
            parts[previous] = text[position:].strip()
            return parts, False
        parts[previous] = text[position:found].strip()
        position, previous = found + len(heading) + 3, heading
    parts[previous] = text[position:].strip()
    return parts, True


def parse_number(text: str) -> Optional[float]:
    try:
        return float(text.replace(",", "").rstrip("%"))
    except ValueError:
        return None


def record_numbers(record: RiskRecord) -> set:
    return {number for value in record.values.values() for number in NUMBER.findall(value)}


def number_sequence(text: str) -> Tuple[str, ...]:
    """The numbers of a text in order: what recitation of a training text would repeat."""
    return tuple(number for number in NUMBER.findall(text) if number not in LABELS)


def check_summary(text: str, record: RiskRecord) -> SummaryCheck:
    """Parses a summary and holds it against the record it should state."""
    parts, structured = split_sections(" " + text.strip())
    expected = record.values
    conditions = record.conditions()
    problems: List[str] = []
    stated: Dict[str, str] = {}
    parsed_all = structured
    stated_breaches: Optional[Tuple[str, ...]] = None
    for part, body in parts.items():
        name = part or "opening"
        match = next(((p, m) for p in phrasings()[part] for m in [p.pattern.fullmatch(body)] if m),
                     None)
        if match is None:
            problems.append(f"{name}: not a phrasing of this section: {body[:80]!r}")
            parsed_all = False
            continue
        phrasing, found = match
        if phrasing.condition and phrasing.holds != conditions[phrasing.condition]:
            problems.append(f"{name}: written as if {phrasing.condition} were {phrasing.holds}")
        if phrasing.markets is not None and phrasing.markets != record.markets_named:
            problems.append(f"{name}: names {phrasing.markets} largest exposures, the record "
                            f"has {record.markets_named}")
        if part == "Breaches":
            stated_breaches = phrasing.breaches
        for field, value in found.groupdict().items():
            stated[field] = value
            if value != expected.get(field):
                problems.append(f"{name}: {field} stated as {value!r}, the record has "
                                f"{expected.get(field)!r}")
    allowed = record_numbers(record) | LABELS
    foreign = tuple(number for number in NUMBER.findall(text) if number not in allowed)
    if foreign:
        problems.append(f"numbers not in the record: {', '.join(foreign[:5])}")
    consistent = _consistent(record, stated, stated_breaches, problems)
    factual = parsed_all and not foreign and not any(
        " stated as " in problem or "written as if" in problem or "largest exposures" in problem
        for problem in problems)
    return SummaryCheck(structured=structured, factual=factual, consistent=consistent,
                        problems=tuple(problems), stated=stated, foreign_numbers=foreign)


def _consistent(record: RiskRecord, stated: Dict[str, str],
                stated_breaches: Optional[Tuple[str, ...]], problems: List[str]) -> bool:
    ok = True
    for es, var in ES_AT_LEVEL:
        es_value, var_value = parse_number(stated.get(es, "")), parse_number(stated.get(var, ""))
        if es_value is not None and var_value is not None and es_value < var_value:
            problems.append(f"inconsistent: {es} {stated[es]} is below {var} {stated[var]}")
            ok = False
    for breach, utilisation in BREACH_UTILISATION.items():
        above = record.figures[utilisation] > 1.0
        said = stated_breaches is not None and breach in stated_breaches
        if stated_breaches is not None and said != above:
            problems.append(f"inconsistent: {breach} {'stated' if said else 'omitted'} with "
                            f"{utilisation} {record.values[utilisation]}")
            ok = False
    if stated_breaches is None:
        ok = False
    return ok

