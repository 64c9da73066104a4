"""Alert delivery: email (SMTP), Slack incoming webhooks, PagerDuty Events v2 and the log.

Each notifier sends one alert or raises DeliveryError, whose text never holds the channel's
secrets (the Slack URL holds its token, PagerDuty's routing key, the SMTP password). The
Dispatcher sends the store's pending deliveries from one background thread per channel, so a
slow channel delays neither the caller nor the other channels. Each delivery is claimed in the
store before it is sent (several dispatchers on one store send it once), and a failure
reschedules only that delivery with exponential backoff until the retry limit dead-letters it.
"""
from __future__ import annotations

import http.client
import logging
import os
import smtplib
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Callable, Dict, Iterable, Mapping, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from ml.monitoring.alert_store import AlertStore, Delivery
from ml.monitoring.alerts import DriftAlert, strict_json

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
_PAGERDUTY_SEVERITY = {"info": "info", "warning": "warning", "critical": "critical"}
LOGGER = logging.getLogger("ml.monitoring.alerts")
REDACTED = "***"
# 4xx answers that a later attempt may still get through; every other 4xx is final.
_RETRYABLE_HTTP = {408, 425, 429}


class DeliveryError(RuntimeError):
    """A channel did not accept an alert; permanent when retrying cannot help (HTTP 400)."""

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


def redact_url(url: str) -> str:
    """scheme://host[:port]/*** : a webhook's path and query are its credentials."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    hidden = parts.path not in ("", "/") or parts.query or parts.fragment
    return f"{parts.scheme}://{netloc}" + (f"/{REDACTED}" if hidden else "")


def url_secrets(url: str) -> Tuple[str, ...]:
    """The pieces of a webhook URL that must not appear in any message.

    Pieces shorter than six characters ('/x') carry no token and would mangle every message.
    """
    parts = urlsplit(url)
    pieces = [url, parts.path, parts.query, parts.fragment,
              parts.path.rstrip("/").rsplit("/", 1)[-1]]
    shown = redact_url(url)
    return tuple(p for p in pieces if len(p) >= 6 and p != shown) + (
        (parts.password,) if parts.password else ())


def scrub(text: str, secrets: Iterable[str]) -> str:
    """text with every secret replaced by ***, longest first so no fragment survives."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def header_text(text: str) -> str:
    """One header line: CR, LF and other control characters become one space (no injection)."""
    return " ".join("".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in text).split())


class LogNotifier:
    """Writes alerts to a logger; always available, used when no channel is configured."""

    channel = "log"
    secrets: Tuple[str, ...] = ()

    def __init__(self, logger: logging.Logger = LOGGER):
        self.logger = logger

    def send(self, alert: DriftAlert) -> None:
        level = logging.CRITICAL if alert.severity == "critical" else logging.WARNING
        self.logger.log(level, "%s", alert.message, extra={"drift_alert": alert.to_dict()})


class EmailNotifier:
    """Sends a plain-text email per alert through an SMTP server.

    STARTTLS by default; ssl=True connects with SMTPS (implicit TLS, usually port 465). A
    password is refused over a plain connection unless allow_plain_password says the link is
    trusted otherwise. ca_file adds a CA to trust (a private relay's certificate).
    """

    channel = "email"

    def __init__(self, host: str, port: int, sender: str, recipients: Sequence[str],
                 username: Optional[str] = None, password: Optional[str] = None,
                 starttls: bool = True, ssl: bool = False, timeout: float = 10.0,
                 ca_file: Optional[str] = None, allow_plain_password: bool = False):
        if not recipients:
            raise ValueError("EmailNotifier needs at least one recipient")
        if ssl and starttls:
            raise ValueError("EmailNotifier: choose ssl=True (SMTPS) or starttls=True, not both")
        if password and not (ssl or starttls or allow_plain_password):
            raise ValueError(f"EmailNotifier: refusing to send the SMTP password to {host}:{port} "
                             "over a plain connection; use starttls=True or ssl=True "
                             "(or allow_plain_password=True on a trusted link)")
        for what, address in [("sender", sender)] + [("recipient", r) for r in recipients]:
            if header_text(address) != address:
                raise ValueError(f"EmailNotifier {what} {address!r} contains control characters")
        self.host, self.port, self.sender = host, int(port), sender
        self.recipients = list(recipients)
        self.username, self._password = username, password
        self.starttls, self.ssl, self.timeout = starttls, ssl, float(timeout)
        self.ca_file = ca_file

    @property
    def secrets(self) -> Tuple[str, ...]:
        return (self._password,) if self._password else ()

    def __repr__(self) -> str:
        mode = "smtps" if self.ssl else ("starttls" if self.starttls else "plain")
        return f"EmailNotifier({self.host}:{self.port}, {mode}, to={self.recipients})"

    def _tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def message(self, alert: DriftAlert) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = header_text(
            f"[{alert.severity.upper()}] {alert.drift_type.value} on {alert.model_name}"
            + (f" / {alert.feature}" if alert.feature else ""))
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message.set_content(alert.message + "\n\n" + strict_json(alert.to_dict(), indent=2))
        return message

    def send(self, alert: DriftAlert) -> None:
        message = self.message(alert)
        try:
            if self.ssl:
                connection = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                              context=self._tls_context())
            else:
                connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with connection as smtp:
                if self.starttls:
                    smtp.starttls(context=self._tls_context())
                if self.username:
                    smtp.login(self.username, self._password or "")
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError, ValueError) as error:
            permanent = isinstance(error, smtplib.SMTPResponseException) and error.smtp_code >= 500
            raise DeliveryError(scrub(f"email via {self.host}:{self.port} failed: "
                                      f"{type(error).__name__}: {error}", self.secrets),
                                permanent=permanent) from None


