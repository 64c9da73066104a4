"""Compliance records that follow from the trades and the risk reports.

* Regulatory reporting, one record per reportable (trade, regime):

  - REMIT: power, natural gas and LNG traded in Europe, the UK or the Nordics. Standard
    contracts (admitted to trading on an organised market) are due the next business day
    (T+1); non-standard contracts (bilateral bespoke deals) within one month: the same day of
    the next month (clipped to that month's last day), rolled BACK to the preceding business
    day so the deadline never exceeds one month.
  - EMIR: futures, swaps and options traded in Europe, the UK or the Nordics, due T+1.
  - CFTC (Dodd-Frank swap data reporting): swaps and options traded in North America, T+1.

  Contract type (column ``contract_type``, on every regulatory record: it is a property of the
  trade): futures and options are exchange-traded, always "standard"; forwards and swaps are
  "standard" when executed on a broker platform or exchange (an organised market), which is
  the case for a share VENUE_EXECUTED_SHARE (70%) of them, decided per trade by the uniform
  draw ``venue_u`` (standard when venue_u < VENUE_EXECUTED_SHARE), else "non_standard".
  Limit breaches have "".

  Business days are those of the regulator's calendar (``ml.synthetic.calendar``): REMIT and
  EMIR use the TARGET2 ("europe") calendar, or the England & Wales calendar ("uk") for trades
  in the UK; CFTC uses the US federal calendar ("north_america"). T+1 is the first business
  day strictly after the trade day (also when the trade day is a regional holiday).

  A report is late with probability LATE_BASE_PROBABILITY, raised by LATE_AFTER_HOURS_EXTRA
  for trades booked from AFTER_HOURS_FROM and by LATE_OPTION_EXTRA for options. Lateness is
  drawn separately per regime (a trade reported under REMIT and EMIR is late under each
  independently). On-time reports are submitted on a business day between the trade day and
  the deadline (uniform over those days); late reports D business days after the deadline,
  D ~ Geometric(0.5) on {1, 2, ...}; ``days_late`` = D, counted in business days of the same
  calendar. No submission falls on a weekend or a holiday of the regulator's calendar.
  Severity of a late report: high when more than SEVERE_DAYS_LATE business days late, else
  medium.

  Randomness: ``window_stream(config, 4)`` draws, in this fixed order and whatever the
  configuration (drift scenarios included), one array per trade ROW of the trades table:
  venue_u, then per regime in REGIMES order late_u, on_time_u and delay. Every draw is indexed
  by the trade's row, never by its position among the reportable trades, so the records of
  trades before a drift scenario's start date are identical with and without the scenario.
* Limit breaches, one record per breached limit of a risk report (regime "internal"); severity
  high when utilisation is above 125%, else medium.

Trade columns read: trade_id, trade_date, timestamp, commodity, region, instrument, book,
notional_usd.
"""
import numpy as np
import pandas as pd

from ml.synthetic.calendar import business_day_count, business_day_offset
from ml.synthetic.config import ETRMDataConfig
from ml.synthetic.string_columns import (day_strings, fixed_width_slice_at_least, numbered_ids,
                                         objects, parse_days)
from ml.synthetic.trades import window_stream

REMIT_COMMODITIES = ("power", "natural_gas", "lng")
EUROPEAN_REGIONS = ("europe", "uk", "nordics")
REGIMES = ("REMIT", "EMIR", "CFTC")
EXCHANGE_TRADED_INSTRUMENTS = ("future", "option")
VENUE_EXECUTED_SHARE = 0.70
REMIT_NON_STANDARD_MONTHS = 1
LATE_BASE_PROBABILITY = 0.02
LATE_AFTER_HOURS_EXTRA = 0.05
LATE_OPTION_EXTRA = 0.03
LATE_DELAY_P = 0.5
AFTER_HOURS_FROM = "17:00:00"
SEVERE_DAYS_LATE = 3
SEVERE_UTILISATION = 1.25
CONTRACT_TYPES = ("standard", "non_standard")
_RECORD_TYPE_ORDER = ("limit_breach", "regulatory_report")
_REGIME_ORDER = tuple(sorted(REGIMES + ("internal",)))
_STREAM_NAMESPACE = 4

