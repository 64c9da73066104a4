"""Positions (exact aggregation of the trades' monthly legs) and book-level risk reports.

Legs. A trade delivering n months is n legs of volume / n at the trade's price (a swap strip
settles every month at its fixed price); options are one leg. Books open with the window's
opening portfolio (``num_positions`` trades from the year before ``start_date``, still
delivering on it; ids OPN-...), then the window's trades add to them.

Positions: legs netted per book, commodity, region, delivery month and contract (linear, or
one option series: type, strike, expiry). net_notional = sum of sign x leg volume x price
(for options, the net premium paid). On the valuation date a position is

* open: marked at the forward of its delivery month (options at Black-76 on that forward
  with the contract's realised volatility by tenor), unrealised P&L = market value - net
  notional; delta and gamma in units of the underlying;
* delivered (its month ended): settled at the month's average spot; realised P&L = net volume
  x settlement - net notional;
* expired (an option past its expiry): cash-settled at its intrinsic value on the expiry
  day's forward; realised P&L = net volume x payoff - net premium.

Risk, per report (date d, book b), over the legs open on d (traded on or before d, delivery
month not ended; options until expiry):
* exposure of each series j and delivery month m, USD: linear legs sign x volume x F(d, j, m)
  x FX; options contribute their delta x F x FX (delta-equivalent exposure) and a gamma term;
* one-day historical-simulation P&L over the last VAR_LOOKBACK_DAYS daily moves of each
  contract's own forward (``PriceSeries.contract_log_returns``):
  pnl_k = sum E_jm R_kjm + sum G_jm R_kjm^2 with R = exp(r) - 1 and G = gamma x F^2 x FX / 2;
* VaR_a = numpy.quantile(loss, a) (linear interpolation); ES_a = mean(loss[loss >= VaR_a]);
* limits set ex ante, reviewed monthly: for a calendar month, VaR limit = ceil(headroom_b x
  the book's VaR95 on the trading day before the month's first trading day / 1,000) x 1,000
  (at least 1,000), gross exposure limit likewise rounded up to 100,000; the first month's
  review sees only the opening portfolio. So a limit uses data strictly before its month and
  does not depend on the window's length or on num_risk_reports. headroom_b in [1.3, 1.8] is
  static book data from the seed. A limit is breached when utilisation (value / limit)
  exceeds 1.
"""
import math
from dataclasses import dataclass
from functools import cached_property
from typing import Tuple

import numpy as np
import pandas as pd

from ml.synthetic.catalog import FX_USD_PER_UNIT, REPORTING_CURRENCY
from ml.synthetic.config import ETRMDataConfig, trading_days
from ml.synthetic.options import black76_delta, black76_gamma, black76_price, year_fraction
from ml.synthetic.prices import FORWARD_MONTHS, PriceSeries
from ml.synthetic.string_columns import day_strings, numbered_ids, parse_days
from ml.synthetic.universe import Universe

POSITION_KEYS = ["book", "commodity", "region", "delivery_period", "option_type", "strike",
                 "expiry_date"]
VAR_LOOKBACK_DAYS = 250
VAR_LIMIT_ROUNDING = 1_000.0
EXPOSURE_LIMIT_ROUNDING = 100_000.0
OPENING_PREFIX = "OPN"
# A risk report names the book's largest exposures by market (commodity in a region).
LARGEST_POSITION_RANKS = ("top_exposure", "top2_exposure", "top3_exposure")
LARGEST_POSITION_COLUMNS = tuple(column for rank in LARGEST_POSITION_RANKS
                                 for column in (f"{rank}_commodity", f"{rank}_region", rank))


def signed_trade_volumes(trades: pd.DataFrame) -> Tuple[np.ndarray, np.ndarray]:
    """(+volume for buys / -volume for sells, +volume x price for buys / - for sells)."""
    sign = np.where(trades["direction"].to_numpy() == "buy", 1.0, -1.0)
    volume = trades["volume"].to_numpy(float)
    return sign * volume, sign * volume * trades["price"].to_numpy(float)


