"""Market reference data: commodities, regions, currencies, instruments, ratings, books.

Every number here is a documented modelling assumption (rough 2023-24 market levels), kept in one
place so that prices, trades, risk and texts agree on units, currencies and price ticks.
Commodities and regions outside the default lists exist so that a drift scenario can introduce a
category the models have never seen, with a proper price series of its own.
"""
from dataclasses import dataclass
from typing import Dict, Tuple

TRADING_DAYS_PER_YEAR = 252
INSTRUMENTS: Tuple[str, ...] = ("future", "forward", "swap", "option")
RATINGS: Tuple[str, ...] = ("AAA", "AA", "A", "BBB", "BB", "B", "CCC")
RATING_PROBABILITIES: Tuple[float, ...] = (0.03, 0.10, 0.27, 0.35, 0.15, 0.07, 0.03)
REPORTING_CURRENCY = "USD"
# Constant FX (USD per unit of each currency); GBX is pence sterling (NBP gas is quoted in it).
FX_USD_PER_UNIT: Dict[str, float] = {"USD": 1.0, "EUR": 1.08, "GBP": 1.27, "GBX": 0.0127,
                                     "BRL": 0.20}


@dataclass(frozen=True)
class CommoditySpec:
    """How one commodity trades and how its hub price behaves.

    ``unit`` is the natural unit the model simulates in (USD per natural unit in
    ``usd_price_by_region``); how each market quotes it is ``quote(commodity, region)``.
    ``median_volume`` is per delivery month, in natural units.
    """

    display_name: str
    unit: str
    price_decimals: int
    usd_price_by_region: Dict[str, float]
    annual_volatility: float
    mean_reversion_per_year: float
    winter_amplitude: float
    semiannual_amplitude: float
    winter_volatility_boost: float
    spike_probability_per_day: float
    spike_mean_log_size: float
    spike_decay_per_day: float
    lot_size: float
    median_volume: float
    volume_log_sigma: float
    instrument_weights: Tuple[float, float, float, float]
    mix_weight: float
    half_spread: float


@dataclass(frozen=True)
class RegionSpec:
    """Currency, volatility level and trading activity of one region."""

    display_name: str
    currency: str
    volatility_multiplier: float
    mix_weight: float


