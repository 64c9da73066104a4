"""Generator configuration: what to generate, over which window, with which drift.

Validation happens at construction (and again when a generator starts), so a bad configuration
fails fast with a ValueError that names the field and the values it accepts.
"""
import dataclasses
import math
from dataclasses import dataclass
from datetime import datetime
from numbers import Integral, Real
from typing import Dict, List, Optional

import numpy as np

from ml.synthetic.calendar import EXCHANGE, business_day_offset
from ml.synthetic.calendar import trading_days as _calendar_trading_days
from ml.synthetic.catalog import (BOOK_NAMES, COMMODITY_CATALOG, COUNTERPARTY_LEGAL_FORMS,
                                  COUNTERPARTY_SECTORS, COUNTERPARTY_STEMS, DEFAULT_COMMODITIES,
                                  DEFAULT_REGIONS, REGION_CATALOG, TRADER_FIRST_NAMES,
                                  TRADER_SURNAMES)

DRIFT_KINDS = ("volatility_shock", "price_shift", "mix_change", "new_category", "concept_change")
NEW_CATEGORY_FIELDS = ("commodity", "region")
DEFAULT_NEW_CATEGORY = {"commodity": "hydrogen", "region": "latin_america"}
# The price history starts this many trading days before price_anchor_date, so every window has
# a full volatility window and a full one-year VaR lookback.
PRICE_WARMUP_TRADING_DAYS = 260


def _fail(field_name: str, problem: str, allowed: str) -> None:
    raise ValueError(f"{field_name}: {problem}; allowed: {allowed}")


def _check_int(field_name: str, value, minimum: int, maximum: Optional[int] = None) -> None:
    allowed = f"an integer >= {minimum}" + ("" if maximum is None else f" and <= {maximum}")
    if isinstance(value, bool) or not isinstance(value, Integral):
        _fail(field_name, f"got {value!r} of type {type(value).__name__}", allowed)
    if value < minimum or (maximum is not None and value > maximum):
        _fail(field_name, f"got {value}", allowed)


def _check_datetime(field_name: str, value) -> None:
    if not isinstance(value, datetime):
        _fail(field_name, f"got {value!r} of type {type(value).__name__}", "a datetime.datetime")


def _check_names(field_name: str, values, catalog, kind: str) -> None:
    allowed = ", ".join(sorted(catalog))
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        _fail(field_name, f"got {values!r}", f"None or a list of {kind} names from: {allowed}")
    if not values:
        _fail(field_name, "the list is empty", f"None or a non-empty list from: {allowed}")
    for name in values:
        if name not in catalog:
            _fail(field_name, f"unknown {kind} {name!r}", allowed)
    if len(set(values)) != len(values):
        _fail(field_name, f"duplicate names in {list(values)}", f"each {kind} once")


def as_day(value: datetime) -> np.datetime64:
    """Calendar day of a datetime as numpy datetime64[D] (time of day ignored)."""
    return np.datetime64(value.date() if isinstance(value, datetime) else value, "D")


def trading_days(first: datetime, last: datetime) -> np.ndarray:
    """Exchange trading days from first to last inclusive (datetime64[D]): weekdays minus the
    exchange holidays of ``ml.synthetic.calendar`` (New Year's Day, Good Friday, ...)."""
    return _calendar_trading_days(first, last)


def price_history_start(price_anchor_date: datetime) -> np.datetime64:
    """First day of the simulated price history: PRICE_WARMUP_TRADING_DAYS exchange trading
    days before the first trading day on or after the anchor (holidays skipped)."""
    anchor = business_day_offset(as_day(price_anchor_date), 0, EXCHANGE, roll="forward")
    return business_day_offset(anchor, -PRICE_WARMUP_TRADING_DAYS, EXCHANGE, roll="forward")


