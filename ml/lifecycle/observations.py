"""Where canary analysis and the guard get their VersionObservations from.

An observation source is any callable `source(model_name, version, start, end)` returning a
VersionObservation for [start, end) (epoch seconds). The default, `LoggedObservations`, reads
what the real server leaves behind, so the simulation runs through it unchanged:

- predictions: the home's request logs (`model_version`, `prediction/risk_score`), placed in
  time by `timestamp_micros` or, for a replay whose server runs on wall time while the loop
  runs on a simulated clock, by the logged `trade_date`;
- outcomes: `ml.synthetic.outcomes.realised_labels` with the generator settings recorded in
  ML Metadata on the training Examples, known only for trades older than `label_delay_seconds`
  (outcomes arrive later than predictions);
- requests, errors, latency: deltas between scrapes of the server's Prometheus page
  (`PrometheusCounts`, scraped by the manager at each step and stored in the home's
  lifecycle database), else the logged rows as requests and no error or latency figures (the
  log holds only successful, sampled requests).
"""
from __future__ import annotations

import datetime as dt
import math
import pathlib
import urllib.request
from typing import Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np
import pandas as pd

from ml.lifecycle.canary_analysis import VersionObservation

REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
SCORE_ALIAS = "risk_score"
TIME_BASES = ("timestamp", "trade_date")


def parse_request_metrics(text: str, model_name: str) -> Dict[int, Dict]:
    """Per version of model_name: requests, errors (status other than OK) and the cumulative
    latency buckets (microseconds) of one scrape of /monitoring/prometheus/metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    versions: Dict[int, Dict] = {}

    def entry(labels) -> Optional[Dict]:
        if labels.get("model_name") != model_name or not labels.get("model_version", "").isdigit():
            return None
        return versions.setdefault(int(labels["model_version"]),
                                   {"requests": 0.0, "errors": 0.0, "buckets": {}})

    for family in text_string_to_metric_families(text):
        if family.name == REQUEST_COUNT:
            for sample in family.samples:
                found = entry(sample.labels)
                if found is not None:
                    found["requests"] += sample.value
                    if sample.labels.get("status") != "OK":
                        found["errors"] += sample.value
        elif family.name == REQUEST_LATENCY:
            for sample in family.samples:
                found = entry(sample.labels)
                if found is not None and sample.name.endswith("_bucket"):
                    bound = float(sample.labels["le"])
                    found["buckets"][bound] = found["buckets"].get(bound, 0.0) + sample.value
    return versions


def metrics_delta(before: Mapping[int, Dict], after: Mapping[int, Dict]) -> Dict[int, Dict]:
    """What happened between two scrapes (a server restart resets counters: then `after`)."""
    delta = {}
    for version, now in after.items():
        then = before.get(version, {"requests": 0.0, "errors": 0.0, "buckets": {}})
        if now["requests"] < then["requests"]:
            then = {"requests": 0.0, "errors": 0.0, "buckets": {}}
        delta[version] = {
            "requests": now["requests"] - then["requests"],
            "errors": now["errors"] - then["errors"],
            "buckets": {bound: count - then["buckets"].get(bound, 0.0)
                        for bound, count in now["buckets"].items()}}
    return delta


def histogram_quantile(quantile: float, buckets: Mapping[float, float]) -> Optional[float]:
    """Prometheus' histogram_quantile: linear inside the bucket holding the rank."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = quantile * buckets[bounds[-1]]
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            inside = count - lower_count
            share = (rank - lower_count) / inside if inside > 0 else 1.0
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return lower_bound


def snapshot_retention(settings) -> float:
    """Seconds of scrapes to keep: the longer of the canary analysis and the guard window,
    plus the intervals either may wait for outcomes (AnalysisThresholds'
    max_outcome_wait_intervals), plus one interval of margin."""
    from ml.lifecycle.canary_analysis import AnalysisThresholds

    longest = max(int(settings.canary_intervals), int(settings.guard_intervals))
    waits = AnalysisThresholds().max_outcome_wait_intervals
    return (longest + waits + 1) * float(settings.interval_seconds)


