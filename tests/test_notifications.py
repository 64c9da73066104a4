"""Notifications delivered to real local SMTP and HTTP servers on 127.0.0.1."""
import datetime
import email.policy
import ipaddress
import json
import logging
import math
import socket
import sqlite3
import ssl
import threading
import time
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ml.drift_detection_service import ModelMonitoringService
from ml.monitoring.alert_store import PENDING, SENT, AlertStore
from ml.monitoring.alerts import DriftAlert, DriftType
from ml.monitoring.notifications import (DeliveryError, Dispatcher, EmailNotifier, LogNotifier,
                                         PagerDutyNotifier, RetryPolicy, SlackNotifier,
                                         redact_url, scrub, url_secrets)

pytestmark = pytest.mark.network
RULES = {"high_drift": {"condition": "psi_score > 0.25", "severity": "warning",
                        "notification": ["email", "slack", "pager"]}}
PASSWORD = "smtp-Pa55word-never-logged"
SLACK_TOKEN = "XoXbSeCrEtToKeN42"
ROUTING_KEY = "R0UTING-KEY-SECRET-7"


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A throwaway self-signed certificate for 127.0.0.1: (certificate file, key file)."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)


def _server_context(certificate):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


class _Inbox:
    """Keeps each message with whether its session was encrypted and who logged in."""

    def __init__(self):
        self.messages, self.encrypted, self.logins = [], [], []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        self.encrypted.append(session.ssl is not None)
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        self.logins.append(auth_data.login.decode())
        return AuthResult(success=auth_data.password.decode() == PASSWORD, handled=False)


def _smtp(inbox, **options):
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port(),
                            authenticator=inbox.authenticate, **options)
    controller.start()
    return controller


@pytest.fixture
def smtp_server(certificate):
    """An SMTP server offering STARTTLS (and AUTH once encrypted), like a real relay."""
    inbox = _Inbox()
    controller = _smtp(inbox, tls_context=_server_context(certificate))
    yield controller, inbox
    controller.stop()


def _email(port, certificate, **options):
    return EmailNotifier("127.0.0.1", port, "monitor@etrm.test", ["risk@etrm.test"],
                         ca_file=certificate[0], **options)


def _strict_json(body: bytes):
    """json.loads as a strict endpoint parses: NaN and Infinity tokens are refused."""
    def refuse(token):
        raise ValueError(f"{token} is not JSON")
    return json.loads(body, parse_constant=refuse)


class _Webhook:
    """An HTTP endpoint that answers 500 to the first `failures` requests, then `status`.

    Like Slack and PagerDuty, it refuses a body that is not strict JSON with 400. `delay`
    slows every answer down, to let concurrent senders overlap.
    """

    def __init__(self, failures=0, status=200, delay=0.0):
        self.failures, self.status, self.delay = failures, status, delay
        self.received, self.requests, self.refused = [], 0, 0
        self.lock = threading.Lock()
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(webhook.delay)
                with webhook.lock:
                    webhook.requests += 1
                    if webhook.requests <= webhook.failures:
                        status = 500
                    else:
                        try:
                            parsed = _strict_json(body)
                        except ValueError:
                            webhook.refused += 1
                            status = 400
                        else:
                            webhook.received.append((self.path, self.headers["Content-Type"],
                                                     parsed))
                            status = webhook.status
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class _RawServer:
    """A TCP endpoint that answers `reply` (not HTTP) or, with reply None, never answers."""

    def __init__(self, reply=None):
        self.reply = reply
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        self.socket.settimeout(0.1)
        while not self.stopped.is_set():
            try:
                connection, _ = self.socket.accept()
            except OSError:
                continue
            with connection:
                if self.reply is None:
                    self.stopped.wait()
                    continue
                connection.recv(65536)
                connection.sendall(self.reply)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.socket.getsockname()[1]}/hook"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join(5)
        self.socket.close()