COMPLIANCE_COLUMNS = [
    "record_id", "record_type", "regime", "status", "event_date", "deadline", "submission_date",
    "days_late", "trade_id", "report_id", "book", "commodity", "region", "limit_type",
    "value_usd", "limit_usd", "utilisation", "severity", "contract_type"]


def reportable_regimes(trades: pd.DataFrame) -> dict:
    """Boolean masks of the trades each regime requires to be reported (REGIMES order)."""
    commodity, region = trades["commodity"], trades["region"]
    instrument = trades["instrument"]
    european = region.isin(EUROPEAN_REGIONS)
    return {
        "REMIT": (commodity.isin(REMIT_COMMODITIES) & european).to_numpy(),
        "EMIR": (instrument.isin(("future", "swap", "option")) & european).to_numpy(),
        "CFTC": (instrument.isin(("swap", "option")) & (region == "north_america")).to_numpy(),
    }


def regulator_calendars(trades: pd.DataFrame, regime: str) -> np.ndarray:
    """Per trade, the business calendar of the regime's regulator (a calendar region name)."""
    if regime == "CFTC":
        return np.full(len(trades), "north_america", dtype=object)
    return np.where(trades["region"].to_numpy() == "uk", "uk", "europe").astype(object)


def contract_types(instrument: np.ndarray, venue_u: np.ndarray) -> np.ndarray:
    """"standard" for futures/options and venue-executed forwards/swaps, else "non_standard"."""
    standard = (np.isin(instrument, EXCHANGE_TRADED_INSTRUMENTS)
                | (venue_u < VENUE_EXECUTED_SHARE))
    return objects(CONTRACT_TYPES[::-1])[standard.astype(np.intp)]


def _one_month_later(days: np.ndarray) -> np.ndarray:
    """The same day of the next month, clipped to that month's last day."""
    month = days.astype("datetime64[M]")
    day_of_month = (days - month.astype("datetime64[D]")).astype(np.int64)
    target = (month + REMIT_NON_STANDARD_MONTHS).astype("datetime64[D]")
    length = ((month + REMIT_NON_STANDARD_MONTHS + 1).astype("datetime64[D]")
              - target).astype(np.int64)
    return target + np.minimum(day_of_month, length - 1)


def reporting_deadlines(trade_day: np.ndarray, calendars: np.ndarray,
                        non_standard_remit: np.ndarray) -> np.ndarray:
    """T+1 business day, or one month rolled back to a business day where non_standard_remit."""
    next_business_day = business_day_offset(trade_day, 1, calendars, roll="backward")
    if not non_standard_remit.any():
        return next_business_day
    month_later = business_day_offset(_one_month_later(trade_day), 0, calendars,
                                      roll="backward")
    return np.where(non_standard_remit, month_later, next_business_day)


def _texts(values) -> np.ndarray:
    return objects(values)


def _per_calendar_schedule(days: np.ndarray, calendar: str, non_standard: np.ndarray,
                           late: np.ndarray, on_time_u: np.ndarray, delay: np.ndarray):
    """(deadline, submission day) of reports filed with one regulator calendar."""
    deadline = reporting_deadlines(days, calendar, non_standard)
    allowed = business_day_count(days, deadline + np.timedelta64(1, "D"), calendar)
    pick = np.minimum(np.floor(on_time_u * allowed).astype(np.int64), allowed - 1)
    on_time_day = business_day_offset(days, pick, calendar, roll="forward")
    late_day = business_day_offset(deadline, delay, calendar, roll="forward")
    return deadline, np.where(late, late_day, on_time_day).astype("datetime64[D]")


