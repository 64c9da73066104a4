"""Deployment decisions: label moves with compare-and-swap under TF Serving's two-step rule,
promote / withdraw / rollback on a fake home (models.config + empty version folders), canary
analysis and the guard on synthetic observations, and the DeploymentManager with an injected
observation source and clock. No TensorFlow, no server: fast unit tests."""
import argparse
import ast
import json
import math
import pathlib
import threading
import time
import types

import numpy as np
import pytest

from ml.core.home import Home
from ml.lifecycle import canary_analysis, guard
from ml.lifecycle.canary_analysis import AnalysisThresholds, VersionObservation
from ml.lifecycle.config import RetrainingConfig
from ml.lifecycle.deployment import (CANARY, STABLE, DeploymentManager, PromotionConflict,
                                     known_good_versions, label_versions, models_config_lock,
                                     move_label, promote, promote_by_hand, rollback,
                                     rollback_by_hand, served_versions, withdraw_canary)
from ml.lifecycle.deployment_store import DeploymentStore
from ml.lifecycle.metrics_store import MetricSnapshots
from ml.lifecycle.observations import (PrometheusCounts, histogram_quantile, metrics_delta,
                                       parse_request_metrics, snapshot_retention)
from ml.lifecycle.settings import ContinuousSettings
from ml.lifecycle.store import LifecycleStore
from ml.serving import model_config

MODEL = "etrm_risk_model"
ROOT = pathlib.Path(__file__).resolve().parents[1]


class FakeClock:
    def __init__(self, start: float = 1_000_000.0):
        self.time = start

    def now(self) -> float:
        return self.time

    def advance(self, seconds: float) -> None:
        self.time += seconds


def push(home: Home, version: int) -> None:
    """What the Pusher leaves: the version folder, then canary -> it (stable on the first)."""
    (home.serving_base(MODEL) / str(version)).mkdir(parents=True)
    model_config.register_pushed_version(home.models_config_path, MODEL,
                                         home.serving_base(MODEL), version)


@pytest.fixture
def home(tmp_path):
    return Home(tmp_path / "home")


@pytest.fixture
def store(home):
    return LifecycleStore(home.lifecycle_db)


def strict(value):
    return json.loads(json.dumps(value, allow_nan=False))


# Label moves
def test_move_label_is_a_compare_and_swap(home):
    push(home, 1)
    push(home, 2)
    assert label_versions(home, MODEL) == {STABLE: 1, CANARY: 2}
    with pytest.raises(PromotionConflict, match="points at version 1, not at 2"):
        move_label(home, MODEL, STABLE, 2, expected=2)
    move_label(home, MODEL, STABLE, 2, expected=1)
    assert label_versions(home, MODEL)[STABLE] == 2


def test_two_concurrent_movers_one_wins(home):
    push(home, 1)
    push(home, 2)
    barrier, outcomes = threading.Barrier(2), []

    def mover():
        barrier.wait()
        try:
            move_label(home, MODEL, STABLE, 2, expected=1)
            outcomes.append("moved")
        except PromotionConflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=mover) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(outcomes) == ["conflict", "moved"]
    assert label_versions(home, MODEL)[STABLE] == 2


def _process_mover(root, barrier, results):
    barrier.wait()
    try:
        promote(Home(pathlib.Path(root)), MODEL, expected_stable=1)
        results.put("moved")
    except PromotionConflict:
        results.put("conflict")


def test_two_processes_promoting_at_once_promote_once(home):
    import multiprocessing

    push(home, 1)
    push(home, 2)
    LifecycleStore(home.lifecycle_db)  # the home's database exists before its loops start
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(2), context.Queue()
    processes = [context.Process(target=_process_mover, args=(str(home.root), barrier, results))
                 for _ in range(2)]
    for process in processes:
        process.start()
    outcomes = sorted(results.get(timeout=30) for _ in processes)
    for process in processes:
        process.join(30)
    assert outcomes == ["conflict", "moved"]
    assert label_versions(home, MODEL)[STABLE] == 2


def _open_store(path, barrier, results):
    barrier.wait()
    try:
        DeploymentStore(pathlib.Path(path))
        results.put("ok")
    except Exception as error:  # reported to the test
        results.put(repr(error))


def test_processes_creating_the_deployments_table_at_once_both_succeed(tmp_path):
    import multiprocessing

    context = multiprocessing.get_context("fork")
    for attempt in range(5):
        path = tmp_path / f"lifecycle-{attempt}.sqlite"
        barrier, results = context.Barrier(3), context.Queue()
        processes = [context.Process(target=_open_store, args=(str(path), barrier, results))
                     for _ in range(3)]
        for process in processes:
            process.start()
        outcomes = [results.get(timeout=30) for _ in processes]
        for process in processes:
            process.join(30)
        assert outcomes == ["ok"] * 3


def test_a_mover_waits_for_the_lock_holder(home):
    push(home, 1)
    push(home, 2)
    done = threading.Event()
    with models_config_lock(home):
        thread = threading.Thread(target=lambda: (move_label(home, MODEL, STABLE, 2, 1),
                                                  done.set()))
        thread.start()
        assert not done.wait(0.3)
        assert label_versions(home, MODEL)[STABLE] == 1
    thread.join(10)
    assert done.is_set() and label_versions(home, MODEL)[STABLE] == 2


def test_promote_follows_the_two_step_rule(home, store):
    for version in (1, 2, 3):
        push(home, version)
    assert served_versions(home, MODEL) == [1, 3]  # stable 1 kept, canary 3; 2 left the policy
    with pytest.raises(ValueError, match="two-step rule"):
        promote(home, MODEL, version=2, store=store)
    assert label_versions(home, MODEL)[STABLE] == 1
    result = promote(home, MODEL, reason="by hand", store=store, clock=FakeClock())
    assert (result["version"], result["previous_stable"]) == (3, 1)
    assert label_versions(home, MODEL) == {STABLE: 3, CANARY: 3}
    entry = store.history(MODEL)[-1]
    assert (entry.action, entry.reason, entry.figures["version"]) == ("promote", "by hand", 3)
    with pytest.raises(ValueError, match="already stable"):
        promote(home, MODEL, store=store)


def test_promote_of_a_failed_canary_needs_force(home, store):
    push(home, 1)
    push(home, 2)
    deployments = DeploymentStore(home.lifecycle_db)
    row = deployments.open(MODEL, 2, "canary", 0.0, previous_stable=1)
    deployments.set_verdict(row.id, "fail", {"reasons": ["canary error rate too high"]}, 1.0)
    with pytest.raises(ValueError, match="canary error rate too high.*--force"):
        promote(home, MODEL, store=store)
    assert promote(home, MODEL, store=store, force=True)["forced"] is True
    assert deployments.get(MODEL, 2).phase == "promoted"


