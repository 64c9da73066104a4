"""Dashboard pages: server-side time per page on a home with 50 pipeline runs and 10,000 alerts.

    .venv/bin/python -m benchmarks.bench_dashboard [--runs 50] [--alerts 10000] [--windows 500]
        [--repeats 30] [--no-write]

The home is built first in a temporary folder: ML Metadata from the lineage benchmark's
hand-built store (tests/lineage_fixtures.StoreBuilder: ingest runs, and training runs pushing
a version each), models.config labelling the newest two versions stable and canary, the
alerts (monitoring store, each with log and email deliveries), monitoring windows with 20
features each and continuous-learning jobs. Each page is requested through Flask's WSGI test
client (the application's whole work, no socket), first once on a new application (cold:
nothing cached) and then `--repeats` times. The baseline in the same run is the model page
without the lineage cache (every view walks every version's lineage, as `etrm models` does).
"""
from __future__ import annotations

import argparse
import datetime as dt
import pathlib
import statistics
import tempfile
import time

from benchmarks.sections import heading, machine_line, progress, publish

GOAL_MS = 300.0


def build_home(root: pathlib.Path, runs: int, alerts: int, windows: int, jobs: int):
    from benchmarks.bench_lineage import build_store
    from ml.core import metadata
    from ml.core.home import Home
    from ml.core.registry import RISK_MODEL
    from ml.lifecycle.registry_view import pushed_versions
    from ml.lifecycle.store import LifecycleStore
    from ml.monitoring.alert_store import AlertStore
    from ml.monitoring.alerts import DriftAlert, DriftType
    from ml.monitoring.check_history import CheckHistory
    from ml.serving.model_config import register_pushed_version

    home = Home.resolve(root)
    build_store(home, runs)
    versions = pushed_versions(metadata.store_for(home), RISK_MODEL)
    for version in versions[-2:]:
        (home.serving_base(RISK_MODEL.serving_name) / str(version)).mkdir(parents=True)
        register_pushed_version(home.models_config_path, RISK_MODEL.serving_name,
                                home.serving_base(RISK_MODEL.serving_name), version)
    start = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    store = AlertStore(home.monitoring_dir / "alerts.sqlite")
    batch = [DriftAlert(DriftType.DATA_DRIFT, "warning", RISK_MODEL.serving_name,
                        f"feature_{index % 20}", "psi", 0.3, 0.25, f"feature_{index % 20} drifted",
                        timestamp=start + dt.timedelta(minutes=index), channels=("log", "email"))
             for index in range(alerts)]
    for offset in range(0, alerts, 1000):
        store.record_all(batch[offset:offset + 1000], cooldown_seconds=0)
    store.close()
    history = CheckHistory(home.monitoring_checks_db)
    for index in range(windows):
        history.record(RISK_MODEL.serving_name, start.timestamp() + index * 3600, {
            "serving_version": versions[-2], "requests": 1000,
            "features": [{"feature": f"feature_{f}", "psi": 0.01 * f, "psi_floor": 0.25,
                          "adjusted_p_value": 0.5, "drifted": False} for f in range(20)],
            "scores": {"mean": 0.3, "count": 1000, "quantiles": {
                "p05": 0.05, "p25": 0.2, "p50": 0.3, "p75": 0.4, "p95": 0.6}},
            "realised": {"roc_auc": 0.8}, "estimated": {"estimated_roc_auc": 0.79}})
    lifecycle = LifecycleStore(home.lifecycle_db)
    for index in range(jobs):
        job = lifecycle.trigger(RISK_MODEL.serving_name, "schedule", "cron",
                                f"2024-{1 + index // 28:02d}-{1 + index % 28:02d}", now=1000.0 + index)
        lifecycle.claim("bench", 600, now=1000.0 + index)
        lifecycle.finish(job.id, "bench", "succeeded", now=1500.0 + index, result={"reason": "ok"})
    return home, len(versions)


