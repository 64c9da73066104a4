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
    return np.where(standard, CONTRACT_TYPES[0], CONTRACT_TYPES[1]).astype(object)


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


def _regulatory_reports(config: ETRMDataConfig, trades: pd.DataFrame) -> pd.DataFrame:
    rng = window_stream(config, _STREAM_NAMESPACE)
    n = len(trades)
    # Fixed draw order, one value per trade row, whatever the configuration.
    venue_u = rng.random(n)
    draws = {regime: (rng.random(n), rng.random(n), rng.geometric(LATE_DELAY_P, n))
             for regime in REGIMES}
    trade_day = trades["trade_date"].to_numpy().astype("datetime64[D]")
    time_of_day = trades["timestamp"].str.slice(11)
    instrument = trades["instrument"].to_numpy()
    late_probability = (LATE_BASE_PROBABILITY
                        + LATE_AFTER_HOURS_EXTRA * (time_of_day >= AFTER_HOURS_FROM).to_numpy()
                        + LATE_OPTION_EXTRA * (instrument == "option"))
    contract_type = contract_types(instrument, venue_u)
    frames = []
    for regime, mask in reportable_regimes(trades).items():
        rows = np.flatnonzero(mask)
        late_u, on_time_u, delay = (draw[rows] for draw in draws[regime])
        days = trade_day[rows]
        calendars = regulator_calendars(trades, regime)[rows]
        non_standard = ((contract_type[rows] == "non_standard") if regime == "REMIT"
                        else np.zeros(len(rows), dtype=bool))
        deadline = reporting_deadlines(days, calendars, non_standard)
        late = late_u < late_probability[rows]
        allowed = business_day_count(days, deadline + np.timedelta64(1, "D"), calendars)
        pick = np.minimum(np.floor(on_time_u * allowed).astype(np.int64), allowed - 1)
        on_time_day = business_day_offset(days, pick, calendars, roll="forward")
        late_day = business_day_offset(deadline, delay, calendars, roll="forward")
        submission = np.where(late, late_day, on_time_day).astype("datetime64[D]")
        days_late = np.where(late, delay, 0).astype(np.int64)
        frames.append(pd.DataFrame({
            "record_type": "regulatory_report", "regime": regime,
            "status": np.where(late, "late", "on_time"),
            "event_date": trades["trade_date"].to_numpy()[rows],
            "deadline": np.datetime_as_string(deadline, unit="D"),
            "submission_date": np.datetime_as_string(submission, unit="D"),
            "days_late": days_late,
            "trade_id": trades["trade_id"].to_numpy()[rows], "report_id": "",
            "book": trades["book"].to_numpy()[rows],
            "commodity": trades["commodity"].to_numpy()[rows],
            "region": trades["region"].to_numpy()[rows], "limit_type": "",
            "value_usd": trades["notional_usd"].to_numpy()[rows], "limit_usd": np.nan,
            "utilisation": np.nan,
            "severity": np.where(days_late > SEVERE_DAYS_LATE, "high",
                                 np.where(late, "medium", "none")),
            "contract_type": contract_type[rows],
        }))
    return pd.concat(frames, ignore_index=True)


def _limit_breaches(risk_reports: pd.DataFrame) -> pd.DataFrame:
    frames = []
    for limit_type, flag, value, limit, utilisation in (
            ("var_95", "var_limit_breach", "var_95", "var_limit", "limit_utilisation"),
            ("gross_exposure", "exposure_limit_breach", "gross_exposure", "exposure_limit",
             "exposure_utilisation")):
        breached = risk_reports[risk_reports[flag] == 1]
        frames.append(pd.DataFrame({
            "record_type": "limit_breach", "regime": "internal", "status": "breach",
            "event_date": breached["report_date"].to_numpy(), "deadline": "",
            "submission_date": "", "days_late": 0, "trade_id": "",
            "report_id": breached["report_id"].to_numpy(), "book": breached["book"].to_numpy(),
            "commodity": "", "region": "", "limit_type": limit_type,
            "value_usd": breached[value].to_numpy(float),
            "limit_usd": breached[limit].to_numpy(float),
            "utilisation": breached[utilisation].to_numpy(float),
            "severity": np.where(breached[utilisation].to_numpy(float) > SEVERE_UTILISATION,
                                 "high", "medium"),
            "contract_type": "",
        }))
    return pd.concat(frames, ignore_index=True)


def _record_order(records: pd.DataFrame, trades: pd.DataFrame, risk_reports: pd.DataFrame
                  ) -> np.ndarray:
    """Row order by event date, record type, trade, report and regime, on integer keys (a
    trade's or report's row stands for its id: ids are numbered in row order)."""
    trade_row = pd.Index(trades["trade_id"]).get_indexer(records["trade_id"])
    report_row = pd.Index(risk_reports["report_id"]).get_indexer(records["report_id"])
    day = pd.to_datetime(records["event_date"], format="%Y-%m-%d").to_numpy().astype(np.int64)
    record_type = pd.Categorical(records["record_type"]).codes
    regime = pd.Categorical(records["regime"]).codes
    return np.lexsort((regime, report_row, trade_row, record_type, day))


def build_compliance_records(config: ETRMDataConfig, trades: pd.DataFrame,
                             risk_reports: pd.DataFrame, id_prefix: str = "CMP") -> pd.DataFrame:
    """Regulatory reports and limit breaches, ordered by event date."""
    records = pd.concat([_regulatory_reports(config, trades), _limit_breaches(risk_reports)],
                        ignore_index=True)
    records = records.iloc[_record_order(records, trades, risk_reports)].reset_index(drop=True)
    for column in ("record_type", "regime", "status", "event_date", "deadline",
                   "submission_date", "trade_id", "report_id", "book", "commodity", "region",
                   "limit_type", "severity", "contract_type"):
        records[column] = records[column].astype(object)
    records["days_late"] = records["days_late"].astype(np.int64)
    records.insert(0, "record_id", [f"{id_prefix}-{i:07d}" for i in range(1, len(records) + 1)])
    return records[COMPLIANCE_COLUMNS]