@dataclass
class DriftScenario:
    """A documented change in the data-generating process from ``start_date`` on.

    ``magnitude`` per kind:
      volatility_shock: the innovations of prices, regional bases, spreads and spike sizes
                        are multiplied by (1 + magnitude), magnitude > -1 (1.0 doubles
                        volatility); ``commodities`` limits it.
      price_shift:      price levels are multiplied by (1 + magnitude), magnitude > -1;
                        ``commodities`` limits it.
      mix_change:       in [0, 1]: the commodity and region sampling weights become
                        (1 - m) * baseline + m * target; ``target_mix`` maps commodity and/or
                        region names to weights (None: the baseline ranking reversed).
      new_category:     in (0, 1]: that share of trades gets a commodity or region
                        (``category_field``) never seen before (``category_name``; defaults
                        hydrogen / latin_america). The shares of all new_category scenarios
                        of one ``category_field`` must sum to at most 1 (they take disjoint
                        bands of one uniform draw).
      concept_change:   in [0, 1]: the high-risk log-odds become
                        (1 - m) * baseline + m * alternative (credit-driven) outcome
                        (``ml.synthetic.risk_label``); the features do not change.

    ``ramp_days`` (price_shift only): the level moves linearly over this many trading days
    from start_date (0 = a jump on the start day). Integer >= 0; ignored by the other kinds.
    """

    kind: str
    start_date: datetime
    magnitude: float
    commodities: Optional[List[str]] = None
    category_field: str = "commodity"
    category_name: Optional[str] = None
    target_mix: Optional[Dict[str, float]] = None
    ramp_days: int = 0

    def __post_init__(self):
        if self.kind not in DRIFT_KINDS:
            _fail("DriftScenario.kind", f"unknown kind {self.kind!r}", ", ".join(DRIFT_KINDS))
        _check_datetime("DriftScenario.start_date", self.start_date)
        if (isinstance(self.magnitude, bool) or not isinstance(self.magnitude, Real)
                or not math.isfinite(self.magnitude)):
            _fail("DriftScenario.magnitude", f"got {self.magnitude!r}", "a finite number")
        self.magnitude = float(self.magnitude)
        low, high, allowed = {
            "volatility_shock": (-1.0, math.inf, "magnitude > -1"),
            "price_shift": (-1.0, math.inf, "magnitude > -1"),
            "mix_change": (0.0, 1.0, "0 <= magnitude <= 1"),
            "new_category": (0.0, 1.0, "0 < magnitude <= 1"),
            "concept_change": (0.0, 1.0, "0 <= magnitude <= 1"),
        }[self.kind]
        open_low = self.kind in ("volatility_shock", "price_shift", "new_category")
        if self.magnitude > high or self.magnitude < low or (open_low and self.magnitude == low):
            _fail("DriftScenario.magnitude", f"got {self.magnitude} for kind {self.kind}",
                  allowed)
        if self.commodities is not None:
            _check_names("DriftScenario.commodities", self.commodities, COMMODITY_CATALOG,
                         "commodity")
            self.commodities = list(self.commodities)
        if self.category_field not in NEW_CATEGORY_FIELDS:
            _fail("DriftScenario.category_field", f"got {self.category_field!r}",
                  ", ".join(NEW_CATEGORY_FIELDS))
        if self.kind == "new_category":
            if self.category_name is None:
                self.category_name = DEFAULT_NEW_CATEGORY[self.category_field]
            catalog = COMMODITY_CATALOG if self.category_field == "commodity" else REGION_CATALOG
            if self.category_name not in catalog:
                _fail("DriftScenario.category_name", f"unknown {self.category_field} "
                      f"{self.category_name!r}", ", ".join(sorted(catalog)))
        _check_int("DriftScenario.ramp_days", self.ramp_days, 0)
        if self.target_mix is not None:
            names = set(COMMODITY_CATALOG) | set(REGION_CATALOG)
            for name, weight in dict(self.target_mix).items():
                if name not in names:
                    _fail("DriftScenario.target_mix", f"unknown name {name!r}",
                          ", ".join(sorted(names)))
                if not isinstance(weight, Real) or not weight >= 0:
                    _fail("DriftScenario.target_mix", f"weight {weight!r} for {name}",
                          "non-negative numbers")
            self.target_mix = {name: float(w) for name, w in self.target_mix.items()}

    def to_dict(self) -> dict:
        """JSON-ready form (dates as ISO strings)."""
        out = dataclasses.asdict(self)
        out["start_date"] = self.start_date.isoformat()
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "DriftScenario":
        """Inverse of to_dict (dicts written before ``ramp_days`` existed get its default)."""
        values = dict(data)
        values["start_date"] = datetime.fromisoformat(values["start_date"])
        return cls(**values)


