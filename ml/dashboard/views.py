"""What each dashboard page shows, as JSON-ready dicts read from the home: ML Metadata (versions,
lineage, runs), models.config (labels), lifecycle.sqlite (jobs, decisions), the alert stores,
the monitoring windows and the serving-health scraper.

Every reader says plainly what is missing (no ML Metadata yet, no jobs, a server that is down)
instead of failing. A pushed version's lineage never changes, so it is walked once per
process and kept (`LineageCache`); labels, jobs and alerts are read on every view.
"""
from __future__ import annotations

import json
import statistics
import threading
import time
from typing import Any, Dict, Iterator, List, Optional

from ml.core import lineage, metadata, registry
from ml.core.home import Home
from ml.core.registry import RegisteredModel
from ml.lifecycle.clock import iso
from ml.lifecycle.registry_view import version_row
from ml.lifecycle.status import job_view, label_versions, last_decision
from ml.monitoring.check_history import CheckHistory

ALERT_SOURCES = ("monitoring", "lifecycle")  # the two alert stores a home can hold
RECENT_JOBS = 50


def alert_db(home: Home, source: str):
    return home.monitoring_dir / "alerts.sqlite" if source == "monitoring" else home.lifecycle_alerts_db


class LineageCache:
    """describe_push per (model, version, push artifact id): a version re-pushed under the same
    number (a new home on the same server) gets a new id, so it is never served stale."""

    def __init__(self):
        self._lock = threading.Lock()
        self._described: Dict[tuple, Dict] = {}

    def describe(self, store, model_name: str, version: int, push_id: Optional[int] = None
                 ) -> Dict:
        if push_id is None:
            push_id = lineage.find_push(store, model_name, version).id
        key = (model_name, int(version), push_id)
        with self._lock:
            found = self._described.get(key)
        if found is None:
            found = lineage.describe_push(store, model_name, version)
            with self._lock:
                self._described[key] = found
        return found


class SummaryCache:
    """(pipeline, pushed version) -> the run summary's model figures (the Bayes-optimal AUC),
    re-reading only summaries that are new or changed since the last view."""

    def __init__(self):
        self._read: Dict[str, tuple] = {}

    def figures(self, runs_dir) -> Dict[tuple, Dict]:
        found = {}
        for path in sorted(runs_dir.glob("run-*.json")):
            try:
                stamp = path.stat().st_mtime_ns
                cached = self._read.get(str(path))
                if cached is None or cached[0] != stamp:
                    cached = (stamp, json.loads(path.read_text()))
                    self._read[str(path)] = cached
            except (OSError, ValueError):
                continue
            summary = cached[1]
            model = summary.get("model") if isinstance(summary, dict) else None
            if isinstance(model, dict) and model.get("pushed_version") is not None:
                found[(summary.get("pipeline"), int(model["pushed_version"]))] = model
        return found


