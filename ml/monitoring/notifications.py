"""Alert delivery: email (SMTP), Slack incoming webhooks, PagerDuty Events v2 and the log.

Each notifier sends one alert or raises DeliveryError. The dispatcher sends the store's
pending deliveries with retries and exponential backoff, and marks each one sent only after
the channel accepted it; failures stay pending for the next dispatch.
"""
from __future__ import annotations

import json
import logging
import smtplib
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Callable, Dict, Mapping, Sequence

from ml.monitoring.alert_store import AlertStore
from ml.monitoring.alerts import DriftAlert

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
_PAGERDUTY_SEVERITY = {"info": "info", "warning": "warning", "critical": "critical"}
LOGGER = logging.getLogger("ml.monitoring.alerts")


class DeliveryError(RuntimeError):
    """A channel did not accept an alert (connection refused, HTTP error, SMTP rejection)."""


class LogNotifier:
    """Writes alerts to a logger; always available, used when no channel is configured."""

    channel = "log"

    def __init__(self, logger: logging.Logger = LOGGER):
        self.logger = logger

    def send(self, alert: DriftAlert) -> None:
        level = logging.CRITICAL if alert.severity == "critical" else logging.WARNING
        self.logger.log(level, "%s", alert.message, extra={"drift_alert": alert.to_dict()})


class EmailNotifier:
    """Sends a plain-text email per alert through an SMTP server."""

    channel = "email"

    def __init__(self, host: str, port: int, sender: str, recipients: Sequence[str],
                 username: str | None = None, password: str | None = None,
                 starttls: bool = False, timeout: float = 10.0):
        if not recipients:
            raise ValueError("EmailNotifier needs at least one recipient")
        self.host, self.port, self.sender = host, int(port), sender
        self.recipients = list(recipients)
        self.username, self.password, self.starttls, self.timeout = username, password, starttls, timeout

    def send(self, alert: DriftAlert) -> None:
        message = EmailMessage()
        message["Subject"] = (f"[{alert.severity.upper()}] {alert.drift_type.value} on "
                              f"{alert.model_name}" + (f" / {alert.feature}" if alert.feature else ""))
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message.set_content(alert.message + "\n\n" + json.dumps(alert.to_dict(), indent=2))
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as error:
            raise DeliveryError(f"email via {self.host}:{self.port} failed: {error}") from error


class _JsonWebhook:
    """POSTs a JSON body and treats any 2xx answer as accepted."""

    def __init__(self, url: str, timeout: float = 10.0):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook url must be http(s), got {url!r}")
        self.url, self.timeout = url, timeout

    def post(self, body: Mapping) -> None:
        request = urllib.request.Request(self.url, data=json.dumps(body).encode("utf-8"),
                                         headers={"Content-Type": "application/json"},
                                         method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            raise DeliveryError(f"{self.url} answered HTTP {error.code}") from error
        except (urllib.error.URLError, socket.timeout, OSError) as error:
            raise DeliveryError(f"{self.url} unreachable: {error}") from error
        if not 200 <= status < 300:
            raise DeliveryError(f"{self.url} answered HTTP {status}")


class SlackNotifier(_JsonWebhook):
    """Slack incoming webhook: a 'text' fallback plus a section block with the details."""

    channel = "slack"

    def send(self, alert: DriftAlert) -> None:
        self.post(slack_payload(alert))


class PagerDutyNotifier(_JsonWebhook):
    """PagerDuty Events API v2 'trigger' events, deduplicated per alert condition."""

    channel = "pager"

    def __init__(self, routing_key: str, url: str = PAGERDUTY_EVENTS_URL, timeout: float = 10.0):
        if not routing_key:
            raise ValueError("PagerDutyNotifier needs a routing (integration) key")
        super().__init__(url, timeout)
        self.routing_key = routing_key

    def send(self, alert: DriftAlert) -> None:
        self.post(pagerduty_payload(alert, self.routing_key))


def slack_payload(alert: DriftAlert) -> dict:
    fields = [f"*Model:* {alert.model_name}", f"*Type:* {alert.drift_type.value}",
              f"*Severity:* {alert.severity}", f"*Metric:* {alert.metric} = {alert.value:.4g} "
              f"(threshold {alert.threshold:.4g})"]
    if alert.feature:
        fields.insert(1, f"*Feature:* {alert.feature}")
    return {"text": f"[{alert.severity.upper()}] {alert.message}",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": alert.message}},
                       {"type": "section", "fields": [{"type": "mrkdwn", "text": f}
                                                      for f in fields]}]}