@dataclass
class ETRMDataConfig:
    """What to generate. The first seven fields are the documented spec; the rest have defaults.

    ``commodities``/``regions`` None means the default lists (``DEFAULT_COMMODITIES``,
    ``DEFAULT_REGIONS``) and are replaced by them at construction. Prices depend only on
    ``seed``, ``price_anchor_date`` and price-affecting drift scenarios, so windows generated
    separately form one consistent history; trade sampling depends on (seed, start_date).
    ``num_positions`` is the size of each window's opening portfolio: books open with
    num_positions positions traded before start_date and still delivering (an integer >= 0;
    0 = books open flat). ``num_risk_reports`` is rounded up to whole report dates, so every
    report date covers every book (200 reports of 6 books: 34 dates, 204 reports).
    """

    num_trades: int = 1000
    num_positions: int = 500
    num_risk_reports: int = 100
    start_date: datetime = datetime(2023, 1, 1)
    end_date: datetime = datetime(2024, 12, 31)
    commodities: List[str] = None
    regions: List[str] = None
    seed: int = 42
    drift_scenarios: List[DriftScenario] = None
    shuffle_labels: bool = False
    price_anchor_date: datetime = datetime(2020, 1, 1)
    num_counterparties: int = 40
    num_traders: int = 16
    num_books: int = 6

    def __post_init__(self):
        if self.commodities is None:
            self.commodities = list(DEFAULT_COMMODITIES)
        if self.regions is None:
            self.regions = list(DEFAULT_REGIONS)
        if self.drift_scenarios is None:
            self.drift_scenarios = []
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first invalid field and what it accepts."""
        _check_int("num_trades", self.num_trades, 1)
        _check_int("num_positions", self.num_positions, 0)
        _check_int("num_risk_reports", self.num_risk_reports, 0)
        _check_int("seed", self.seed, 0)
        _check_int("num_counterparties", self.num_counterparties, 1,
                   len(COUNTERPARTY_STEMS) * len(COUNTERPARTY_SECTORS)
                   * len(COUNTERPARTY_LEGAL_FORMS))
        _check_int("num_traders", self.num_traders, 1,
                   len(TRADER_FIRST_NAMES) * len(TRADER_SURNAMES))
        _check_int("num_books", self.num_books, 1, len(BOOK_NAMES))
        for name in ("start_date", "end_date", "price_anchor_date"):
            _check_datetime(name, getattr(self, name))
        if self.end_date < self.start_date:
            _fail("end_date", f"{self.end_date.isoformat()} is before start_date "
                  f"{self.start_date.isoformat()}", "a datetime on or after start_date")
        if as_day(self.start_date) < as_day(self.price_anchor_date):
            _fail("start_date", f"{self.start_date.isoformat()} is before price_anchor_date "
                  f"{self.price_anchor_date.isoformat()}", "a datetime on or after "
                  "price_anchor_date (prices are simulated forward from the anchor)")
        if len(trading_days(self.start_date, self.end_date)) == 0:
            _fail("end_date", f"window {self.start_date.date()}..{self.end_date.date()} has no "
                  "trading day", "a window containing at least one trading day (Monday-Friday "
                  "except exchange holidays)")
        _check_names("commodities", self.commodities, COMMODITY_CATALOG, "commodity")
        _check_names("regions", self.regions, REGION_CATALOG, "region")
        if not isinstance(self.shuffle_labels, bool):
            _fail("shuffle_labels", f"got {self.shuffle_labels!r}", "True or False")
        if not isinstance(self.drift_scenarios, (list, tuple)):
            _fail("drift_scenarios", f"got {self.drift_scenarios!r}",
                  "None or a list of DriftScenario")
        for scenario in self.drift_scenarios:
            self._check_scenario(scenario)
        for category_field in NEW_CATEGORY_FIELDS:
            shares = [s.magnitude for s in self.drift_scenarios
                      if s.kind == "new_category" and s.category_field == category_field]
            if sum(shares) > 1.0 + 1e-12:
                _fail("DriftScenario.magnitude", f"drift_scenarios: the new_category shares of "
                      f"category_field {category_field!r} sum to {sum(shares):g} > 1",
                      "new_category magnitudes of one category_field summing to at most 1")

    def _check_scenario(self, scenario) -> None:
        if not isinstance(scenario, DriftScenario):
            _fail("drift_scenarios", f"item {scenario!r} is not a DriftScenario",
                  "DriftScenario(kind=..., start_date=..., magnitude=...) items")
        if as_day(scenario.start_date) > as_day(self.end_date):
            _fail("DriftScenario.start_date", f"{scenario.start_date.isoformat()} is after "
                  f"end_date {self.end_date.isoformat()}", "a datetime on or before end_date "
                  "(a scenario must act inside the window)")
        if scenario.kind == "new_category":
            existing = self.commodities if scenario.category_field == "commodity" else self.regions
            if scenario.category_name in existing:
                _fail("DriftScenario.category_name", f"{scenario.category_name!r} is already in "
                      f"the configured {scenario.category_field} list", "a name not in "
                      f"{existing} (the point is a category never seen before)")
        for name in scenario.commodities or []:
            if name not in self.commodities:
                _fail("DriftScenario.commodities", f"{name!r} is not a configured commodity",
                      ", ".join(self.commodities))
        for name in scenario.target_mix or {}:
            if name not in self.commodities and name not in self.regions:
                _fail("DriftScenario.target_mix", f"{name!r} is not a configured commodity or "
                      "region", ", ".join(list(self.commodities) + list(self.regions)))
        for group, names in (("commodity", self.commodities), ("region", self.regions)):
            given = [w for name, w in (scenario.target_mix or {}).items() if name in names]
            if given and sum(given) <= 0:
                _fail("DriftScenario.target_mix", f"{group} weights sum to zero",
                      f"at least one positive {group} weight")

    def scenarios(self, kind: str) -> List[DriftScenario]:
        """Configured drift scenarios of one kind, in configuration order."""
        return [s for s in self.drift_scenarios if s.kind == kind]

    def to_dict(self) -> dict:
        """JSON-ready form, as stored in the dataset metadata."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name in ("start_date", "end_date", "price_anchor_date"):
            out[name] = out[name].isoformat()
        out["commodities"] = list(self.commodities)
        out["regions"] = list(self.regions)
        out["drift_scenarios"] = [s.to_dict() for s in self.drift_scenarios]
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "ETRMDataConfig":
        """Rebuild a configuration from metadata['config'] (inverse of to_dict)."""
        values = dict(data)
        for name in ("start_date", "end_date", "price_anchor_date"):
            if name in values:
                values[name] = datetime.fromisoformat(values[name])
        values["drift_scenarios"] = [DriftScenario.from_dict(s)
                                     for s in values.get("drift_scenarios") or []]
        return cls(**values)
