"""Synthetic ETRM (Energy Trading and Risk Management) data with known ground truth.

Quick start (the documented API)::

    config = ETRMDataConfig(num_trades=5000, num_risk_reports=200,
                            start_date=datetime(2023, 1, 1), end_date=datetime(2024, 12, 31))
    dataset = SyntheticETRMDataGenerator(config).generate_complete_dataset()

``dataset`` holds ``trades``, ``positions``, ``risk_reports``, ``compliance`` (DataFrames),
``text_descriptions`` (list of str), ``price_series`` (a ``PriceSeries``) and ``metadata``
(JSON-ready dict with ``commodities``, ``regions``, ``config`` and ``seed``).
``save_dataset(dataset, out_dir)`` writes trades.csv, positions.csv, risk_reports.csv,
compliance.csv, text_descriptions.txt, price_series.npz and metadata.json atomically.

How the pieces hang together (each built from the previous ones, never sampled on its own):

* prices (``ml.synthetic.prices``): daily mean-reverting log prices per commodity and region
  with winter/peak-season seasonality, power spikes and factor-correlated shocks, simulated
  forward from ``price_anchor_date`` with ``seed`` only, so windows generated separately share
  one history;
* trades (``ml.synthetic.trades``): sampled from (seed, start_date); price = the series mid on
  the trade day x (1 +- half spread + small noise), rounded to the commodity's tick;
  ``volatility`` = realised volatility of that series known on the trade day;
* positions = exact groupby of the trades per book, commodity, region and delivery period;
  risk reports = historical-simulation VaR/ES of the open positions (``ml.synthetic.portfolio``);
  compliance = REMIT/EMIR/CFTC reporting of the trades and limit breaches of the reports;
* texts are rendered from those records; every number is a record value
  (``ml.synthetic.text``).

Risk ground truth. Each trade has ``high_risk_probability`` = sigmoid(L) and
``high_risk`` ~ Bernoulli(high_risk_probability), where, with
s = (ln notional_usd - 14.0) / 1.2, v = volatility, t = tenor_months,
q = rating score (AAA 0, AA 1, A 2, BBB 3, BB 4, B 5, CCC 6), option/power/sell indicators and
c = counterparty_exposure_share::

    L = -4.4 + 1.2 s + 0.3 max(s - 0.5, 0)^2          size, convex for very large trades
             + 2.4 tanh((v - 0.5) / 0.25)             volatility regime
             + 0.5 q + 0.35 ln(1 + t)                 credit quality, tenor
             + 0.5 power + 0.3 option
             + 1.8 option * sigmoid((v - 0.6) / 0.08) options in high volatility
             + 0.35 max(q - 3, 0) * ln(1 + t)         sub-investment grade x long tenor
             + 0.8 option * sell                      short options
             + 0.9 max(ln(c / 0.04), 0)               concentration on a large counterparty

Base rate about 20%; the Bayes-optimal AUC (``roc_auc(labels=high_risk, scores=high_risk_probability)``) is
about 0.87-0.90 on 20k trades. ``high_risk_probability`` is ground truth, never a feature.

Drift scenarios (``DriftScenario``; all act from their ``start_date`` on, trades before it are
identical to those of the same config without the scenario):

* ``volatility_shock``: price volatility and spike sizes x (1 + magnitude);
* ``price_shift``: price levels x (1 + magnitude), permanent;
* ``mix_change``: commodity/region sampling weights (1 - m) baseline + m target
  (``target_mix``; default: the baseline ranking reversed);
* ``new_category``: a share ``magnitude`` of trades gets an unseen commodity (default
  hydrogen) or region (default latin_america);
* ``concept_change``: L becomes (1 - m) L + m L_alt with
  L_alt = -6.0 + 0.3 s - 1.0 tanh((v - 0.5) / 0.25) + 0.9 q + 0.8 ln(1 + t) - 0.6 power
  + 1.5 emissions + 0.8 sell (credit, tenor and emissions now drive the risk).

``shuffle_labels=True`` permutes ``high_risk`` across trades: a deliberately useless label for
checking that a bad model is refused.
"""
from datetime import datetime
from typing import Dict, Optional

