"""SQLite alert store: stored before sending, pending until accepted, cool-down, history."""
import http.client
import json
import sqlite3
from datetime import timedelta

import pytest

from ml.monitoring.alert_store import DEAD, PENDING, SENT, SUPPRESSED, AlertStore
from ml.monitoring.alerts import DriftAlert, DriftType, utc_now
from ml.monitoring.notifications import DeliveryError, Dispatcher, RetryPolicy, SlackNotifier

# The first release's tables, as existing homes have them.
OLD_SCHEMA = """
CREATE TABLE alerts (id INTEGER PRIMARY KEY AUTOINCREMENT, model_name TEXT NOT NULL,
    drift_type TEXT NOT NULL, severity TEXT NOT NULL, feature TEXT, metric TEXT NOT NULL,
    dedup_key TEXT NOT NULL, created_at TEXT NOT NULL, payload TEXT NOT NULL);
CREATE TABLE deliveries (id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id INTEGER NOT NULL REFERENCES alerts(id), channel TEXT NOT NULL,
    status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
    updated_at TEXT NOT NULL);
CREATE INDEX deliveries_status ON deliveries(status);
CREATE INDEX alerts_dedup ON alerts(dedup_key, created_at);
"""


def _alert(feature="price", at=None, channels=("log", "slack")):
    return DriftAlert(drift_type=DriftType.DATA_DRIFT, severity="warning", model_name="risk",
                      feature=feature, metric="psi", value=0.4, threshold=0.25,
                      message=f"drift on {feature}", timestamp=at or utc_now(), channels=channels,
                      details={"adjusted_p_value": 1e-5})


def test_alerts_round_trip_and_start_pending_per_channel(tmp_path):
    store = AlertStore(tmp_path / "alerts.sqlite")
    alert = _alert()
    store.record(alert, cooldown_seconds=60)
    pending = store.pending()
    assert [d.channel for d in pending] == ["log", "slack"]
    assert pending[0].alert == alert
    assert store.delivery_counts() == {("log", PENDING): 1, ("slack", PENDING): 1}


def test_sent_deliveries_leave_the_queue_and_failures_wait_for_their_retry_time(tmp_path):
    store = AlertStore(tmp_path / "alerts.sqlite")
    store.record(_alert(), cooldown_seconds=60)
    log = store.claim_next("log", "me", lease_seconds=60, now=1000.0)
    slack = store.claim_next("slack", "me", lease_seconds=60, now=1000.0)
    assert store.mark_sent(log.delivery_id, "me")
    assert store.mark_failed(slack.delivery_id, "me", "HTTP 500", retry_at=1030.0)
    (still,) = store.pending()
    assert still.channel == "slack" and still.attempts == 1 and still.last_error == "HTTP 500"
    assert store.pending(channels=["log"]) == []
    assert store.claim_next("slack", "me", 60, now=1029.0) is None
    assert store.next_due_at("slack") == 1030.0
    assert store.claim_next("slack", "me", 60, now=1030.0).delivery_id == slack.delivery_id


def test_repeat_within_cool_down_is_stored_but_suppressed(tmp_path):
    store = AlertStore(tmp_path / "alerts.sqlite")
    start = utc_now()
    store.record(_alert(at=start), cooldown_seconds=600)
    store.record(_alert(at=start + timedelta(seconds=60)), cooldown_seconds=600)
    store.record(_alert(feature="volume", at=start + timedelta(seconds=60)), cooldown_seconds=600)
    store.record(_alert(at=start + timedelta(seconds=700)), cooldown_seconds=600)
    counts = store.delivery_counts()
    assert counts[("slack", SUPPRESSED)] == 1 and counts[("slack", PENDING)] == 3
    assert len(store.history("risk")) == 4


def test_store_survives_reopening_and_history_is_newest_first(tmp_path):
    path = tmp_path / "alerts.sqlite"
    first = AlertStore(path)
    first.record_all([_alert("a"), _alert("b")], cooldown_seconds=0)
    first.mark_sent(first.claim_next("log", "me", 60).delivery_id, "me")
    first.close()
    reopened = AlertStore(path)
    assert [a.feature for a in reopened.history()] == ["b", "a"]
    assert reopened.history("other") == []
    assert reopened.delivery_counts()[("log", SENT)] == 1
    assert len(reopened.pending()) == 3


class _Picky:
    """A channel that refuses one alert for good (as a strict endpoint refused NaN JSON)."""

    channel = "slack"

    def __init__(self):
        self.sent, self.calls = [], 0

    def send(self, alert):
        self.calls += 1
        if alert.feature == "bad":
            raise DeliveryError("HTTP 503")
        self.sent.append(alert.feature)


class _Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