def _schedule(days: np.ndarray, calendars: np.ndarray, non_standard: np.ndarray,
              late: np.ndarray, on_time_u: np.ndarray, delay: np.ndarray):
    """(deadline, submission day) per report, each on its regulator's calendar."""
    deadline = np.empty(len(days), dtype="datetime64[D]")
    submission = np.empty(len(days), dtype="datetime64[D]")
    for calendar in dict.fromkeys(calendars.tolist()):
        chosen = np.flatnonzero(calendars == calendar)
        deadline[chosen], submission[chosen] = _per_calendar_schedule(
            days[chosen], calendar, non_standard[chosen], late[chosen], on_time_u[chosen],
            delay[chosen])
    return deadline, submission


def _regulatory_reports(config: ETRMDataConfig, trades: pd.DataFrame, trade_day: np.ndarray
                        ) -> dict:
    """Columns of the regulatory reports (regimes in REGIMES order, trades in row order),
    with their trade rows under "trade_row"."""
    rng = window_stream(config, _STREAM_NAMESPACE)
    n = len(trades)
    # Fixed draw order, one value per trade row, whatever the configuration.
    venue_u = rng.random(n)
    draws = {regime: (rng.random(n), rng.random(n), rng.geometric(LATE_DELAY_P, n))
             for regime in REGIMES}
    after_hours = fixed_width_slice_at_least(trades["timestamp"], 11, 8, AFTER_HOURS_FROM)
    instrument = trades["instrument"].to_numpy()
    late_probability = (LATE_BASE_PROBABILITY
                        + LATE_AFTER_HOURS_EXTRA * after_hours
                        + LATE_OPTION_EXTRA * (instrument == "option"))
    contract_type = contract_types(instrument, venue_u)
    parts = []
    for regime, mask in reportable_regimes(trades).items():
        rows = np.flatnonzero(mask)
        late_u, on_time_u, delay = (draw[rows] for draw in draws[regime])
        non_standard = ((contract_type[rows] == "non_standard") if regime == "REMIT"
                        else np.zeros(len(rows), dtype=bool))
        late = late_u < late_probability[rows]
        calendars = (np.full(len(rows), "north_america", dtype=object) if regime == "CFTC"
                     else _texts(["europe", "uk"])[
                         (trades["region"].to_numpy()[rows] == "uk").astype(np.intp)])
        deadline, submission = _schedule(trade_day[rows], calendars, non_standard, late,
                                         on_time_u, delay)
        days_late = np.where(late, delay, 0).astype(np.int64)
        parts.append({
            "trade_row": rows, "regime": np.full(len(rows), regime, dtype=object),
            "status": _texts(["on_time", "late"])[late.astype(np.intp)],
            "deadline": day_strings(deadline), "submission_date": day_strings(submission),
            "days_late": days_late,
            "severity": _texts(["none", "medium", "high"])[
                np.where(days_late > SEVERE_DAYS_LATE, 2, late.astype(np.intp))],
            "contract_type": contract_type[rows],
        })
    columns = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    rows = columns.pop("trade_row")
    count = len(rows)
    return {
        "order_day": trade_day[rows].astype(np.int64), "trade_row": rows,
        "report_row": np.full(count, -1, dtype=np.int64),
        "record_type": np.full(count, "regulatory_report", dtype=object),
        "regime": columns["regime"], "status": columns["status"],
        "event_date": trades["trade_date"].to_numpy(dtype=object)[rows],
        "deadline": columns["deadline"], "submission_date": columns["submission_date"],
        "days_late": columns["days_late"],
        "trade_id": trades["trade_id"].to_numpy(dtype=object)[rows],
        "report_id": np.full(count, "", dtype=object),
        "book": trades["book"].to_numpy(dtype=object)[rows],
        "commodity": trades["commodity"].to_numpy(dtype=object)[rows],
        "region": trades["region"].to_numpy(dtype=object)[rows],
        "limit_type": np.full(count, "", dtype=object),
        "value_usd": trades["notional_usd"].to_numpy(float)[rows],
        "limit_usd": np.full(count, np.nan), "utilisation": np.full(count, np.nan),
        "severity": columns["severity"], "contract_type": columns["contract_type"],
    }


