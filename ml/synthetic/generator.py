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

* prices (``ml.synthetic.prices``): spot prices and forward curves by delivery month for every
  commodity and region, in each market's quoting convention (``catalog.quote``: TTF in
  EUR/MWh, NBP in pence/therm, crude, coal and LNG in USD, power in local currency, one EUA
  for Europe and the Nordics). Hubs mean-revert around a long-term level, regions are
  cointegrated with their hub, gasoil, LNG and power are built from their inputs plus
  mean-reverting crack, premium and spark/dark spreads, spot power has spikes and (where the
  market has them) negative prices; volatility falls with time to delivery. Simulated from
  ``price_anchor_date`` with ``seed`` only, on the exchange calendar (``ml.synthetic.calendar``),
  so windows generated separately share one history;
* trades (``ml.synthetic.trades``): sampled from (seed, start_date) on exchange trading days;
  linear trades are priced off the curve for their delivery period (a strip's average for
  swaps of 1-24 months) at the ask for buys and the bid for sells; options have a strike
  (15-85 delta), put/call, an expiry the business day before delivery and a Black-76 premium
  (``ml.synthetic.options``); ``volatility`` = realised volatility of the delivery period's
  own forward, known on the trade day;
* positions = exact groupby of the monthly legs of the books' opening portfolio
  (``generate_opening_trades()``: ``num_positions`` trades from the year before the window)
  and the trades, valued at the valuation date, delivered months settled into realised P&L;
  risk reports = historical-simulation VaR/ES of the open legs on their own contracts' curve
  returns, options by delta and gamma, with limits reviewed monthly from data before the
  month (``ml.synthetic.portfolio``); compliance = REMIT/EMIR/CFTC reporting of the trades in
  business days of each regulator's calendar, and limit breaches of the reports;
* texts are rendered from those records; every number is a record value
  (``ml.synthetic.text``).

Risk ground truth (``ml.synthetic.risk_label``, where the formula and its calibration are
documented): ``high_risk_probability`` is the probability that the trade loses more than USD
150,000 within 10 trading days under the generator's own forward model (closed form for
linear trades, Black-76 revaluation for options), or that its counterparty defaults while the
replacement cost exceeds that amount (rating-based default probabilities, scaled up for
concentrated counterparties); ``high_risk`` ~ Bernoulli(high_risk_probability). Base rate
about 13%, Bayes-optimal AUC (``roc_auc(labels=high_risk, scores=high_risk_probability)``)
about 0.88 on 200k trades. ``high_risk_probability`` is ground truth, never a feature;
``risk_label.risk_features_from_trades`` recomputes it from the trades table exactly.

Drift scenarios (``DriftScenario``; all act from their ``start_date`` on: every table row
dated before it, and the prices before it, are identical to those of the same config
without the scenario):

* ``volatility_shock``: the innovations of prices, spreads, bases and spikes x
  (1 + magnitude); consequences: wider trade volatility, option premia, VaR (so more limit
  breaches from the next monthly review on) and more high-risk labels;
* ``price_shift``: price levels x (1 + magnitude), reached linearly over ``ramp_days``
  trading days; consequences: notionals and so the labels of large trades move with the
  level; with ramp_days 0 the jump is also a one-day return that lifts realised volatility
  for 20 days;
* ``mix_change``: commodity/region sampling weights (1 - m) baseline + m target
  (``target_mix``; default: the baseline ranking reversed);
* ``new_category``: a share ``magnitude`` of trades gets an unseen commodity (default
  hydrogen) or region (default latin_america), priced off its own curve;