def _open_rows(trade_day: np.ndarray, last_open_day: np.ndarray, ascending: bool,
               day: np.datetime64) -> np.ndarray:
    """Rows open on day (traded by it, last open day not before it), ascending; when trade
    days ascend, only the rows traded by day are looked at."""
    if not ascending:
        return np.flatnonzero((trade_day <= day) & (last_open_day >= day))
    traded = int(np.searchsorted(trade_day, day, side="right"))
    return np.flatnonzero(last_open_day[:traded] >= day)


def _ascending(days: np.ndarray) -> bool:
    return bool(not np.any(np.isnat(days)) and np.all(days[1:] >= days[:-1]))


@dataclass(frozen=True)
class RiskLegs:
    """What a report date reads of one kind of legs (linear or options), as contiguous arrays
    in leg order: a day takes its open legs of that kind directly, the same legs in the same
    order as picking them out of all its open legs."""

    rows: np.ndarray            # rows in Legs
    trade_day: np.ndarray
    last_open_day: np.ndarray
    signed_volume: np.ndarray
    fx: np.ndarray
    contract: np.ndarray
    slot: np.ndarray            # book offset + contract: less a day's month, the book slot

    @classmethod
    def of(cls, legs: "Legs", rows: np.ndarray) -> "RiskLegs":
        return cls(rows, legs.trade_day[rows], legs.last_open_day[rows],
                   legs.signed_volume[rows], legs.fx[rows], legs.contract[rows],
                   legs.book_offset[rows] + legs.contract[rows])

    def open_rows(self, day: np.datetime64) -> np.ndarray:
        """Positions (in these arrays) of the legs open on day, ascending."""
        return _open_rows(self.trade_day, self.last_open_day, self.trade_days_ascending, day)

    @cached_property
    def trade_days_ascending(self) -> bool:
        return _ascending(self.trade_day)


@dataclass(frozen=True)
class Legs:
    """Monthly legs of a set of trades, as parallel arrays (one row per trade and month)."""

    trade: np.ndarray           # row of the trade in the combined trades table
    book: np.ndarray
    series: np.ndarray
    month: np.ndarray           # delivery month, datetime64[M]
    trade_day: np.ndarray
    start_day: np.ndarray
    end_day: np.ndarray
    expiry: np.ndarray          # options: expiry day; linear: end_day
    is_option: np.ndarray
    is_call: np.ndarray
    strike: np.ndarray
    signed_volume: np.ndarray
    signed_notional: np.ndarray
    volume: np.ndarray
    fx: np.ndarray
    last_open_day: np.ndarray   # min(end_day, expiry): open from trade_day to this day
    contract: np.ndarray        # series x FORWARD_MONTHS + month: less a day's month, the
                                # leg's column in that day's flattened [series, tenor] curves
    book_offset: np.ndarray     # book x series x FORWARD_MONTHS: from a column to a book slot

    def open_rows(self, day: np.datetime64) -> np.ndarray:
        """Rows of the legs open on day, ascending; when legs come in trade-day order (as the
        books' trades do), only the legs traded by day are looked at."""
        return _open_rows(self.trade_day, self.last_open_day, self.trade_days_ascending, day)

    @cached_property
    def trade_days_ascending(self) -> bool:
        return _ascending(self.trade_day)

    @cached_property
    def risk_legs(self) -> Tuple[RiskLegs, RiskLegs]:
        """(linear legs, option legs) as read by book_risk: split once, so a report date
        neither gathers every open leg's terms nor splits them by kind again."""
        return (RiskLegs.of(self, np.flatnonzero(~self.is_option)),
                RiskLegs.of(self, np.flatnonzero(self.is_option)))


def _days(column: pd.Series) -> np.ndarray:
    return parse_days(column.to_numpy(dtype=object))


