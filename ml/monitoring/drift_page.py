"""Self-contained HTML drift page (the drift check's and `etrm monitor`'s): plots embedded as
base64 PNG, no external files.

A plain function over reference data, current data and the per-feature drift table, so the
pipeline component, the `etrm monitor` command and the service can all produce the same page.
Plots use matplotlib's Agg canvas directly (no pyplot state, safe in threads and headless).
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg

from ml.core.atomic_files import atomic_write_text
from matplotlib.figure import Figure

from ml.monitoring.alerts import DriftAlert
from ml.monitoring.multivariate import JointDriftResult
from ml.monitoring.tables import CATEGORICAL, FeatureTable, as_feature_table

MAX_DISTRIBUTION_PLOTS = 20
_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th { background: #f0f0f0; } td.text { text-align: left; }
tr.drifted td { background: #fde2e1; }
.summary { font-size: 1.1em; }
"""


def render_drift_page(reference, current, features: pd.DataFrame,
                        joint: Optional[JointDriftResult] = None,
                        alerts: Iterable[DriftAlert] = (), title: str = "Drift report",
                        path=None) -> str:
    """The report as one HTML string; written atomically to path when given.

    reference/current: DataFrames, 2-D arrays or FeatureTables with the same columns;
    features: the table from compare_tables / compare_to_profile. Distribution plots are drawn
    for drifted features (up to MAX_DISTRIBUTION_PLOTS), PSI and KS for every feature.
    """
    reference_frame = _frame(reference, "reference")
    current_frame = _frame(current, "current")
    missing = [f for f in features["feature"] if f not in reference_frame or f not in current_frame]
    if missing:
        raise ValueError(f"features table names columns missing from the data: {missing}")
    alerts = list(alerts)
    drifted = features[features["drifted"]]
    sections = [f"<h1>{html.escape(title)}</h1>", _summary(features, joint, reference_frame,
                                                           current_frame),
                "<h2>Per-feature results</h2>", _feature_table(features),
                "<h2>PSI and test statistic per feature</h2>", _image(_score_plot(features))]
    if len(drifted):
        sections.append("<h2>Drifted features: reference against current</h2>")
        for name, kind in zip(drifted["feature"][:MAX_DISTRIBUTION_PLOTS],
                              drifted["kind"][:MAX_DISTRIBUTION_PLOTS]):
            figure = _distribution_plot(name, kind, reference_frame[name], current_frame[name])
            sections.append(f"<h3>{html.escape(str(name))}</h3>" + _image(figure))
    sections += ["<h2>Alert history</h2>", _alert_table(alerts)]
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
            + "\n".join(sections) + "</body></html>")
    if path is not None:
        _write_atomically(Path(path), page)
    return page


def _frame(data, what: str) -> pd.DataFrame:
    if isinstance(data, FeatureTable):
        return data.to_frame()
    return as_feature_table(data, what).to_frame()


def _summary(features, joint, reference, current) -> str:
    count = int(features["drifted"].sum())
    parts = [f"{count} of {len(features)} features drifted",
             f"reference rows: {len(reference)}", f"current rows: {len(current)}"]
    if joint is not None:
        parts.append(f"joint (MMD and common-shift) test p = {joint.p_value:.3g}")
    return f"<p class='summary'>{html.escape('; '.join(parts))}</p>"


def _feature_table(features: pd.DataFrame) -> str:
    columns = ["feature", "kind", "test", "statistic", "p_value", "adjusted_p_value", "psi",
               "js_distance", "drifted"]
    header = "".join(f"<th>{c}</th>" for c in columns)
    rows = []
    for row in features[columns].itertuples(index=False):
        cells = []
        for column, value in zip(columns, row):
            if isinstance(value, (float, np.floating)):
                cells.append(f"<td>{value:.4g}</td>")
            else:
                cells.append(f"<td class='text'>{html.escape(str(value))}</td>")
        css = " class='drifted'" if row.drifted else ""
        rows.append(f"<tr{css}>{''.join(cells)}</tr>")
    return f"<table><tr>{header}</tr>{''.join(rows)}</table>"


def _alert_table(alerts) -> str:
    if not alerts:
        return "<p>No alerts.</p>"
    rows = "".join(
        f"<tr><td class='text'>{html.escape(a.timestamp.isoformat(timespec='seconds'))}</td>"
        f"<td class='text'>{html.escape(a.drift_type.value)}</td>"
        f"<td class='text'>{html.escape(a.severity)}</td>"
        f"<td class='text'>{html.escape(a.feature or '')}</td>"
        f"<td class='text'>{html.escape(a.message)}</td></tr>" for a in alerts)
    return ("<table><tr><th>time</th><th>type</th><th>severity</th><th>feature</th>"
            f"<th>message</th></tr>{rows}</table>")


def _score_plot(features: pd.DataFrame) -> Figure:
    figure = Figure(figsize=(max(6, 0.5 * len(features)), 4))
    psi_axes, statistic_axes = figure.subplots(1, 2)
    names = [str(n) for n in features["feature"]]
    colours = ["#d62728" if d else "#1f77b4" for d in features["drifted"]]
    psi_axes.bar(names, features["psi"], color=colours)
    psi_axes.set_title("PSI")
    numeric = features[features["test"] == "ks"]
    statistic_axes.bar([str(n) for n in numeric["feature"]], numeric["statistic"],
                       color=["#d62728" if d else "#1f77b4" for d in numeric["drifted"]])
    statistic_axes.set_title("KS statistic (numeric features)")
    for axes in (psi_axes, statistic_axes):
        axes.tick_params(axis="x", labelrotation=60, labelsize=8)
    figure.tight_layout()
    return figure


def _distribution_plot(name, kind, reference: pd.Series, current: pd.Series) -> Figure:
    figure = Figure(figsize=(6, 3.5))
    axes = figure.subplots()
    if kind == CATEGORICAL:
        shares = pd.DataFrame({"reference": reference.value_counts(normalize=True),
                               "current": current.value_counts(normalize=True)}).fillna(0.0)
        positions = np.arange(len(shares))
        axes.bar(positions - 0.2, shares["reference"], width=0.4, label="reference")
        axes.bar(positions + 0.2, shares["current"], width=0.4, label="current")
        axes.set_xticks(positions, [str(i) for i in shares.index], rotation=45, fontsize=8)
        axes.set_ylabel("share")
    else:
        low = min(reference.min(), current.min())
        high = max(reference.max(), current.max())
        bins = np.linspace(low, high, 41) if high > low else 10
        axes.hist(reference, bins=bins, density=True, alpha=0.5, label="reference")
        axes.hist(current, bins=bins, density=True, alpha=0.5, label="current")
        axes.set_ylabel("density")
    axes.set_title(str(name))
    axes.legend()
    figure.tight_layout()
    return figure


def _image(figure: Figure) -> str:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"<img alt='plot' src='data:image/png;base64,{encoded}'/>"


def _write_atomically(path: Path, text: str) -> None:
    atomic_write_text(path, text)
