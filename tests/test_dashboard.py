"""The dashboard's pages, API and admin rules through Flask's test client, on homes whose
stores are written through their own APIs (no TensorFlow, no pipeline): what an empty home
shows, that hostile names render as text, that actions need the token (and a browser session
the form token), and that the plots hold the stores' figures."""
import datetime as dt
import json
import re

import pytest

from ml.core.home import Home
from ml.dashboard import charts
from ml.dashboard.app import create_app
from ml.dashboard.serving_health import ServingHealth, health_figures
from ml.lifecycle.store import LifecycleStore
from ml.monitoring.alert_store import AlertStore
from ml.monitoring.alerts import DriftAlert, DriftType
from ml.monitoring.check_history import CheckHistory

TOKEN = "a-long-enough-admin-token"
HOSTILE = '<script>alert("x")</script>'
RISK = "etrm_risk_model"


def _alert(model=RISK, feature="volatility", when=None, value=0.4):
    return DriftAlert(drift_type=DriftType.DATA_DRIFT, severity="warning", model_name=model,
                      feature=feature, metric="psi", value=value, threshold=0.25,
                      message=f"{feature} drifted", channels=("log", "email"),
                      timestamp=when or dt.datetime(2024, 1, 5, 8, tzinfo=dt.timezone.utc))


def _window(day: int, psi: float, feature="volatility"):
    return {"serving_version": 1, "requests": 100,
            "features": [{"feature": feature, "psi": psi, "psi_floor": 0.25,
                          "adjusted_p_value": 0.5, "drifted": psi > 0.25}],
            "scores": {"mean": 0.3 + day / 100, "count": 100,
                       "quantiles": {"p05": 0.05, "p25": 0.2, "p50": 0.3, "p75": 0.4, "p95": 0.6}},
            "realised": {"roc_auc": 0.8 - day / 100}, "estimated": {"estimated_roc_auc": 0.78}}


def _client(home, token=TOKEN, health=None):
    app = create_app(Home.resolve(home), admin_token=token,
                     health=health or ServingHealth(None))
    app.testing = True
    client = app.test_client()
    client.keep_app = app  # the client holds its app weakly
    return client


def test_an_empty_home_says_so_on_every_page(tmp_path):
    client = _client(tmp_path / "empty", token=None)
    pages = {"/": "no continuous-learning loop has run here",
             f"/models/{RISK}": "no pipeline has run in this home yet",
             "/jobs": "no continuous-learning jobs in this home yet",
             "/alerts": "no alerts in this home"}
    for url, says in pages.items():
        response = client.get(url)
        assert response.status_code == 200, url
        assert says in response.get_data(as_text=True), url
    assert "no model-server metrics URL configured" in client.get("/").get_data(as_text=True)
    assert not (tmp_path / "empty" / "lifecycle").exists()  # reading created nothing


def test_unknown_model_and_version_are_404_pages_naming_them(tmp_path):
    client = _client(tmp_path)
    response = client.get("/models/no_such_model")
    assert response.status_code == 404 and "no_such_model" in response.get_data(as_text=True)
    assert client.get("/api/models/no_such_model").json["error"].startswith("no registered")
    assert client.get("/alerts?model=nope").status_code == 404


def test_hostile_names_from_alerts_and_windows_render_as_text(tmp_path):
    home = Home.resolve(tmp_path)
    store = AlertStore(home.monitoring_dir / "alerts.sqlite")
    store.record_all([_alert(model=HOSTILE, feature=HOSTILE)], cooldown_seconds=0)
    store.close()
    CheckHistory(home.monitoring_checks_db).record(RISK, 1.7e9, _window(1, 0.1, feature=HOSTILE))
    client = _client(tmp_path)
    for url in ("/alerts", f"/models/{RISK}", "/"):
        text = client.get(url).get_data(as_text=True)
        assert "<script>alert" not in text, url
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in client.get("/alerts").get_data(as_text=True)
    figures = client.get(f"/models/{RISK}").get_data(as_text=True)
    assert "\\u003cscript\\u003e" in figures  # plot data is HTML-safe JSON
    policy = client.get("/").headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]