def trade_legs(trades: pd.DataFrame, prices: PriceSeries, book_names: np.ndarray) -> Legs:
    """Split every trade into its monthly legs."""
    months = trades["delivery_months"].to_numpy(np.int64)
    trade = np.repeat(np.arange(len(trades)), months)
    offset = np.arange(len(trade)) - np.repeat(np.cumsum(months) - months, months)
    trade_day = _days(trades["trade_date"])
    first_month = (trade_day.astype("datetime64[M]")
                   + trades["tenor_months"].to_numpy(np.int64))
    month = first_month[trade] + offset
    delivery_start = _days(trades["delivery_start"])
    start = np.where(offset == 0, delivery_start[trade], month.astype("datetime64[D]"))
    end = (month + 1).astype("datetime64[D]") - 1
    is_option = (trades["instrument"] == "option").to_numpy()
    expiry = np.where(is_option, _days(trades["expiry_date"]), np.datetime64("NaT"))[trade]
    expiry = np.where(is_option[trade], expiry, end)
    signed_volume, signed_notional = signed_trade_volumes(trades)
    share = 1.0 / months[trade]
    book_index = {name: i for i, name in enumerate(book_names)}
    fx = trades["currency"].map(FX_USD_PER_UNIT).to_numpy(float)
    book = trades["book"].map(book_index).to_numpy(np.int64)[trade]
    series = prices.columns_of(trades["commodity"], trades["region"])[trade]
    n_series = prices.forwards.shape[1]
    return Legs(
        trade=trade, book=book, series=series,
        month=month, trade_day=trade_day[trade], start_day=start, end_day=end, expiry=expiry,
        is_option=is_option[trade],
        is_call=(trades["option_type"] == "call").to_numpy()[trade],
        strike=trades["strike"].to_numpy(float)[trade],
        signed_volume=signed_volume[trade] * share, signed_notional=signed_notional[trade] * share,
        volume=trades["volume"].to_numpy(float)[trade] * share, fx=fx[trade],
        last_open_day=np.minimum(end, expiry),
        contract=series * FORWARD_MONTHS + month.astype(np.int64),
        book_offset=book * (n_series * FORWARD_MONTHS))


def combined_trades(trades: pd.DataFrame, opening_trades: pd.DataFrame) -> pd.DataFrame:
    """Opening portfolio then window trades, one table."""
    if opening_trades is None or len(opening_trades) == 0:
        return trades
    return pd.concat([opening_trades, trades], ignore_index=True)


@dataclass(frozen=True)
class Portfolio:
    """The books' trades (opening portfolio then window trades) and their monthly legs: built
    once and shared by the positions and the risk reports."""

    trades: pd.DataFrame
    legs: Legs
    trade_day: np.ndarray


def build_portfolio(trades: pd.DataFrame, prices: PriceSeries, book_names: np.ndarray,
                    opening_trades: pd.DataFrame = None) -> Portfolio:
    everything = combined_trades(trades, opening_trades)
    legs = trade_legs(everything, prices, book_names)
    return Portfolio(everything, legs, _days(everything["trade_date"]))


def _month_averages(prices: PriceSeries) -> Tuple[np.ndarray, np.ndarray]:
    """(months, average spot per month and series) over the price history."""
    months = prices.months
    unique, index = np.unique(months, return_inverse=True)
    totals = np.zeros((len(unique), prices.prices.shape[1]))
    np.add.at(totals, index, prices.prices)
    counts = np.bincount(index, minlength=len(unique))
    return unique, totals / counts[:, None]


def _option_greeks(prices: PriceSeries, row: int, day: np.datetime64, series: np.ndarray,
                   month: np.ndarray, expiry: np.ndarray, is_call: np.ndarray,
                   strike: np.ndarray):
    """(forward, value, delta, gamma) per unit of options on day ``row``, each on the forward
    of its delivery month with that contract's realised volatility."""
    m = (month - prices.months[row]).astype(np.int64)
    forward = prices.forwards[row, series, m]
    volatility = prices.tenor_volatility()[row, series, m]
    years = year_fraction(day, expiry)
    return (forward, black76_price(forward, strike, volatility, years, is_call),
            black76_delta(forward, strike, volatility, years, is_call),
            black76_gamma(forward, strike, volatility, years))


