"""Lifecycle events (a job failed after its retries, a rollback) sent as alerts.

Why through monitoring's machinery: an alert is stored before it is sent and each channel's
delivery is retried with backoff (ml.monitoring.alert_store, ml.monitoring.notifications), so
a failing job's page survives an endpoint outage and a restart. The events live in their own
store (Home.lifecycle_alerts_db), not monitoring's alerts.sqlite, which the loop reads as
retraining triggers. An event is a DriftAlert of type performance_drift whose metric names the
event ('retraining_failed', 'rollback') and whose details carry the figures.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, Mapping, Optional, Union

from ml.core.home import Home
from ml.lifecycle.clock import Clock, SystemClock, utc
from ml.monitoring.alert_store import AlertStore
from ml.monitoring.alerts import DriftAlert, DriftType, json_ready, parse_severity
from ml.monitoring.notifications import Dispatcher

Notifiers = Union[Mapping[str, object], Iterable[object], None]


def notifier_map(notifiers: Notifiers) -> Dict[str, object]:
    """Channel name -> notifier, from a mapping or from notifiers that carry `.channel`."""
    if notifiers is None:
        return {}
    if isinstance(notifiers, Mapping):
        return dict(notifiers)
    mapping = {}
    for notifier in notifiers:
        channel = getattr(notifier, "channel", None)
        if not isinstance(channel, str) or not channel:
            raise ValueError(f"notifiers: {notifier!r} has no channel name; pass a mapping "
                             "{'channel': notifier} or a notifier from ml.monitoring.notifications")
        mapping[channel] = notifier
    return mapping


class LifecycleNotifier:
    """Stores a lifecycle alert and delivers it to every configured channel (and the log).

    notifiers None: the home's channels (`<home>/config/notifications.json`,
    ml.monitoring.channel_config), so the loop, a decision by hand and the spec's API reach
    the same people."""

    def __init__(self, home: Home, notifiers: Notifiers = None, clock: Optional[Clock] = None,
                 wait_seconds: float = 5.0):
        from ml.monitoring.channel_config import load_channels

        self.home, self.clock = home, clock or SystemClock()
        channels = load_channels(home) if notifiers is None else notifier_map(notifiers)
        self.store = AlertStore(home.lifecycle_alerts_db)
        self.dispatcher = Dispatcher(self.store, channels)
        self.channels = tuple(self.dispatcher.notifiers)
        self.wait_seconds = float(wait_seconds)

    def notify(self, model: str, event: str, message: str, severity: str = "critical",
               figures: Optional[Dict[str, Any]] = None, value: float = 0.0,
               threshold: float = 0.0) -> DriftAlert:
        """Records the event as an alert and sends it (waits at most wait_seconds)."""
        alert = DriftAlert(drift_type=DriftType.PERFORMANCE_DRIFT,
                           severity=parse_severity(severity), model_name=model, feature=None,
                           metric=event, value=float(value), threshold=float(threshold),
                           message=message, timestamp=utc(self.clock.now()),
                           channels=self.channels, details=json_ready(dict(figures or {})))
        self.send(alert)
        return alert

    def send(self, alert: DriftAlert) -> None:
        """Stores and delivers a ready-made alert to its channels (those configured here)."""
        routed = tuple(c for c in alert.channels if c in self.dispatcher.notifiers) or self.channels
        self.store.record(alert.with_routing(alert.severity, routed, alert.rules), 0.0)
        self.dispatcher.flush(self.wait_seconds)

    def close(self, timeout: float = 5.0) -> None:
        self.dispatcher.close(timeout)
        self.store.close()
