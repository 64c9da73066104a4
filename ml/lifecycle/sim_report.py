"""The simulation's HTML report: one self-contained page (plots embedded as base64 PNG).

Plots: the versions behind `stable` and `canary` per day with every trigger and decision
marked, requests per version, realised and estimated AUC per week, and drift scores per day;
then the table of triggers, job outcomes and decisions. Drawn on matplotlib's Agg canvas
directly, as ml/monitoring/drift_page.py does (no pyplot state, headless).
"""
from __future__ import annotations

import base64
import datetime as dt
import html
import io
from typing import Dict, List, Optional

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import DateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ml.core.atomic_files import atomic_write_text

_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
tr.decision td { background: #e8f4ea; } tr.trigger td { background: #fdf6e3; }
tr.alert td { background: #fde2e1; }
"""
_MARKERS = {"promote": ("^", "tab:green"), "rollback": ("v", "tab:red"),
            "withdraw": ("x", "tab:orange"), "push": ("o", "tab:blue"),
            "skip": ("s", "tab:gray"), "fail": ("X", "black"), "manual": ("D", "tab:purple")}
TABLE_ACTIONS_SKIPPED = ("alert",)


def render_report(result, title: Optional[str] = None) -> str:
    """The report of a SimulationResult (ml.lifecycle.simulation) as one HTML string."""
    days = result.days
    title = title or (f"Continuous-learning simulation: {result.model}, {len(days)} days "
                      f"from {result.start}")
    decisions = [e for e in result.timeline if e.action not in TABLE_ACTIONS_SKIPPED]
    counts: Dict[str, int] = {}
    for event in decisions:
        counts[event.action] = counts.get(event.action, 0) + 1
    summary = ", ".join(f"{count} {action}" for action, count in sorted(counts.items())) or "none"
    sections = [f"<h1>{html.escape(title)}</h1>",
                f"<p>Drift scenarios: {html.escape(result.drift or 'none')}. Triggers, job "
                f"outcomes and decisions: {html.escape(summary)}. Requests: "
                f"{sum(sum(d.requests_by_label.values()) for d in days)}, failed: "
                f"{sum(d.failed_requests for d in days)}.</p>",
                "<h2>Versions serving</h2>", _image(_versions_plot(result)),
                "<h2>Requests per version</h2>", _image(_requests_plot(days)),
                "<h2>AUC per week: realised and estimated</h2>", _image(_auc_plot(days)),
                "<h2>Drift scores</h2>", _image(_drift_plot(result)),
                "<h2>Triggers, jobs and decisions</h2>", _events_table(decisions)]
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>"
            f"{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
            + "\n".join(sections) + "</body></html>")


def write_report(result, path, title: Optional[str] = None) -> str:
    """Writes the report atomically; returns the path."""
    atomic_write_text(path, render_report(result, title))
    return str(path)


def _day(text: str) -> dt.date:
    return dt.date.fromisoformat(str(text)[:10])


def _versions_plot(result) -> Figure:
    figure = Figure(figsize=(9, 3.8))
    axes = figure.add_subplot()
    dates = [_day(d.date) for d in result.days]
    for label, style in (("stable", "-"), ("canary", "--")):
        values = [getattr(d, label) if getattr(d, label) is not None else float("nan")
                  for d in result.days]
        axes.step(dates, values, style, where="post", label=label)
    top = max([v for d in result.days for v in (d.stable, d.canary) if v is not None] or [1])
    for event in result.timeline:
        when = dt.datetime.fromtimestamp(event.time, dt.timezone.utc).date()
        if event.action == "trigger":
            axes.axvline(when, color="tab:olive", alpha=0.25, linewidth=1)
        elif event.action in _MARKERS:
            marker, color = _MARKERS[event.action]
            version = event.figures.get("version") or event.figures.get("to") or top
            axes.plot([when], [version], marker=marker, color=color, linestyle="none",
                      markersize=9, label=event.action)
    for start in _drift_starts(result.drift):
        axes.axvline(start, color="tab:red", linestyle=":", linewidth=2, label="drift onset")
    _dedupe_legend(axes)
    axes.set_ylabel("version")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title("stable and canary versions (vertical lines: triggers)")
    _days_axis(figure, axes, result.days)
    return figure


def _requests_plot(days) -> Figure:
    figure = Figure(figsize=(9, 3.2))
    axes = figure.add_subplot()
    dates = [_day(d.date) for d in days]
    versions = sorted({v for d in days for v in d.requests_by_version})
    bottom = [0] * len(days)
    for version in versions:
        values = [d.requests_by_version.get(version, 0) for d in days]
        axes.bar(dates, values, bottom=bottom, label=f"v{version}")
        bottom = [b + v for b, v in zip(bottom, values)]
    failed = [d.failed_requests for d in days]
    if any(failed):
        axes.bar(dates, failed, bottom=bottom, color="black", label="failed")
    if versions or any(failed):
        axes.legend(fontsize="small")
    axes.set_ylabel("requests")
    _days_axis(figure, axes, days)
    return figure


def weekly_auc(days) -> List[Dict]:
    """Per week (Monday first): mean estimated AUC and labelled-weighted realised AUC."""
    weeks: Dict[dt.date, Dict[str, list]] = {}
    for day in days:
        date = _day(day.date)
        week = weeks.setdefault(date - dt.timedelta(days=date.weekday()),
                                {"estimated": [], "realised": [], "dates": []})
        week["dates"].append(date)
        if day.estimated_auc is not None:
            week["estimated"].append(day.estimated_auc)
        if day.realised_auc is not None and day.labelled:
            week["realised"].append((day.realised_auc, day.labelled))
    rows = []
    for start, values in sorted(weeks.items()):
        realised = values["realised"]
        weight = sum(n for _, n in realised)
        dates = sorted(values["dates"])
        rows.append({"week": start.isoformat(), "middle": dates[len(dates) // 2].isoformat(),
                     "estimated_auc": (sum(values["estimated"]) / len(values["estimated"])
                                       if values["estimated"] else None),
                     "realised_auc": sum(a * n for a, n in realised) / weight if weight else None,
                     "labelled": weight})
    return rows


def _auc_plot(days) -> Figure:
    figure = Figure(figsize=(9, 3.2))
    axes = figure.add_subplot()
    rows = weekly_auc(days)
    weeks = [_day(row["middle"]) for row in rows]
    for key, style in (("realised_auc", "o-"), ("estimated_auc", "s--")):
        axes.plot(weeks, [row[key] if row[key] is not None else float("nan") for row in rows],
                  style, label=key.replace("_auc", " AUC"))
    axes.set_ylabel("AUC per week")
    axes.legend(fontsize="small")
    _days_axis(figure, axes, days)
    return figure


def _drift_plot(result) -> Figure:
    figure = Figure(figsize=(9, 3.2))
    axes = figure.add_subplot()
    dates = [_day(d.date) for d in result.days]
    for key, label in (("max_drift_psi", "largest feature PSI"),
                       ("prediction_psi", "prediction (risk_score) PSI")):
        axes.plot(dates, [getattr(d, key) if getattr(d, key) is not None else float("nan")
                          for d in result.days], marker=".", label=label)
    alerted = [_day(d.date) for d in result.days if d.drifted_features]
    if alerted:
        axes.plot(alerted, [0] * len(alerted), "r|", markersize=14, label="drift alert")
    for start in _drift_starts(result.drift):
        axes.axvline(start, color="tab:red", linestyle=":", linewidth=2, label="drift onset")
    _dedupe_legend(axes)
    axes.set_ylabel("PSI vs stable's training data")
    _days_axis(figure, axes, result.days)
    return figure


def _days_axis(figure: Figure, axes, days) -> None:
    """Every plot spans the simulated days (a one-week run would otherwise span years)."""
    if days:
        first, last = _day(days[0].date), _day(days[-1].date)
        axes.set_xlim(first - dt.timedelta(days=1), last + dt.timedelta(days=1))
    axes.xaxis.set_major_formatter(DateFormatter("%Y-%m-%d"))
    figure.autofmt_xdate()


def _drift_starts(spec: str) -> List[dt.date]:
    from ml.synthetic.spans import parse_drift_scenarios

    return [scenario.start_date.date() for scenario in parse_drift_scenarios(spec or "")]


def _dedupe_legend(axes) -> None:
    handles, labels = axes.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    if unique:
        axes.legend(unique.values(), unique.keys(), fontsize="small")


def _events_table(events) -> str:
    if not events:
        return "<p>No trigger, job or decision.</p>"
    rows = "".join(
        f"<tr class='{html.escape(e.kind)}'><td>{html.escape(e.line()[:16])}</td>"
        f"<td>{html.escape(e.action)}</td><td>{'' if e.job_id is None else e.job_id}</td>"
        f"<td>{html.escape(e.reason)}</td></tr>" for e in events)
    return ("<table><tr><th>simulated time (UTC)</th><th>action</th><th>job</th><th>reason</th>"
            f"</tr>{rows}</table>")


def _image(figure: Figure) -> str:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"<img alt='plot' src='data:image/png;base64,{encoded}'/>"
