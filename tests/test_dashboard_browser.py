"""The dashboard in a real browser: headless Chromium (Debian's package, driven by Selenium)
against `etrm dashboard` started as a user would, on the home two real retraining jobs left
(v1 stable, v2 canary; conftest.continuous_home's snapshot) with the real model server
serving it. Each page loads without console errors, its plots hold what ML Metadata and the
stores hold, a page follows new data without a reload, a hostile feature name shows as text,
and a promotion through the admin path moves the label. Screenshots go to the folder
$ETRM_TEST_SCREENSHOTS names (default: the test's tmp folder)."""
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from ml.core import registry
from ml.core.home import Home

pytestmark = [pytest.mark.e2e, pytest.mark.network]

RISK = registry.RISK_MODEL.serving_name
TOKEN = "browser-test-admin-token-0123"
HOSTILE = '<img src=x onerror="document.title=\'pwned\'">'
REPO = pathlib.Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait(predicate, timeout=60.0, what="condition", shown=lambda: None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; shown: {shown()!r}")


def _browser():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        message = "Chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


@pytest.fixture(scope="module")
def site(continuous_home, tmp_path_factory):
    """(base URL, home, browser, screenshot folder) with traffic served and extra stored data:
    two monitoring windows and alerts, one of them with a hostile feature name."""
    from ml.monitoring.alert_store import AlertStore
    from ml.monitoring.alerts import DriftAlert, DriftType
    from ml.monitoring.check_history import CheckHistory
    from ml.tensorflow_serving_client import ETRMModelClient, TensorFlowServingClient
    from tests.serving_fixtures import start_server

    home = continuous_home["snapshot"]
    shots = pathlib.Path(os.environ.get("ETRM_TEST_SCREENSHOTS")
                         or tmp_path_factory.mktemp("dashboard-screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    server = start_server(home.root)
    client = ETRMModelClient(TensorFlowServingClient(
        host="127.0.0.1", rest_port=server.rest_api_port, grpc_port=server.grpc_port))
    history = CheckHistory(home.monitoring_checks_db)
    for day, psi in enumerate((0.04, 0.37)):
        history.record(RISK, 1.7e9 + day * 86400, {
            "serving_version": 1, "requests": 50,
            "features": [{"feature": "volatility", "psi": psi, "psi_floor": 0.25,
                          "adjusted_p_value": 0.2, "drifted": psi > 0.25},
                         {"feature": HOSTILE, "psi": psi / 2, "psi_floor": 0.25,
                          "adjusted_p_value": 0.5, "drifted": False}],
            "scores": {"mean": 0.3, "count": 50, "quantiles": {
                "p05": 0.05, "p25": 0.2, "p50": 0.3, "p75": 0.4, "p95": 0.6}},
            "realised": {"roc_auc": 0.81 - day / 10}, "estimated": {"estimated_roc_auc": 0.79}})
    alerts = AlertStore(home.monitoring_dir / "alerts.sqlite")
    alerts.record_all([DriftAlert(DriftType.DATA_DRIFT, "warning", RISK, HOSTILE, "psi", 0.37,
                                  0.25, f"{HOSTILE} drifted")], cooldown_seconds=0)
    alerts.close()
    token_file = tmp_path_factory.mktemp("dashboard-token") / "token"
    token_file.write_text(TOKEN)
    port = _free_port()
    metrics = f"http://127.0.0.1:{server.rest_api_port}/monitoring/prometheus/metrics"
    process = subprocess.Popen(
        [sys.executable, "-m", "ml.cli", "dashboard", "--home", str(home.root), "--port",
         str(port), "--admin-token-file", str(token_file), "--serving-metrics-url", metrics,
         "--refresh-seconds", "1"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    base = f"http://127.0.0.1:{port}"

    def answers():
        try:
            return urllib.request.urlopen(base + "/api/overview", timeout=2).status == 200
        except OSError:
            assert process.poll() is None, process.communicate()
            return False

    browser = None
    try:
        _wait(answers, 60, "the dashboard to answer")
        for _ in range(20):
            client.predict_risk_scores([{"volume": 1.0}])
        browser = _browser()
        yield base, home, browser, shots, client
    finally:
        if browser is not None:
            browser.quit()
        process.terminate()
        out, err = process.communicate(timeout=30)
        server.stop(grace_seconds=1.0)
    assert process.returncode == 0, err
    assert "dashboard of" in out + err and "Traceback" not in out + err


def _errors(browser):
    return [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def _open(browser, url, shots, name):
    browser.get(url)
    _wait(lambda: browser.execute_script("return document.readyState") == "complete", 30, url)
    browser.save_screenshot(str(shots / f"{name}.png"))
    assert _errors(browser) == [], url


def _retry_stale(action, attempts=5):
    """Runs a browser action again when the page's refresh replaced an element under it."""
    from selenium.common.exceptions import StaleElementReferenceException

    for attempt in range(attempts):
        try:
            return action()
        except StaleElementReferenceException:
            if attempt == attempts - 1:
                raise


def _rate(health_text):
    """The health cell's text once it shows a request rate above zero with a p50."""
    if not health_text or " req/s" not in health_text:
        return None
    rate = float(health_text.split(" req/s")[0].split()[-1])
    return health_text if rate > 0 and "p50 n/a ms" not in health_text else None


def _text(browser, selector):
    """An element's text read in one step (pages replace their content every second, so an
    element found first and read later may be gone)."""
    return browser.execute_script(
        "var e = document.querySelector(arguments[0]); return e ? e.innerText.trim() : null;",
        selector)


def _texts(browser, selector):
    """Every matching element's text, read in one step (see _text)."""
    return browser.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]))"
        ".map(function (e) { return e.innerText.trim(); });", selector)


def _trace(browser, chart, name):
    return browser.execute_script(
        "var div = document.getElementById(arguments[0]), name = arguments[1];"
        "if (!div || !div.data) return null;"
        "var t = div.data.filter(function (t) { return t.name === name; })[0];"
        "return t ? {x: Array.from(t.x), y: Array.from(t.y)} : null;", chart, name)


def test_every_page_loads_without_console_errors(site):
    base, _, browser, shots, _ = site
    for name, path in (("overview", "/"), ("model", f"/models/{RISK}"), ("jobs", "/jobs"),
                       ("alerts", "/alerts"), ("lm", "/models/report_model")):
        _open(browser, base + path, shots, name)
    assert (shots / "overview.png").stat().st_size > 0


def test_model_plots_hold_ml_metadata_and_the_stored_windows(site):
    from ml.cli.metadata_reads import read_metadata
    from ml.lifecycle.registry_view import version_rows
    from ml.lifecycle.status import label_versions
    from ml.monitoring.check_history import CheckHistory

    base, home, browser, shots, _ = site
    _open(browser, f"{base}/models/{RISK}", shots, "model-plots")
    labels = label_versions(home, RISK)["labels"]
    rows, error = read_metadata(home, lambda store: version_rows(store, registry.RISK_MODEL, labels))
    assert error is None and [row["version"] for row in rows] == [1, 2]
    versions = _wait(lambda: _trace(browser, "chart-versions", "AUC"), 20, "the versions plot")
    assert versions["x"] == [1, 2]
    assert versions["y"] == pytest.approx([row["metrics"]["auc"] for row in rows])
    bayes = _trace(browser, "chart-versions", "Bayes-optimal AUC")
    summaries = {}
    for path in home.runs_dir.glob("run-*.json"):
        model = json.loads(path.read_text()).get("model") or {}
        if model.get("pushed_version"):
            summaries[model["pushed_version"]] = model["bayes_optimal_auc"]
    assert bayes["y"] == pytest.approx([summaries[1], summaries[2]])
    windows = CheckHistory(home.monitoring_checks_db).windows(RISK)
    drift = _trace(browser, "chart-drift", "volatility")
    assert drift["y"] == [w["features"][0]["psi"] for w in windows]
    assert _trace(browser, "chart-drift", "volatility threshold")["y"] == [0.25, 0.25]
    realised = _trace(browser, "chart-performance", "realised AUC")
    assert realised["y"] == pytest.approx([w["realised"]["roc_auc"] for w in windows])
    assert browser.find_element("css selector", "#lineage + .graph svg")


def test_a_hostile_feature_name_shows_as_text(site):
    from ml.monitoring.alert_store import AlertStore

    base, home, browser, shots, _ = site
    _open(browser, base + "/alerts", shots, "alerts-hostile")
    stored = {}
    for path in (home.monitoring_dir / "alerts.sqlite", home.lifecycle_alerts_db):
        if path.exists():
            store = AlertStore(path)
            for entry in store.listing(limit=200):
                severity = entry["alert"].severity
                stored[severity] = stored.get(severity, 0) + 1
            store.close()
    plotted = {severity: sum(_trace(browser, "chart-alerts", severity)["y"])
               for severity in stored}
    assert plotted == stored and stored.get("warning", 0) >= 1
    assert _text(browser, "#alert-list td.feature") == HOSTILE
    assert browser.find_elements("css selector", "#alert-list td.feature img") == []
    _open(browser, f"{base}/models/{RISK}", shots, "model-hostile")
    assert browser.title != "pwned"


def test_overview_shows_labels_serving_health_and_updates_without_a_reload(site):
    from ml.monitoring.alert_store import AlertStore
    from ml.monitoring.alerts import DriftAlert, DriftType

    base, home, browser, shots, client = site
    _open(browser, base + "/", shots, "overview-live")
    row = f"#overview-models tr[data-model='{RISK}']"
    assert _text(browser, f"{row} td.stable") == "1"
    assert _text(browser, f"{row} td.canary") == "2"
    stop, failures = threading.Event(), []

    def traffic():
        while not stop.is_set():
            try:
                client.predict_risk_scores([{"volume": 1.0}])
            except Exception as error:  # reported below, not lost in the thread
                failures.append(error)
                return

    sender = threading.Thread(target=traffic, daemon=True)
    sender.start()
    try:
        health = _wait(lambda: _rate(_text(browser, f"{row} td.health")), 30,
                       "a request rate while traffic flows",
                       lambda: (_text(browser, f"{row} td.health"), _text(browser, "#refresh-state")))
    finally:
        stop.set()
        sender.join()
        assert failures == []
    assert "up" in health and "p50" in health and "requests served" in health
    lm_row = f"#overview-models tr[data-model='{registry.REPORT_LM.serving_name}']"
    assert "no requests for this model yet" in _text(browser, f"{lm_row} td.health")
    browser.execute_script("window.notReloaded = true;")
    before = _text(browser, f"{row} td:nth-child(5)")
    store = AlertStore(home.monitoring_dir / "alerts.sqlite")
    store.record_all([DriftAlert(DriftType.PREDICTION_DRIFT, "critical", RISK, None, "psi", 0.5,
                                 0.25, "scores shifted")], cooldown_seconds=0)
    store.close()
    _wait(lambda: _text(browser, f"{row} td:nth-child(5)")
          == str(int(before) + 1), 20, "the open-alert count to follow the store")
    assert browser.execute_script("return window.notReloaded === true")
    assert _errors(browser) == []


def test_a_promotion_through_the_admin_path_moves_the_label(site):
    from ml.lifecycle.status import label_versions
    from ml.lifecycle.store import LifecycleStore

    base, home, browser, shots, _ = site
    _open(browser, f"{base}/models/{RISK}", shots, "before-promotion")
    assert browser.find_elements("css selector", "#promote-form") == []  # read-only until login
    browser.find_element("css selector", "#login-form input[name=token]").send_keys(TOKEN)
    browser.find_element("css selector", "#login-form button").click()
    _wait(lambda: browser.find_elements("css selector", "#promote-form"), 20, "the admin forms")
    _retry_stale(lambda: (
        browser.find_element("css selector", "#promote-form input[name=reason]").send_keys(
            "browser test"),
        browser.find_element("css selector", "#promote-form button").click()))
    flash = _wait(lambda: [text for text in _texts(browser, ".flash.info")
                           if "stable -> version 2" in text], 30, "the promotion's message")
    browser.save_screenshot(str(shots / "after-promotion.png"))
    assert flash and label_versions(home, RISK)["labels"]["stable"] == 2
    assert _text(browser, "#stable-version") == "2"
    [entry] = [e for e in LifecycleStore(home.lifecycle_db).history(RISK) if e.action == "promote"]
    assert entry.reason == "browser test" and entry.figures["by"].startswith("dashboard@")
    assert _errors(browser) == []