import pandas as pd

from ml.core.metrics import roc_auc
from ml.synthetic.catalog import (COMMODITY_CATALOG, FX_USD_PER_UNIT, REGION_CATALOG,
                                  REPORTING_CURRENCY)
from ml.synthetic.compliance import build_compliance_records
from ml.synthetic.config import (DRIFT_KINDS, DriftScenario, ETRMDataConfig, as_day,
                                 trading_days)
from ml.synthetic.portfolio import aggregate_positions, compute_risk_reports
from ml.synthetic.prices import PriceSeries, generate_price_series
from ml.synthetic.storage import load_dataset, save_dataset
from ml.synthetic.text import RISK_SUMMARY_SECTIONS, TEXT_KINDS, render_text_records
from ml.synthetic.trades import TRADE_COLUMNS, sample_trades
from ml.synthetic.universe import Universe, build_universe

__all__ = [
    "DRIFT_KINDS", "DriftScenario", "ETRMDataConfig", "PriceSeries", "RISK_SUMMARY_SECTIONS",
    "SyntheticETRMDataGenerator", "TEXT_KINDS", "TRADE_COLUMNS", "load_dataset", "roc_auc",
    "save_dataset"]

FORMAT_VERSION = 1


def _bayes_optimal_auc(labels, probabilities) -> float:
    """NaN for a one-class dataset: the summary of a tiny dataset is still written."""
    try:
        return roc_auc(labels=labels, scores=probabilities)
    except ValueError:
        return float("nan")