def test_a_refused_alert_backs_off_alone_and_is_dead_lettered_at_the_limit(tmp_path):
    store = AlertStore(tmp_path / "alerts.sqlite")
    channel, clock = _Picky(), _Clock()
    dispatcher = Dispatcher(store, {"slack": channel}, RetryPolicy(attempts=3, initial_delay=10),
                            clock=clock)
    store.record_all([_alert("bad"), _alert("a")], cooldown_seconds=0)
    assert dispatcher.dispatch_pending() == 3  # two log deliveries and 'a'
    store.record_all([_alert("b")], cooldown_seconds=0)
    assert dispatcher.dispatch_pending() == 2 and channel.sent == ["a", "b"]
    assert channel.calls == 3  # 'bad' waits for its retry time instead of being tried again
    clock.now += 10
    dispatcher.dispatch_pending()
    clock.now += 19
    dispatcher.dispatch_pending()
    assert channel.calls == 4 and [d.attempts for d in store.pending()] == [2]
    clock.now += 1  # the second backoff, 20 s, has passed: the third and last attempt
    dispatcher.dispatch_pending()
    assert store.pending() == []
    (dead,) = store.dead_letters()
    assert dead.alert.feature == "bad" and dead.attempts == 3 and dead.last_error == "HTTP 503"
    clock.now += 10_000
    dispatcher.dispatch_pending()
    assert channel.calls == 5
    assert store.requeue_dead(["slack"]) == 1 and store.pending()[0].attempts == 0


def test_a_permanent_refusal_is_dead_lettered_at_once(tmp_path):
    class Refusing:
        def send(self, alert):
            raise DeliveryError("HTTP 400", permanent=True)

    store = AlertStore(tmp_path / "alerts.sqlite")
    store.record(_alert(), cooldown_seconds=0)
    Dispatcher(store, {"slack": Refusing()}, RetryPolicy(attempts=5)).dispatch_pending()
    assert store.delivery_counts() == {("log", SENT): 1, ("slack", DEAD): 1}


def test_any_exception_of_a_channel_is_recorded_not_raised(tmp_path):
    class Broken:
        def send(self, alert):
            raise http.client.BadStatusLine("SSH-2.0-OpenSSH\r\n")

    store = AlertStore(tmp_path / "alerts.sqlite")
    store.record(_alert(), cooldown_seconds=0)
    Dispatcher(store, {"slack": Broken()}, RetryPolicy(attempts=2)).dispatch_pending()
    (waiting,) = store.pending()
    assert waiting.last_error == "slack: BadStatusLine: SSH-2.0-OpenSSH"


def test_a_crashed_dispatchers_claim_expires_and_another_sends_it(tmp_path):
    path = tmp_path / "alerts.sqlite"
    store = AlertStore(path)
    store.record(_alert(channels=("slack",)), cooldown_seconds=0)
    crashed = store.claim_next("slack", "crashed", lease_seconds=60, now=1000.0)
    other = AlertStore(path)
    assert other.claim_next("slack", "other", 60, now=1059.0) is None  # still claimed
    taken = other.claim_next("slack", "other", 60, now=1060.0)
    assert taken.delivery_id == crashed.delivery_id
    assert not store.mark_sent(crashed.delivery_id, "crashed")  # its claim was taken over
    assert other.mark_sent(taken.delivery_id, "other")
    assert other.delivery_counts() == {("slack", SENT): 1}


def test_an_old_store_is_migrated_and_its_leaked_secrets_redacted(tmp_path):
    path = tmp_path / "alerts.sqlite"
    secret_url = "https://hooks.slack.com/services/T0/B0/oldT0kenLeaked"
    old = sqlite3.connect(path)
    old.executescript(OLD_SCHEMA)
    payload = json.dumps(_alert(channels=("slack",)).to_dict())
    old.execute("INSERT INTO alerts VALUES (1, 'risk', 'data_drift', 'warning', 'price', 'psi', "
                "'k', '2026-01-01T00:00:00+00:00', ?)", (payload,))
    old.execute("INSERT INTO deliveries VALUES (1, 1, 'slack', 'pending', 3, ?, "
                "'2026-01-01T00:00:00')", (f"slack: gave up: {secret_url} answered HTTP 500",))
    old.commit()
    old.close()
    store = AlertStore(path)
    (waiting,) = store.pending()
    assert waiting.attempts == 3
    Dispatcher(store, {"slack": SlackNotifier(secret_url)}, RetryPolicy(attempts=10))
    assert "oldT0kenLeaked" not in store.pending()[0].last_error
    store.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("alerts.sqlite*"))
    assert b"oldT0kenLeaked" not in stored


def test_a_claim_must_outlast_a_channels_timeout(tmp_path):
    store = AlertStore(tmp_path / "alerts.sqlite")
    with pytest.raises(ValueError, match="channel 'slack' has timeout 60.0s"):
        Dispatcher(store, {"slack": SlackNotifier("https://hooks.example/x", timeout=60)},
                   lease_seconds=120)
