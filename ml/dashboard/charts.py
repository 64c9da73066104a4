"""The dashboard's plots as plotly.js figures (plain {"data", "layout"} dicts): the page hands
them to Plotly.react, which draws them with the plotly.js the server ships.

Each figure keeps its data points in traces named after what they show, so a test can compare
them with the stores they came from.
"""
from __future__ import annotations

import datetime as dt
from typing import Dict, List, Optional

_LAYOUT = {"margin": {"l": 55, "r": 20, "t": 40, "b": 45}, "height": 320,
           "legend": {"orientation": "h", "y": -0.25}, "hovermode": "closest"}
METRIC_LABELS = {"auc": "AUC", "perplexity": "perplexity"}


def _layout(title: str, **extra) -> Dict:
    return {**_LAYOUT, "title": {"text": title, "font": {"size": 14}}, **extra}


def _time(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def version_metrics(versions: List[Dict], metric: str) -> Dict:
    """The blessing metric per pushed version beside its reference (Bayes-optimal AUC for the
    risk model, the n-gram perplexity for the LM)."""
    x = [row["version"] for row in versions]
    traces = [{"type": "scatter", "mode": "lines+markers", "name": METRIC_LABELS.get(metric, metric),
               "x": x, "y": [row["metrics"].get(metric) for row in versions]}]
    references = [row.get("reference") or {} for row in versions]
    if any(reference.get("value") is not None for reference in references):
        name = next(ref["name"] for ref in references if ref.get("value") is not None)
        traces.append({"type": "scatter", "mode": "lines+markers", "name": name, "x": x,
                       "y": [reference.get("value") for reference in references],
                       "line": {"dash": "dash"}})
    return {"data": traces, "layout": _layout(
        f"{METRIC_LABELS.get(metric, metric)} by version",
        xaxis={"title": {"text": "version"}, "dtick": 1}, yaxis={"title": {"text": metric}})}


def performance(windows: List[Dict]) -> Dict:
    """Realised AUC (outcomes known) and estimated AUC (CBPE, from the scores) per window."""
    x = [_time(window["checked_at"]) for window in windows]
    realised = [(window.get("realised") or {}).get("roc_auc") for window in windows]
    estimated = [(window.get("estimated") or {}).get("estimated_roc_auc") for window in windows]
    return {"data": [
        {"type": "scatter", "mode": "lines+markers", "name": "realised AUC", "x": x, "y": realised,
         "connectgaps": False},
        {"type": "scatter", "mode": "lines+markers", "name": "estimated AUC", "x": x,
         "y": estimated, "line": {"dash": "dot"}}],
        "layout": _layout("Performance per monitoring window", yaxis={"title": {"text": "AUC"}})}


def feature_drift(windows: List[Dict], limit: int = 12) -> Dict:
    """PSI per feature over the windows, with each feature's floor drawn dashed in its colour;
    the `limit` features that came closest to their floor are shown."""
    x = [_time(window["checked_at"]) for window in windows]
    series: Dict[str, Dict[str, list]] = {}
    for index, window in enumerate(windows):
        for row in window.get("features") or []:
            entry = series.setdefault(row["feature"], {"psi": [None] * len(windows),
                                                       "floor": [None] * len(windows)})
            entry["psi"][index], entry["floor"][index] = row.get("psi"), row.get("psi_floor")

    def closeness(name: str) -> float:
        pairs = [(p, f) for p, f in zip(series[name]["psi"], series[name]["floor"])
                 if p is not None and f]
        return max((p / f for p, f in pairs), default=0.0)

    shown = sorted(series, key=closeness, reverse=True)[:limit]
    traces = []
    for number, name in enumerate(sorted(shown)):
        group = f"feature-{number}"
        traces.append({"type": "scatter", "mode": "lines+markers", "name": name, "x": x,
                       "y": series[name]["psi"], "legendgroup": group})
        traces.append({"type": "scatter", "mode": "lines", "name": f"{name} threshold", "x": x,
                       "y": series[name]["floor"], "legendgroup": group, "showlegend": False,
                       "line": {"dash": "dash", "width": 1}})
    return {"data": traces, "layout": _layout(
        "Data drift: PSI per feature (dashed: its threshold)", yaxis={"title": {"text": "PSI"}})}


def score_distribution(windows: List[Dict]) -> Dict:
    """The served scores per window: median and mean, with the 5-95% and 25-75% bands."""
    kept = [window for window in windows if window.get("scores")]
    x = [_time(window["checked_at"]) for window in kept]

    def quantile(name: str) -> List[Optional[float]]:
        return [window["scores"]["quantiles"].get(name) for window in kept]

    band = {"type": "scatter", "mode": "lines", "line": {"width": 0}, "showlegend": False}
    return {"data": [
        {**band, "name": "p05", "x": x, "y": quantile("p05")},
        {**band, "name": "p95", "x": x, "y": quantile("p95"), "fill": "tonexty",
         "fillcolor": "rgba(31,119,180,0.15)"},
        {**band, "name": "p25", "x": x, "y": quantile("p25")},
        {**band, "name": "p75", "x": x, "y": quantile("p75"), "fill": "tonexty",
         "fillcolor": "rgba(31,119,180,0.3)"},
        {"type": "scatter", "mode": "lines+markers", "name": "median score", "x": x,
         "y": quantile("p50")},
        {"type": "scatter", "mode": "lines", "name": "mean score", "x": x,
         "y": [window["scores"]["mean"] for window in kept], "line": {"dash": "dot"}}],
        "layout": _layout("Served scores per window (bands: 5-95%, 25-75%)",
                          yaxis={"title": {"text": "score"}})}


def alerts_by_day(alerts: List[Dict]) -> Dict:
    """Alerts per day and severity (the newest rows the page lists)."""
    counts: Dict[str, Dict[str, int]] = {}
    for alert in alerts:
        counts.setdefault(alert["severity"], {}).setdefault(alert["time"][:10], 0)
        counts[alert["severity"]][alert["time"][:10]] += 1
    traces = [{"type": "bar", "name": severity, "x": sorted(days), "y": [days[d] for d in sorted(days)]}
              for severity, days in sorted(counts.items())]
    return {"data": traces, "layout": _layout("Alerts per day", barmode="stack",
                                              yaxis={"title": {"text": "alerts"}})}
