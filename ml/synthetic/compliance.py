"""Compliance records that follow from the trades and the risk reports.

* Regulatory reporting, one record per reportable (trade, regime):
  REMIT: power, natural gas and LNG traded in Europe, the UK or the Nordics; standard contracts
  (futures, options) are due the next business day, non-standard ones (forwards, swaps) within
  REMIT_NON_STANDARD_DAYS calendar days. EMIR: futures, swaps and options traded in Europe, the
  UK or the Nordics, due the next business day. CFTC (Dodd-Frank swap data reporting): swaps and
  options traded in North America, due the next business day.
  A report is late with probability LATE_BASE_PROBABILITY, raised for trades booked in the last
  market hour and for options; late reports arrive 1 + Geometric(0.5) days after the deadline.
  Severity of a late report: high when more than 3 days late, else medium.
* Limit breaches, one record per breached limit of a risk report (regime "internal"); severity
  high when utilisation is above 125%, else medium.
"""
import numpy as np
import pandas as pd

from ml.synthetic.config import ETRMDataConfig
from ml.synthetic.trades import window_stream

REMIT_COMMODITIES = ("power", "natural_gas", "lng")
EUROPEAN_REGIONS = ("europe", "uk", "nordics")
REMIT_NON_STANDARD_DAYS = 30
LATE_BASE_PROBABILITY = 0.02
LATE_AFTER_HOURS_EXTRA = 0.05
LATE_OPTION_EXTRA = 0.03
AFTER_HOURS_FROM = "17:00:00"
SEVERE_DAYS_LATE = 3
SEVERE_UTILISATION = 1.25
_STREAM_NAMESPACE = 4

COMPLIANCE_COLUMNS = [
    "record_id", "record_type", "regime", "status", "event_date", "deadline", "submission_date",
    "days_late", "trade_id", "report_id", "book", "commodity", "region", "limit_type",
    "value_usd", "limit_usd", "utilisation", "severity"]


def reportable_regimes(trades: pd.DataFrame) -> dict:
    """Boolean masks of the trades each regime requires to be reported."""
    commodity, region = trades["commodity"], trades["region"]
    instrument = trades["instrument"]
    european = region.isin(EUROPEAN_REGIONS)
    return {
        "REMIT": (commodity.isin(REMIT_COMMODITIES) & european).to_numpy(),
        "EMIR": (instrument.isin(("future", "swap", "option")) & european).to_numpy(),
        "CFTC": (instrument.isin(("swap", "option")) & (region == "north_america")).to_numpy(),
    }


def _regulatory_reports(config: ETRMDataConfig, trades: pd.DataFrame) -> pd.DataFrame:
    rng = window_stream(config, _STREAM_NAMESPACE)
    n = len(trades)
    late_u, on_time_u, delay = rng.random(n), rng.random(n), rng.geometric(0.5, n)
    trade_day = trades["trade_date"].to_numpy().astype("datetime64[D]")
    time_of_day = trades["timestamp"].str.slice(11)
    is_option = (trades["instrument"] == "option").to_numpy()
    late_probability = (LATE_BASE_PROBABILITY
                        + LATE_AFTER_HOURS_EXTRA * (time_of_day >= AFTER_HOURS_FROM).to_numpy()
                        + LATE_OPTION_EXTRA * is_option)
    next_business_day = np.busday_offset(trade_day, 1, roll="forward")
    frames = []
    for regime, mask in reportable_regimes(trades).items():
        if regime == "REMIT":
            standard = trades["instrument"].isin(("future", "option")).to_numpy()
            deadline = np.where(standard, next_business_day,
                                trade_day + np.timedelta64(REMIT_NON_STANDARD_DAYS, "D"))
        else:
            deadline = next_business_day
        late = late_u < late_probability
        allowed_days = (deadline - trade_day).astype(np.int64)
        on_time_day = trade_day + np.floor(on_time_u * (allowed_days + 1)).astype(np.int64)
        submission = np.where(late, deadline + delay, on_time_day).astype("datetime64[D]")
        days_late = np.where(late, delay, 0).astype(np.int64)
        chosen = mask
        frames.append(pd.DataFrame({
            "record_type": "regulatory_report", "regime": regime,
            "status": np.where(late, "late", "on_time")[chosen],
            "event_date": trades["trade_date"].to_numpy()[chosen],
            "deadline": np.datetime_as_string(deadline[chosen], unit="D"),
            "submission_date": np.datetime_as_string(submission[chosen], unit="D"),
            "days_late": days_late[chosen],
            "trade_id": trades["trade_id"].to_numpy()[chosen], "report_id": "",
            "book": trades["book"].to_numpy()[chosen],
            "commodity": trades["commodity"].to_numpy()[chosen],
            "region": trades["region"].to_numpy()[chosen], "limit_type": "",
            "value_usd": trades["notional_usd"].to_numpy()[chosen], "limit_usd": np.nan,
            "utilisation": np.nan,
            "severity": np.where(days_late > SEVERE_DAYS_LATE, "high",
                                 np.where(late, "medium", "none"))[chosen],
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
        }))
    return pd.concat(frames, ignore_index=True)


def build_compliance_records(config: ETRMDataConfig, trades: pd.DataFrame,
                             risk_reports: pd.DataFrame, id_prefix: str = "CMP") -> pd.DataFrame:
    """Regulatory reports and limit breaches, ordered by event date."""
    records = pd.concat([_regulatory_reports(config, trades), _limit_breaches(risk_reports)],
                        ignore_index=True)
    records = records.sort_values(["event_date", "record_type", "trade_id", "report_id",
                                   "regime"], kind="mergesort").reset_index(drop=True)
    for column in ("record_type", "regime", "status", "event_date", "deadline",
                   "submission_date", "trade_id", "report_id", "book", "commodity", "region",
                   "limit_type", "severity"):
        records[column] = records[column].astype(object)
    records["days_late"] = records["days_late"].astype(np.int64)
    records.insert(0, "record_id", [f"{id_prefix}-{i:07d}" for i in range(1, len(records) + 1)])
    return records[COMPLIANCE_COLUMNS]