class PrometheusCounts:
    """Request counts, errors and latency per model version between scrapes of the server's
    Prometheus page (the one `etrm serve --monitoring_config_file` serves, as TF Serving does).

    `scrape(now, model_name)` stores a snapshot of the model's counters in the home's lifecycle
    database (`MetricSnapshots`), so a restarted loop keeps its predecessor's baseline;
    `counts(model_name, version, start, end)` is the delta between the last snapshots taken at
    or before start and end. Snapshots older than `snapshot_retention(settings)` are pruned at
    each scrape. One instance serves every model of the server.
    """

    def __init__(self, url: str, home, settings=None,
                 fetch: Optional[Callable[[str], str]] = None):
        from ml.core.home import Home
        from ml.lifecycle.metrics_store import MetricSnapshots
        from ml.lifecycle.settings import ContinuousSettings

        self.url = url
        self.retention_seconds = snapshot_retention(settings or ContinuousSettings())
        self._fetch = fetch or (lambda address: urllib.request.urlopen(address, timeout=10)
                                .read().decode("utf-8"))
        home = home if isinstance(home, Home) else Home.resolve(home)
        self.snapshots = MetricSnapshots(home.lifecycle_db)

    def scrape(self, now: float, model_name: str) -> None:
        self.snapshots.add(model_name, now,
                           parse_request_metrics(self._fetch(self.url), model_name),
                           self.retention_seconds)

    def counts(self, model_name: str, version: int, start: float, end: float
               ) -> Optional[Tuple[int, int, Optional[float], Optional[float]]]:
        """(requests, errors, p50 ms, p95 ms), or None without a snapshot at each bound."""
        before = self.snapshots.at(model_name, start)
        after = self.snapshots.at(model_name, end)
        if before is None or after is None:
            return None
        found = metrics_delta(before, after).get(int(version))
        if found is None:
            return 0, 0, None, None
        p50, p95 = (histogram_quantile(q, found["buckets"]) for q in (0.5, 0.95))
        return (int(round(found["requests"])), int(round(found["errors"])),
                None if p50 is None else p50 / 1000.0, None if p95 is None else p95 / 1000.0)


