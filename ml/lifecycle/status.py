"""What continuous learning is doing, as one JSON-ready dict (get_pipeline_status, `etrm
continuous status`): registrations with their configs and next cron run, current and recent
jobs, the versions behind each serving label, the canary under analysis and the guard after a
promotion (from the deployments table), recent alerts, the last decision and why.

Read-only and import-light (no TensorFlow), so a second process can ask while a loop runs.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from ml.core.home import Home
from ml.lifecycle.canary_analysis import PASS
from ml.lifecycle.clock import Clock, iso
from ml.lifecycle.deployment_store import Deployment, DeploymentStore
from ml.lifecycle.loop import next_scheduled_run
from ml.lifecycle.settings import ContinuousSettings
from ml.lifecycle.store import OPEN_STATUSES, AuditEntry, Job, LifecycleStore
from ml.monitoring.alerts import json_ready


def pipeline_status(home: Home, store: LifecycleStore, clock: Clock,
                    settings: ContinuousSettings, recent: int = 10) -> Dict[str, Any]:
    now = clock.now()
    lease = store.loop_lease()
    deployments = DeploymentStore(store.path)
    models = []
    for model, config in store.registrations().items():
        jobs = store.jobs(model, limit=recent)
        current = next((job for job in jobs if job.status in OPEN_STATUSES), None)
        models.append({
            "model": model, "config": config.to_dict(),
            "next_run": iso(next_scheduled_run(store, model, config, now)),
            "current_job": job_view(current) if current else None,
            "recent_jobs": [job_view(job) for job in jobs],
            "labels": label_versions(home, model),
            "canary": canary_view(deployments.in_phase(model, "canary"), settings),
            "guard": guard_view(deployments.guarded(model), settings),
            "last_decision": last_decision(store, model),
        })
    return json_ready({
        "home": str(home.root), "time": iso(now),
        "loop": {"owner": lease["owner"], "alive": lease["expires"] >= now,
                 "since": iso(lease["acquired_at"]), "lease_expires": iso(lease["expires"])}
        if lease else None,
        "models": models,
        "alerts": recent_alerts(home.monitoring_dir / "alerts.sqlite", recent),
        "lifecycle_alerts": recent_alerts(home.lifecycle_alerts_db, recent),
        "last_decision": last_decision(store),
    })


def job_view(job: Job) -> Dict[str, Any]:
    result = job.result
    return {
        "id": job.id, "model": job.model, "status": job.status, "attempt": job.attempt,
        "failures": job.failures, "window_end": job.window_end, "window": result.get("window"),
        "triggers": [{"kind": t["kind"], "reason": t["reason"], "time": iso(t["time"])}
                     for t in job.triggers],
        "progress": result.get("progress"), "error": job.error,
        "pushed_version": result.get("pushed_version"), "blessed": result.get("blessed"),
        "reason": result.get("reason"), "steps": sorted(result.get("steps", {})),
        "created": iso(job.created_at),
        "started": iso(job.started_at) if job.started_at else None,
        "finished": iso(job.finished_at) if job.finished_at else None,
        "not_before": iso(job.not_before) if job.not_before else None,
        "lease_owner": job.lease_owner,
    }


def _traffic(intervals: List[Dict[str, Any]], side: str) -> Dict[str, int]:
    return {name: sum(int(item.get(side, {}).get(name) or 0) for item in intervals)
            for name in ("requests", "errors")}


def canary_view(deployment: Optional[Deployment], settings: ContinuousSettings
                ) -> Optional[Dict[str, Any]]:
    """The canary under analysis: intervals analysed against the number the verdict needs,
    the traffic both versions saw in them, the running verdict (None before the first
    interval). The loop's own required count, stored with the verdict, wins over `settings`
    (the status may run with other settings than the loop)."""
    if deployment is None:
        return None
    intervals = deployment.intervals
    canary, stable = _traffic(intervals, "canary"), _traffic(intervals, "stable")
    seen = canary["requests"] + stable["requests"]
    required = deployment.figures.get("figures", {}).get("required_intervals",
                                                         settings.canary_intervals)
    stable_version = (intervals[-1].get("stable", {}).get("version") if intervals
                      else deployment.previous_stable)
    return {
        "version": deployment.version, "stable_version": stable_version,
        "job_id": deployment.job_id, "started": iso(deployment.started_at),
        "canary_share": settings.canary_share,
        "observed_share": canary["requests"] / seen if seen else None,
        "intervals_analysed": len(intervals),
        "intervals_with_traffic": sum(item.get("status") == PASS for item in intervals),
        "canary_intervals": int(required),
        "next_interval_ends": iso(deployment.started_at
                                  + (len(intervals) + 1) * settings.interval_seconds),
        "canary": canary, "stable": stable,
        "verdict": deployment.verdict, "reasons": deployment.figures.get("reasons", []),
    }


def guard_view(deployment: Optional[Deployment], settings: ContinuousSettings
               ) -> Optional[Dict[str, Any]]:
    """The guard of the promoted version: intervals its checks covered of `guard_intervals`,
    the last check, and when it ends (after guard_intervals once judged on outcomes, at the
    latest max_outcome_wait_intervals later on estimates). None when nothing is guarded (the
    first version has nothing to compare with)."""
    from ml.lifecycle.canary_analysis import AnalysisThresholds

    if deployment is None or deployment.previous_stable is None:
        return None
    interval, window = settings.interval_seconds, int(settings.guard_intervals)
    promoted = deployment.promoted_at
    last = deployment.guard_checks[-1] if deployment.guard_checks else None
    checked = round((last["end"] - promoted) / interval) if last and "end" in last else 0
    return {
        "version": deployment.version, "against_version": deployment.previous_stable,
        "promoted": iso(promoted), "intervals_checked": min(int(checked), window),
        "guard_intervals": window,
        "last_check": {"status": last.get("status"), "basis": last.get("basis"),
                       "reasons": last.get("reasons", []),
                       "time": iso(last["checked_at"]) if "checked_at" in last else None}
        if last else None,
        "ends": iso(promoted + window * interval),
        "ends_at_latest": iso(promoted + (window + AnalysisThresholds().max_outcome_wait_intervals)
                              * interval),
    }


def audit_view(entry: AuditEntry) -> Dict[str, Any]:
    return {"time": iso(entry.time), "model": entry.model, "action": entry.action,
            "reason": entry.reason, "figures": entry.figures, "job_id": entry.job_id}


def label_versions(home: Home, model: str) -> Dict[str, Any]:
    """{"labels": {label: version}, "versions": [...]} from models.config, or {"error": ...}."""
    from ml.serving.model_config import find_model_config, read_model_server_config

    try:
        config = read_model_server_config(home.models_config_path)
        entry = find_model_config(config, model)
    except KeyError:
        return {"labels": {}, "versions": []}
    except Exception as error:  # a malformed models.config is shown, not raised, in a status
        return {"error": f"{home.models_config_path}: {type(error).__name__}: {error}"}
    versions = sorted(int(v) for v in entry.model_version_policy.specific.versions)
    return {"labels": {label: int(version) for label, version in sorted(entry.version_labels.items())},
            "versions": versions}


def recent_alerts(path, limit: int) -> List[Dict[str, Any]]:
    """The newest alerts of an alert store (none when it does not exist yet)."""
    if not path.exists():
        return []
    from ml.monitoring.alert_store import AlertStore

    store = AlertStore(path)
    try:
        alerts = store.history(limit=limit)
    finally:
        store.close()
    return [{"time": alert.timestamp.isoformat(), "model": alert.model_name,
             "type": alert.drift_type.value, "severity": alert.severity,
             "feature": alert.feature, "metric": alert.metric, "message": alert.message}
            for alert in alerts]


def last_decision(store: LifecycleStore, model: Optional[str] = None) -> Optional[Dict[str, Any]]:
    """The newest audit entry (of one model): what was decided last, and why."""
    entries = store.history(model, limit=1)
    return audit_view(entries[-1]) if entries else None