def pagerduty_payload(alert: DriftAlert, routing_key: str) -> dict:
    return {"routing_key": routing_key, "event_action": "trigger",
            "dedup_key": alert.dedup_key,
            "payload": {"summary": alert.message[:1024], "source": alert.model_name,
                        "severity": _PAGERDUTY_SEVERITY[alert.severity],
                        "timestamp": alert.timestamp.isoformat(),
                        "component": alert.feature or alert.model_name,
                        "group": alert.model_name, "class": alert.drift_type.value,
                        "custom_details": {"metric": alert.metric, "value": alert.value,
                                           "threshold": alert.threshold,
                                           "rules": list(alert.rules)}}}


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts per dispatch and the exponential backoff between them (seconds)."""

    attempts: int = 3
    initial_delay: float = 0.5
    multiplier: float = 2.0
    max_delay: float = 30.0

    def __post_init__(self):
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be at least 1, got {self.attempts}")

    def delays(self):
        delay = self.initial_delay
        for _ in range(self.attempts - 1):
            yield min(delay, self.max_delay)
            delay *= self.multiplier


def send_with_retry(notifier, alert: DriftAlert, policy: RetryPolicy,
                    sleep: Callable[[float], None] = time.sleep) -> int:
    """Send, retrying with backoff; returns attempts used or raises the last DeliveryError."""
    attempt = 0
    for delay in [*policy.delays(), None]:
        attempt += 1
        try:
            notifier.send(alert)
            return attempt
        except DeliveryError as error:
            if delay is None:
                raise DeliveryError(f"{notifier.channel}: gave up after {attempt} attempts: "
                                    f"{error}") from error
            LOGGER.info("retrying %s delivery in %.1fs after: %s", notifier.channel, delay, error)
            sleep(delay)


class Dispatcher:
    """Sends pending deliveries from the store through the configured notifiers."""

    def __init__(self, store: AlertStore, notifiers: Mapping[str, object],
                 policy: RetryPolicy = RetryPolicy(), sleep: Callable[[float], None] = time.sleep):
        self.store = store
        self.notifiers: Dict[str, object] = {"log": LogNotifier(), **dict(notifiers)}
        for channel, notifier in self.notifiers.items():
            if not callable(getattr(notifier, "send", None)):
                raise ValueError(f"notifier for channel {channel!r} has no send(alert) method")
        self.policy, self.sleep = policy, sleep

    def dispatch_pending(self) -> int:
        """Try every pending delivery whose channel is configured; returns how many were sent.

        A channel that exhausts its retries is skipped for the rest of the round, so an outage
        costs one retry sequence per check instead of one per waiting alert.
        """
        sent = 0
        down = set()
        for delivery in self.store.pending(self.notifiers):
            if delivery.channel in down:
                continue
            notifier = self.notifiers[delivery.channel]
            try:
                attempts = send_with_retry(notifier, delivery.alert, self.policy, self.sleep)
            except DeliveryError as error:
                LOGGER.error("alert %s not delivered to %s, kept pending: %s",
                             delivery.alert_id, delivery.channel, error)
                self.store.mark_attempt_failed(delivery.delivery_id, self.policy.attempts,
                                               str(error))
                down.add(delivery.channel)
                continue
            self.store.mark_sent(delivery.delivery_id, attempts)
            sent += 1
        return sent