def test_actions_are_refused_without_an_admin_token(tmp_path):
    read_only = _client(tmp_path, token=None)
    assert read_only.post(f"/models/{RISK}/promote").status_code == 403
    assert read_only.post("/login", data={"token": TOKEN}).status_code == 403
    client = _client(tmp_path)
    assert client.post(f"/models/{RISK}/promote").status_code == 403
    wrong = client.post(f"/models/{RISK}/promote", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403


def test_a_browser_session_needs_the_form_token_to_act(tmp_path):
    home = Home.resolve(tmp_path)
    store = AlertStore(home.monitoring_dir / "alerts.sqlite")
    [alert_id] = store.record_all([_alert()], cooldown_seconds=0)
    store.close()
    client = _client(tmp_path)
    client.post("/login", data={"token": TOKEN, "next": "/alerts"})
    url = f"/alerts/monitoring/{alert_id}/acknowledge"
    assert client.post(url, data={}).status_code == 403
    page = client.get("/alerts").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    assert client.post(url, data={"csrf": csrf, "next": "/alerts"}).status_code == 302
    [row] = AlertStore(home.monitoring_dir / "alerts.sqlite").listing()
    assert row["acknowledged"]["by"].startswith("dashboard@")
    [entry] = LifecycleStore(home.lifecycle_db).history(RISK)
    assert entry.action == "acknowledge" and entry.figures["alert_id"] == alert_id


def test_acknowledge_by_bearer_token_and_unknown_alerts(tmp_path):
    home = Home.resolve(tmp_path)
    store = AlertStore(home.monitoring_dir / "alerts.sqlite")
    ids = store.record_all([_alert(), _alert(feature="price")], cooldown_seconds=0)
    store.close()
    client = _client(tmp_path)
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert client.post(f"/alerts/monitoring/{ids[1]}/acknowledge", headers=bearer).json == {
        "acknowledged": ids[1], "source": "monitoring", "by": "dashboard@127.0.0.1"}
    assert client.post("/alerts/monitoring/999/acknowledge", headers=bearer).status_code == 404
    assert client.post("/alerts/elsewhere/1/acknowledge", headers=bearer).status_code == 404
    view = client.get("/api/alerts").json
    assert view["totals"] == {RISK: {"total": 2, "open": 1}}
    assert view["delivery_counts"][RISK] == {"email": {"pending": 2}, "log": {"pending": 2}}


def test_a_promotion_without_a_deployment_is_refused_with_the_reason(tmp_path):
    client = _client(tmp_path)
    response = client.post(f"/models/{RISK}/promote", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 409 and "nothing is deployed" in response.json["error"]
    bad = client.post(f"/models/{RISK}/promote", data={"version": "two"},
                      headers={"Authorization": f"Bearer {TOKEN}"})
    assert bad.status_code == 400 and "'two'" in bad.json["error"]


def test_model_page_plots_hold_the_stored_windows(tmp_path):
    home = Home.resolve(tmp_path)
    history = CheckHistory(home.monitoring_checks_db)
    for day, psi in enumerate((0.05, 0.12, 0.31)):
        history.record(RISK, 1.7e9 + day * 86400, _window(day, psi))
    client = _client(tmp_path)
    view = client.get(f"/api/models/{RISK}").json
    stored = history.windows(RISK)
    assert [w["checked_at"] for w in view["windows"]] == [w["checked_at"] for w in stored]
    drift = charts.feature_drift(view["windows"])
    by_name = {trace["name"]: trace["y"] for trace in drift["data"]}
    assert by_name["volatility"] == [0.05, 0.12, 0.31]
    assert by_name["volatility threshold"] == [0.25] * 3
    performance = {t["name"]: t["y"] for t in charts.performance(view["windows"])["data"]}
    assert performance["realised AUC"] == [0.8, 0.79, 0.78]
    scores = {t["name"]: t["y"] for t in charts.score_distribution(view["windows"])["data"]}
    assert scores["mean score"] == [0.3, 0.31, 0.32]


def test_jobs_page_shows_queue_running_and_history_with_an_estimate(tmp_path):
    home = Home.resolve(tmp_path)
    store = LifecycleStore(home.lifecycle_db)
    done = store.trigger(RISK, "manual", "first", "2024-01-04", now=1000.0)
    store.claim("worker", 600, now=1000.0)
    store.finish(done.id, "worker", "succeeded", now=1100.0, result={"reason": "blessed"})
    running = store.trigger(RISK, "drift", "volatility PSI 0.4", "2024-01-05", now=2000.0)
    store.claim("worker", 1e12, now=2000.0)
    queued = store.trigger("etrm_report_lm", "schedule", "cron", "2024-01-05", now=2001.0)
    client = _client(tmp_path)
    view = client.get("/api/jobs").json
    assert [job["id"] for job in view["running"]] == [running.id]
    assert [job["id"] for job in view["queue"]] == [queued.id]
    assert [job["id"] for job in view["history"]] == [done.id]
    [live] = view["running"]
    assert live["elapsed_s"] > 0 and live["remaining_s"] == 0.0  # a 100 s median, long past
    text = _client(tmp_path).get("/jobs").get_data(as_text=True)
    assert "volatility PSI 0.4" in text and "blessed" in text


def _metrics_page(requests: int, errors: int, latency_micros: float, batch: int) -> str:
    from ml.serving.metrics import ServingMetrics

    metrics = ServingMetrics([RISK])
    for index in range(requests):
        metrics.record_request(RISK, 1, "predict", "REST",
                               "OK" if index >= errors else "INVALID_ARGUMENT",
                               latency_micros / 1e6)
    for _ in range(requests):
        metrics.record_batch(RISK, 1, batch, 0)
    return metrics.render()


def test_serving_health_is_rates_between_two_scrapes_of_the_real_page():
    before = (100.0, _metrics_page(10, 0, 800, 4))
    after = (110.0, _metrics_page(110, 10, 800, 4))
    figures = health_figures(before, after, RISK)
    assert figures["requests_per_second"] == pytest.approx(10.0)
    assert figures["error_rate"] == pytest.approx(0.1)
    assert 0.5 <= figures["p50_ms"] <= 1.0 and figures["p99_ms"] <= 1.0
    assert 2 < figures["batch_p50"] <= 4
    single = health_figures(None, after, RISK)
    assert single["requests_total"] == 110 and single["requests_per_second"] is None


def test_a_server_that_is_down_is_named():
    health = ServingHealth("http://127.0.0.1:9/metrics", fetch=lambda url: (_ for _ in ()).throw(
        ConnectionRefusedError(111, "Connection refused")))
    health.scrape_once()
    found = health.of(RISK)
    assert found["up"] is False and "127.0.0.1:9" in found["reason"]


def test_alert_listing_pages_and_counts_acknowledgements(tmp_path):
    store = AlertStore(tmp_path / "alerts.sqlite")
    ids = store.record_all([_alert(feature=f"f{i}") for i in range(5)], cooldown_seconds=0)
    assert store.acknowledge(ids[0], "ops") and store.acknowledge(ids[0], "someone else")
    assert not store.acknowledge(12345, "ops")
    newest = store.listing(limit=2)
    assert [row["id"] for row in newest] == ids[:-3:-1]
    older = store.listing(limit=10, before_id=newest[-1]["id"])
    assert [row["id"] for row in older] == ids[-3::-1]
    assert older[-1]["acknowledged"]["by"] == "ops"
    assert store.counts_by_model() == {RISK: {"total": 5, "open": 4}}
    assert json.dumps([row["deliveries"] for row in newest])


@pytest.mark.parametrize("extra, says", [
    (["--admin-token-file", "{tmp}/missing"], "--admin-token-file {tmp}/missing: cannot read it"),
    (["--admin-token-file", "{tmp}/short"], "at least 16 characters, got 5"),
    (["--serving-metrics-url", "ftp://x"], "--serving-metrics-url must be an http(s) URL"),
    (["--port", "70000"], "--port must be 0-65535"),
    (["--refresh-seconds", "-1"], "--refresh-seconds must be >= 0"),
])
def test_bad_dashboard_arguments_are_one_line_and_exit_2(tmp_path, capsys, extra, says):
    from ml.cli import main

    (tmp_path / "short").write_text("abcde")
    extra = [part.replace("{tmp}", str(tmp_path)) for part in extra]
    assert main(["dashboard", "--home", str(tmp_path / "home")] + extra) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and says.replace("{tmp}", str(tmp_path)) in error


def test_a_port_in_use_is_refused_naming_it(tmp_path, capsys):
    import socket

    from ml.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["dashboard", "--home", str(tmp_path), "--port", str(port)]) == 2
    error = capsys.readouterr().err
    assert f"--port {port}: cannot listen on 127.0.0.1:{port}" in error
