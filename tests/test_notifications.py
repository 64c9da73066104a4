"""Notifications delivered to real local SMTP and HTTP servers on 127.0.0.1."""
import json
import logging
import socket
import threading
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from aiosmtpd.controller import Controller

from ml.drift_detection_service import ModelMonitoringService
from ml.monitoring.alert_store import PENDING, SENT
from ml.monitoring.alerts import DriftAlert, DriftType
from ml.monitoring.notifications import (DeliveryError, EmailNotifier, LogNotifier,
                                         PagerDutyNotifier, RetryPolicy, SlackNotifier,
                                         send_with_retry)

pytestmark = pytest.mark.network
RULES = {"high_drift": {"condition": "psi_score > 0.25", "severity": "warning",
                        "notification": ["email", "slack", "pager"]}}


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Inbox:
    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"

    def __init__(self):
        self.messages = []


@pytest.fixture
def smtp_server():
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


class _Webhook:
    """An HTTP endpoint that answers 500 to the first `failures` requests, then `status`."""

    def __init__(self, failures=0, status=200):
        self.failures, self.status, self.received, self.requests = failures, status, [], 0
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                webhook.requests += 1
                if webhook.requests <= webhook.failures:
                    self.send_response(500)
                else:
                    webhook.received.append((self.path, self.headers["Content-Type"],
                                             json.loads(body)))
                    self.send_response(webhook.status)
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


def _alert(severity="critical"):
    return DriftAlert(drift_type=DriftType.PERFORMANCE_DRIFT, severity=severity,
                      model_name="risk_model", feature=None, metric="accuracy", value=0.71,
                      threshold=0.81, message="Performance drift on risk_model: accuracy fell",
                      rules=("performance_drop",))


def test_email_reaches_a_local_smtp_server(smtp_server):
    controller, inbox = smtp_server
    EmailNotifier("127.0.0.1", controller.port, "monitor@etrm.test",
                  ["risk@etrm.test", "ops@etrm.test"]).send(_alert())
    (envelope,) = inbox.messages
    assert envelope.rcpt_tos == ["risk@etrm.test", "ops@etrm.test"]
    message = message_from_bytes(envelope.content)
    assert message["Subject"] == "[CRITICAL] performance_drift on risk_model"
    assert "accuracy fell" in message.get_payload()


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


def test_endpoint_failing_twice_then_working_receives_the_alert_once():
    waits = []
    with _Webhook(failures=2) as hook:
        attempts = send_with_retry(SlackNotifier(hook.url), _alert(),
                                   RetryPolicy(attempts=3, initial_delay=0.5), waits.append)
    assert attempts == 3 and hook.requests == 3 and len(hook.received) == 1
    assert waits == [0.5, 1.0]


def test_unreachable_endpoint_raises_after_all_attempts():
    waits = []
    with pytest.raises(DeliveryError, match="gave up after 2 attempts"):
        send_with_retry(SlackNotifier(f"http://127.0.0.1:{_free_port()}"), _alert(),
                        RetryPolicy(attempts=2, initial_delay=0.1), waits.append)
    assert waits == [0.1]


def test_log_notifier_writes_the_message(caplog):
    with caplog.at_level(logging.WARNING, logger="ml.monitoring.alerts"):
        LogNotifier().send(_alert())
    assert "accuracy fell" in caplog.text


def _service(tmp_path, smtp_port, slack_url, pager_url, **options):
    notifiers = {"email": EmailNotifier("127.0.0.1", smtp_port, "m@etrm.test", ["r@etrm.test"]),
                 "slack": SlackNotifier(slack_url),
                 "pager": PagerDutyNotifier("KEY", url=pager_url)}
    return ModelMonitoringService(tmp_path, alert_rules=RULES, notifiers=notifiers,
                                  retry_policy=RetryPolicy(attempts=2, initial_delay=0.01),
                                  sleep=lambda seconds: None, **options)


def _drifted(rng):
    data = rng.normal(size=(200, 3))
    data[:, 0] += 2
    return data


def test_service_sends_each_alert_to_its_channels_and_cools_down(tmp_path, smtp_server):
    controller, inbox = smtp_server
    rng = np.random.default_rng(0)
    with _Webhook() as slack, _Webhook(status=202) as pager:
        service = _service(tmp_path, controller.port, slack.url, pager.url, cooldown_seconds=3600)
        service.register_model("risk", rng.normal(size=(1000, 3)))
        (alert,) = service.detect_drift("risk", _drifted(rng))
        assert alert.channels == ("email", "slack", "pager")
        assert len(inbox.messages) == 1 and len(slack.received) == 1 and len(pager.received) == 1
        service.detect_drift("risk", _drifted(rng))  # same condition again within the cool-down
        assert len(inbox.messages) == 1 and len(slack.received) == 1 and len(pager.received) == 1
    assert len(service.alert_history("risk")) == 2


def test_alerts_survive_an_unreachable_channel_and_a_restart(tmp_path, smtp_server):
    controller, inbox = smtp_server
    rng = np.random.default_rng(1)
    dead_url = f"http://127.0.0.1:{_free_port()}"
    with _Webhook(status=202) as pager:
        first = _service(tmp_path, controller.port, dead_url, pager.url)
        first.register_model("risk", rng.normal(size=(1000, 3)))
        (alert,) = first.detect_drift("risk", _drifted(rng))
    counts = first.alert_store.delivery_counts()
    assert counts[("slack", PENDING)] == 1 and counts[("email", SENT)] == 1
    del first  # the process "crashes" with the Slack delivery still pending

    with _Webhook() as slack, _Webhook(status=202) as pager:
        restarted = _service(tmp_path, controller.port, slack.url, pager.url)
        ((_, _, body),) = slack.received  # delivered on start, exactly once
        assert body["text"].endswith(alert.message) and pager.received == []
        assert restarted.registered_models() == ["risk"]
        assert restarted.alert_store.delivery_counts()[("slack", SENT)] == 1
        assert restarted.detect_drift("risk", rng.normal(size=(200, 3))) == []