COMMODITY_CATALOG: Dict[str, CommoditySpec] = {
    "power": CommoditySpec(
        "power", "MWh", 2,
        {"north_america": 55.0, "europe": 115.0, "uk": 125.0, "nordics": 60.0,
         "asia_pacific": 110.0, "latin_america": 45.0},
        annual_volatility=0.55, mean_reversion_per_year=25.0, winter_amplitude=0.10,
        semiannual_amplitude=0.07, winter_volatility_boost=0.20,
        spike_probability_per_day=0.010, spike_mean_log_size=0.16, spike_decay_per_day=0.70,
        lot_size=10.0, median_volume=4_000.0, volume_log_sigma=1.0,
        instrument_weights=(0.30, 0.40, 0.15, 0.15), mix_weight=0.26, half_spread=0.006),
    "natural_gas": CommoditySpec(
        "natural gas", "MMBtu", 3,
        {"north_america": 3.0, "europe": 12.5, "uk": 12.0, "nordics": 12.6,
         "asia_pacific": 13.0, "latin_america": 9.0},
        annual_volatility=0.45, mean_reversion_per_year=6.0, winter_amplitude=0.16,
        semiannual_amplitude=0.0, winter_volatility_boost=0.25,
        spike_probability_per_day=0.006, spike_mean_log_size=0.06, spike_decay_per_day=0.80,
        lot_size=2_500.0, median_volume=100_000.0, volume_log_sigma=0.9,
        instrument_weights=(0.35, 0.25, 0.25, 0.15), mix_weight=0.22, half_spread=0.005),
    "crude_oil": CommoditySpec(
        "crude oil", "bbl", 2,
        {"north_america": 78.0, "europe": 82.0, "uk": 82.0, "nordics": 82.0,
         "asia_pacific": 81.0, "latin_america": 76.0},
        annual_volatility=0.32, mean_reversion_per_year=1.0, winter_amplitude=0.0,
        semiannual_amplitude=0.0, winter_volatility_boost=0.0,
        spike_probability_per_day=0.0, spike_mean_log_size=0.0, spike_decay_per_day=0.0,
        lot_size=1_000.0, median_volume=50_000.0, volume_log_sigma=0.9,
        instrument_weights=(0.45, 0.10, 0.30, 0.15), mix_weight=0.16, half_spread=0.002),
    "refined_products": CommoditySpec(
        "refined products", "t", 2,
        {"north_america": 850.0, "europe": 820.0, "uk": 830.0, "nordics": 835.0,
         "asia_pacific": 810.0, "latin_america": 870.0},
        annual_volatility=0.35, mean_reversion_per_year=1.5, winter_amplitude=0.04,
        semiannual_amplitude=0.0, winter_volatility_boost=0.05,
        spike_probability_per_day=0.0, spike_mean_log_size=0.0, spike_decay_per_day=0.0,
        lot_size=100.0, median_volume=2_000.0, volume_log_sigma=0.9,
        instrument_weights=(0.35, 0.20, 0.35, 0.10), mix_weight=0.08, half_spread=0.002),
    "coal": CommoditySpec(
        "coal", "t", 2,
        {"north_america": 75.0, "europe": 120.0, "uk": 122.0, "nordics": 121.0,
         "asia_pacific": 135.0, "latin_america": 90.0},
        annual_volatility=0.38, mean_reversion_per_year=2.0, winter_amplitude=0.05,
        semiannual_amplitude=0.0, winter_volatility_boost=0.05,
        spike_probability_per_day=0.0, spike_mean_log_size=0.0, spike_decay_per_day=0.0,
        lot_size=1_000.0, median_volume=20_000.0, volume_log_sigma=0.8,
        instrument_weights=(0.30, 0.35, 0.25, 0.10), mix_weight=0.08, half_spread=0.003),
    "emissions": CommoditySpec(
        "emissions allowances", "tCO2", 2,
        {"north_america": 30.0, "europe": 88.0, "uk": 60.0, "nordics": 88.0,
         "asia_pacific": 15.0, "latin_america": 10.0},
        annual_volatility=0.42, mean_reversion_per_year=0.8, winter_amplitude=0.0,
        semiannual_amplitude=0.0, winter_volatility_boost=0.0,
        spike_probability_per_day=0.0, spike_mean_log_size=0.0, spike_decay_per_day=0.0,
        lot_size=1_000.0, median_volume=20_000.0, volume_log_sigma=0.9,
        instrument_weights=(0.60, 0.15, 0.10, 0.15), mix_weight=0.12, half_spread=0.002),
    "lng": CommoditySpec(
        "LNG", "MMBtu", 3,
        {"north_america": 9.0, "europe": 11.8, "uk": 11.5, "nordics": 11.9,
         "asia_pacific": 13.5, "latin_america": 12.0},
        annual_volatility=0.42, mean_reversion_per_year=5.0, winter_amplitude=0.10,
        semiannual_amplitude=0.0, winter_volatility_boost=0.20,
        spike_probability_per_day=0.003, spike_mean_log_size=0.12, spike_decay_per_day=0.80,
        lot_size=10_000.0, median_volume=300_000.0, volume_log_sigma=0.8,
        instrument_weights=(0.10, 0.40, 0.35, 0.15), mix_weight=0.08, half_spread=0.004),
    "hydrogen": CommoditySpec(
        "hydrogen", "kg", 2,
        {"north_america": 4.5, "europe": 6.5, "uk": 6.8, "nordics": 5.5,
         "asia_pacific": 6.0, "latin_america": 5.0},
        annual_volatility=0.30, mean_reversion_per_year=2.0, winter_amplitude=0.0,
        semiannual_amplitude=0.0, winter_volatility_boost=0.0,
        spike_probability_per_day=0.0, spike_mean_log_size=0.0, spike_decay_per_day=0.0,
        lot_size=100.0, median_volume=20_000.0, volume_log_sigma=0.8,
        instrument_weights=(0.05, 0.70, 0.20, 0.05), mix_weight=0.02, half_spread=0.008),
}

