"""The dashboard's Flask application: four pages (overview, model, jobs, alerts), their JSON
under /api, and, with an admin token, promote, rollback and acknowledge.

Why these rules:
- Read-only unless an admin token was given at start; an action then needs the token, either
  as `Authorization: Bearer` (scripts) or a session opened with it plus the form's CSRF token
  (the browser), so another site cannot post a promotion through a logged-in browser.
- Actions go through the CLI's own code path (`decide_by_hand`, the alert store's
  acknowledge), so they are audited and notified alike.
- Everything from data, configs or alerts goes through Jinja's autoescaping and plot data
  through `tojson` (HTML-safe), and the Content-Security-Policy allows scripts from this
  server only: a feature named `<script>` is shown as text.
- A page asked for with ?fragment=1 returns its content alone; the page's script fetches that
  every few seconds, so pages follow a running job or traffic without a reload.
"""
from __future__ import annotations

import hmac
import pathlib
import secrets
import threading
import time
from typing import Optional

from flask import (Flask, abort, flash, jsonify, redirect, render_template, request,
                   send_from_directory, session, url_for)

from ml.core.home import Home
from ml.dashboard import charts
from ml.dashboard.serving_health import ServingHealth
from ml.dashboard.views import ALERT_SOURCES, DashboardData, alert_db

REFRESH_SECONDS = 5
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; base-uri 'none'")


def plotly_directory() -> pathlib.Path:
    import plotly

    return pathlib.Path(plotly.__file__).parent / "package_data"