def aggregate_positions(trades: pd.DataFrame, prices: PriceSeries, valuation_date,
                        book_names: np.ndarray, opening_trades: pd.DataFrame = None,
                        id_prefix: str = "POS", portfolio: Portfolio = None) -> pd.DataFrame:
    """Net positions per book, commodity, region, delivery month and contract, valued on
    valuation_date (see the module docs)."""
    if portfolio is None:
        portfolio = build_portfolio(trades, prices, book_names, opening_trades)
    everything, legs = portfolio.trades, portfolio.legs
    keys, group = _position_groups(everything, legs)
    is_opening = (everything["trade_id"].to_numpy().astype(f"U{len(OPENING_PREFIX)}")
                  == OPENING_PREFIX)
    # copy=False: the leg arrays are grouped as they are, without first being copied into
    # consolidated blocks.
    frame = pd.DataFrame({
        "group": group, "leg": np.arange(len(group)),
        "opening": is_opening[legs.trade].astype(np.int64),
        "net_volume": legs.signed_volume, "net_notional": legs.signed_notional,
        "buy_volume": np.where(legs.signed_volume > 0, legs.volume, 0.0),
        "sell_volume": np.where(legs.signed_volume > 0, 0.0, legs.volume),
        "gross_volume": legs.volume, "gross_notional": np.abs(legs.signed_notional),
        **_day_numbers({"delivery_day": legs.start_day, "end_day": legs.end_day,
                        "trade_day": legs.trade_day}),
    }, copy=False)
    sums = frame.groupby("group", sort=True).agg(
        num_trades=("leg", "size"), num_opening_trades=("opening", "sum"),
        net_volume=("net_volume", "sum"), buy_volume=("buy_volume", "sum"),
        sell_volume=("sell_volume", "sum"), gross_volume=("gross_volume", "sum"),
        net_notional=("net_notional", "sum"), gross_notional=("gross_notional", "sum"),
        first_leg=("leg", "first"),
        delivery_start=("delivery_day", "min"), delivery_end=("end_day", "first"),
        first_trade_date=("trade_day", "min"), last_trade_date=("trade_day", "max"))
    first_trade = legs.trade[sums.pop("first_leg").to_numpy()]
    positions = keys.reset_index(drop=True)
    for name in ("num_trades", "num_opening_trades", "net_volume", "buy_volume", "sell_volume",
                 "gross_volume", "net_notional", "gross_notional"):
        positions[name] = sums[name].to_numpy()
    positions["unit"] = everything["unit"].to_numpy(dtype=object)[first_trade]
    positions["currency"] = everything["currency"].to_numpy(dtype=object)[first_trade]
    for name in ("delivery_start", "delivery_end", "first_trade_date", "last_trade_date"):
        positions[name] = _day_strings_or_nan(
            sums[name].to_numpy().astype("datetime64[D]"))
    return _value_positions(positions, prices, valuation_date, id_prefix)


def _day_numbers(columns: dict) -> dict:
    """Day columns as int64 day numbers when none is NaT (grouped min/max/first of integers
    are the same days, without converting to nanosecond timestamps), else as they are."""
    if any(np.isnat(days).any() for days in columns.values()):
        return columns
    return {name: days.astype(np.int64) for name, days in columns.items()}


def _day_strings_or_nan(days: np.ndarray) -> np.ndarray:
    """YYYY-MM-DD per day, NaN where NaT (as strftime of a datetime column gives)."""
    out = day_strings(days)
    out[np.isnat(days)] = np.nan
    return out