REGION_CATALOG: Dict[str, RegionSpec] = {
    "north_america": RegionSpec("North America", "USD", 1.00, 0.28),
    "europe": RegionSpec("Europe", "EUR", 1.10, 0.35),
    "uk": RegionSpec("UK", "GBP", 1.10, 0.15),
    "nordics": RegionSpec("Nordics", "EUR", 1.15, 0.10),
    "asia_pacific": RegionSpec("Asia-Pacific", "USD", 0.95, 0.12),
    "latin_america": RegionSpec("Latin America", "BRL", 1.05, 0.05),
}

DEFAULT_COMMODITIES: Tuple[str, ...] = (
    "power", "natural_gas", "crude_oil", "refined_products", "coal", "emissions", "lng")
DEFAULT_REGIONS: Tuple[str, ...] = ("north_america", "europe", "uk", "nordics", "asia_pacific")

# Multiplies commodity weight x region weight: Nordic hydro power, Asian LNG and coal, US gas.
REGION_COMMODITY_AFFINITY: Dict[Tuple[str, str], float] = {
    ("nordics", "power"): 2.0, ("nordics", "emissions"): 1.5, ("nordics", "natural_gas"): 0.3,
    ("nordics", "lng"): 0.2, ("nordics", "coal"): 0.3, ("nordics", "crude_oil"): 0.5,
    ("asia_pacific", "lng"): 2.5, ("asia_pacific", "coal"): 2.0, ("asia_pacific", "power"): 0.5,
    ("uk", "power"): 1.2, ("uk", "natural_gas"): 1.3,
    ("north_america", "natural_gas"): 1.4, ("north_america", "emissions"): 0.4,
    ("europe", "emissions"): 1.5,
}

# Tenor (months from trade month to delivery month) ~ exp(-tenor / scale), capped per instrument.
TENOR_SCALE_AND_MAX: Dict[str, Tuple[float, int]] = {
    "future": (4.0, 36), "forward": (3.0, 24), "swap": (9.0, 60), "option": (5.0, 24)}

BOOK_NAMES: Tuple[str, ...] = (
    "FLOW_TRADING", "ORIGINATION", "PROP_TRADING", "ASSET_HEDGING", "STRUCTURED_PRODUCTS",
    "RETAIL_SUPPLY", "ENVIRONMENTAL", "LNG_PORTFOLIO")

COUNTERPARTY_STEMS: Tuple[str, ...] = (
    "Atlas", "Boreal", "Cobalt", "Dunmore", "Equinox", "Fjordane", "Granite", "Helios",
    "Iberian", "Juniper", "Kestrel", "Lumen", "Meridian", "Northgate", "Orion", "Pioneer",
    "Redwood", "Sierra", "Tidewater", "Uppland", "Vega", "Westfield", "Yarrow", "Zephyr",
    "Aurora", "Bastion", "Cascade", "Delmar", "Everest", "Falcon")
COUNTERPARTY_SECTORS: Tuple[str, ...] = (
    "Energy Trading", "Power & Gas", "Commodities", "Resources", "Utilities", "Energy Markets")
COUNTERPARTY_LEGAL_FORMS: Tuple[str, ...] = ("Ltd", "AG", "SA", "LLC", "AS", "BV", "GmbH", "plc")
TRADER_FIRST_NAMES: Tuple[str, ...] = (
    "Anna", "Ben", "Carla", "David", "Elif", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kaia",
    "Luca", "Maya", "Nils", "Olivia", "Pavel", "Rosa", "Sven", "Tara", "Viktor")
