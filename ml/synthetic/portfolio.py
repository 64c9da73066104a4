"""Positions (exact aggregation of trades) and book-level risk reports computed from them.

Risk model, per report (date d, book b):
* open positions: trades of b traded on or before d whose delivery month has not ended
  (delivery_end >= d), netted per commodity, region and delivery period;
* exposure of each commodity/region series j: w_j = sum of open net volumes x price_j(d) x FX
  to USD (delivery months share the spot series: no term structure is modelled);
* one-day historical-simulation P&L over the last VAR_LOOKBACK_DAYS daily moves:
  pnl_k = sum_j w_j (exp(r_jk) - 1); loss = -pnl;
* VaR_a = numpy.quantile(loss, a) (linear interpolation); ES_a = mean(loss[loss >= VaR_a]);
* limits per book: VaR limit = ceil(headroom_b x median VaR95 of the book's reports / 1,000)
  x 1,000 and gross exposure limit = the same with the median gross exposure rounded up to
  100,000; headroom_b in [1.3, 1.8] is static book data from the seed. A limit is breached
  when utilisation (value / limit) exceeds 1.
"""
import math
from typing import Tuple

import numpy as np
import pandas as pd

from ml.synthetic.catalog import FX_USD_PER_UNIT, REPORTING_CURRENCY, region_currency
from ml.synthetic.config import ETRMDataConfig, as_day, trading_days
from ml.synthetic.prices import PriceSeries
from ml.synthetic.universe import Universe

POSITION_KEYS = ["book", "commodity", "region", "delivery_period"]
VAR_LOOKBACK_DAYS = 250
VAR_LIMIT_ROUNDING = 1_000.0
EXPOSURE_LIMIT_ROUNDING = 100_000.0


def signed_trade_volumes(trades: pd.DataFrame) -> Tuple[np.ndarray, np.ndarray]:
    """(+volume for buys / -volume for sells, +notional for buys / -notional for sells)."""
    sign = np.where(trades["direction"].to_numpy() == "buy", 1.0, -1.0)
    return sign * trades["volume"].to_numpy(float), sign * trades["notional"].to_numpy(float)


def aggregate_positions(trades: pd.DataFrame, prices: PriceSeries, valuation_date,
                        id_prefix: str = "POS") -> pd.DataFrame:
    """Net positions per book, commodity, region and delivery period, marked at valuation_date.

    Sums are pandas groupby sums over the trades, so recomputing them the same way from the
    trades table gives identical numbers.
    """
    signed_volume, signed_notional = signed_trade_volumes(trades)
    is_buy = signed_volume > 0
    volume = trades["volume"].to_numpy(float)
    dates = {name: pd.to_datetime(trades[name], format="%Y-%m-%d")
             for name in ("trade_date", "delivery_start")}
    frame = trades[POSITION_KEYS + ["trade_id", "volume", "notional", "unit", "currency",
                                    "delivery_end"]].assign(
        net_volume=signed_volume, net_notional=signed_notional,
        buy_volume=np.where(is_buy, volume, 0.0), sell_volume=np.where(is_buy, 0.0, volume),
        trade_day=dates["trade_date"], delivery_day=dates["delivery_start"])
    positions = frame.groupby(POSITION_KEYS, sort=True).agg(
        num_trades=("trade_id", "size"), net_volume=("net_volume", "sum"),
        buy_volume=("buy_volume", "sum"), sell_volume=("sell_volume", "sum"),
        gross_volume=("volume", "sum"), net_notional=("net_notional", "sum"),
        gross_notional=("notional", "sum"), unit=("unit", "first"),
        currency=("currency", "first"), delivery_start=("delivery_day", "min"),
        delivery_end=("delivery_end", "first"), first_trade_date=("trade_day", "min"),
        last_trade_date=("trade_day", "max")).reset_index()
    for name in ("delivery_start", "first_trade_date", "last_trade_date"):
        positions[name] = positions[name].dt.strftime("%Y-%m-%d").astype(object)
    valuation_day = as_day(valuation_date)
    row = prices.day_index([valuation_day])[0]
    mark = prices.prices[row, prices.columns_of(positions["commodity"], positions["region"])]
    fx = positions["currency"].map(FX_USD_PER_UNIT).to_numpy(float)
    positions.insert(0, "position_id",
                     [f"{id_prefix}-{i:06d}" for i in range(1, len(positions) + 1)])
    positions["average_price"] = positions["gross_notional"] / positions["gross_volume"]
    positions["valuation_date"] = str(valuation_day)
    positions["mark_price"] = mark
    positions["market_value"] = positions["net_volume"] * mark
    positions["unrealised_pnl"] = positions["market_value"] - positions["net_notional"]
    positions["market_value_usd"] = positions["market_value"] * fx
    positions["status"] = np.where(positions["delivery_end"] >= str(valuation_day), "open",
                                   "delivered").astype(object)
    return positions


def report_grid(config: ETRMDataConfig, book_names: np.ndarray) -> pd.DataFrame:
    """(report_date, book) rows: evenly spaced trading days ending on the window's last one."""
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
    steps = np.round(np.linspace(0, len(window) - 1, n_dates)).astype(np.int64)
    dates = window[len(window) - 1 - steps[::-1]]
    grid = pd.DataFrame({
        "report_date": np.repeat(np.datetime_as_string(dates, unit="D"), len(book_names)),
        "book": np.tile(book_names, n_dates)}).astype(object)
    return grid.iloc[len(grid) - config.num_risk_reports:].reset_index(drop=True)