def _alert(severity="critical", feature=None, threshold=0.81):
    return DriftAlert(drift_type=DriftType.PERFORMANCE_DRIFT, severity=severity,
                      model_name="risk_model", feature=feature, metric="accuracy", value=0.71,
                      threshold=threshold, message="Performance drift on risk_model: accuracy fell",
                      rules=("performance_drop",))


def test_email_reaches_a_local_smtp_server_over_starttls_by_default(smtp_server, certificate):
    controller, inbox = smtp_server
    EmailNotifier("127.0.0.1", controller.port, "monitor@etrm.test",
                  ["risk@etrm.test", "ops@etrm.test"], username="monitor", password=PASSWORD,
                  ca_file=certificate[0]).send(_alert())
    (envelope,) = inbox.messages
    assert inbox.encrypted == [True] and inbox.logins == ["monitor"]
    assert envelope.rcpt_tos == ["risk@etrm.test", "ops@etrm.test"]
    message = message_from_bytes(envelope.content)
    assert message["Subject"] == "[CRITICAL] performance_drift on risk_model"
    assert "accuracy fell" in message.get_payload()


def test_smtps_delivers_over_implicit_tls(certificate):
    inbox = _Inbox()
    controller = _smtp(inbox, ssl_context=_server_context(certificate), auth_require_tls=False)
    try:
        _email(controller.port, certificate, ssl=True, starttls=False, username="monitor",
               password=PASSWORD).send(_alert())
    finally:
        controller.stop()
    assert len(inbox.messages) == 1 and inbox.logins == ["monitor"]


def test_a_password_is_never_sent_over_a_plain_connection(smtp_server, certificate):
    controller, inbox = smtp_server
    with pytest.raises(ValueError, match="refusing to send the SMTP password to 127.0.0.1"):
        _email(controller.port, certificate, starttls=False, password=PASSWORD)
    with pytest.raises(ValueError, match="not both"):
        _email(controller.port, certificate, ssl=True, starttls=True)
    plain = _smtp(_Inbox())  # a server without STARTTLS: no silent fall-back to clear text
    try:
        with pytest.raises(DeliveryError, match="STARTTLS") as refused:
            _email(plain.port, certificate, username="monitor", password=PASSWORD).send(_alert())
    finally:
        plain.stop()
    assert PASSWORD not in str(refused.value)


def test_header_unsafe_feature_names_cannot_inject_email_headers(smtp_server, certificate):
    controller, inbox = smtp_server
    _email(controller.port, certificate).send(_alert(feature="price\r\nBcc: evil@attacker.test"))
    (envelope,) = inbox.messages
    assert envelope.rcpt_tos == ["risk@etrm.test"]
    message = message_from_bytes(envelope.content, policy=email.policy.default)
    assert message["Bcc"] is None
    assert message["Subject"].strip() == ("[CRITICAL] performance_drift on risk_model / "
                                          "price Bcc: evil@attacker.test")


def test_slack_payload_follows_the_incoming_webhook_format():
    with _Webhook() as hook:
        SlackNotifier(hook.url + "/services/T0/B0/x").send(_alert("warning"))
    ((path, content_type, body),) = hook.received
    assert path == "/services/T0/B0/x" and content_type == "application/json"
    assert body["text"].startswith("[WARNING] Performance drift on risk_model")
    assert body["blocks"][0] == {"type": "section", "text": {"type": "mrkdwn",
                                                              "text": _alert().message}}
    assert all(f["type"] == "mrkdwn" for f in body["blocks"][1]["fields"])


def test_pagerduty_payload_follows_events_api_v2():
    with _Webhook(status=202) as hook:
        PagerDutyNotifier("R0UTINGKEY", url=hook.url + "/v2/enqueue").send(_alert())
    ((path, _, body),) = hook.received
    assert path == "/v2/enqueue"
    assert body["routing_key"] == "R0UTINGKEY" and body["event_action"] == "trigger"
    assert body["dedup_key"] == _alert().dedup_key
    payload = body["payload"]
    assert payload["severity"] in {"critical", "error", "warning", "info"}
    assert payload["source"] == "risk_model" and payload["summary"] == _alert().message
    assert payload["class"] == "performance_drift"
    assert payload["custom_details"]["threshold"] == 0.81


