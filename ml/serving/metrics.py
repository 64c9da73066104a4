"""Request counts and latency histograms through prometheus-client, named like TF Serving's.

Each server has its own CollectorRegistry (two servers in one process never share counts).
Label values come from a bounded set only: a model name that is not configured is counted
under UNKNOWN_MODEL, so requests naming arbitrary models cannot grow the page or the memory.
The page is written from the registry's samples in TF Serving's format (counters without
prometheus-client's `_total` suffix, which dashboards querying `:tensorflow:serving:*` do not
expect); collecting copies each metric's children under that metric's own short lock, so a
scrape never holds up requests for longer than a dictionary copy.
"""
import threading
from typing import Dict, FrozenSet, Iterable, List, Tuple

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.utils import floatToGoString

REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
BATCH_SIZE = ":tensorflow:serving:batching_session:processed_batch_size"
PADDING_SIZE = ":tensorflow:serving:batching_session:padding_size"
REQUEST_LOG_RECORDS = "etrm_serving_request_log_records"
UNKNOWN_MODEL = "<unknown>"

LATENCY_BUCKETS_MICROS = (50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000,
                          250000, 500000, 1000000, 2500000, 10000000)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
_REQUEST_LABELS = ("model_name", "model_version", "API", "entrypoint", "status")
_MODEL_LABELS = ("model_name", "model_version")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _value(value: float) -> str:
    """Counts as integers, as TF Serving writes them; other values as Go writes floats."""
    if float(value).is_integer() and abs(value) < 2 ** 53:
        return str(int(value))
    return floatToGoString(value)


def _format_labels(labels: Dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in sorted(labels.items())) + "}"


class ServingMetrics:
    """The server's metrics, rendered at /monitoring/prometheus/metrics."""

    def __init__(self, model_names: Iterable[str] = ()):
        self.registry = CollectorRegistry(auto_describe=False)
        self._models: FrozenSet[str] = frozenset(model_names)
        self._requests = Counter(REQUEST_COUNT, "Requests by model, version, API, entrypoint and "
                                 "status.", _REQUEST_LABELS, registry=self.registry)
        self._latency = Histogram(REQUEST_LATENCY, "Request latency in microseconds.",
                                  _REQUEST_LABELS[:-1], buckets=LATENCY_BUCKETS_MICROS,
                                  registry=self.registry)
        self._batch_size = Histogram(BATCH_SIZE, "Rows per batch run by the model, before "
                                     "padding.", _MODEL_LABELS, buckets=BATCH_SIZE_BUCKETS,
                                     registry=self.registry)
        self._padding = Histogram(PADDING_SIZE, "Padding rows added to reach an allowed batch "
                                  "size.", _MODEL_LABELS, buckets=BATCH_SIZE_BUCKETS,
                                  registry=self.registry)
        self._log_records = Counter(REQUEST_LOG_RECORDS, "Sampled request log records, written "
                                    "or dropped.", ("model_name", "outcome"),
                                    registry=self.registry)
        # Children per label tuple, looked up without the metric's lock (a dict read); the
        # set of keys is bounded by the configured models.
        self._children: Dict[tuple, Tuple] = {}
        self._children_lock = threading.Lock()

    def set_model_names(self, names: Iterable[str]) -> None:
        """The configured models: the only names that get their own label value."""
        self._models = frozenset(names)

    def _model(self, name: str) -> str:
        return name if name in self._models else UNKNOWN_MODEL

    def record_request(self, model_name: str, version, api: str, entrypoint: str, status: str,
                       latency_seconds: float) -> None:
        model = self._model(model_name)
        key = (model, "" if version is None or model == UNKNOWN_MODEL else str(version), api,
               entrypoint, status)
        children = self._children.get(key)
        if children is None:
            with self._children_lock:
                children = self._children.setdefault(
                    key, (self._requests.labels(*key), self._latency.labels(*key[:-1])))
        children[0].inc()
        children[1].observe(latency_seconds * 1e6)

    def record_batch(self, model_name: str, version: int, rows: int, padded_rows: int) -> None:
        model = self._model(model_name)
        labels = (model, str(version))
        self._batch_size.labels(*labels).observe(rows)
        self._padding.labels(*labels).observe(padded_rows - rows)

    def record_log_records(self, model_name: str, outcome: str, count: int) -> None:
        self._log_records.labels(self._model(model_name), outcome).inc(count)

    def render(self) -> str:
        """The Prometheus text exposition format (version 0.0.4), TF Serving's metric names."""
        lines: List[str] = []
        for family in self.registry.collect():
            lines += [f"# HELP {family.name} {family.documentation}",
                      f"# TYPE {family.name} {family.type}"]
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                name = family.name if family.type == "counter" else sample.name
                lines.append(f"{name}{_format_labels(sample.labels)} "
                             f"{_value(sample.value)}")
        return "\n".join(lines) + "\n"