def historical_var(exposures_usd: np.ndarray, returns: np.ndarray
                   ) -> Tuple[float, float, float, float]:
    """(VaR95, VaR99, ES95, ES99) of one-day losses under historical return scenarios."""
    losses = 0.0 - (np.expm1(returns) @ exposures_usd)
    out = []
    for level in (0.95, 0.99):
        var = float(np.quantile(losses, level))
        out.append((var, float(losses[losses >= var].mean())))
    return out[0][0], out[1][0], out[0][1], out[1][1]


def compute_risk_reports(config: ETRMDataConfig, trades: pd.DataFrame, positions: pd.DataFrame,
                         prices: PriceSeries, universe: Universe, id_prefix: str = "RSK"
                         ) -> pd.DataFrame:
    """One row per (report date, book): exposures, VaR/ES, limits, utilisation and breaches."""
    grid = report_grid(config, universe.book_names)
    book_index = {name: i for i, name in enumerate(universe.book_names)}
    n_series = len(prices.names)
    trade_day = trades["trade_date"].to_numpy().astype("datetime64[D]")
    delivery_end = trades["delivery_end"].to_numpy().astype("datetime64[D]")
    signed_volume, _ = signed_trade_volumes(trades)
    series_of_trade = prices.columns_of(trades["commodity"], trades["region"])
    book_of_trade = trades["book"].map(book_index).to_numpy(np.int64)
    slot = book_of_trade * n_series + series_of_trade
    fx = np.array([FX_USD_PER_UNIT[region_currency(r)] for r in prices.regions])
    log_returns = prices.log_returns()
    position_first = positions["first_trade_date"].to_numpy().astype("datetime64[D]")
    position_end = positions["delivery_end"].to_numpy().astype("datetime64[D]")
    position_book = positions["book"].map(book_index).to_numpy(np.int64)

    records = []
    for report_date, rows in grid.groupby("report_date", sort=True):
        day = np.datetime64(report_date, "D")
        row = prices.day_index([day])[0]
        open_trades = (trade_day <= day) & (delivery_end >= day)
        net = np.bincount(slot[open_trades], weights=signed_volume[open_trades],
                          minlength=len(book_index) * n_series).reshape(len(book_index), n_series)
        exposures = net * prices.prices[row] * fx
        scenario_returns = log_returns[row - VAR_LOOKBACK_DAYS: row]
        open_positions = np.bincount(position_book[(position_first <= day) & (position_end >= day)],
                                     minlength=len(book_index))
        trades_to_date = np.bincount(book_of_trade[trade_day <= day], minlength=len(book_index))
        for book in rows["book"]:
            b = book_index[book]
            var95, var99, es95, es99 = historical_var(exposures[b], scenario_returns)
            top = int(np.argmax(np.abs(exposures[b])))
            has_exposure = bool(np.any(exposures[b] != 0))
            records.append({
                "report_date": report_date, "book": book, "currency": REPORTING_CURRENCY,
                "num_open_positions": int(open_positions[b]),
                "num_trades_to_date": int(trades_to_date[b]),
                "net_exposure": float(exposures[b].sum()),
                "gross_exposure": float(np.abs(exposures[b]).sum()),
                "var_95": var95, "var_99": var99, "es_95": es95, "es_99": es99,
                "top_exposure_commodity": prices.commodities[top] if has_exposure else "",
                "top_exposure_region": prices.regions[top] if has_exposure else "",
                "top_exposure": float(exposures[b, top]),
            })
    reports = pd.DataFrame.from_records(records, columns=[
        "report_date", "book", "currency", "num_open_positions", "num_trades_to_date",
        "net_exposure", "gross_exposure", "var_95", "var_99", "es_95", "es_99",
        "top_exposure_commodity", "top_exposure_region", "top_exposure"])
    reports = _apply_limits(reports, universe, book_index)
    reports.insert(0, "report_id", [f"{id_prefix}-{i:05d}" for i in range(1, len(reports) + 1)])
    return reports


def _apply_limits(reports: pd.DataFrame, universe: Universe, book_index) -> pd.DataFrame:
    headroom = reports["book"].map(lambda b: universe.book_limit_headroom[book_index[b]])
    by_book = reports.groupby("book")
    typical_var = by_book["var_95"].transform("median")
    typical_exposure = by_book["gross_exposure"].transform("median")
    reports["var_limit"] = np.maximum(
        np.ceil(headroom * typical_var / VAR_LIMIT_ROUNDING), 1.0) * VAR_LIMIT_ROUNDING
    reports["limit_utilisation"] = reports["var_95"] / reports["var_limit"]
    reports["exposure_limit"] = np.maximum(
        np.ceil(headroom * typical_exposure / EXPOSURE_LIMIT_ROUNDING), 1.0
    ) * EXPOSURE_LIMIT_ROUNDING
    reports["exposure_utilisation"] = reports["gross_exposure"] / reports["exposure_limit"]
    reports["var_limit_breach"] = (reports["limit_utilisation"] > 1.0).astype(np.int64)
    reports["exposure_limit_breach"] = (reports["exposure_utilisation"] > 1.0).astype(np.int64)
    reports["breaches"] = reports["var_limit_breach"] + reports["exposure_limit_breach"]
    return reports