def test_withdraw_moves_the_canary_back_to_stable(home, store):
    push(home, 1)
    push(home, 2)
    deployments = DeploymentStore(home.lifecycle_db)
    deployments.open(MODEL, 2, "canary", 0.0, previous_stable=1)
    result = withdraw_canary(home, MODEL, "errors", store=store, clock=FakeClock())
    assert result["version"] == 2 and label_versions(home, MODEL) == {STABLE: 1, CANARY: 1}
    assert deployments.get(MODEL, 2).phase == "withdrawn"
    assert store.history(MODEL)[-1].action == "withdraw"
    with pytest.raises(ValueError, match="nothing to withdraw"):
        withdraw_canary(home, MODEL, "again", store=store)
    with pytest.raises(PromotionConflict):
        push(home, 3)
        withdraw_canary(home, MODEL, "stale view", store=store, expected_canary=2)


def test_known_good_versions_ignore_rolled_back_ones(home, store):
    push(home, 1)
    store.record(MODEL, "promote", "", 1.0, figures={"version": 2, "previous_stable": 1})
    store.record(MODEL, "promote", "", 2.0, figures={"version": 3, "previous_stable": 2})
    store.record(MODEL, "rollback", "", 3.0, figures={"version": 2, "from_version": 3})
    assert known_good_versions(home, MODEL, store) == [1, 2]  # stable label 1 read last
    store.record(MODEL, "promote", "", 4.0, figures={"version": 4, "previous_stable": 2})
    assert 3 not in known_good_versions(home, MODEL, store)


def test_rollback_restores_the_previous_version_and_marks_the_job(home, store):
    clock = FakeClock()
    push(home, 1)
    push(home, 2)
    promote(home, MODEL, store=store, clock=clock)
    push(home, 3)
    job = store.trigger(MODEL, "manual", "test", "2024-01-08", clock.now())
    store.claim("me", 60.0, clock.now())
    store.finish(job.id, "me", "succeeded", clock.now(), result={"pushed_version": 3})
    DeploymentStore(home.lifecycle_db).open(MODEL, 3, "canary", clock.now(), job_id=job.id,
                                            previous_stable=2)
    promote(home, MODEL, store=store, clock=clock)
    assert label_versions(home, MODEL) == {STABLE: 3, CANARY: 3}
    result = rollback(home, MODEL, reason="bad", store=store, clock=clock)
    assert (result["version"], result["from_version"]) == (2, 3)
    assert label_versions(home, MODEL) == {STABLE: 2, CANARY: 2}
    assert result["job_marked_rolled_back"] and store.jobs(MODEL)[0].status == "rolled_back"
    assert store.history(MODEL)[-1].action == "rollback"
    assert known_good_versions(home, MODEL, store)[0] == 2
    assert 3 not in known_good_versions(home, MODEL, store)


def test_rollback_readmits_a_version_the_policy_trimmed(home, store):
    for version in (1, 2, 3, 4):
        push(home, version)
        if version > 1:
            promote(home, MODEL, store=store, clock=FakeClock())
    assert 2 not in served_versions(home, MODEL)
    with pytest.raises(ValueError, match="not on disk"):
        rollback(home, MODEL, to=9, store=store)
    result = rollback(home, MODEL, to=2, store=store, clock=FakeClock())
    assert result["admitted"] and label_versions(home, MODEL)[STABLE] == 2
    assert served_versions(home, MODEL) == [2, 3, 4]
    config = model_config.read_model_server_config(home.models_config_path)
    model_config.check_model_server_config(config, lambda model: [1, 2, 3, 4])


# Canary analysis
def calibrated(rng, rows, shift=0.0):
    scores = np.clip(rng.beta(2, 5, rows) + shift, 0.0, 1.0)
    return scores, (rng.random(rows) < np.clip(scores - shift, 0, 1)).astype(float)


def observation(version, rng, rows=600, errors=0, p95=10.0, shift=0.0, labelled=False,
                uninformative=False, sharper=None):
    """sharper True / False: scores that depart from stable's with a higher / lower CBPE
    estimated AUC (more / less separated probabilities)."""
    scores, labels = calibrated(rng, rows, shift)
    if sharper is not None:
        scores = rng.beta(0.5, 1.5, rows) if sharper else np.clip(
            rng.beta(20, 30, rows) + shift, 0.0, 1.0)
        labels = (rng.random(rows) < scores).astype(float)
    if uninformative:
        labels = rng.permutation(labels)
    return VersionObservation(version, rows, errors, p95 / 2, p95, scores,
                              labels if labelled else None)


THRESHOLDS = AnalysisThresholds()


def run_analysis(make_canary, intervals=3, labelled=False, seed=0):
    rng = np.random.default_rng(seed)
    stables = [observation(1, rng, labelled=labelled) for _ in range(intervals)]
    canaries = [make_canary(rng) for _ in range(intervals)]
    results = [canary_analysis.analyse_interval(s, c, THRESHOLDS) for s, c in zip(stables, canaries)]
    return canary_analysis.verdict(results, canary_analysis.pooled(stables),
                                   canary_analysis.pooled(canaries), THRESHOLDS, 3)


@pytest.mark.parametrize("make_canary, labelled, expected", [
    (lambda rng: observation(2, rng), False, "pass"),
    (lambda rng: observation(2, rng, labelled=True), True, "pass"),
    (lambda rng: observation(2, rng, shift=0.25, sharper=False), False, "wait"),
    (lambda rng: observation(2, rng, shift=0.25, sharper=True), False, "pass"),
    (lambda rng: observation(2, rng, errors=30), False, "fail"),
    (lambda rng: observation(2, rng, p95=40.0), False, "fail"),
    (lambda rng: observation(2, rng, p95=25.0), False, "pass"),
    (lambda rng: observation(2, rng, rows=20), False, "wait"),
    (lambda rng: observation(2, rng, labelled=True, uninformative=True), True, "fail"),
])
def test_canary_verdicts(make_canary, labelled, expected):
    outcome = run_analysis(make_canary, labelled=labelled)
    assert outcome["verdict"] == expected, outcome["reasons"]
    assert outcome["reasons"] and strict(outcome) == outcome


def test_a_model_without_scores_is_judged_on_errors_and_latency():
    stable, canary = VersionObservation(1, 500, 1, 5.0, 9.0), VersionObservation(2, 100, 0, 5.0, 9.5)
    result = canary_analysis.analyse_interval(stable, canary, THRESHOLDS)
    assert canary_analysis.verdict([result], stable, canary, THRESHOLDS, 1)["verdict"] == "pass"


def test_a_few_hundred_outcomes_of_an_equal_canary_do_not_fail_it():
    verdicts = [run_analysis(lambda rng: observation(2, rng, rows=60, labelled=True),
                             labelled=True, seed=seed)["verdict"] for seed in range(20)]
    assert "fail" not in verdicts


def test_a_departing_canary_estimated_better_passes_before_outcomes():
    """Covariate shift: the retrained canary scores differently and its CBPE estimate is at
    least stable's on the same period, so it needs no outcomes; off, it waits for them."""
    rng = np.random.default_rng(4)
    stable, canary = observation(1, rng), observation(2, rng, sharper=True)
    result = canary_analysis.analyse_interval(stable, canary, THRESHOLDS)
    outcome = canary_analysis.verdict([result] * 3, stable, canary, THRESHOLDS, 3)
    assert outcome["figures"]["prediction_shift"]["shifted"]
    estimated = outcome["figures"]["estimated"]
    assert estimated["canary"]["roc_auc"] > estimated["stable"]["roc_auc"]
    assert outcome["verdict"] == "pass" and "estimated (CBPE) AUC" in outcome["reasons"][0]
    waiting = AnalysisThresholds(decide_on_estimate=False)
    assert canary_analysis.verdict([result] * 3, stable, canary, waiting, 3)["verdict"] == "wait"


