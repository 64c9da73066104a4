"""How record values read in the generated texts: amounts, ratios, commodity and region names.

Shared by every text kind (ml.synthetic.text) and by the risk summaries and their checker
(ml.synthetic.risk_summary, ml.synthetic.summary_check), so a figure reads the same wherever
it is written and parsed.
"""
from typing import Dict

from ml.synthetic.catalog import COMMODITY_CATALOG, REGION_CATALOG

REGION_NOUNS: Dict[str, str] = {
    "north_america": "North America", "europe": "Europe", "uk": "the UK",
    "nordics": "the Nordics", "asia_pacific": "Asia-Pacific", "latin_america": "Latin America"}
REGION_ADJECTIVES: Dict[str, str] = {
    "north_america": "North American", "europe": "European", "uk": "UK",
    "nordics": "Nordic", "asia_pacific": "Asia-Pacific", "latin_america": "Latin American"}


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


def region_noun(name: str) -> str:
    """The region as a noun, with the article English needs ("the UK", "Europe")."""
    return REGION_NOUNS.get(name, display_region(name))


def region_adjective(name: str) -> str:
    """The region as an adjective before a commodity ("Nordic power", "UK gas")."""
    return REGION_ADJECTIVES.get(name, display_region(name))