def _limit_breaches(risk_reports: pd.DataFrame) -> dict:
    """Columns of the limit breaches (VaR limits, then gross exposure limits, report order),
    with their report rows under "report_row"."""
    parts = []
    report_day = parse_days(risk_reports["report_date"]).astype(np.int64)
    for limit_type, flag, value, limit, utilisation in (
            ("var_95", "var_limit_breach", "var_95", "var_limit", "limit_utilisation"),
            ("gross_exposure", "exposure_limit_breach", "gross_exposure", "exposure_limit",
             "exposure_utilisation")):
        rows = np.flatnonzero(risk_reports[flag].to_numpy() == 1)
        count = len(rows)
        used = risk_reports[utilisation].to_numpy(float)[rows]
        blank = np.full(count, "", dtype=object)
        parts.append({
            "order_day": report_day[rows], "trade_row": np.full(count, -1, dtype=np.int64),
            "report_row": rows.astype(np.int64),
            "record_type": np.full(count, "limit_breach", dtype=object),
            "regime": np.full(count, "internal", dtype=object),
            "status": np.full(count, "breach", dtype=object),
            "event_date": risk_reports["report_date"].to_numpy(dtype=object)[rows],
            "deadline": blank, "submission_date": blank,
            "days_late": np.zeros(count, dtype=np.int64), "trade_id": blank,
            "report_id": risk_reports["report_id"].to_numpy(dtype=object)[rows],
            "book": risk_reports["book"].to_numpy(dtype=object)[rows],
            "commodity": blank, "region": blank,
            "limit_type": np.full(count, limit_type, dtype=object),
            "value_usd": risk_reports[value].to_numpy(float)[rows],
            "limit_usd": risk_reports[limit].to_numpy(float)[rows], "utilisation": used,
            "severity": _texts(["medium", "high"])[(used > SEVERE_UTILISATION).astype(np.intp)],
            "contract_type": blank,
        })
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def _sorted_codes(values: np.ndarray, ordered_names) -> np.ndarray:
    """Each value's rank among ordered_names (sorted), looked up once per distinct value."""
    codes, distinct = pd.factorize(values)
    rank = {name: i for i, name in enumerate(ordered_names)}
    return np.array([rank[name] for name in distinct], dtype=np.int64)[codes]


def _record_order(records: dict) -> np.ndarray:
    """Row order by event date, record type, trade, report and regime, on integer keys (a
    trade's or report's row stands for its id: ids are numbered in row order)."""
    record_type = _sorted_codes(records["record_type"], _RECORD_TYPE_ORDER)
    regime = _sorted_codes(records["regime"], _REGIME_ORDER)
    return np.lexsort((regime, records["report_row"], records["trade_row"], record_type,
                       records["order_day"]))


def build_compliance_records(config: ETRMDataConfig, trades: pd.DataFrame,
                             risk_reports: pd.DataFrame, id_prefix: str = "CMP") -> pd.DataFrame:
    """Regulatory reports and limit breaches, ordered by event date."""
    trade_day = parse_days(trades["trade_date"])
    reports = _regulatory_reports(config, trades, trade_day)
    breaches = _limit_breaches(risk_reports)
    records = {name: np.concatenate([reports[name], breaches[name]]) for name in reports}
    order = _record_order(records)
    columns = {"record_id": numbered_ids(id_prefix, len(order), 7)}
    columns.update((name, records[name][order]) for name in COMPLIANCE_COLUMNS[1:])
    # copy=False: the fresh column arrays become the frame's blocks as they are (consolidating
    # them would copy every object column twice, for the same values).
    return pd.DataFrame(columns, columns=COMPLIANCE_COLUMNS, copy=False)