def test_a_shifted_canary_waits_for_outcomes_then_fails_if_none_arrive():
    """A retrained model may score differently for good reasons: before outcomes its shift
    holds the verdict, for max_outcome_wait_intervals past the required intervals, when its
    estimate is below stable's (what concept change looks like to CBPE)."""
    rng = np.random.default_rng(4)
    stable, canary = observation(1, rng), observation(2, rng, shift=0.25, sharper=False)
    result = canary_analysis.analyse_interval(stable, canary, THRESHOLDS)
    waits = THRESHOLDS.max_outcome_wait_intervals
    for analysed in range(3, 3 + waits):
        outcome = canary_analysis.verdict([result] * analysed, stable, canary, THRESHOLDS, 3)
        assert outcome["verdict"] == "wait", outcome["reasons"]
        assert f"waiting for outcomes to judge it ({analysed - 3} of {waits}" in \
            outcome["reasons"][0]
    outcome = canary_analysis.verdict([result] * (3 + waits), stable, canary, THRESHOLDS, 3)
    assert outcome["verdict"] == "fail"
    assert f"no outcomes arrived to judge it within {waits} more intervals" in outcome["reasons"][0]


def test_a_drop_beyond_the_threshold_but_not_significant_waits_for_more_outcomes_then_passes():
    """150 outcomes each: the canary's AUC is 0.13 below stable's, beyond the allowed 0.05 but
    not significantly. It is neither promoted on that evidence nor withdrawn on noise: it
    waits up to max_outcome_wait_intervals more intervals with traffic, then passes (the
    guard keeps judging it after the promotion)."""
    rng = np.random.default_rng(2)
    stable_scores, stable_labels = calibrated(rng, 150)
    stable = VersionObservation(1, 150, 0, 5.0, 10.0, stable_scores, stable_labels)
    scores, labels = calibrated(rng, 150)
    flipped = rng.random(150) < 0.12
    labels[flipped] = 1 - labels[flipped]
    canary = VersionObservation(2, 150, 0, 5.0, 10.0, scores, labels)
    result = canary_analysis.analyse_interval(stable, canary, THRESHOLDS)
    waits = THRESHOLDS.max_outcome_wait_intervals
    for analysed in range(1, 1 + waits):
        outcome = canary_analysis.verdict([result] * analysed, stable, canary, THRESHOLDS, 1)
        performance = outcome["figures"]["performance"]
        assert performance["auc_drop"] > THRESHOLDS.performance_threshold
        assert not performance["worse"]
        assert outcome["verdict"] == "wait", outcome["reasons"]
        assert ("beyond the allowed drop but not significantly, on 150 canary outcomes); "
                f"waiting for more outcomes ({analysed - 1} of {waits} extra intervals)") in \
            outcome["reasons"][0]
    outcome = canary_analysis.verdict([result] * (1 + waits), stable, canary, THRESHOLDS, 1)
    assert outcome["verdict"] == "pass"
    assert f"not significantly beyond the allowed drop after {waits} extra intervals" in \
        outcome["reasons"][0]


def test_intervals_without_traffic_do_not_use_up_the_wait_for_outcomes():
    """Half-day intervals over a weekend: the empty ones bring no outcome closer, so a
    departing canary keeps waiting until it has waited through intervals with traffic."""
    rng = np.random.default_rng(4)
    stable, canary = observation(1, rng), observation(2, rng, shift=0.25, sharper=False)
    busy = canary_analysis.analyse_interval(stable, canary, THRESHOLDS)
    empty = canary_analysis.analyse_interval(VersionObservation(1), VersionObservation(2),
                                             THRESHOLDS)
    assert empty["status"] == "insufficient"
    waits = THRESHOLDS.max_outcome_wait_intervals
    intervals = [busy] + [empty] * 6 + [busy] * (waits - 1)
    assert canary_analysis.verdict(intervals, stable, canary, THRESHOLDS, 1)["verdict"] == "wait"
    intervals.append(busy)
    assert canary_analysis.verdict(intervals, stable, canary, THRESHOLDS, 1)["verdict"] == "fail"


def test_with_outcomes_a_prediction_shift_is_reported_not_decisive():
    rng = np.random.default_rng(3)
    stable = observation(1, rng, rows=2000, labelled=True)
    scores, labels = calibrated(rng, 2000)
    canary = VersionObservation(2, 2000, 0, 5.0, 10.0, np.sqrt(scores), labels)
    result = canary_analysis.analyse_interval(stable, canary, THRESHOLDS)
    outcome = canary_analysis.verdict([result] * 3, stable, canary, THRESHOLDS, 3)
    assert outcome["figures"]["prediction_shift"]["shifted"]
    assert outcome["verdict"] == "pass", outcome["reasons"]


def test_batched_calls_count_by_their_logged_rows():
    rng = np.random.default_rng(9)
    stable = VersionObservation(1, 8, 0, 4.0, 8.0, rng.beta(2, 5, 300))
    canary = VersionObservation(2, 2, 0, 4.0, 8.0, rng.beta(2, 5, 70))
    assert canary_analysis.analyse_interval(stable, canary, THRESHOLDS)["status"] == "pass"
    failing = VersionObservation(2, 2, 1, 4.0, 8.0, rng.beta(2, 5, 70))
    assert canary_analysis.analyse_interval(stable, failing, THRESHOLDS)["status"] == "fail"


def test_a_few_milliseconds_of_latency_do_not_fail_a_canary():
    rng = np.random.default_rng(4)
    result = canary_analysis.analyse_interval(observation(1, rng, p95=4.0),
                                              observation(2, rng, p95=12.0), THRESHOLDS)
    assert result["status"] == "pass" and result["latency"]["ratio_p95"] == pytest.approx(3.0)


def test_observation_and_thresholds_are_checked_at_the_boundary():
    with pytest.raises(ValueError, match="errors .* exceeds requests"):
        VersionObservation(1, requests=3, errors=4)
    with pytest.raises(ValueError, match="labels: 1 labels for 2 predictions"):
        VersionObservation(1, 2, 0, predictions=[0.1, 0.2], labels=[1.0])
    with pytest.raises(ValueError, match="performance_threshold"):
        AnalysisThresholds(performance_threshold=1.5)


def test_high_threshold_is_the_risk_models_high_cutoff():
    tree = ast.parse((ROOT / "models" / "risk" / "model.py").read_text())
    cutoff = next(node.value.value for node in ast.walk(tree) if isinstance(node, ast.AnnAssign)
                  and getattr(node.target, "id", None) == "high_risk_cutoff")
    assert AnalysisThresholds().high_threshold == cutoff