def _position_groups(everything: pd.DataFrame, legs: Legs) -> Tuple[pd.DataFrame, np.ndarray]:
    """(one row of POSITION_KEYS per position, sorted as groupby(POSITION_KEYS) sorts them;
    each leg's position row). Keys are sorted codes of the trades' values combined into
    one integer per leg, so legs are grouped without comparing strings; the distinct keys are
    found by hashing and only they are sorted, the same groups as np.unique without sorting
    every leg."""
    trade_keys = [name for name in POSITION_KEYS if name != "delivery_period"]
    codes, values = {}, {}
    for name in trade_keys:
        trade_codes, values[name] = pd.factorize(everything[name].to_numpy(), sort=True)
        codes[name] = trade_codes[legs.trade]
    month = legs.month.astype(np.int64)
    first_month = int(month.min()) if len(month) else 0
    codes["delivery_period"] = month - first_month
    sizes = {name: len(values[name]) for name in trade_keys}
    sizes["delivery_period"] = int(codes["delivery_period"].max()) + 1 if len(month) else 1
    combined = np.zeros(len(month), dtype=np.int64)
    for name in POSITION_KEYS:
        combined = combined * sizes[name] + codes[name]
    group, group_keys = pd.factorize(combined, sort=True)
    columns = {}
    for name in POSITION_KEYS[::-1]:
        group_keys, code = np.divmod(group_keys, sizes[name])
        columns[name] = code
    keys = pd.DataFrame({name: (np.datetime_as_string(
        (columns[name] + first_month).astype("datetime64[M]"), unit="M").astype(object)
        if name == "delivery_period" else values[name][columns[name]])
        for name in POSITION_KEYS})
    return keys, group


def _value_positions(positions: pd.DataFrame, prices: PriceSeries, valuation_date,
                     id_prefix: str) -> pd.DataFrame:
    day = np.datetime64(str(valuation_date)[:10], "D")
    row = int(prices.day_index([day])[0])
    series = prices.columns_of(positions["commodity"], positions["region"])
    month = positions["delivery_period"].to_numpy().astype("datetime64[M]")
    end = positions["delivery_end"].to_numpy().astype("datetime64[D]")
    is_option = (positions["option_type"] != "none").to_numpy()
    expiry = np.where(is_option, _days(positions["expiry_date"]), end)
    net_volume = positions["net_volume"].to_numpy(float)
    net_notional = positions["net_notional"].to_numpy(float)
    status = np.where(is_option, np.where(expiry < day, "expired", "open"),
                      np.where(end < day, "delivered", "open")).astype(object)
    mark = np.zeros(len(positions))
    delta = np.zeros(len(positions))
    gamma = np.zeros(len(positions))
    linear_open = (status == "open") & ~is_option
    m = (month[linear_open] - prices.months[row]).astype(np.int64)
    mark[linear_open] = prices.forwards[row, series[linear_open], m]
    delta[linear_open] = net_volume[linear_open]
    delivered = status == "delivered"
    if delivered.any():
        months, averages = _month_averages(prices)
        mark[delivered] = averages[np.searchsorted(months, month[delivered]),
                                   series[delivered]]
    options_open = (status == "open") & is_option
    if options_open.any():
        _, value, option_delta, option_gamma = _option_greeks(
            prices, row, day, series[options_open], month[options_open], expiry[options_open],
            (positions["option_type"] == "call").to_numpy()[options_open],
            positions["strike"].to_numpy(float)[options_open])
        mark[options_open] = value
        delta[options_open] = net_volume[options_open] * option_delta
        gamma[options_open] = net_volume[options_open] * option_gamma
    expired = status == "expired"
    if expired.any():
        expiry_row = prices.day_index(expiry[expired])
        forward = prices.forwards[expiry_row, series[expired],
                                  (month[expired] - prices.months[expiry_row]).astype(np.int64)]
        strike = positions["strike"].to_numpy(float)[expired]
        call = (positions["option_type"] == "call").to_numpy()[expired]
        mark[expired] = np.maximum(np.where(call, forward - strike, strike - forward), 0.0)
    settled = delivered | expired
    market_value = np.where(settled, 0.0, net_volume * mark)
    fx = positions["currency"].map(FX_USD_PER_UNIT).to_numpy(float)
    positions.insert(0, "position_id", numbered_ids(id_prefix, len(positions), 6))
    positions["average_price"] = positions["gross_notional"] / positions["gross_volume"]
    positions["valuation_date"] = str(day)
    positions["status"] = status
    positions["mark_price"] = mark
    positions["market_value"] = market_value
    positions["unrealised_pnl"] = np.where(settled, 0.0, market_value - net_notional)
    positions["realised_pnl"] = np.where(settled, net_volume * mark - net_notional, 0.0)
    positions["delta"] = delta
    positions["gamma"] = gamma
    positions["market_value_usd"] = market_value * fx
    return positions