TRADER_SURNAMES: Tuple[str, ...] = (
    "Novak", "Berg", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Hansen", "Ivanova",
    "Jensen", "Kowalski", "Larsen", "Moreau", "Nakamura", "Okafor", "Petrov", "Rossi",
    "Schmidt", "Tanaka", "Walsh")


@dataclass(frozen=True)
class Quote:
    """How one market (commodity, region) quotes prices and sizes trades.

    A price in ``currency`` per ``unit`` equals the natural-unit USD price times
    ``natural_per_unit`` (natural units in one quoted unit) divided by the currency's FX rate.
    """

    currency: str
    unit: str
    natural_per_unit: float
    price_decimals: int
    lot_size: float


MMBTU_PER_MWH = 3.41214
MMBTU_PER_THERM = 0.1

# Market quoting conventions: a default per commodity, regional overrides where the market
# differs (TTF in EUR/MWh, NBP in pence/therm, EUA in EUR/t and UKA in GBP/t). Power and
# hydrogen are quoted in the region's currency; oil, coal and LNG in USD everywhere.
_COMMODITY_QUOTES: Dict[str, Quote] = {
    "power": Quote("LOCAL", "MWh", 1.0, 2, 10.0),
    "natural_gas": Quote("USD", "MMBtu", 1.0, 3, 2_500.0),
    "crude_oil": Quote("USD", "bbl", 1.0, 2, 1_000.0),
    "refined_products": Quote("USD", "t", 1.0, 2, 100.0),
    "coal": Quote("USD", "t", 1.0, 2, 1_000.0),
    "emissions": Quote("USD", "tCO2", 1.0, 2, 1_000.0),
    "lng": Quote("USD", "MMBtu", 1.0, 3, 10_000.0),
    "hydrogen": Quote("LOCAL", "kg", 1.0, 2, 100.0),
}
_REGIONAL_QUOTES: Dict[Tuple[str, str], Quote] = {
    ("natural_gas", "europe"): Quote("EUR", "MWh", MMBTU_PER_MWH, 3, 720.0),
    ("natural_gas", "nordics"): Quote("EUR", "MWh", MMBTU_PER_MWH, 3, 720.0),
    ("natural_gas", "uk"): Quote("GBX", "therm", MMBTU_PER_THERM, 2, 25_000.0),
    ("emissions", "europe"): Quote("EUR", "tCO2", 1.0, 2, 1_000.0),
    ("emissions", "nordics"): Quote("EUR", "tCO2", 1.0, 2, 1_000.0),
    ("emissions", "uk"): Quote("GBP", "tCO2", 1.0, 2, 1_000.0),
}


def quote(commodity: str, region: str) -> Quote:
    """The quoting convention of one market."""
    base = _REGIONAL_QUOTES.get((commodity, region), _COMMODITY_QUOTES[commodity])
    if base.currency == "LOCAL":
        return Quote(REGION_CATALOG[region].currency, base.unit, base.natural_per_unit,
                     base.price_decimals, base.lot_size)
    return base


def usd_per_quote_unit(commodity: str, region: str) -> float:
    """Factor from a quoted price (currency per quoted unit) to USD per natural unit."""
    q = quote(commodity, region)
    return FX_USD_PER_UNIT[q.currency] / q.natural_per_unit


def usd_base_price(commodity: str, region: str) -> float:
    """Long-run price level in USD per natural unit."""
    return COMMODITY_CATALOG[commodity].usd_price_by_region[region]


def commodity_region_affinity(commodity: str, region: str) -> float:
    """How much more (or less) a pair trades than its commodity and region weights suggest."""
    return REGION_COMMODITY_AFFINITY.get((region, commodity), 1.0)
