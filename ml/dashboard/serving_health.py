"""Serving health from the model server's Prometheus page: up, requests per second, p50/p99
latency, error rate and batch sizes per model, as rates between two scrapes.

Why a background scraper: a page must not wait on a server that is down (every view would
stall for the timeout), and a rate needs two scrapes some seconds apart. One thread scrapes
every `interval` seconds and keeps the last two; pages read the figures in memory.
"""
from __future__ import annotations

import threading
import time
import urllib.request
from typing import Callable, Dict, Optional

from ml.lifecycle.observations import histogram_quantile, metrics_delta, parse_request_metrics

BATCH_SIZE = ":tensorflow:serving:batching_session:processed_batch_size"


def fetch_page(url: str, timeout: float = 2.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode("utf-8")


def batch_buckets(text: str, model_name: str) -> Dict[float, float]:
    """Cumulative processed-batch-size buckets of one model (all versions summed)."""
    from prometheus_client.parser import text_string_to_metric_families

    buckets: Dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != BATCH_SIZE:
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket") and sample.labels.get("model_name") == model_name:
                bound = float(sample.labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + sample.value
    return buckets


def _summed(versions: Dict[int, Dict]) -> Dict:
    total = {"requests": 0.0, "errors": 0.0, "buckets": {}}
    for entry in versions.values():
        total["requests"] += entry["requests"]
        total["errors"] += entry["errors"]
        for bound, count in entry["buckets"].items():
            total["buckets"][bound] = total["buckets"].get(bound, 0.0) + count
    return total


def health_figures(before: Optional[tuple], after: tuple, model_name: str) -> Dict:
    """One model's figures between two scrapes (time, page text); totals only with one."""
    after_time, after_text = after
    now_versions = parse_request_metrics(after_text, model_name)
    figures: Dict = {"up": True, "scraped_at": after_time,
                     "requests_total": int(_summed(now_versions)["requests"]),
                     "requests_per_second": None, "error_rate": None,
                     "p50_ms": None, "p99_ms": None, "batch_p50": None, "batch_p99": None,
                     "versions": sorted(now_versions)}
    if before is None:
        return figures
    before_time, before_text = before
    elapsed = after_time - before_time
    delta = _summed(metrics_delta(parse_request_metrics(before_text, model_name), now_versions))
    if elapsed > 0:
        figures["requests_per_second"] = delta["requests"] / elapsed
    if delta["requests"] > 0:
        figures["error_rate"] = delta["errors"] / delta["requests"]
        for name, quantile in (("p50_ms", 0.5), ("p99_ms", 0.99)):
            micros = histogram_quantile(quantile, delta["buckets"])
            figures[name] = None if micros is None else micros / 1000.0
    then, now = batch_buckets(before_text, model_name), batch_buckets(after_text, model_name)
    batches = {bound: count - then.get(bound, 0.0) for bound, count in now.items()}
    if sum(1 for count in batches.values() if count > 0):
        figures["batch_p50"] = histogram_quantile(0.5, batches)
        figures["batch_p99"] = histogram_quantile(0.99, batches)
    return figures


class ServingHealth:
    """The last two scrapes of one metrics page, refreshed by a daemon thread."""

    def __init__(self, url: Optional[str], interval: float = 5.0,
                 fetch: Callable[[str], str] = fetch_page):
        self.url, self.interval, self._fetch = url, float(interval), fetch
        self._lock = threading.Lock()
        self._scrapes: list = []
        self._error: Optional[str] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "ServingHealth":
        if self.url and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="serving-health", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.scrape_once()
            self._stop.wait(self.interval)

    def scrape_once(self) -> None:
        try:
            text = self._fetch(self.url)
        except Exception as error:  # any failure is shown on the page; the scraper must live on
            with self._lock:
                self._error, self._scrapes = f"{self.url}: {getattr(error, 'reason', error)}", []
            return
        with self._lock:
            self._error = None
            self._scrapes = (self._scrapes + [(time.time(), text)])[-2:]

    def of(self, model_name: str) -> Dict:
        """The model's figures, or {"up": False, "reason": ...} when nothing answers."""
        with self._lock:
            scrapes, error = list(self._scrapes), self._error
        if not self.url:
            return {"up": False, "reason": "no model-server metrics URL configured"}
        if error is not None:
            return {"up": False, "reason": f"model server not reachable ({error})"}
        if not scrapes:
            return {"up": False, "reason": "not scraped yet"}
        try:
            return health_figures(scrapes[0] if len(scrapes) == 2 else None, scrapes[-1],
                                  model_name)
        except ValueError as error:
            return {"up": False, "reason": f"unreadable metrics page: {error}"}
