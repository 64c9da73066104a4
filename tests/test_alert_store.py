"""SQLite alert store: stored before sending, pending until accepted, cool-down, history."""
from datetime import timedelta

from ml.monitoring.alert_store import PENDING, SENT, SUPPRESSED, AlertStore
from ml.monitoring.alerts import DriftAlert, DriftType, utc_now


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


def test_sent_deliveries_leave_the_queue_and_failures_stay(tmp_path):
    store = AlertStore(tmp_path / "alerts.sqlite")
    store.record(_alert(), cooldown_seconds=60)
    log, slack = store.pending()
    store.mark_sent(log.delivery_id, attempts=1)
    store.mark_attempt_failed(slack.delivery_id, attempts=3, error="HTTP 500")
    (still,) = store.pending()
    assert still.channel == "slack" and still.attempts == 3
    assert store.pending(channels=["log"]) == []


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
    first.mark_sent(first.pending()[0].delivery_id, attempts=1)
    first.close()
    reopened = AlertStore(path)
    assert [a.feature for a in reopened.history()] == ["b", "a"]
    assert reopened.history("other") == []
    assert reopened.delivery_counts()[("log", SENT)] == 1
    assert len(reopened.pending()) == 3


def test_a_channel_that_is_down_costs_one_retry_sequence_per_round(tmp_path):
    from ml.monitoring.notifications import DeliveryError, Dispatcher, RetryPolicy

    class Down:
        channel = "slack"
        calls = 0

        def send(self, alert):
            Down.calls += 1
            raise DeliveryError("connection refused")

    store = AlertStore(tmp_path / "alerts.sqlite")
    store.record_all([_alert("a"), _alert("b"), _alert("c")], cooldown_seconds=0)
    dispatcher = Dispatcher(store, {"slack": Down()}, RetryPolicy(attempts=3), sleep=lambda s: None)
    assert dispatcher.dispatch_pending() == 3  # the three log deliveries
    assert Down.calls == 3
    assert [d.channel for d in store.pending()] == ["slack"] * 3