class _JsonWebhook:
    """POSTs a strict JSON body and treats any 2xx answer as accepted."""

    def __init__(self, url: str, timeout: float = 10.0):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook url must be http(s), got {redact_url(url)!r}")
        self._url, self.timeout = url, float(timeout)

    @property
    def secrets(self) -> Tuple[str, ...]:
        return url_secrets(self._url)

    @property
    def where(self) -> str:
        return redact_url(self._url)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.where})"

    def post(self, body: Mapping) -> None:
        try:
            data = strict_json(body).encode("utf-8")
        except (TypeError, ValueError) as error:
            raise DeliveryError(f"{self.where}: alert is not JSON-serialisable: {error}",
                                permanent=True) from None
        request = urllib.request.Request(self._url, data=data,
                                         headers={"Content-Type": "application/json"},
                                         method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            raise DeliveryError(scrub(f"{self.where} unreachable: {type(reason).__name__}: "
                                      f"{reason}", self.secrets)) from None
        if not 200 <= status < 300:
            raise DeliveryError(f"{self.where} answered HTTP {status}",
                                permanent=400 <= status < 500 and status not in _RETRYABLE_HTTP)


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
        self._routing_key = routing_key

    @property
    def secrets(self) -> Tuple[str, ...]:
        return super().secrets + (self._routing_key,)

    def send(self, alert: DriftAlert) -> None:
        self.post(pagerduty_payload(alert, self._routing_key))


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
    """Attempts per delivery before it is dead-lettered, and the backoff between them (s).

    The defaults retry for about two hours (10 s doubling to 30 min), long enough to ride out
    an endpoint's outage without keeping a refused alert forever.
    """

    attempts: int = 12
    initial_delay: float = 10.0
    multiplier: float = 2.0
    max_delay: float = 1800.0

    def __post_init__(self):
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be at least 1, got {self.attempts}")
        if self.initial_delay < 0 or self.max_delay < 0 or self.multiplier < 1:
            raise ValueError(f"RetryPolicy needs delays >= 0 and multiplier >= 1, got {self}")

    def delay_after(self, failures: int) -> Optional[float]:
        """Seconds to wait after the given number of failed attempts; None means give up."""
        if failures >= self.attempts:
            return None
        return min(self.initial_delay * self.multiplier ** (failures - 1), self.max_delay)


class Dispatcher:
    """Sends pending deliveries from the store through the configured notifiers.

    dispatch_pending sends what is due in the caller's thread; start() runs one worker thread
    per channel instead, woken by flush() and by the store's retry schedule. owner names this
    dispatcher's claims; lease_seconds is how long a claim lasts (longer than any channel's
    timeout), after which another dispatcher may take over a delivery whose sender died.
    """

    def __init__(self, store: AlertStore, notifiers: Mapping[str, object],
                 policy: RetryPolicy = RetryPolicy(), *, lease_seconds: float = 120.0,
                 poll_seconds: float = 30.0, clock: Callable[[], float] = time.time,
                 owner: Optional[str] = None):
        self.store = store
        self.notifiers: Dict[str, object] = {"log": LogNotifier(), **dict(notifiers)}
        for channel, notifier in self.notifiers.items():
            if not callable(getattr(notifier, "send", None)):
                raise ValueError(f"notifier for channel {channel!r} has no send(alert) method")
        if lease_seconds <= 0 or poll_seconds <= 0:
            raise ValueError(f"lease_seconds and poll_seconds must be positive, got "
                             f"{lease_seconds} and {poll_seconds}")
        for channel, notifier in self.notifiers.items():
            timeout = getattr(notifier, "timeout", None)
            if timeout is not None and 3 * timeout >= lease_seconds:
                raise ValueError(f"notifier for channel {channel!r} has timeout {timeout}s; a "
                                 f"claim of lease_seconds={lease_seconds} must outlast a send "
                                 "(connect, handshake, answer): use under a third of it")
        self.policy, self.lease_seconds, self.poll_seconds = policy, lease_seconds, poll_seconds
        self.clock = clock
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.secrets = tuple(s for n in self.notifiers.values() for s in getattr(n, "secrets", ()))
        self._state = threading.Condition()
        self._sent = 0
        self._requested = {channel: 0 for channel in self.notifiers}
        self._finished = {channel: 0 for channel in self.notifiers}
        self._wake = {channel: threading.Event() for channel in self.notifiers}
        self._stop = threading.Event()
        self._threads: Dict[str, threading.Thread] = {}
        if self.secrets:
            store.redact_errors(self.secrets)

    def dispatch_pending(self) -> int:
        """Send every delivery due now, channel by channel, in this thread; returns how many."""
        return sum(self._drain(channel) for channel in self.notifiers)

    def _drain(self, channel: str) -> int:
        """Claim and send the channel's due deliveries one by one until none is left."""
        sent = 0
        while not self._stop.is_set():
            delivery = self.store.claim_next(channel, self.owner, self.lease_seconds,
                                             self.clock())
            if delivery is None:
                return sent
            sent += self._deliver(delivery)
        return sent

    def _deliver(self, delivery: Delivery) -> bool:
        """One attempt; any failure is recorded on the delivery, never raised to the caller."""
        notifier = self.notifiers[delivery.channel]
        try:
            notifier.send(delivery.alert)
        except Exception as error:  # a channel's failure of any kind belongs to its delivery
            self._failed(delivery, error)
            return False
        self.store.mark_sent(delivery.delivery_id, self.owner)
        with self._state:
            self._sent += 1
        return True

    def _failed(self, delivery: Delivery, error: Exception) -> None:
        text = header_text(scrub(str(error) if isinstance(error, DeliveryError) else
                                 f"{delivery.channel}: {type(error).__name__}: {error}",
                                 self.secrets))
        failures = delivery.attempts + 1
        delay = None if getattr(error, "permanent", False) else self.policy.delay_after(failures)
        if delay is None:
            LOGGER.error("alert %s dead-lettered on %s after %d attempts: %s",
                         delivery.alert_id, delivery.channel, failures, text)
            self.store.mark_failed(delivery.delivery_id, self.owner, text, None)
        else:
            LOGGER.warning("alert %s not delivered to %s (attempt %d), retrying in %.1fs: %s",
                           delivery.alert_id, delivery.channel, failures, delay, text)
            self.store.mark_failed(delivery.delivery_id, self.owner, text, self.clock() + delay)

    # Background delivery ----------------------------------------------------------------

    def start(self) -> None:
        """Start one daemon worker per channel (idempotent); daemons never hold up an exit."""
        for channel in self.notifiers:
            if channel not in self._threads:
                thread = threading.Thread(target=self._work, args=(channel,), daemon=True,
                                          name=f"alert-delivery-{channel}")
                self._threads[channel] = thread
                thread.start()

    def _work(self, channel: str) -> None:
        while not self._stop.is_set():
            self._wake[channel].clear()
            with self._state:
                round_ = self._requested[channel]
            try:
                self._drain(channel)
                wait = self._until_due(channel)
            except Exception as error:  # the store failing (disk, lock) must not end delivery
                LOGGER.error("alert delivery on %s failed, retrying in %.0fs: %s", channel,
                             self.poll_seconds, scrub(f"{type(error).__name__}: {error}",
                                                      self.secrets))
                wait = self.poll_seconds
            with self._state:
                self._finished[channel] = max(self._finished[channel], round_)
                self._state.notify_all()
            self._wake[channel].wait(wait)

    def _until_due(self, channel: str) -> float:
        due = self.store.next_due_at(channel)
        if due is None:
            return self.poll_seconds
        return min(max(due - self.clock(), 0.01), self.poll_seconds)

    def flush(self, timeout: float) -> int:
        """Wake the workers and wait up to timeout s for what is due now; returns sends meanwhile.

        Returns early once every channel's worker has gone through the deliveries due when
        flush was called; a channel still busy (unresponsive endpoint) just ends the wait.
        """
        if self._stop.is_set():
            return 0
        self.start()
        with self._state:
            sent_before = self._sent
            for channel in self.notifiers:
                self._requested[channel] += 1
            wanted = dict(self._requested)
        for event in self._wake.values():
            event.set()
        with self._state:
            self._state.wait_for(lambda: all(self._finished[c] >= wanted[c] for c in wanted),
                                 timeout=max(timeout, 0.0))
            return self._sent - sent_before

    def close(self, timeout: float = 5.0) -> None:
        """Flush for at most timeout s, then stop the workers (a hung send is left to die)."""
        deadline = time.monotonic() + max(timeout, 0.0)
        if self._threads and not self._stop.is_set():
            self.flush(timeout)
        self.stop()
        for thread in self._threads.values():
            thread.join(max(deadline - time.monotonic(), 0.0))

    def stop(self) -> None:
        """Ask the workers to end after their current send, without waiting."""
        self._stop.set()
        for event in self._wake.values():
            event.set()