def report_grid(config: ETRMDataConfig, book_names: np.ndarray) -> pd.DataFrame:
    """(report_date, book) rows: evenly spaced trading days ending on the window's last one,
    every book on every date (num_risk_reports rounded up to whole dates)."""
    window = trading_days(config.start_date, config.end_date)
    capacity = len(window) * len(book_names)
    if config.num_risk_reports > capacity:
        raise ValueError(
            f"num_risk_reports: got {config.num_risk_reports}, but the window has "
            f"{len(window)} trading days x {len(book_names)} books; allowed: an integer "
            f"<= {capacity}")
    n_dates = math.ceil(config.num_risk_reports / len(book_names))
    if n_dates == 0:
        return pd.DataFrame({"report_date": pd.Series(dtype=object),
                             "book": pd.Series(dtype=object)})
    steps = np.unique(np.round(np.linspace(0, len(window) - 1, n_dates)).astype(np.int64))
    dates = window[len(window) - 1 - steps[::-1]]
    return pd.DataFrame({
        "report_date": np.repeat(np.datetime_as_string(dates, unit="D"), len(book_names)),
        "book": np.tile(book_names, len(dates))}).astype(object)


def historical_var(pnl: np.ndarray) -> Tuple[float, float, float, float]:
    """(VaR95, VaR99, ES95, ES99) of one-day losses given scenario P&L."""
    losses = 0.0 - pnl
    out = []
    for level in (0.95, 0.99):
        var = float(np.quantile(losses, level))
        out.append((var, float(losses[losses >= var].mean())))
    return out[0][0], out[1][0], out[0][1], out[1][1]


@dataclass(frozen=True)
class BookRisk:
    """Per book on one day: exposure by (series, month) and the scenario P&L."""

    exposures: np.ndarray       # [book, series, month] delta-equivalent USD
    pnl: np.ndarray             # [scenario, book]


def book_risk(prices: PriceSeries, legs: Legs, n_books: int, day: np.datetime64) -> BookRisk:
    """Exposures and historical-simulation P&L of the legs open on ``day`` (computed on the
    open legs only, in leg order, so every sum adds the same terms in the same order)."""
    row = int(prices.day_index([day])[0])
    n_series = prices.forwards.shape[1]
    month = prices.months[row].astype(np.int64)
    size = n_books * n_series * FORWARD_MONTHS
    linear, options = legs.risk_legs
    open_linear = linear.open_rows(day)
    forward = prices.forwards[row].reshape(-1)[linear.contract[open_linear] - month]
    exposures = np.bincount(linear.slot[open_linear] - month,
                            weights=(linear.signed_volume[open_linear] * forward
                                     * linear.fx[open_linear]), minlength=size)
    curvature = np.zeros(size)
    open_options = options.open_rows(day)
    if len(open_options):
        rows = options.rows[open_options]
        f, _, delta, gamma = _option_greeks(prices, row, day, legs.series[rows], legs.month[rows],
                                            legs.expiry[rows], legs.is_call[rows],
                                            legs.strike[rows])
        volume, option_fx = options.signed_volume[open_options], options.fx[open_options]
        slot = options.slot[open_options] - month
        exposures += np.bincount(slot, weights=volume * delta * f * option_fx, minlength=size)
        curvature += np.bincount(slot, weights=0.5 * volume * gamma * f ** 2 * option_fx,
                                 minlength=size)
    by_book = exposures.reshape(n_books, -1)
    gamma_by_book = curvature.reshape(n_books, -1)
    # Only the contracts held: the same products whatever else the market lists, so adding
    # a commodity or region does not move the last bits of anyone's VaR.
    held = np.flatnonzero(np.any(by_book != 0, axis=0) | np.any(gamma_by_book != 0, axis=0))
    window = prices.contract_log_returns()[row - VAR_LOOKBACK_DAYS: row].reshape(
        VAR_LOOKBACK_DAYS, n_series * FORWARD_MONTHS)
    returns = np.expm1(window[:, held])
    pnl = returns @ by_book[:, held].T
    if len(open_options):
        pnl += (returns ** 2) @ gamma_by_book[:, held].T
    return BookRisk(by_book.reshape(n_books, n_series, FORWARD_MONTHS), pnl)


