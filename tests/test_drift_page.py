"""The self-contained HTML drift report."""
import base64
import re

import numpy as np
import pandas as pd
import pytest

from ml.monitoring.alerts import DriftAlert, DriftType
from ml.monitoring.feature_drift import compare_tables
from ml.monitoring.drift_page import render_drift_page


def _data():
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"price": rng.normal(70, 5, 800), "volume": rng.normal(10, 2, 800),
                              "hub": rng.choice(["TTF", "NBP"], 800)})
    current = pd.DataFrame({"price": rng.normal(80, 5, 200), "volume": rng.normal(10, 2, 200),
                            "hub": rng.choice(["TTF", "HH"], 200)})
    return reference, current


def test_report_embeds_plots_tables_and_alert_history(tmp_path):
    reference, current = _data()
    features = compare_tables(reference, current)
    alert = DriftAlert(DriftType.DATA_DRIFT, "warning", "gas", "price", "psi", 3.1, 0.25,
                       "Data drift on gas/price <script>")
    page = render_drift_page(reference, current, features, alerts=[alert], title="Gas desk",
                               path=tmp_path / "out" / "report.html")
    assert (tmp_path / "out" / "report.html").read_text(encoding="utf-8") == page
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert len(images) == 3  # PSI/KS overview + the two drifted features
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert "<h1>Gas desk</h1>" in page and "2 of 3 features drifted" in page
    assert "&lt;script&gt;" in page and "<script>" not in page
    assert "http" not in page.replace("http-equiv", "")  # nothing fetched from elsewhere
    assert list(tmp_path.joinpath("out").iterdir()) == [tmp_path / "out" / "report.html"]


def test_report_without_drift_or_alerts():
    rng = np.random.default_rng(1)
    reference, current = rng.normal(size=(300, 2)), rng.normal(size=(100, 2))
    page = render_drift_page(reference, current, compare_tables(reference, current))
    assert page.count("data:image/png") == 1 and "No alerts." in page


def test_report_rejects_a_table_for_other_columns():
    reference, current = _data()
    features = compare_tables(reference, current)
    with pytest.raises(ValueError, match="missing from the data: \\['hub'\\]"):
        render_drift_page(reference.drop(columns="hub"), current.drop(columns="hub"), features)