* ``concept_change``: the outcome behind the label changes: logit p = (1 - m) logit p +
  m logit p_alt, where p_alt is the counterparty's default within the exposure horizon
  (default probabilities x 10, whatever the trade's size): rating, concentration and tenor
  drive the risk instead of size and volatility; the features do not change.

``shuffle_labels=True`` permutes ``high_risk`` across trades: a deliberately useless label for
checking that a bad model is refused.
"""
from datetime import datetime
from typing import Dict, Optional

import pandas as pd

from ml.core.metrics import roc_auc
from ml.synthetic.catalog import FX_USD_PER_UNIT, REPORTING_CURRENCY, quote
from ml.synthetic.compliance import build_compliance_records
from ml.synthetic.config import (DRIFT_KINDS, DriftScenario, ETRMDataConfig, as_day,
                                 trading_days)
from ml.synthetic.portfolio import (Portfolio, aggregate_positions, build_portfolio,
                                    compute_risk_reports)
from ml.synthetic.prices import PriceSeries, generate_price_series
from ml.synthetic.storage import load_dataset, save_dataset
from ml.synthetic.text import RISK_SUMMARY_SECTIONS, TEXT_KINDS, render_text_records
from ml.synthetic.trades import TRADE_COLUMNS, sample_opening_trades, sample_trades
from ml.synthetic.universe import Universe, build_universe

__all__ = [
    "DRIFT_KINDS", "DriftScenario", "ETRMDataConfig", "PriceSeries", "RISK_SUMMARY_SECTIONS",
    "SyntheticETRMDataGenerator", "TEXT_KINDS", "TRADE_COLUMNS", "load_dataset", "roc_auc",
    "save_dataset"]

FORMAT_VERSION = 2


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
        self._opening: Optional[pd.DataFrame] = None
        self._parts: Optional[dict] = None
        self._portfolio_of: Optional[tuple] = None

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

    def generate_opening_trades(self) -> pd.DataFrame:
        """The books' opening portfolio: num_positions trades of the year before start_date,
        each still delivering on it (ids OPN-...; not part of the trades table)."""
        if self._opening is None:
            self._opening = sample_opening_trades(self.config, self.generate_price_series(),
                                                  self.universe)
        return self._opening

    def _portfolio(self, trades: pd.DataFrame) -> Portfolio:
        """The opening portfolio and the trades split into monthly legs, once per trades
        table (positions and risk reports both read them)."""
        if self._portfolio_of is None or self._portfolio_of[0] is not trades:
            self._portfolio_of = (trades, build_portfolio(
                trades, self.generate_price_series(), self.universe.book_names,
                self.generate_opening_trades()))
        return self._portfolio_of[1]

    def generate_positions(self, trades: Optional[pd.DataFrame] = None) -> pd.DataFrame:
        """Net positions: the exact aggregation of the opening portfolio's and the trades'
        monthly legs, valued at the valuation date."""
        trades = self.generate_trades() if trades is None else trades
        return aggregate_positions(trades, self.generate_price_series(), self.valuation_date,
                                   self.universe.book_names, self.generate_opening_trades(),
                                   self._id_prefix("POS"), portfolio=self._portfolio(trades))

    def generate_risk_reports(self, trades: Optional[pd.DataFrame] = None,
                              positions: Optional[pd.DataFrame] = None) -> pd.DataFrame:
        """Book-level VaR/ES, exposures, limit utilisation and breaches per report date."""
        trades = self.generate_trades() if trades is None else trades
        positions = self.generate_positions(trades) if positions is None else positions
        return compute_risk_reports(self.config, trades, positions, self.generate_price_series(),
                                    self.universe, self.generate_opening_trades(),
                                    self._id_prefix("RSK"), portfolio=self._portfolio(trades))

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

    def generate_training_texts(self) -> pd.DataFrame:
        """generate_text_records with each risk summary in the form the report language model
        learns: its record's prompt, then the summary with the record's figures as slots."""
        parts = self._build()
        return render_text_records(self.config, parts["trades"], parts["risk_reports"],
                                   parts["compliance"], conditioned=True)

    def _build(self) -> dict:
        if self._parts is None:
            self._parts = self._build_parts()
        return dict(self._parts)

    def _build_parts(self) -> dict:
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
        kind_counts = text_records["kind"].value_counts()  # one pass, not a compare per kind
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
            "quotes": {name: {"currency": q.currency, "unit": q.unit,
                              "price_decimals": q.price_decimals}
                       for name, q in ((f"{c}/{r}", quote(c, r))
                                       for c, r in zip(prices.commodities, prices.regions))},
            "forward_months": int(prices.forwards.shape[2]),
            "fx_usd_per_unit": dict(FX_USD_PER_UNIT),
            "reporting_currency": REPORTING_CURRENCY,
            "counts": {"trades": len(trades), "opening_trades": len(self.generate_opening_trades()),
                       "positions": len(parts["positions"]),
                       "risk_reports": len(parts["risk_reports"]),
                       "compliance": len(parts["compliance"]),
                       "text_descriptions": len(text_records),
                       **{f"texts_{kind}": int(kind_counts.get(kind, 0))
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