def _largest_positions(prices: PriceSeries, by_series: np.ndarray, ranked) -> dict:
    """The columns of a book's largest exposures by market, largest first ("" and 0 where
    the book holds fewer markets)."""
    columns = {}
    for index, rank in enumerate(LARGEST_POSITION_RANKS):
        held = index < len(ranked)
        columns[f"{rank}_commodity"] = prices.commodities[ranked[index]] if held else ""
        columns[f"{rank}_region"] = prices.regions[ranked[index]] if held else ""
        columns[rank] = float(by_series[ranked[index]]) if held else 0.0
    return columns


def compute_risk_reports(config: ETRMDataConfig, trades: pd.DataFrame, positions: pd.DataFrame,
                         prices: PriceSeries, universe: Universe,
                         opening_trades: pd.DataFrame = None, id_prefix: str = "RSK",
                         portfolio: Portfolio = None) -> pd.DataFrame:
    """One row per (report date, book): exposures, VaR/ES, limits, utilisation and breaches."""
    grid = report_grid(config, universe.book_names)
    books = universe.book_names
    n_books = len(books)
    book_index = {name: i for i, name in enumerate(books)}
    if portfolio is None:
        portfolio = build_portfolio(trades, prices, books, opening_trades)
    everything, legs, trade_day = portfolio.trades, portfolio.legs, portfolio.trade_day
    book_of_trade = everything["book"].map(book_index).to_numpy(np.int64)
    position_first = positions["first_trade_date"].to_numpy().astype("datetime64[D]")
    position_end = positions["delivery_end"].to_numpy().astype("datetime64[D]")
    position_expiry = np.where((positions["option_type"] != "none").to_numpy(),
                               _days(positions["expiry_date"]), position_end)
    position_book = positions["book"].map(book_index).to_numpy(np.int64)

    records = []
    for report_date, rows in grid.groupby("report_date", sort=True):
        day = np.datetime64(report_date, "D")
        risk = book_risk(prices, legs, n_books, day)
        open_now = (position_first <= day) & (position_end >= day) & (position_expiry >= day)
        open_positions = np.bincount(position_book[open_now], minlength=n_books)
        trades_to_date = np.bincount(book_of_trade[trade_day <= day], minlength=n_books)
        for book in rows["book"]:
            b = book_index[book]
            var95, var99, es95, es99 = historical_var(risk.pnl[:, b])
            held = risk.exposures[b][risk.exposures[b] != 0]
            by_series = np.array([math.fsum(row) for row in risk.exposures[b]])
            ranked = [int(i) for i in np.argsort(-np.abs(by_series), kind="stable")
                      if by_series[i] != 0][:len(LARGEST_POSITION_RANKS)]
            records.append({
                "report_date": report_date, "book": book, "currency": REPORTING_CURRENCY,
                "num_open_positions": int(open_positions[b]),
                "num_trades_to_date": int(trades_to_date[b]),
                "net_exposure": math.fsum(held),
                "gross_exposure": math.fsum(np.abs(held)),
                "var_95": var95, "var_99": var99, "es_95": es95, "es_99": es99,
                **_largest_positions(prices, by_series, ranked),
            })
    reports = pd.DataFrame.from_records(records, columns=[
        "report_date", "book", "currency", "num_open_positions", "num_trades_to_date",
        "net_exposure", "gross_exposure", "var_95", "var_99", "es_95", "es_99",
        *LARGEST_POSITION_COLUMNS])
    reviews = book_limits(config, prices, legs, n_books)
    reports = _apply_limits(reports, reviews, universe, book_index)
    reports.insert(0, "report_id", numbered_ids(id_prefix, len(reports), 5))
    return reports


