"""Request counts and latency histograms in Prometheus text format, named like TF Serving's."""
import bisect
import threading
from typing import Dict, List, Sequence, Tuple

REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
BATCH_SIZE = ":tensorflow:serving:batching_session:processed_batch_size"
PADDING_SIZE = ":tensorflow:serving:batching_session:padding_size"
REQUEST_LOG_RECORDS = "etrm_serving_request_log_records"

LATENCY_BUCKETS_MICROS = (50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000,
                          250000, 500000, 1000000, 2500000, 10000000)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

_HELP = {
    REQUEST_COUNT: ("counter", "Requests by model, version, API, entrypoint and status."),
    REQUEST_LATENCY: ("histogram", "Request latency in microseconds."),
    BATCH_SIZE: ("histogram", "Rows per batch run by the model, before padding."),
    PADDING_SIZE: ("histogram", "Padding rows added to reach an allowed batch size."),
    REQUEST_LOG_RECORDS: ("counter", "Sampled request log records, written or dropped."),
}
Labels = Tuple[Tuple[str, str], ...]


def _labels(**labels) -> Labels:
    return tuple(sorted((key, str(value)) for key, value in labels.items()))


def _format_labels(labels: Labels, extra: Sequence[Tuple[str, str]] = ()) -> str:
    pairs = list(labels) + list(extra)
    if not pairs:
        return ""
    escaped = (value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
               for _, value in pairs)
    return "{" + ",".join(f'{key}="{value}"' for (key, _), value in zip(pairs, escaped)) + "}"


def _request_labels(model_name: str, version, api: str, entrypoint: str,
                    status: str) -> Tuple[Labels, Labels]:
    """(request_count labels, request_latency labels)."""
    version = "" if version is None else version
    return (_labels(model_name=model_name, model_version=version, API=api,
                    entrypoint=entrypoint, status=status),
            _labels(model_name=model_name, model_version=version, API=api,
                    entrypoint=entrypoint))


class _Histogram:
    __slots__ = ("buckets", "counts", "total", "count")

    def __init__(self, buckets: Sequence[float]):
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        index = bisect.bisect_left(self.buckets, value)
        if index < len(self.counts):
            self.counts[index] += 1
        self.total += value
        self.count += 1


class ServingMetrics:
    """Thread-safe counters and histograms rendered at /monitoring/prometheus/metrics."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counters: Dict[str, Dict[Labels, float]] = {REQUEST_COUNT: {}, REQUEST_LOG_RECORDS: {}}
        self._histograms: Dict[str, Dict[Labels, _Histogram]] = {
            REQUEST_LATENCY: {}, BATCH_SIZE: {}, PADDING_SIZE: {}}
        self._buckets = {REQUEST_LATENCY: LATENCY_BUCKETS_MICROS, BATCH_SIZE: BATCH_SIZE_BUCKETS,
                         PADDING_SIZE: BATCH_SIZE_BUCKETS}
        # Label tuples per request kind, built once: sorting labels on every request showed up
        # in the batched server's per-request cost.
        self._request_labels: Dict[tuple, Tuple[Labels, Labels]] = {}

    def _increment(self, name: str, labels: Labels, amount: float = 1) -> None:
        with self._lock:
            series = self._counters[name]
            series[labels] = series.get(labels, 0) + amount

    def _observe(self, name: str, labels: Labels, value: float) -> None:
        with self._lock:
            self._observe_locked(name, labels, value)

    def _observe_locked(self, name: str, labels: Labels, value: float) -> None:
        series = self._histograms[name]
        histogram = series.get(labels)
        if histogram is None:
            histogram = series[labels] = _Histogram(self._buckets[name])
        histogram.observe(value)

    def record_request(self, model_name: str, version, api: str, entrypoint: str, status: str,
                       latency_seconds: float) -> None:
        key = (model_name, version, api, entrypoint, status)
        labels = self._request_labels.get(key)
        if labels is None:
            labels = self._request_labels[key] = _request_labels(*key)
        count_labels, latency_labels = labels
        with self._lock:
            counts = self._counters[REQUEST_COUNT]
            counts[count_labels] = counts.get(count_labels, 0) + 1
            self._observe_locked(REQUEST_LATENCY, latency_labels, latency_seconds * 1e6)

    def record_batch(self, model_name: str, version: int, rows: int, padded_rows: int) -> None:
        labels = _labels(model_name=model_name, model_version=version)
        self._observe(BATCH_SIZE, labels, rows)
        self._observe(PADDING_SIZE, labels, padded_rows - rows)

    def record_log_records(self, model_name: str, outcome: str, count: int) -> None:
        self._increment(REQUEST_LOG_RECORDS, _labels(model_name=model_name, outcome=outcome), count)

    def render(self) -> str:
        """The Prometheus text exposition format (version 0.0.4)."""
        lines: List[str] = []
        with self._lock:
            for name, series in self._counters.items():
                lines += [f"# HELP {name} {_HELP[name][1]}", f"# TYPE {name} counter"]
                for labels, value in sorted(series.items()):
                    lines.append(f"{name}{_format_labels(labels)} {value:g}")
            for name, series in self._histograms.items():
                lines += [f"# HELP {name} {_HELP[name][1]}", f"# TYPE {name} histogram"]
                for labels, histogram in sorted(series.items()):
                    cumulative = 0
                    for bound, count in zip(histogram.buckets, histogram.counts):
                        cumulative += count
                        lines.append(f"{name}_bucket{_format_labels(labels, [('le', f'{bound:g}')])}"
                                     f" {cumulative}")
                    lines.append(f"{name}_bucket{_format_labels(labels, [('le', '+Inf')])}"
                                 f" {histogram.count}")
                    lines.append(f"{name}_sum{_format_labels(labels)} {histogram.total:g}")
                    lines.append(f"{name}_count{_format_labels(labels)} {histogram.count}")
        return "\n".join(lines) + "\n"