def test_non_finite_thresholds_are_sent_as_strict_json():
    with _Webhook(status=202) as hook:
        PagerDutyNotifier("KEY", url=hook.url).send(_alert(threshold=float("nan")))
        SlackNotifier(hook.url).send(_alert(threshold=float("inf")))
    assert hook.refused == 0
    (_, _, pager), (_, _, slack) = hook.received
    assert pager["payload"]["custom_details"]["threshold"] == "NaN"
    assert "threshold inf" in slack["blocks"][1]["fields"][-1]["text"]


def test_endpoint_errors_are_delivery_errors_without_the_webhook_secret():
    secret_url = f"/services/T0/B0/{SLACK_TOKEN}"
    with _Webhook(failures=1) as hook:
        with pytest.raises(DeliveryError, match="answered HTTP 500") as failed:
            SlackNotifier(hook.url + secret_url).send(_alert())
    assert str(failed.value) == f"{hook.url}/*** answered HTTP 500"
    with _RawServer(b"SSH-2.0-OpenSSH_9.6\r\n") as not_http:
        with pytest.raises(DeliveryError, match="BadStatusLine") as garbled:
            SlackNotifier(not_http.url + f"?token={SLACK_TOKEN}").send(_alert())
    assert SLACK_TOKEN not in str(garbled.value)
    with pytest.raises(DeliveryError, match="unreachable") as refused:
        PagerDutyNotifier(ROUTING_KEY, url=f"http://127.0.0.1:{_free_port()}/{SLACK_TOKEN}",
                          timeout=2).send(_alert())
    assert SLACK_TOKEN not in str(refused.value) and refused.value.__cause__ is None
    assert SLACK_TOKEN not in repr(SlackNotifier(hook.url + secret_url))


def test_webhook_urls_are_shown_without_their_credentials():
    assert redact_url("https://hooks.slack.com/services/T0/B0/tok") == "https://hooks.slack.com/***"
    assert redact_url("https://user:pw@h.example:8443/a?b=c") == "https://h.example:8443/***"
    assert redact_url("https://events.pagerduty.com") == "https://events.pagerduty.com"
    secret = "https://hooks.slack.com/services/T0/B0/t0ken-value"
    assert scrub(f"POST {secret} failed; token t0ken-value", url_secrets(secret)) == (
        "POST *** failed; token ***")


def test_log_notifier_writes_the_message(caplog):
    with caplog.at_level(logging.WARNING, logger="ml.monitoring.alerts"):
        LogNotifier().send(_alert())
    assert "accuracy fell" in caplog.text


def _service(tmp_path, smtp_port, certificate, slack_url, pager_url, **options):
    notifiers = {"email": _email(smtp_port, certificate, username="monitor", password=PASSWORD),
                 "slack": SlackNotifier(slack_url, timeout=options.pop("timeout", 10)),
                 "pager": PagerDutyNotifier(ROUTING_KEY, url=pager_url)}
    options.setdefault("retry_policy", RetryPolicy(attempts=3, initial_delay=0.0))
    options.setdefault("delivery_wait_seconds", 60)
    return ModelMonitoringService(tmp_path, alert_rules=options.pop("alert_rules", RULES),
                                  notifiers=notifiers, **options)


def _drifted(rng, columns=None):
    data = rng.normal(size=(200, 3))
    data[:, 0] += 2
    return data if columns is None else pd.DataFrame(data, columns=columns)


def test_service_sends_each_alert_to_its_channels_and_cools_down(tmp_path, smtp_server,
                                                                 certificate):
    controller, inbox = smtp_server
    rng = np.random.default_rng(0)
    with _Webhook() as slack, _Webhook(status=202) as pager:
        service = _service(tmp_path, controller.port, certificate, slack.url, pager.url,
                           cooldown_seconds=3600)
        service.register_model("risk", rng.normal(size=(1000, 3)))
        (alert,) = service.detect_drift("risk", _drifted(rng))
        assert alert.channels == ("email", "slack", "pager")
        assert len(inbox.messages) == 1 and len(slack.received) == 1 and len(pager.received) == 1
        service.detect_drift("risk", _drifted(rng))  # same condition again within the cool-down
        assert len(inbox.messages) == 1 and len(slack.received) == 1 and len(pager.received) == 1
        assert len(service.alert_history("risk")) == 2
        service.close()