def test_prometheus_scrapes_give_counts_errors_and_latency_deltas():
    from ml.serving.metrics import ServingMetrics

    metrics = ServingMetrics([MODEL])
    metrics.record_request(MODEL, 2, "predict", "rest", "OK", 0.002)
    before = parse_request_metrics(metrics.render(), MODEL)
    for latency in (0.003, 0.004, 0.004, 0.030):
        metrics.record_request(MODEL, 2, "predict", "grpc", "OK", latency)
    metrics.record_request(MODEL, 2, "predict", "rest", "INVALID_ARGUMENT", 0.001)
    metrics.record_request(MODEL, 3, "predict", "rest", "OK", 0.001)
    delta = metrics_delta(before, parse_request_metrics(metrics.render(), MODEL))
    assert (delta[2]["requests"], delta[2]["errors"], delta[3]["requests"]) == (5, 1, 1)
    assert 2500 < histogram_quantile(0.5, delta[2]["buckets"]) <= 5000
    assert 25000 < histogram_quantile(0.95, delta[2]["buckets"]) <= 50000


def recorded_metrics():
    """A ServingMetrics and a fetch that renders it, in place of the server's page."""
    from ml.serving.metrics import ServingMetrics

    metrics = ServingMetrics([MODEL])
    return metrics, lambda url: metrics.render()


def test_a_new_prometheus_counts_answers_from_its_predecessors_scrapes(home):
    metrics, fetch = recorded_metrics()
    first = PrometheusCounts("http://server/metrics", home, fetch=fetch)
    first.scrape(0.0, MODEL)
    for status in ("OK",) * 9 + ("INVALID_ARGUMENT",):
        metrics.record_request(MODEL, 2, "predict", "rest", status, 0.004)
    first.scrape(100.0, MODEL)
    restarted = PrometheusCounts("http://server/metrics", home, fetch=fetch)
    for _ in range(5):
        metrics.record_request(MODEL, 2, "predict", "rest", "OK", 0.004)
    restarted.scrape(200.0, MODEL)
    assert restarted.counts(MODEL, 2, 0.0, 100.0)[:2] == (10, 1)
    assert restarted.counts(MODEL, 2, 50.0, 200.0)[:2] == (15, 1)  # from the scrape at 0, before 50
    assert restarted.counts(MODEL, 2, 100.0, 200.0)[:2] == (5, 0)
    assert 2.5 < restarted.counts(MODEL, 2, 0.0, 200.0)[3] <= 5.0
    assert restarted.counts(MODEL, 2, -1.0, 200.0) is None  # before the first scrape


def test_prometheus_snapshots_are_pruned_to_what_an_analysis_can_reach(home):
    settings = ContinuousSettings(canary_intervals=2, guard_intervals=3, interval_seconds=100.0)
    assert snapshot_retention(settings) == 700.0
    metrics, fetch = recorded_metrics()
    counts = PrometheusCounts("http://server/metrics", home, settings, fetch=fetch)
    other = MetricSnapshots(home.lifecycle_db)
    other.add("etrm_report_lm", 0.0, {}, 1.0)
    for moment in list(range(0, 1001, 100)) + [1050]:
        metrics.record_request(MODEL, 2, "predict", "rest", "OK", 0.004)
        counts.scrape(float(moment), MODEL)
    snapshots = MetricSnapshots(home.lifecycle_db)
    # The cut is at 350; the scrape at 300 stays as the baseline of what starts after it.
    assert snapshots.times(MODEL) == [float(t) for t in range(300, 1001, 100)] + [1050.0]
    assert snapshots.times("etrm_report_lm") == [0.0]
    assert counts.counts(MODEL, 2, 350.0, 1050.0)[0] == 8
    assert counts.counts(MODEL, 2, 250.0, 1050.0) is None
    counts.scrape(500.0, MODEL)  # a replay on the home restarted the clock
    assert snapshots.times(MODEL) == [300.0, 400.0, 500.0]


# Guard
def guard_reference(auc_rows=3000, seed=5):
    rng = np.random.default_rng(seed)
    return guard.performance_figures(observation(1, rng, rows=auc_rows, labelled=True), THRESHOLDS)


def test_guard_rolls_back_when_auc_drops_beyond_the_threshold():
    rng = np.random.default_rng(6)
    bad = observation(2, rng, rows=2000, labelled=True, uninformative=True)
    check = guard.guard_check(bad, guard_reference(), THRESHOLDS)
    assert (check["status"], check["basis"]) == ("rollback", "realised")
    assert check["test"]["drop"] > 0.1 and strict(check) == check


def test_guard_keeps_a_version_within_the_threshold():
    rng = np.random.default_rng(7)
    same = observation(2, rng, rows=2000, labelled=True)
    check = guard.guard_check(same, guard_reference(), THRESHOLDS)
    assert check["status"] == "ok" and abs(check["test"]["drop"]) < 0.05
    assert strict(check) == check


def test_guard_uses_the_estimate_while_outcomes_lag():
    rng = np.random.default_rng(8)
    check = guard.guard_check(observation(2, rng, rows=800), guard_reference(), THRESHOLDS)
    assert (check["status"], check["basis"]) == ("ok", "estimated")
    assert guard.guard_check(VersionObservation(2), guard_reference(), THRESHOLDS)["status"] == "wait"


def test_guard_judges_an_unvalidated_version_by_the_replaced_ones_scores():
    """Before outcomes, an inverted version's own estimate looks fine; the replaced version's
    scores of the same requests show it falling by far more than the threshold."""
    rng = np.random.default_rng(12)
    good_scores, _ = calibrated(rng, 800)
    inverted = VersionObservation(2, 800, 0, 5.0, 10.0, 1.0 - good_scores)
    assert guard.guard_check(inverted, guard_reference(), THRESHOLDS)["status"] == "ok"
    shadow = guard.shadow_figures(inverted.scores(), good_scores, THRESHOLDS)
    check = guard.guard_check(inverted, guard_reference(), THRESHOLDS, shadow)
    assert (check["status"], check["basis"]) == ("rollback", "shadow")
    assert "judged by version 1's scores of the same requests" in check["reasons"][0]
    assert strict(check) == check
    agreeing = guard.shadow_figures(good_scores, good_scores, THRESHOLDS)
    kept = guard.guard_check(VersionObservation(2, 800, 0, 5.0, 10.0, good_scores),
                             guard_reference(), THRESHOLDS, agreeing)
    assert (kept["status"], kept["basis"]) == ("ok", "shadow")
    assert guard.shadow_figures(good_scores[:10], good_scores[:10], THRESHOLDS) is None


def test_realised_outcomes_overrule_the_shadow_basis():
    rng = np.random.default_rng(13)
    same = observation(2, rng, rows=2000, labelled=True)
    wrong = guard.shadow_figures(same.scores(), 1.0 - same.scores(), THRESHOLDS)
    check = guard.guard_check(same, guard_reference(), THRESHOLDS, wrong)
    assert (check["status"], check["basis"]) == ("ok", "realised")


# The manager
SETTINGS = types.SimpleNamespace(canary_intervals=3, interval_seconds=100.0, guard_intervals=2)