class DashboardData:
    def __init__(self, home: Home, health, cache: Optional[LineageCache] = None):
        self.home, self.health = home, health
        self.cache = cache or LineageCache()
        self.summaries = SummaryCache()
        self._lifecycle_store = None

    # ML Metadata --------------------------------------------------------------------------

    def _with_store(self, read):
        """(read(store), None), or (None, why) when the home has no readable ML Metadata."""
        if not metadata.has_store(self.home):
            return None, f"no pipeline has run in this home yet ({self.home.metadata.describe()})"
        from ml.cli.metadata_reads import read_metadata

        return read_metadata(self.home, read)

    def _versions(self, store, model: RegisteredModel, labels: Dict[str, int]) -> List[Dict]:
        references = self.summaries.figures(self.home.runs_dir)
        rows = []
        for pushed in metadata.pushed_models(store, model.serving_name):
            version = int(pushed.custom_properties["pushed_version"].string_value)
            described = self.cache.describe(store, model.serving_name, version, pushed.id)
            row = version_row(model, described, labels)
            evaluation = described.get("evaluation") or {}
            summary = references.get((model.pipeline_name, version), {})
            row["reference"] = (
                {"name": "Bayes-optimal AUC", "value": summary.get("bayes_optimal_auc")}
                if model.blessing_metric == "auc" else
                {"name": "n-gram perplexity",
                 "value": (evaluation.get("ngram_metrics") or {}).get("perplexity")})
            rows.append(row)
        return rows

    def warm(self) -> None:
        """Walks every pushed version's lineage once (at start, on a thread), so the first
        view of a model page does not pay for all of them."""
        def read(store):
            for model in registry.MODELS:
                self._versions(store, model, {})

        self._with_store(read)

    # Pages --------------------------------------------------------------------------------

    def overview(self) -> Dict[str, Any]:
        from ml.lifecycle.store import OPEN_STATUSES

        store = self._lifecycle()
        alert_counts = self._alert_counts()
        models = []
        for model in registry.MODELS:
            labels = label_versions(self.home, model.serving_name)
            jobs = store.jobs(model.serving_name, limit=RECENT_JOBS) if store else []
            running = next((job for job in jobs if job.status in OPEN_STATUSES), None)
            models.append({
                "name": model.serving_name, "alias": model.spec_alias,
                "labels": labels.get("labels", {}), "labels_error": labels.get("error"),
                "health": self.health.of(model.serving_name),
                "open_alerts": alert_counts.get(model.serving_name, {}).get("open", 0),
                "job": self._job(running, jobs) if running else None,
                "last_decision": last_decision(store, model.serving_name) if store else None,
            })
        lease = store.loop_lease() if store else None
        return {"time": iso(time.time()), "home": str(self.home.root), "models": models,
                "loop": None if lease is None else {
                    "owner": lease["owner"], "alive": lease["expires"] >= time.time(),
                    "since": iso(lease["acquired_at"])}}

    def model(self, name: str, version: Optional[int] = None) -> Dict[str, Any]:
        model = registry.get_model(name)
        labels = label_versions(self.home, model.serving_name)

        def read(store):
            rows = self._versions(store, model, labels.get("labels", {}))
            chosen = version if version is not None else (
                labels.get("labels", {}).get("stable") or (rows[-1]["version"] if rows else None))
            graph = None
            if chosen is not None and any(row["version"] == chosen for row in rows):
                graph = self.cache.describe(store, model.serving_name, chosen)["graph"]
            elif chosen is not None:
                raise LookupError(f"{model.serving_name} has no pushed version {chosen}")
            return rows, chosen, graph

        found, error = self._with_store(read)
        rows, chosen, graph = found if found else ([], None, None)
        return {"name": model.serving_name, "alias": model.spec_alias,
                "blessing_metric": model.blessing_metric,
                "labels": labels.get("labels", {}), "labels_error": labels.get("error"),
                "versions": rows, "metadata_error": error, "lineage_version": chosen,
                "lineage_graph": graph, "health": self.health.of(model.serving_name),
                "windows": CheckHistory(self.home.monitoring_checks_db).windows(model.serving_name)}

    def jobs(self) -> Dict[str, Any]:
        store = self._lifecycle()
        if store is None:
            return {"queue": [], "running": [], "history": [], "registrations": {},
                    "empty": f"no continuous-learning jobs in this home yet "
                             f"({self.home.lifecycle_db} does not exist)"}
        jobs = store.jobs(limit=200)
        by_model: Dict[str, list] = {}
        for job in jobs:
            by_model.setdefault(job.model, []).append(job)
        views = [self._job(job, by_model[job.model]) for job in jobs]
        return {"queue": [v for v in views if v["status"] == "pending"],
                "running": [v for v in views if v["status"] == "running"],
                "history": [v for v in views if v["status"] not in ("pending", "running")],
                "registrations": {model: config.to_dict()
                                  for model, config in store.registrations().items()},
                "decisions": [{"time": iso(entry.time), "model": entry.model,
                               "action": entry.action, "reason": entry.reason}
                              for entry in reversed(store.history(limit=50))],
                "empty": None}

    def alerts(self, model: Optional[str] = None, limit: int = 200) -> Dict[str, Any]:
        model_name = registry.get_model(model).serving_name if model else None
        rows, counts = [], {}
        for source, alert_store in self._alert_stores():
            for entry in alert_store.listing(model_name, limit=limit):
                alert = entry["alert"]
                rows.append({"source": source, "id": entry["id"],
                             "time": alert.timestamp.isoformat(), "model": alert.model_name,
                             "type": alert.drift_type.value, "severity": alert.severity,
                             "feature": alert.feature, "metric": alert.metric,
                             "value": alert.value, "threshold": alert.threshold,
                             "message": alert.message, "deliveries": entry["deliveries"],
                             "acknowledged": entry["acknowledged"]})
            for (name, channel, status), count in alert_store.delivery_counts_by_model().items():
                if model_name is None or name == model_name:
                    counts.setdefault(name, {}).setdefault(channel, {})[status] = count
        rows.sort(key=lambda row: row["time"], reverse=True)
        return {"model": model_name, "alerts": rows[:limit], "delivery_counts": counts,
                "totals": self._alert_counts()}

    # Helpers ------------------------------------------------------------------------------

    def _lifecycle(self):
        """The home's lifecycle store once it exists (opened once: opening checks its schema
        in a write transaction, which a page view should not repeat)."""
        from ml.lifecycle.store import LifecycleStore

        if self._lifecycle_store is None and self.home.lifecycle_db.exists():
            self._lifecycle_store = LifecycleStore(self.home.lifecycle_db)
        return self._lifecycle_store

    def _alert_stores(self) -> Iterator[tuple]:
        """(source, open AlertStore) for each alert store the home has, closed after use."""
        from ml.monitoring.alert_store import AlertStore

        for source in ALERT_SOURCES:
            path = alert_db(self.home, source)
            if not path.exists():
                continue
            alert_store = AlertStore(path)
            try:
                yield source, alert_store
            finally:
                alert_store.close()

    def _alert_counts(self) -> Dict[str, Dict[str, int]]:
        totals: Dict[str, Dict[str, int]] = {}
        for _, alert_store in self._alert_stores():
            for name, counts in alert_store.counts_by_model().items():
                entry = totals.setdefault(name, {"total": 0, "open": 0})
                entry["total"] += counts["total"]
                entry["open"] += counts["open"]
        return totals

    @staticmethod
    def _job(job, same_model_jobs) -> Dict[str, Any]:
        """The job's view with elapsed seconds and, while it runs, an estimate of what is left
        (median duration of the model's earlier succeeded jobs)."""
        view = job_view(job)
        now = time.time()
        durations = [other.finished_at - other.started_at for other in same_model_jobs
                     if other.status == "succeeded" and other.started_at and other.finished_at]
        view["elapsed_s"] = (now - job.started_at if job.started_at and not job.finished_at
                             else (job.finished_at - job.started_at
                                   if job.started_at and job.finished_at else None))
        view["remaining_s"] = (max(0.0, statistics.median(durations) - view["elapsed_s"])
                               if durations and job.status == "running" and view["elapsed_s"]
                               is not None else None)
        return view