def test_alerts_survive_an_unreachable_channel_and_a_restart(tmp_path, smtp_server, certificate):
    controller, inbox = smtp_server
    rng = np.random.default_rng(1)
    dead_url = f"http://127.0.0.1:{_free_port()}"
    retry = RetryPolicy(attempts=3, initial_delay=0.2)
    with _Webhook(status=202) as pager:
        first = _service(tmp_path, controller.port, certificate, dead_url, pager.url,
                         retry_policy=retry)
        first.register_model("risk", rng.normal(size=(1000, 3)))
        (alert,) = first.detect_drift("risk", _drifted(rng))
    counts = first.alert_store.delivery_counts()
    assert counts[("slack", PENDING)] == 1 and counts[("email", SENT)] == 1
    (waiting,) = first.alert_store.pending()
    assert waiting.attempts >= 1 and "Connection refused" in waiting.last_error
    del first  # the process "crashes" with the Slack delivery still pending
    time.sleep(0.3)  # past the stored retry time

    with _Webhook() as slack, _Webhook(status=202) as pager:
        restarted = _service(tmp_path, controller.port, certificate, slack.url, pager.url,
                             retry_policy=retry)
        ((_, _, body),) = slack.received  # delivered on start, exactly once
        assert body["text"].endswith(alert.message) and pager.received == []
        assert restarted.registered_models() == ["risk"]
        assert restarted.alert_store.delivery_counts()[("slack", SENT)] == 1
        assert restarted.detect_drift("risk", rng.normal(size=(200, 3))) == []
        restarted.close()


def test_a_compound_rule_alert_reaches_a_strict_endpoint_and_later_alerts_follow(
        tmp_path, smtp_server, certificate):
    """A compound rule has no single threshold (NaN), which PagerDuty refused forever."""
    controller, _ = smtp_server
    rules = {"wide_drift": {"condition": "max_psi > 0.25 and drifted_features >= 1",
                            "severity": "critical", "notification": ["pager"]}}
    rng = np.random.default_rng(2)
    with _Webhook() as slack, _Webhook(status=202) as pager:
        service = _service(tmp_path, controller.port, certificate, slack.url, pager.url,
                           alert_rules=rules, cooldown_seconds=0)
        service.register_model("risk", rng.normal(size=(1000, 3)))
        alerts = [service.detect_drift("risk", _drifted(rng)) for _ in range(3)]
        compound = [a for found in alerts for a in found if a.rules == ("wide_drift",)]
        assert len(compound) == 3 and all(math.isnan(a.threshold) for a in compound)
        assert pager.refused == 0 and len(pager.received) == 3
        assert all(body["payload"]["custom_details"]["threshold"] == "NaN"
                   for _, _, body in pager.received)
        service.close()


def test_a_non_http_answer_or_crlf_feature_never_escapes_the_service(tmp_path, smtp_server,
                                                                    certificate):
    controller, inbox = smtp_server
    rng = np.random.default_rng(3)
    columns = ["price\r\nBcc: evil@attacker.test", "volume", "tenor"]
    with _RawServer(b"SSH-2.0-OpenSSH_9.6\r\n") as not_http, _Webhook(status=202) as pager:
        service = _service(tmp_path, controller.port, certificate, not_http.url, pager.url)
        service.register_model("risk", pd.DataFrame(rng.normal(size=(1000, 3)), columns=columns))
        (alert,) = service.detect_drift("risk", _drifted(rng, columns))
        (slack,) = service.alert_store.dead_letters(["slack"])
        service.close()
    assert alert.feature == columns[0] and len(pager.received) == 1
    (envelope,) = inbox.messages
    assert envelope.rcpt_tos == ["risk@etrm.test"]
    assert slack.last_error.endswith("BadStatusLine: SSH-2.0-OpenSSH_9.6") and slack.attempts == 3