class Source:
    """Observations per version; `bad` versions score at random once labelled."""

    def __init__(self, bad=(), errors=None):
        self.bad, self.errors, self.calls = set(bad), errors or {}, []

    def __call__(self, model_name, version, start, end):
        self.calls.append((version, start, end))
        rng = np.random.default_rng(int(version * 1000 + start) % 2**32)
        rows = int(600 * (end - start) / SETTINGS.interval_seconds)
        return observation(version, rng, rows=rows, labelled=True, uninformative=version in self.bad,
                           errors=self.errors.get(version, 0) * rows // 600)


def manager_home(home, store, source, auto_deploy=True, notes=None):
    push(home, 1)
    push(home, 2)
    clock = FakeClock()
    manager = DeploymentManager(home, store, SETTINGS, clock,
                                notifier=notes.append if notes is not None else None,
                                observations=source)
    config = RetrainingConfig(MODEL, "0 2 * * 0", auto_deploy=auto_deploy)
    job = store.trigger(MODEL, "schedule", "weekly", "2024-01-08", clock.now())
    store.claim("loop", 60.0, clock.now())
    store.finish(job.id, "loop", "succeeded", clock.now(), result={"pushed_version": 2})
    manager.on_pushed(MODEL, config, job, 2)
    return manager, config, clock, job


def test_manager_promotes_a_passing_canary_then_rolls_back_a_failing_guard(home, store):
    notes = []
    source = Source()
    manager, config, clock, job = manager_home(home, store, source, notes=notes)
    clock.advance(150)
    assert [d["verdict"] for d in manager.step(MODEL, config)] == ["wait"]
    clock.advance(150)
    actions = [decision["action"] for decision in manager.step(MODEL, config)]
    assert actions == ["analyse", "promote"]
    assert label_versions(home, MODEL)[STABLE] == 2
    source.bad = {2}
    clock.advance(100)
    decisions = manager.step(MODEL, config)
    assert [d["action"] for d in decisions] == ["guard", "rollback"]
    assert label_versions(home, MODEL) == {STABLE: 1, CANARY: 1}
    assert store.jobs(MODEL)[0].status == "rolled_back"
    assert [note["action"] for note in notes] == ["promote", "rollback"]
    assert [entry.action for entry in store.history(MODEL)] == ["bless", "promote", "rollback"]
    for entry in store.history(MODEL):
        assert strict(entry.figures) == entry.figures


def test_manager_withdraws_a_canary_with_more_errors(home, store):
    manager, config, clock, _ = manager_home(home, store, Source(errors={2: 60}))
    clock.advance(100)
    actions = [decision["action"] for decision in manager.step(MODEL, config)]
    assert actions == ["analyse", "withdraw"]
    assert label_versions(home, MODEL) == {STABLE: 1, CANARY: 1}


def test_without_auto_deploy_the_canary_waits_for_promote(home, store):
    manager, config, clock, _ = manager_home(home, store, Source(), auto_deploy=False)
    clock.advance(300)
    actions = [decision["action"] for decision in manager.step(MODEL, config)]
    assert actions == ["analyse", "wait_for_promote"]
    clock.advance(300)
    assert manager.step(MODEL, config) == []
    assert label_versions(home, MODEL) == {STABLE: 1, CANARY: 2}
    promote(home, MODEL, store=store, clock=clock)
    assert DeploymentStore(home.lifecycle_db).guarded(MODEL).version == 2


def test_a_restarted_manager_continues_the_analysis(home, store):
    source = Source()
    manager, config, clock, _ = manager_home(home, store, source)
    clock.advance(150)
    manager.step(MODEL, config)
    assert len(DeploymentStore(home.lifecycle_db).get(MODEL, 2).intervals) == 1
    restarted = DeploymentManager(home, store, SETTINGS, clock, observations=source)
    clock.advance(200)
    actions = [decision["action"] for decision in restarted.step(MODEL, config)]
    assert actions == ["analyse", "promote"]
    assert len(DeploymentStore(home.lifecycle_db).get(MODEL, 2).intervals) == 3


def test_a_bad_version_promoted_by_hand_is_rolled_back_within_one_interval(home, store):
    notes = []
    manager, config, clock, _ = manager_home(home, store, Source(bad={2}), auto_deploy=False,
                                             notes=notes)
    promote(home, MODEL, store=store, clock=clock, force=True, reason="by hand")
    clock.advance(100)
    decisions = manager.step(MODEL, config)
    assert [d["action"] for d in decisions] == ["guard", "rollback"]
    assert label_versions(home, MODEL) == {STABLE: 1, CANARY: 1}
    reference = DeploymentStore(home.lifecycle_db).get(MODEL, 2).reference
    assert (reference["version"], reference["start"]) == (1, clock.now() - 300)
    assert notes[-1]["severity"] == "critical"


class LoggedSource(Source):
    """Observations with logged requests (a record per row) and outcomes only after
    `labels_from` (clock time): the shape of LoggedObservations."""

    def __init__(self, clock, labels_from, bad=()):
        super().__init__(bad=bad)
        self.clock, self.labels_from = clock, labels_from

    def __call__(self, model_name, version, start, end):
        found = super().__call__(model_name, version, start, end)
        scores = found.scores()
        if version in self.bad:
            scores = 1.0 - scores
        labels = found.labels if self.clock.now() >= self.labels_from else None
        return VersionObservation(version, found.requests, 0, 5.0, 10.0, scores, labels)

    def logged_requests(self, model_name, version, start, end):
        scores = self(model_name, version, start, end).scores()
        return scores, [str(round(1.0 - s if version in self.bad else s, 12)).encode()
                        for s in scores]


def replay_as(version_scores):
    """A shadow scorer: the replaced version's scores of the logged rows (the fake records
    carry the good score)."""
    calls = []

    def shadow(model_name, version, records):
        calls.append((model_name, version, len(records)))
        return np.array([float(record) for record in records])
    shadow.calls = calls
    return shadow


def test_an_unvalidated_promotion_is_judged_by_the_replaced_version_before_outcomes(home, store):
    """promote --force of an inverted version: the guard's first interval, with no outcome
    known, replays its logged requests on version 1 and rolls it back."""
    clock = FakeClock()
    source = LoggedSource(clock, labels_from=math.inf, bad={2})
    shadow = replay_as(source)
    push(home, 1)
    push(home, 2)
    manager = DeploymentManager(home, store, SETTINGS, clock, observations=source, shadow=shadow)
    config = RetrainingConfig(MODEL, "0 2 * * 0", auto_deploy=False)
    promote(home, MODEL, version=2, store=store, clock=clock, force=True)
    assert DeploymentStore(home.lifecycle_db).guarded(MODEL).reference["validated"] is False
    clock.advance(100)
    decisions = manager.step(MODEL, config)
    assert [d["action"] for d in decisions] == ["guard", "rollback"], decisions
    assert shadow.calls == [(MODEL, 1, 600)]
    assert label_versions(home, MODEL)[STABLE] == 1
    check = DeploymentStore(home.lifecycle_db).get(MODEL, 2).guard_checks[0]
    assert check["basis"] == "shadow" and check["labelled"] == 0


def test_a_validated_promotion_is_not_replayed(home, store):
    clock = FakeClock()
    source = LoggedSource(clock, labels_from=math.inf)
    shadow = replay_as(source)
    manager, config, clock, _ = manager_home(home, store, source)
    manager.shadow = shadow
    source.clock = clock
    clock.advance(300)
    assert [d["action"] for d in manager.step(MODEL, config)] == ["analyse", "promote"]
    assert DeploymentStore(home.lifecycle_db).guarded(MODEL).reference["validated"] is True
    clock.advance(100)
    assert manager.step(MODEL, config)[0]["status"] == "ok"
    assert shadow.calls == []


def test_the_guard_checks_again_when_outcomes_arrive_within_an_interval(home, store):
    """Outcomes of the first interval arrive halfway through the second: the guard rolls the
    bad version back then, not at the end of the second interval."""
    clock = FakeClock()
    source = LoggedSource(clock, labels_from=clock.now() + 150)
    push(home, 1)
    push(home, 2)
    manager = DeploymentManager(home, store, SETTINGS, clock, observations=source,
                                shadow=replay_as(source))
    config = RetrainingConfig(MODEL, "0 2 * * 0", auto_deploy=False)
    promote(home, MODEL, version=2, store=store, clock=clock, force=True)
    source.bad = {2}  # bad only once outcomes show it: the replay agrees with version 1
    source.logged_requests = lambda *args: (np.array([]), [])
    clock.advance(100)
    assert [d["status"] for d in manager.step(MODEL, config)] == ["ok"]
    clock.advance(20)
    assert manager.step(MODEL, config) == []  # nothing new: no check
    clock.advance(40)
    decisions = manager.step(MODEL, config)
    assert [d["action"] for d in decisions] == ["guard", "rollback"], decisions
    checks = DeploymentStore(home.lifecycle_db).get(MODEL, 2).guard_checks
    assert [c["basis"] for c in checks] == ["estimated", "realised"]
    assert label_versions(home, MODEL)[STABLE] == 1


def test_without_rollback_on_failure_the_guard_only_notifies(home, store):
    notes = []
    manager, config, clock, _ = manager_home(home, store, Source(bad={2}), notes=notes)
    config.rollback_on_failure = False
    promote(home, MODEL, store=store, clock=clock, force=True)
    clock.advance(100)
    assert manager.step(MODEL, config)[-1]["reason"] == "rollback_on_failure is off"
    assert label_versions(home, MODEL)[STABLE] == 2 and notes[-1]["action"] == "guard"


def test_guard_passes_a_good_promotion_and_ends(home, store):
    manager, config, clock, _ = manager_home(home, store, Source())
    clock.advance(300)
    manager.step(MODEL, config)
    clock.advance(100)
    assert manager.step(MODEL, config)[0]["status"] == "ok"
    clock.advance(100)
    assert manager.step(MODEL, config)[0].get("concluded") is True
    assert DeploymentStore(home.lifecycle_db).guarded(MODEL) is None
    assert label_versions(home, MODEL)[STABLE] == 2


# Status of a canary and a guard
STATUS_SETTINGS = ContinuousSettings(canary_intervals=3, interval_seconds=100.0,
                                     guard_intervals=2, canary_share=0.25)


def status_of(home, clock):
    from ml.cli.continuous import format_status
    from ml.continuous_learning_pipeline import ContinuousLearningPipeline

    pipeline = ContinuousLearningPipeline(home=home, clock=clock, settings=STATUS_SETTINGS)
    pipeline.register_model_for_retraining(RetrainingConfig("risk_model", "0 2 * * 0"))
    status = pipeline.get_pipeline_status()
    assert strict(status) == status
    (model,) = status["models"]
    return model, format_status(status).splitlines()


def test_status_shows_the_canary_under_analysis(home, store, capsys):
    from ml.cli import main
    from ml.lifecycle.clock import iso

    manager, config, clock, job = manager_home(home, store, Source(errors={2: 3}))
    started = clock.now()
    model, _ = status_of(home, clock)
    assert (model["canary"]["intervals_analysed"], model["canary"]["verdict"]) == (0, None)
    clock.advance(250)
    assert [d["verdict"] for d in manager.step(MODEL, config)] == ["wait"]
    model, lines = status_of(home, clock)
    canary = model["canary"]
    assert (canary["version"], canary["stable_version"], canary["job_id"]) == (2, 1, job.id)
    assert (canary["intervals_analysed"], canary["intervals_with_traffic"],
            canary["canary_intervals"]) == (2, 2, 3)
    assert canary["canary"] == {"requests": 1200, "errors": 6}
    assert canary["stable"] == {"requests": 1200, "errors": 0}
    assert (canary["canary_share"], canary["observed_share"]) == (0.25, 0.5)
    assert canary["verdict"] == "wait" and "2 of 3 intervals" in canary["reasons"][0]
    assert canary["next_interval_ends"] == iso(started + 300)
    assert model["guard"] is None
    (line,) = [line for line in lines if line.startswith("  canary v2")]
    assert "(25% of traffic, 50% seen) vs stable v1" in line
    assert "2 of 3 intervals with enough traffic (2 analysed)" in line
    assert "canary 1200 requests/6 errors, stable 1200/0; verdict wait" in line
    assert main(["continuous", "status", "--json", "--home", str(home.root)]) == 0
    (shown,) = json.loads(capsys.readouterr().out)["models"]
    assert shown["canary"]["intervals_analysed"] == 2 and shown["canary"]["canary_intervals"] == 3


def test_status_shows_the_guard_of_a_promotion(home, store):
    from ml.lifecycle.clock import iso

    manager, config, clock, _ = manager_home(home, store, Source())
    clock.advance(300)
    assert [d["action"] for d in manager.step(MODEL, config)] == ["analyse", "promote"]
    promoted = clock.now()
    model, _ = status_of(home, clock)
    assert model["canary"] is None
    guard = model["guard"]
    assert (guard["version"], guard["against_version"], guard["intervals_checked"],
            guard["guard_intervals"], guard["last_check"]) == (2, 1, 0, 2, None)
    clock.advance(100)
    assert manager.step(MODEL, config)[0]["status"] == "ok"
    model, lines = status_of(home, clock)
    guard = model["guard"]
    assert guard["intervals_checked"] == 1
    assert (guard["last_check"]["status"], guard["last_check"]["basis"]) == ("ok", "realised")
    assert (guard["promoted"], guard["ends"], guard["ends_at_latest"]) == (
        iso(promoted), iso(promoted + 200), iso(promoted + 500))
    (line,) = [line for line in lines if line.startswith("  guard v2")]
    assert "(against v1)" in line and "1 of 2 intervals checked, last ok (realised)" in line
    assert f"ends {iso(promoted + 200)}" in line
    clock.advance(100)
    manager.step(MODEL, config)
    assert status_of(home, clock)[0]["guard"] is None  # concluded


def test_status_follows_the_settings_of_the_loop_not_its_own(home, store):
    """`etrm continuous status` runs with defaults (daily intervals, three of them); the guard
    it shows must end when the loop's own settings say."""
    from ml.continuous_learning_pipeline import ContinuousLearningPipeline
    from ml.lifecycle.clock import iso

    manager, config, clock, _ = manager_home(home, store, Source())
    clock.advance(300)
    manager.step(MODEL, config)
    promoted = clock.now()
    store.record_loop_settings(STATUS_SETTINGS.to_dict(), promoted)
    reader = ContinuousLearningPipeline(home=home, clock=clock)
    reader.register_model_for_retraining(RetrainingConfig("risk_model", "0 2 * * 0"))
    guard = reader.get_pipeline_status()["models"][0]["guard"]
    assert (guard["guard_intervals"], guard["ends"]) == (2, iso(promoted + 200))


# Promote and rollback by hand
@pytest.mark.network
def test_promote_and_rollback_by_hand_reach_the_lifecycle_channels(home, store):
    from ml.lifecycle.notify import LifecycleNotifier
    from ml.monitoring.notifications import SlackNotifier
    from tests.continuous_fixtures import WebhookReceiver

    manager, config, clock, job = manager_home(home, store, Source(), auto_deploy=False)
    hook = WebhookReceiver()
    notifier = LifecycleNotifier(home, [SlackNotifier(hook.url, timeout=5.0)], clock)
    try:
        promoted = promote_by_hand(home, MODEL, reason="release 2 approved", by="alice@desk",
                                   store=store, clock=clock, notifier=notifier)
        clock.advance(50)
        rolled = rollback_by_hand(home, MODEL, reason="traders see odd scores", by="bob@desk",
                                  store=store, clock=clock, notifier=notifier)
    finally:
        notifier.close()
        hook.close()
    assert promoted["notification_error"] is None and rolled["notification_error"] is None
    texts = [body["text"] for body in hook.bodies]
    assert texts == [
        "[INFO] etrm_risk_model: stable v1 -> v2, promoted by hand by alice@desk: release 2 "
        "approved",
        "[CRITICAL] etrm_risk_model: stable v2 rolled back to v1 by hand by bob@desk: traders "
        "see odd scores"]
    assert label_versions(home, MODEL) == {STABLE: 1, CANARY: 1}
    assert store.jobs(MODEL)[0].status == "rolled_back" and rolled["job_marked_rolled_back"]
    assert [(e.action, e.figures["manual"], e.figures["by"]) for e in store.history(MODEL)] == [
        ("promote", True, "alice@desk"), ("rollback", True, "bob@desk")]


def test_a_failing_channel_does_not_undo_a_promotion_by_hand(home, store):
    push(home, 1)
    push(home, 2)

    def down(event):
        raise RuntimeError("channel down")

    result = promote_by_hand(home, MODEL, store=store, clock=FakeClock(), notifier=down)
    assert result["notification_error"] == "RuntimeError: channel down"
    assert label_versions(home, MODEL)[STABLE] == 2
    assert store.history(MODEL)[-1].figures["by"]


# CLI
def cli(*argv):
    from ml.cli.continuous_deploy import add_deploy_commands

    parser = argparse.ArgumentParser()
    add_deploy_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.handler(args)


def test_cli_promote_and_rollback(home, capsys):
    from ml.lifecycle.status import recent_alerts

    push(home, 1)
    push(home, 2)
    assert cli("promote", "risk_model", "--home", str(home.root)) == 0
    out = capsys.readouterr().out
    assert "stable -> version 2" in out and "; notified: log" in out
    assert cli("rollback", "risk_model", "--home", str(home.root), "--reason", "test") == 0
    assert "rolled back from 2" in capsys.readouterr().out
    assert label_versions(home, MODEL)[STABLE] == 1
    alerts = recent_alerts(home.lifecycle_alerts_db, 10)
    assert [(alert["metric"], "by hand" in alert["message"]) for alert in alerts] == [
        ("rollback", True), ("promote", True)]
    assert cli("rollback", "risk_model", "--home", str(home.root), "--to", "7") == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: version 7") and "\n" not in error
    assert cli("promote", "fraud_model", "--home", str(home.root)) == 2
    assert cli("promote", "risk_model", "--home", str(home.root / "nowhere")) == 2
    capsys.readouterr()
    home.lifecycle_db.write_bytes(b"not a database" * 100)
    from ml import cli as etrm

    assert etrm.main(["continuous", "rollback", "risk_model", "--home", str(home.root)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and "\n" not in error, "a store error is one line"


@pytest.mark.slow
def test_logged_observations_read_the_servers_logs_and_regenerated_outcomes(home):
    """The default source on logs in the server's format: rows by version and time, outcomes
    regenerated from the recorded settings once older than the label delay."""
    import tensorflow as tf

    from components.etrm_example_gen import span_data
    from ml.core.request_log import build_log_examples
    from ml.lifecycle.observations import LoggedObservations
    from ml.synthetic import spans
    from models.risk.features import LABEL_KEY

    settings = {"records_per_span": 200, "seed": 42, "history_start": "2024-01-01",
                "period_days": 7, "drift_scenarios": "", "shuffle_labels": 0}
    table = spans.generate_table(spans.SpanRequest("trades", 0, **{**settings,
                                                                    "shuffle_labels": False}))
    requests = table.drop(columns=[LABEL_KEY, "high_risk_probability"])
    records = [r for b in span_data.table_to_record_batches(requests)
               for r in span_data.encode_record_batch(b)]
    log_dir = home.serving_log_dir(MODEL)
    log_dir.mkdir(parents=True)
    start = 1_700_000_000.0
    with tf.io.TFRecordWriter(str(log_dir / "requests-20231114T221320-1-00001.tfrecord")) as writer:
        for index, record in enumerate(records):
            for logged in build_log_examples(
                    MODEL, 1 + index % 2, "serving_default",
                    {"examples": np.array([record], dtype=object)},
                    {"risk_score": np.array([0.3], dtype=np.float32)},
                    int((start + index) * 1e6)):
                writer.write(logged)
        probe = tf.train.Example(features=tf.train.Features(feature={
            "volume": tf.train.Feature(float_list=tf.train.FloatList(value=[1.0]))}))
        for logged in build_log_examples(  # a client's probe: no trade_id, no trade_date
                MODEL, 1, "serving_default",
                {"examples": np.array([probe.SerializeToString()], dtype=object)},
                {"risk_score": np.array([0.5], dtype=np.float32)}, int(start * 1e6)):
            writer.write(logged)
    clock = FakeClock(start + len(records))
    source = LoggedObservations(home, clock=clock, label_delay_seconds=100.0,
                                generator_settings=settings)
    seen = source(MODEL, 2, start, start + len(records))
    assert seen.requests == len(records) // 2 and seen.errors == 0
    assert np.allclose(seen.predictions, 0.3)
    labels = np.asarray(seen.labels)
    due = len(records) - 100
    expected = table[LABEL_KEY].to_numpy(float)[1:due:2]
    assert np.array_equal(labels[:len(expected)], expected)
    assert np.isnan(labels[len(expected) + 1:]).all()
    assert source(MODEL, 1, start, start + 10).requests == 6  # 5 trades and the probe
    by_day = LoggedObservations(home, time_basis="trade_date", generator_settings=settings)
    first_day = spans.span_window(0, "2024-01-01", 7)[0].timestamp()
    assert by_day(MODEL, 1, first_day, first_day + 7 * 86400).requests == len(records) // 2 + \
        len(records) % 2


def test_a_notifier_object_gets_notify_calls(home, store):
    class Channel:
        def __init__(self):
            self.calls = []

        def notify(self, model, event, message, severity="critical", figures=None):
            self.calls.append((model, event, severity))

    channel = Channel()
    manager, config, clock, _ = manager_home(home, store, Source(errors={2: 60}))
    manager.notifier = channel
    clock.advance(100)
    manager.step(MODEL, config)
    assert channel.calls == [(MODEL, "withdraw", "warning")]


def test_push_history_from_ml_metadata_makes_the_first_version_known_good(home, store):
    from ml_metadata.proto import metadata_store_pb2

    from ml.core import metadata

    push(home, 1)
    push(home, 2)
    mlmd = metadata.store_for(home)
    type_id = mlmd.put_artifact_type(metadata_store_pb2.ArtifactType(name="PushedModel"))
    for version in (1, 2):
        artifact = metadata_store_pb2.Artifact(type_id=type_id)
        artifact.custom_properties["pushed"].int_value = 1
        artifact.custom_properties["pushed_version"].string_value = str(version)
        artifact.custom_properties["pushed_destination"].string_value = str(
            home.serving_base(MODEL) / str(version))
        mlmd.put_artifacts([artifact])
    move_label(home, MODEL, STABLE, 2, expected=1)  # moved without an audit entry
    assert known_good_versions(home, MODEL, store) == [2, 1]
    result = rollback(home, MODEL, store=store, clock=FakeClock())
    assert result["version"] == 1 and result["mlmd"]["from_version"]["pushed_model_id"] == 2


@pytest.mark.slow
@pytest.mark.network
def test_a_rollback_to_a_trimmed_version_on_a_real_server_fails_no_request(tmp_path):
    """The two steps against the local server under traffic: the trimmed target is admitted,
    `stable` moves once it has loaded, no request fails; the metrics page counts both."""
    from benchmarks.bench_transitions import Traffic
    from ml.lifecycle.observations import PrometheusCounts
    from tests.serving_fixtures import RISK_MODEL, push_version, start_server, wait_for

    home = Home(tmp_path / "home")
    for version in (1, 2, 3):
        push_version(home.root, RISK_MODEL, version)
        if version > 1:
            promote(home, RISK_MODEL, clock=FakeClock())
    assert 1 not in served_versions(home, RISK_MODEL)
    server = start_server(home.root, model_config_file_poll_wait_seconds=0.2,
                          file_system_poll_wait_seconds=0.2)
    counts = PrometheusCounts(f"http://127.0.0.1:{server.rest_api_port}/monitoring/prometheus/"
                              f"metrics", home)
    try:
        counts.scrape(0.0, RISK_MODEL)
        with Traffic(server, clients=4, targets=("stable", "canary")) as traffic:
            wait_for(lambda: traffic.count > 100)
            result = rollback(home, RISK_MODEL, to=1, clock=FakeClock())
            assert result["admitted"]
            wait_for(lambda: 1 in traffic.versions["stable"], timeout=120)
            after = traffic.count
            wait_for(lambda: traffic.count > after + 100)
        counts.scrape(1.0, RISK_MODEL)
        assert traffic.failures == [] and sum(traffic.failed.values()) == 0
        assert traffic.versions["stable"] == [3, 1]
    finally:
        server.stop()
    requests, errors, p50, p95 = counts.counts(RISK_MODEL, 1, 0.0, 1.0)
    assert requests > 0 and errors == 0 and 0 < p50 <= p95
    assert counts.counts(RISK_MODEL, 3, 0.0, 1.0)[0] > 0


@pytest.mark.slow
@pytest.mark.network
def test_a_forced_inverted_model_is_rolled_back_on_its_first_window_on_a_real_server(tmp_path):
    """promote --force of version 1 with its scores inverted, real traffic through the local
    server with request logging: before any outcome, the guard replays the logged requests on
    version 1 in this process, rolls back, version 1 answers `stable` again and the rollback
    reaches a Slack-style endpoint the test starts."""
    from benchmarks.bench_continuous import _inverted_model
    from components.serving_pusher.versions import push_model
    from ml.lifecycle.notify import LifecycleNotifier
    from ml.lifecycle.observations import LoggedObservations
    from ml.lifecycle.simulation import wait_for_logs
    from ml.monitoring.notifications import SlackNotifier
    from ml.serving_client.client import TensorFlowServingClient
    from tests.continuous_fixtures import WebhookReceiver
    from tests.serving_fixtures import RISK_MODEL, push_version, serialized_trade, start_server, \
        wait_for

    home = Home(tmp_path / "home")
    push_version(home.root, RISK_MODEL, 1)
    pushed = push_model(str(_inverted_model(home.serving_base(RISK_MODEL) / "1", tmp_path / "bad")),
                        home.serving_models_dir, RISK_MODEL, home.models_config_path)
    assert pushed.name == "2"
    store = LifecycleStore(home.lifecycle_db)
    settings = ContinuousSettings(canary_intervals=1, interval_seconds=3600.0, guard_intervals=1)
    clock = FakeClock(time.time() - 1.0)
    hook = WebhookReceiver()
    notifier = LifecycleNotifier(home, [SlackNotifier(hook.url, timeout=5.0)], clock)
    server = start_server(home.root, model_config_file_poll_wait_seconds=0.2,
                          request_log_sampling_rate=1.0, request_log_max_file_age_seconds=0.5)
    client = TensorFlowServingClient(host="127.0.0.1", rest_port=server.rest_api_port)

    def stable_version():
        return client.predict(RISK_MODEL, {"examples": [serialized_trade(volume=1.0)]},
                              label="stable").model_version

    rng = np.random.default_rng(3)
    trades = [serialized_trade(volume=float(rng.uniform(10, 5000)),
                               price=float(rng.uniform(20, 150)),
                               volatility=float(rng.uniform(0.05, 0.8)),
                               tenor_days=int(rng.integers(1, 720)),
                               commodity=str(rng.choice(["power", "natural_gas", "crude_oil"])),
                               instrument=str(rng.choice(["forward", "option", "swap"])))
              for _ in range(300)]
    try:
        promote(home, RISK_MODEL, version=2, store=store, clock=clock, force=True,
                reason="test: a bad model by hand")
        wait_for(lambda: stable_version() == 2, timeout=60)
        for start in range(0, len(trades), 30):
            client.predict(RISK_MODEL, {"examples": trades[start:start + 30]}, label="stable")
        assert wait_for_logs(home, RISK_MODEL, timeout=30)
        manager = DeploymentManager(home, store, settings, clock, notifier=notifier,
                                    observations=LoggedObservations(
                                        home, clock=clock, label_delay_seconds=10 * 86400.0))
        config = RetrainingConfig(RISK_MODEL, "0 2 * * 0")
        clock.advance(3600.0)
        decisions = manager.step(RISK_MODEL, config)
        assert [d["action"] for d in decisions] == ["guard", "rollback"], decisions
        wait_for(lambda: stable_version() == 1, timeout=60)
    finally:
        server.stop()
        notifier.close()
        hook.close()
    check = DeploymentStore(home.lifecycle_db).get(RISK_MODEL, 2).guard_checks[0]
    assert (check["basis"], check["labelled"]) == ("shadow", 0)
    assert check["current"]["shadow"]["rows"] >= 300
    assert check["test"]["drop"] > 0.2
    assert label_versions(home, RISK_MODEL)[STABLE] == 1
    (body,) = hook.bodies
    assert body["text"].startswith("[CRITICAL] etrm_risk_model: stable v2 rolled back to v1")