def create_app(home: Home, admin_token: Optional[str] = None,
               serving_metrics_url: Optional[str] = None, health: Optional[ServingHealth] = None,
               refresh_seconds: float = REFRESH_SECONDS) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY=secrets.token_bytes(32), SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Strict", MAX_CONTENT_LENGTH=64 * 1024)
    health = health or ServingHealth(serving_metrics_url, interval=refresh_seconds or 5.0).start()
    data = DashboardData(home, health)
    app.extensions["etrm_dashboard"] = data
    app.extensions["etrm_dashboard_warm_up"] = threading.Thread(
        target=data.warm, name="lineage-warm-up", daemon=True)
    app.extensions["etrm_dashboard_warm_up"].start()

    def is_admin() -> bool:
        if admin_token is None:
            return False
        bearer = request.headers.get("Authorization", "")
        if bearer.startswith("Bearer "):
            return hmac.compare_digest(bearer[7:].encode(), admin_token.encode())
        return bool(session.get("admin"))

    def require_admin() -> None:
        """403 without the token; a browser session must also send the form's CSRF token."""
        if admin_token is None:
            abort(403, "the dashboard is read-only: start it with --admin-token-file to act")
        if not is_admin():
            abort(403, "admin token required")
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            sent = request.form.get("csrf", "")
            if not hmac.compare_digest(sent.encode(), session.get("csrf", "").encode()):
                abort(403, "missing or stale form token: reload the page")

    def operator() -> str:
        return f"dashboard@{request.remote_addr}"

    def wants_json() -> bool:
        return request.headers.get("Authorization", "").startswith("Bearer ")

    def page(template: str, **values):
        if admin_token is not None and "csrf" not in session:
            session["csrf"] = secrets.token_urlsafe(32)
        fragment = request.args.get("fragment") == "1"
        return render_template(template, fragment=fragment, admin_enabled=admin_token is not None,
                               admin=is_admin(), csrf=session.get("csrf", ""),
                               refresh_seconds=refresh_seconds, **values)

    def model_or_404(name: str):
        from ml.core import registry

        try:
            return registry.get_model(name)
        except (KeyError, ValueError):
            abort(404, f"no registered model {name!r}")

    @app.context_processor
    def navigation():
        from ml.core import registry

        return {"nav_models": [model.serving_name for model in registry.MODELS]}

    @app.after_request
    def security_headers(response):
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.errorhandler(400)
    @app.errorhandler(403)
    @app.errorhandler(404)
    @app.errorhandler(409)
    def error_page(error):
        if request.path.startswith("/api/") or wants_json():
            return jsonify({"error": error.description}), error.code
        return render_template("error.html", error=error, fragment=False, admin_enabled=False,
                               admin=False, csrf="", refresh_seconds=0), error.code

    @app.get("/vendor/plotly.min.js")
    def plotly_js():
        response = send_from_directory(plotly_directory(), "plotly.min.js", max_age=86400)
        response.headers["Cache-Control"] = "public, max-age=86400"
        return response

    @app.get("/")
    def overview():
        return page("overview.html", view=data.overview())

    @app.get("/models/<name>")
    def model_page(name: str):
        model_or_404(name)
        version = request.args.get("version", type=int)
        try:
            view = data.model(name, version)
        except LookupError as error:
            abort(404, str(error))
        windows = view["windows"]
        figures = {"versions": charts.version_metrics(view["versions"], view["blessing_metric"]),
                   "performance": charts.performance(windows),
                   "drift": charts.feature_drift(windows),
                   "scores": charts.score_distribution(windows)}
        return page("model.html", view=view, figures=figures, lineage_svg=_lineage_svg(view))

    @app.get("/jobs")
    def jobs_page():
        return page("jobs.html", view=data.jobs())

    @app.get("/alerts")
    def alerts_page():
        model = request.args.get("model") or None
        if model:
            model_or_404(model)
        view = data.alerts(model)
        return page("alerts.html", view=view, figures={"alerts": charts.alerts_by_day(view["alerts"])})

    @app.get("/api/overview")
    def api_overview():
        return jsonify(data.overview())

    @app.get("/api/models/<name>")
    def api_model(name: str):
        model_or_404(name)
        try:
            return jsonify(data.model(name, request.args.get("version", type=int)))
        except LookupError as error:
            abort(404, str(error))

    @app.get("/api/jobs")
    def api_jobs():
        return jsonify(data.jobs())

    @app.get("/api/alerts")
    def api_alerts():
        model = request.args.get("model") or None
        if model:
            model_or_404(model)
        return jsonify(data.alerts(model))

    @app.post("/login")
    def login():
        if admin_token is None:
            abort(403, "the dashboard is read-only: start it with --admin-token-file to act")
        given = request.form.get("token", "")
        if not hmac.compare_digest(given.encode(), admin_token.encode()):
            flash("wrong admin token", "error")
        else:
            session.clear()
            session["admin"], session["csrf"] = True, secrets.token_urlsafe(32)
            flash("admin actions enabled", "info")
        return redirect(_back())

    @app.post("/logout")
    def logout():
        session.clear()
        return redirect(_back())

    @app.post("/models/<name>/<action>")
    def deploy(name: str, action: str):
        from ml.cli.continuous_deploy import decide_by_hand
        from ml.lifecycle.deployment import PromotionConflict

        if action not in ("promote", "rollback"):
            abort(404, f"no action {action!r}: promote or rollback")
        model_or_404(name)
        require_admin()
        version = (request.form.get("version") or request.form.get("to") or "").strip()
        if version and not version.isdigit():
            abort(400, f"version must be a positive whole number, got {version!r}")
        options = ({"version": int(version) if version else None,
                    "force": request.form.get("force") == "1"} if action == "promote"
                   else {"to": int(version) if version else None})
        reason = request.form.get("reason", "").strip()[:500] or f"{action} from the dashboard"
        try:
            model_name, result, _ = decide_by_hand(data.home, action, name, reason=reason,
                                                   by=operator(), **options)
        except (ValueError, PromotionConflict) as error:
            if wants_json():
                abort(409, str(error))
            flash(f"{action} refused: {error}", "error")
            return redirect(url_for("model_page", name=name))
        if wants_json():
            return jsonify(result)
        flash(f"{model_name}: stable -> version {result['version']} ({action} by {operator()})",
              "info")
        return redirect(url_for("model_page", name=name))

    @app.post("/alerts/<source>/<int:alert_id>/acknowledge")
    def acknowledge(source: str, alert_id: int):
        from ml.lifecycle.store import LifecycleStore
        from ml.monitoring.alert_store import AlertStore

        if source not in ALERT_SOURCES:
            abort(404, f"no alert source {source!r}: {', '.join(ALERT_SOURCES)}")
        require_admin()
        path = alert_db(data.home, source)
        if not path.exists():
            abort(404, f"no {source} alerts in this home")
        store = AlertStore(path)
        try:
            known = store.acknowledge(alert_id, operator())
            found = [entry for entry in store.listing(limit=1, before_id=alert_id + 1)
                     if entry["id"] == alert_id]
        finally:
            store.close()
        if not known:
            abort(404, f"no {source} alert {alert_id}")
        model = found[0]["alert"].model_name
        LifecycleStore(data.home.lifecycle_db).record(
            model, "acknowledge", f"{source} alert {alert_id} acknowledged by {operator()}",
            time.time(), {"alert_id": alert_id, "source": source, "by": operator()})
        if wants_json():
            return jsonify({"acknowledged": alert_id, "source": source, "by": operator()})
        return redirect(_back())

    return app


def _back() -> str:
    """Where a form came from, if it is a page of this server; else the overview."""
    target = request.form.get("next", "")
    return target if target.startswith("/") and not target.startswith("//") else "/"


def _lineage_svg(view) -> Optional[str]:
    """The chosen version's lineage drawn as SVG (its labels escaped by the renderer)."""
    from ml.lifecycle.lineage_render import svg_text

    return svg_text(view["lineage_graph"]) if view.get("lineage_graph") else None