def test_an_unresponsive_channel_does_not_hold_up_the_check(tmp_path, smtp_server, certificate):
    controller, inbox = smtp_server
    rng = np.random.default_rng(4)
    with _RawServer() as silent, _Webhook(status=202) as pager:
        service = _service(tmp_path, controller.port, certificate, silent.url, pager.url,
                           timeout=30, delivery_wait_seconds=0.5)
        service.register_model("risk", rng.normal(size=(1000, 3)))
        started = time.monotonic()
        (alert,) = service.detect_drift("risk", _drifted(rng))
        assert time.monotonic() - started < 15, "check() waited for the silent channel"
        deadline = time.monotonic() + 30  # the other channels are not stuck behind it
        while not (inbox.messages and pager.received) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(inbox.messages) == 1 and len(pager.received) == 1
        started = time.monotonic()
        assert service.alert_store.pending(["slack"])[0].alert == alert
        service.close(timeout=0.5)
        assert time.monotonic() - started < 15, "close() waited for the silent channel"


def test_two_dispatchers_on_one_store_send_each_alert_once(tmp_path):
    path = tmp_path / "alerts.sqlite"
    AlertStore(path).record_all([_alert(feature=f"f{i}") for i in range(5)], cooldown_seconds=0)
    with _Webhook(delay=0.05) as hook:
        dispatchers = [Dispatcher(AlertStore(path), {"log": SlackNotifier(hook.url)},
                                  RetryPolicy(attempts=1)) for _ in range(2)]
        barrier = threading.Barrier(2)

        def run(dispatcher):
            barrier.wait()
            dispatcher.dispatch_pending()

        threads = [threading.Thread(target=run, args=(d,)) for d in dispatchers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert hook.requests == 5
    assert sorted(body["text"] for _, _, body in hook.received) == [
        f"[CRITICAL] {_alert().message}"] * 5
    assert AlertStore(path).delivery_counts() == {("log", SENT): 5}


def test_secrets_stay_out_of_errors_logs_and_the_store(tmp_path, certificate, caplog):
    inbox = _Inbox()
    smtp = _smtp(inbox, tls_context=_server_context(certificate))
    rng = np.random.default_rng(5)
    slack_url_path = f"/services/T0SECRET/B0SECRET/{SLACK_TOKEN}"
    caplog.set_level(logging.DEBUG)
    try:
        with _Webhook(failures=100) as slack, _Webhook(failures=100) as pager:
            notifiers = {"email": _email(smtp.port, certificate, username="monitor",
                                         password=PASSWORD + "-wrong"),
                         "slack": SlackNotifier(slack.url + slack_url_path),
                         "pager": PagerDutyNotifier(ROUTING_KEY, url=pager.url + "/v2/enqueue")}
            service = ModelMonitoringService(tmp_path, alert_rules=RULES, notifiers=notifiers,
                                             retry_policy=RetryPolicy(attempts=1),
                                             delivery_wait_seconds=60)
            service.register_model("risk", rng.normal(size=(1000, 3)))
            service.detect_drift("risk", _drifted(rng))
            service.dispatch_pending()
    finally:
        smtp.stop()
    with sqlite3.connect(tmp_path / "alerts.sqlite") as connection:
        errors = [e for (e,) in connection.execute(
            "SELECT last_error FROM deliveries WHERE last_error IS NOT NULL")]
    assert len(errors) == 3 and set(inbox.logins) == {"monitor"} and inbox.messages == []
    assert f"{slack.url}/*** answered HTTP 500" in errors
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("alerts.sqlite*"))
    for secret in (SLACK_TOKEN, "T0SECRET", ROUTING_KEY, PASSWORD):
        assert secret not in caplog.text
        assert all(secret not in error for error in errors)
        assert secret.encode() not in stored