def time_pages(home, pages, repeats: int, cached: bool = True, warm: bool = False):
    from ml.dashboard import views
    from ml.dashboard.app import create_app
    from ml.dashboard.serving_health import ServingHealth

    app = create_app(home, admin_token=None, health=ServingHealth(None))
    client = app.test_client()
    results = {}
    if warm:
        app.extensions["etrm_dashboard_warm_up"].join()
    for name, url in pages.items():
        if not cached:
            app.extensions["etrm_dashboard"].cache = views.LineageCache()
        started = time.perf_counter()
        assert client.get(url).status_code == 200, url
        cold = time.perf_counter() - started
        samples = []
        for _ in range(repeats):
            if not cached:
                app.extensions["etrm_dashboard"].cache = views.LineageCache()
            started = time.perf_counter()
            response = client.get(url)
            samples.append(time.perf_counter() - started)
            assert response.status_code == 200, url
        samples.sort()
        results[name] = {"cold": cold * 1000, "median": statistics.median(samples) * 1000,
                         "p95": samples[int(0.95 * (len(samples) - 1))] * 1000}
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--alerts", type=int, default=10000)
    parser.add_argument("--windows", type=int, default=500)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    machine = machine_line()
    root = pathlib.Path(tempfile.mkdtemp(prefix="bench_dashboard_"))
    progress(f"building a home with {args.runs} runs, {args.alerts:,} alerts, {args.windows} "
             f"windows and {args.jobs} jobs in {root}")
    home, versions = build_home(root, args.runs, args.alerts, args.windows, args.jobs)
    pages = {"overview": "/", "model": "/models/risk_model", "jobs": "/jobs",
             "alerts": "/alerts", "model (JSON API)": "/api/models/risk_model",
             "overview fragment (live update)": "/?fragment=1"}
    progress(f"timing {len(pages)} pages, {args.repeats} repeats each")
    measured = time_pages(home, pages, args.repeats)
    after_warm_up = time_pages(home, {"model": pages["model"]}, 1, warm=True)["model"]
    baseline = time_pages(home, {"model": pages["model"]}, max(3, args.repeats // 5), cached=False)
    worst = max(row["p95"] for row in measured.values())
    lines = [heading("Dashboard: server-side time per page"), "",
             f"- Command: `.venv/bin/python -m benchmarks.bench_dashboard --runs {args.runs} "
             f"--alerts {args.alerts} --windows {args.windows} --jobs {args.jobs} "
             f"--repeats {args.repeats}`",
             f"- Machine: {machine}",
             f"- Home: {args.runs} pipeline runs in ML Metadata (SQLite; {versions} pushed "
             f"versions), {args.alerts:,} alerts with 2 deliveries each, {args.windows} "
             f"monitoring windows of 20 features, {args.jobs} jobs. Flask's WSGI test client, "
             "no socket. Cold: the first request of a new application, racing its start-up "
             "warm-up (the thread that walks every version's lineage once).", "",
             "| page | cold (ms) | median (ms) | p95 (ms) |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {name} | {row['cold']:.0f} | {row['median']:.1f} | {row['p95']:.1f} |"
              for name, row in measured.items()]
    lines.append(f"| model, first view once the start-up warm-up has walked every lineage | "
                 f"{after_warm_up['cold']:.0f} | {after_warm_up['median']:.1f} | "
                 f"{after_warm_up['p95']:.1f} |")
    row = baseline["model"]
    lines += [f"| baseline: model page without the lineage cache | {row['cold']:.0f} | "
              f"{row['median']:.1f} | {row['p95']:.1f} |", "",
              f"Goal: at most {GOAL_MS:.0f} ms per page: worst p95 {worst:.1f} ms "
              f"({'met' if worst <= GOAL_MS else 'missed'}); the lineage cache makes the model "
              f"page {row['median'] / measured['model']['median']:.1f}x faster than walking "
              f"every version's lineage per view."]
    publish("\n".join(lines), write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