class SyntheticETRMDataGenerator:
    """Generates one window of the synthetic ETRM world described in the module docs."""

    def __init__(self, config: Optional[ETRMDataConfig] = None):
        self.config = config if config is not None else ETRMDataConfig()
        self.config.validate()
        self._prices: Optional[PriceSeries] = None
        self._universe: Optional[Universe] = None

    @property
    def universe(self) -> Universe:
        """Counterparties, traders and books (from the seed alone)."""
        if self._universe is None:
            self._universe = build_universe(self.config)
        return self._universe

    @property
    def valuation_date(self) -> str:
        """Last trading day of the window: positions are marked on it."""
        return str(trading_days(self.config.start_date, self.config.end_date)[-1])

    def _id_prefix(self, kind: str) -> str:
        return f"{kind}-{as_day(self.config.start_date).astype(datetime):%Y%m%d}"

    def generate_price_series(self) -> PriceSeries:
        """Daily prices and realised volatility of the traded pairs, warm-up year included."""
        if self._prices is None:
            self._prices = generate_price_series(self.config)
        return self._prices

    def generate_trades(self) -> pd.DataFrame:
        """The trades table with labels (fast path: no positions, risk or texts)."""
        return sample_trades(self.config, self.generate_price_series(), self.universe)

    def generate_positions(self, trades: Optional[pd.DataFrame] = None) -> pd.DataFrame:
        """Net positions: the exact aggregation of the trades, marked at the valuation date."""
        trades = self.generate_trades() if trades is None else trades
        return aggregate_positions(trades, self.generate_price_series(), self.valuation_date,
                                   self._id_prefix("POS"))

    def generate_risk_reports(self, trades: Optional[pd.DataFrame] = None,
                              positions: Optional[pd.DataFrame] = None) -> pd.DataFrame:
        """Book-level VaR/ES, exposures, limit utilisation and breaches per report date."""
        trades = self.generate_trades() if trades is None else trades
        positions = self.generate_positions(trades) if positions is None else positions
        return compute_risk_reports(self.config, trades, positions, self.generate_price_series(),
                                    self.universe, self._id_prefix("RSK"))

    def generate_compliance(self, trades: Optional[pd.DataFrame] = None,
                            risk_reports: Optional[pd.DataFrame] = None) -> pd.DataFrame:
        """Regulatory reporting records and limit breaches."""
        trades = self.generate_trades() if trades is None else trades
        risk_reports = self.generate_risk_reports(trades) if risk_reports is None else risk_reports
        return build_compliance_records(self.config, trades, risk_reports,
                                        self._id_prefix("CMP"))

    def generate_text_records(self) -> pd.DataFrame:
        """Texts with kind, record_id and date (the same texts as the complete dataset)."""
        return self._build()["text_records"]

    def _build(self) -> dict:
        trades = self.generate_trades()
        positions = self.generate_positions(trades)
        risk_reports = self.generate_risk_reports(trades, positions)
        compliance = self.generate_compliance(trades, risk_reports)
        text_records = render_text_records(self.config, trades, risk_reports, compliance)
        return {"trades": trades, "positions": positions, "risk_reports": risk_reports,
                "compliance": compliance, "text_records": text_records}

    def generate_complete_dataset(self) -> dict:
        """All tables, texts, prices and metadata of the window."""
        parts = self._build()
        text_records = parts.pop("text_records")
        prices = self.generate_price_series()
        dataset = dict(parts)
        dataset["text_descriptions"] = text_records["text"].tolist()
        dataset["price_series"] = prices
        dataset["metadata"] = self._metadata(parts, text_records, prices)
        return dataset

    def save(self, dataset: dict, out_dir: str) -> Dict[str, str]:
        """Write the dataset's files atomically (see save_dataset)."""
        return save_dataset(dataset, out_dir)

    def _metadata(self, parts: dict, text_records: pd.DataFrame, prices: PriceSeries) -> dict:
        config, trades = self.config, parts["trades"]
        labels = trades["high_risk"].to_numpy()
        traded_commodities = list(dict.fromkeys(prices.commodities))
        traded_regions = list(dict.fromkeys(prices.regions))
        return {
            "format_version": FORMAT_VERSION,
            "generator": "ml.synthetic_data_generator.SyntheticETRMDataGenerator",
            "seed": config.seed,
            "config": config.to_dict(),
            "commodities": list(config.commodities),
            "regions": list(config.regions),
            "traded_commodities": traded_commodities,
            "traded_regions": traded_regions,
            "window": {"start_date": str(as_day(config.start_date)),
                       "end_date": str(as_day(config.end_date)),
                       "trading_days": int(len(trading_days(config.start_date,
                                                            config.end_date))),
                       "valuation_date": self.valuation_date},
            "price_history": {"anchor_date": str(as_day(config.price_anchor_date)),
                              "first_date": str(prices.dates[0]),
                              "last_date": str(prices.dates[-1]),
                              "series": list(prices.names)},
            "units": {c: COMMODITY_CATALOG[c].unit for c in traded_commodities},
            "price_decimals": {c: COMMODITY_CATALOG[c].price_decimals
                               for c in traded_commodities},
            "currencies": {r: REGION_CATALOG[r].currency for r in traded_regions},
            "fx_usd_per_unit": dict(FX_USD_PER_UNIT),
            "reporting_currency": REPORTING_CURRENCY,
            "counts": {"trades": len(trades), "positions": len(parts["positions"]),
                       "risk_reports": len(parts["risk_reports"]),
                       "compliance": len(parts["compliance"]),
                       "text_descriptions": len(text_records),
                       **{f"texts_{kind}": int((text_records["kind"] == kind).sum())
                          for kind in TEXT_KINDS}},
            "labels": {"high_risk_rate": float(labels.mean()),
                       "bayes_optimal_auc": _bayes_optimal_auc(labels,
                                                               trades["high_risk_probability"]),
                       "shuffled": config.shuffle_labels},
            "drift_scenarios": [s.to_dict() for s in config.drift_scenarios],
            "drift_kinds": list(DRIFT_KINDS),
            "risk_summary_sections": list(RISK_SUMMARY_SECTIONS),
            "trade_columns": list(TRADE_COLUMNS),
        }