def limit_reviews(config: ETRMDataConfig, prices: PriceSeries) -> pd.DataFrame:
    """(month, review day) of each calendar month the window touches: limits for a month are
    set on the trading day before its first trading day in the window."""
    window = trading_days(config.start_date, config.end_date)
    months = window.astype("datetime64[M]")
    first_days = window[np.r_[0, np.flatnonzero(months[1:] != months[:-1]) + 1]]
    rows = prices.day_index(first_days) - 1
    return pd.DataFrame({"month": first_days.astype("datetime64[M]"),
                         "review_day": prices.dates[rows]})


def book_limits(config: ETRMDataConfig, prices: PriceSeries, legs: Legs, n_books: int
                ) -> pd.DataFrame:
    """Per (month, book): VaR and gross exposure limits from the book's risk on the month's
    review day, i.e. from data strictly before the month (see the module docs)."""
    records = []
    reviews = limit_reviews(config, prices)
    for month, review_day in zip(reviews["month"].to_numpy(),
                                 reviews["review_day"].to_numpy().astype("datetime64[D]")):
        risk = book_risk(prices, legs, n_books, review_day)
        for b in range(n_books):
            held = risk.exposures[b][risk.exposures[b] != 0]
            records.append((month, b, historical_var(risk.pnl[:, b])[0],
                            math.fsum(np.abs(held))))
    return pd.DataFrame(records, columns=["month", "book_index", "review_var_95",
                                          "review_gross_exposure"])


def _apply_limits(reports: pd.DataFrame, reviews: pd.DataFrame, universe: Universe,
                  book_index) -> pd.DataFrame:
    book = reports["book"].map(book_index).to_numpy(np.int64)
    month = reports["report_date"].to_numpy().astype("datetime64[D]").astype("datetime64[M]")
    table = reviews.set_index(["month", "book_index"])
    keys = pd.MultiIndex.from_arrays([month, book])
    review_var = table["review_var_95"].reindex(keys).to_numpy(float)
    review_gross = table["review_gross_exposure"].reindex(keys).to_numpy(float)
    headroom = universe.book_limit_headroom[book]
    reports["var_limit"] = np.maximum(np.ceil(headroom * np.maximum(review_var, 0.0)
                                              / VAR_LIMIT_ROUNDING), 1.0) * VAR_LIMIT_ROUNDING
    reports["limit_utilisation"] = reports["var_95"] / reports["var_limit"]
    reports["exposure_limit"] = np.maximum(np.ceil(headroom * review_gross
                                                   / EXPOSURE_LIMIT_ROUNDING),
                                           1.0) * EXPOSURE_LIMIT_ROUNDING
    reports["exposure_utilisation"] = reports["gross_exposure"] / reports["exposure_limit"]
    reports["var_limit_breach"] = (reports["limit_utilisation"] > 1.0).astype(np.int64)
    reports["exposure_limit_breach"] = (reports["exposure_utilisation"] > 1.0).astype(np.int64)
    reports["breaches"] = reports["var_limit_breach"] + reports["exposure_limit_breach"]
    return reports