def _day_start(day: str) -> float:
    moment = dt.datetime.strptime(str(day)[:10], "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)
    return moment.timestamp()


def _day_time(trade_hour: float) -> Callable[[str], float]:
    """A trade's time from its trade_date; NaN (in no window) for rows without one, such as
    a client's probe of the served version."""
    def place(day) -> float:
        if day is None or (isinstance(day, float) and math.isnan(day)) or not str(day).strip():
            return math.nan
        return _day_start(day) + trade_hour * 3600.0
    return place


class LoggedObservations:
    """The default observation source: request logs, regenerated outcomes, metrics deltas."""

    def __init__(self, home, clock=None, time_basis: str = "timestamp",
                 label_delay_seconds: float = 0.0, counts: Optional[PrometheusCounts] = None,
                 generator_settings: Optional[Mapping] = None, trade_hour: float = 12.0):
        """`trade_hour` (UTC) places a trade in its trade_date's day with time_basis
        "trade_date": the hour the replay sends that day's trades, so an interval starting at
        a push in the morning holds that day's canary traffic."""
        if time_basis not in TIME_BASES:
            raise ValueError(f"time_basis must be one of {TIME_BASES}, got {time_basis!r}")
        if not 0 <= trade_hour < 24:
            raise ValueError(f"trade_hour must lie in [0, 24), got {trade_hour}")
        self.trade_hour = float(trade_hour)
        if label_delay_seconds < 0:
            raise ValueError(f"label_delay_seconds must be >= 0, got {label_delay_seconds}")
        self.home = home
        self.clock = clock
        self.time_basis = time_basis
        self.label_delay_seconds = float(label_delay_seconds)
        self.counts = counts
        self._settings = dict(generator_settings) if generator_settings is not None else None
        self._frames: Dict[Tuple[str, int, float], Tuple[pd.DataFrame, List[bytes]]] = {}
        self._records: List[bytes] = []
        self._labels: Dict[str, float] = {}

    def _log_frame(self, model_name: str) -> pd.DataFrame:
        from ml.core.example_tables import records_to_frame
        from ml.core.request_log import (MODEL_VERSION_FEATURE, TIMESTAMP_FEATURE,
                                         iter_log_records, log_files, prediction_column)
        from ml.synthetic.outcomes import TRADE_DATE, TRADE_ID

        columns = [MODEL_VERSION_FEATURE, TIMESTAMP_FEATURE, TRADE_ID, TRADE_DATE,
                   prediction_column(SCORE_ALIAS)]
        frames, records = [], []
        for path in log_files(self.home.serving_log_dir(model_name)):
            stat = pathlib.Path(path).stat()
            key = (str(path), stat.st_size, stat.st_mtime)
            if key not in self._frames:
                file_records = list(iter_log_records([path]))
                self._frames[key] = (records_to_frame(file_records, columns), file_records)
            frame, file_records = self._frames[key]
            frames.append(frame)
            records.extend(file_records)
        if not frames:
            self._records = []
            return pd.DataFrame({**{name: [] for name in columns}, "record": []})
        frame = pd.concat(frames, ignore_index=True)
        # Row i of the frame is records[i]: a shadow replay sends the logged request itself.
        frame["record"] = np.arange(len(frame))
        self._records = records
        frame["time"] = (frame[TIMESTAMP_FEATURE].astype(float) / 1e6
                         if self.time_basis == "timestamp"
                         else frame[TRADE_DATE].map(_day_time(self.trade_hour)))
        return frame.rename(columns={MODEL_VERSION_FEATURE: "model_version",
                                     prediction_column(SCORE_ALIAS): "score"})

    def _generator_settings(self, model_name: str) -> Optional[Dict]:
        if self._settings is None:
            from ml.core import metadata

            if not metadata.has_store(self.home):
                return None
            try:
                self._settings = metadata.training_reference(
                    metadata.store_for(self.home), model_name).generator_settings
            except LookupError:
                return None
        return self._settings

    def _outcomes(self, model_name: str, rows: pd.DataFrame, now: Optional[float]) -> np.ndarray:
        from ml.synthetic.outcomes import TRADE_ID, realised_labels

        labels = np.full(len(rows), np.nan)
        due = rows["time"].to_numpy(float) < (now - self.label_delay_seconds) \
            if now is not None else np.ones(len(rows), dtype=bool)
        if not due.any():
            return labels
        wanted = rows.loc[due]
        unknown = wanted.loc[~wanted[TRADE_ID].isin(self._labels)]
        settings = self._generator_settings(model_name)
        if len(unknown) and settings is not None:
            found = realised_labels(unknown, settings)
            self._labels.update({trade: float(label) for trade, label
                                 in zip(unknown[TRADE_ID], found) if pd.notna(label)})
        labels[due] = [self._labels.get(trade, np.nan) for trade in wanted[TRADE_ID]]
        return labels

    def _rows(self, model_name: str, version: int, start: float, end: float) -> pd.DataFrame:
        frame = self._log_frame(model_name)
        return frame.loc[(frame["model_version"] == int(version)) & (frame["time"] >= start)
                         & (frame["time"] < end)].dropna(subset=["score"])

    def logged_requests(self, model_name: str, version: int, start: float, end: float
                        ) -> Tuple[np.ndarray, List[bytes]]:
        """The version's logged scores in [start, end) and, aligned, the logged tf.Examples
        (request features plus the log's own columns, which a model's parsing ignores)."""
        rows = self._rows(model_name, version, start, end)
        return (rows["score"].to_numpy(float),
                [self._records[int(index)] for index in rows["record"]])

    def __call__(self, model_name: str, version: int, start: float, end: float
                 ) -> VersionObservation:
        rows = self._rows(model_name, version, start, end)
        now = self.clock.now() if self.clock is not None else None
        labels = self._outcomes(model_name, rows, now) if len(rows) else np.array([])
        observation = VersionObservation(int(version), len(rows), 0, None, None,
                                         rows["score"].to_numpy(float), labels)
        counted = (self.counts.counts(model_name, version, start, end)
                   if self.counts is not None else None)
        return observation.with_counts(*counted) if counted is not None else observation
