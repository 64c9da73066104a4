"""The simulation's parts: a day's trades through a real (in-process) server with the A/B split,
the day-by-day replay with an injected loop that pushes and promotes, and the HTML report.
The pipeline-backed replay (real RetrainingJobRunner) is the e2e test at the end."""
import datetime as dt

import pytest

from ml.lifecycle.settings import ContinuousSettings
from ml.lifecycle.sim_report import render_report, weekly_auc
from ml.lifecycle.simulation import DayFigures, Simulation, SimulationResult, TimelineEvent, epoch
from ml.lifecycle.traffic import day_trades, send_day
from ml.serving.model_config import promote, register_pushed_version
from ml.serving_client.client import ABSplit, ETRMModelClient, TensorFlowServingClient

MODEL = "etrm_risk_model"
SETTINGS = ContinuousSettings(records_per_span=120, span_days=1, canary_share=0.5)
MONDAY = dt.date(2024, 1, 8)


class InProcessServer:
    """What Simulation needs of a server (client, metrics_url), over tests' in-process one."""

    def __init__(self, home):
        from tests.serving_fixtures import start_server

        self.server = start_server(home, request_log_sampling_rate=1.0,
                                   request_log_max_file_age_seconds=1.0,
                                   model_config_file_poll_wait_seconds=0.2)

    @property
    def metrics_url(self):
        return f"http://127.0.0.1:{self.server.rest_api_port}/monitoring/prometheus/metrics"

    def client(self):
        return ETRMModelClient(TensorFlowServingClient(
            host="127.0.0.1", rest_port=self.server.rest_api_port, grpc_port=self.server.grpc_port))

    def stop(self):
        self.server.stop()


@pytest.fixture
def served_home(tmp_path):
    from tests.serving_fixtures import RISK_MODEL, push_version

    push_version(tmp_path, RISK_MODEL, 1)
    server = InProcessServer(tmp_path)
    _wait_label(server, "stable", 1)
    yield tmp_path, server
    server.stop()


def _add_canary(home, version):
    from tests.serving_fixtures import RISK_MODEL, push_version

    push_version(home, RISK_MODEL, version, register=False)
    register_pushed_version(home / "serving_config" / "models.config", MODEL,
                            home / "serving_models" / MODEL, version)


def _wait_label(server, label, version):
    from tests.serving_fixtures import wait_for

    wait_for(lambda: _label_version(server, label) == version, timeout=60)


def _label_version(server, label):
    from ml.serving_client.client import TensorFlowServingError

    client = ETRMModelClient(server.client().client, label=label)
    try:
        return client.predict_risk_scores([{"volume": 1.0}])[0]["model_version"]
    except TensorFlowServingError:
        return None


@pytest.mark.network
def test_a_days_trades_split_between_stable_and_canary_and_are_logged(served_home):
    from ml.core.home import Home
    from ml.core.request_log import log_files, read_log_frame
    from ml.lifecycle.simulation import wait_for_logs

    home, server = served_home
    _add_canary(home, 2)
    _wait_label(server, "canary", 2)
    trades = day_trades(MONDAY, SETTINGS)
    assert len(trades) == 120 and set(trades["trade_date"].astype(str).str[:10]) == {"2024-01-08"}

    traffic = send_day(server.client(), trades, ABSplit("stable", "canary", 0.3), batch_size=4,
                       seed=1)
    assert traffic.failed == 0 and traffic.requests == len(trades)
    assert traffic.answered_by_version == {1: traffic.sent["stable"], 2: traffic.sent["canary"]}
    assert 0.1 < traffic.sent["canary"] / len(trades) < 0.5
    assert len(traffic.latencies_ms["stable"]) == -(-traffic.sent["stable"] // 4)

    assert wait_for_logs(Home(home), MODEL)
    logged = read_log_frame(log_files(Home(home).serving_log_dir(MODEL)),
                            ["trade_id", "trade_date", "model_version"])
    warm = logged.dropna(subset=["trade_id"])
    assert sorted(warm["trade_id"]) == sorted(trades["trade_id"])


def test_weekend_has_no_trades_and_bad_arguments_are_refused():
    assert day_trades(dt.date(2024, 1, 6), SETTINGS).empty
    with pytest.raises(ValueError, match="batch_size"):
        send_day(None, day_trades(MONDAY, SETTINGS), ABSplit(), batch_size=0)
    with pytest.raises(ValueError, match="weeks"):
        Simulation("/tmp/unused", 0, SETTINGS)
    with pytest.raises(ValueError, match="settings"):
        Simulation("/tmp/unused", 1, {"span_days": 1})


class PushThenPromoteLoop:
    """A stand-in loop: on Tuesday it pushes version 2 to canary, on Thursday promotes it."""

    def __init__(self, simulation, home, store):
        self.simulation, self.home, self.store = simulation, home, store

    async def tick(self):
        clock = self.simulation.clock
        day = dt.datetime.fromtimestamp(clock.now(), dt.timezone.utc).date()
        hour = dt.datetime.fromtimestamp(clock.now(), dt.timezone.utc).hour
        if hour != 0:
            return {}
        if day == MONDAY + dt.timedelta(days=1):
            self.store.record(MODEL, "trigger", "schedule: test", clock.now(), {}, None)
            _add_canary(self.home.root, 2)
            _wait_label(self.simulation.server, "canary", 2)
            self.store.record(MODEL, "push", "pushed v2 to canary", clock.now(), {"version": 2})
        if day == MONDAY + dt.timedelta(days=3):
            promote(self.home.models_config_path, MODEL, "stable", 2)
            _wait_label(self.simulation.server, "stable", 2)
            self.store.record(MODEL, "promote", "canary passed", clock.now(), {"version": 2})
        return {}


@pytest.mark.network
def test_a_week_replayed_with_a_push_and_a_promotion(served_home, tmp_path):
    home, server = served_home
    simulation = Simulation(home, 1, SETTINGS, start=MONDAY, server=server,
                            loop_factory=lambda sim, h, store, s, c: PushThenPromoteLoop(sim, h, store),
                            echo=lambda line: None, probe_label_moves=True)
    result = simulation.run(report_path=tmp_path / "report.html")

    assert [d.date for d in result.days][0] == "2024-01-08" and len(result.days) == 7
    weekend = [d for d in result.days if d.date in ("2024-01-13", "2024-01-14")]
    assert all(sum(d.requests_by_label.values()) == 0 for d in weekend)
    assert sum(d.failed_requests for d in result.days) == 0
    by_date = {d.date: d for d in result.days}
    assert (by_date["2024-01-09"].stable, by_date["2024-01-09"].canary) == (1, 2)
    assert set(by_date["2024-01-10"].requests_by_version) == {1, 2}
    assert set(by_date["2024-01-11"].requests_by_version) == {2}
    assert [e.action for e in result.timeline if e.kind != "alert"] == ["trigger", "push", "promote"]
    assert result.timeline[1].time == epoch(MONDAY + dt.timedelta(days=1), 0.0)
    promoted = [move for move in simulation.label_moves if move["after"].get("stable") == 2]
    assert len(promoted) == 1 and promoted[0]["before"]["stable"] == 1
    assert promoted[0]["probe_requests"] > 0 and promoted[0]["probe_failed"] == 0
    page = result.report_path.read_text()
    assert page.count("data:image/png;base64,") == 4 and "canary passed" in page


def _fake_result():
    days = [DayFigures(f"2024-03-{day:02d}", 1 if day < 6 else 2, 2 if 3 <= day < 6 else None,
                       {"stable": 100, "canary": 20}, {1: 100, 2: 20}, 0, 120, [], 0.1 * day,
                       0.05, 0.70 + 0.01 * day, 0.72 if day > 2 else None, 80 if day > 2 else 0)
            for day in range(1, 11)]
    start = epoch(dt.date(2024, 3, 5), 0.5)
    timeline = [TimelineEvent(start, "trigger", MODEL, "trigger", "drift: price", {}, 3),
                TimelineEvent(start + 60, "job", MODEL, "push", "pushed v2", {"version": 2}, 3),
                TimelineEvent(start + 86400, "decision", MODEL, "promote", "canary <passed>",
                              {"version": 2}, 3)]
    return SimulationResult(MODEL, "2024-03-01", days, timeline, "price_shift@2024-03-04:1.5")


def test_report_is_self_contained_with_plots_and_a_decision_table():
    page = render_report(_fake_result())
    assert page.count("data:image/png;base64,") == 4
    assert "<link" not in page and "<script" not in page
    assert "canary &lt;passed&gt;" in page and "price_shift@2024-03-04:1.5" in page
    weeks = weekly_auc(_fake_result().days)
    assert [w["week"] for w in weeks] == ["2024-02-26", "2024-03-04"]
    assert weeks[0]["realised_auc"] == pytest.approx(0.72) and weeks[0]["labelled"] == 80


@pytest.mark.e2e
def test_simulation_on_a_trained_home_end_to_end(continuous_home, tmp_path):
    """A week on a home with a trained model (the retraining e2e test's, conftest): the real
    loop, runner and deployment manager; the Sunday cron starts a real job, which ingests the
    window and stops at the sample threshold (training a window is what the retraining e2e
    test proves; here it would add minutes of TFX), every request is answered, estimated and
    realised AUC are recorded. Alerts are read past (the benchmark's cron-only loop): the
    reference is older than the traffic, so drift would open a job every day."""
    from benchmarks.bench_continuous import cron_only_factory
    from ml.lifecycle.config import RetrainingConfig
    from tests.continuous_fixtures import RETRAINING_SETTINGS

    home = continuous_home["home"].root
    settings = ContinuousSettings(**RETRAINING_SETTINGS)
    config = RetrainingConfig(model_name=MODEL, retrain_schedule="0 2 * * 0", data_window_days=3,
                              min_samples_threshold=10**9, auto_deploy=True)
    simulation = Simulation(home, 1, settings, configs=[config], start=dt.date(2024, 2, 5),
                            outcome_delay_days=2, echo=lambda line: None,
                            loop_factory=cron_only_factory)
    result = simulation.run(report_path=tmp_path / "sim.html")
    assert sum(d.failed_requests for d in result.days) == 0
    assert any(e.action == "trigger" and "cron" in e.reason for e in result.timeline)
    skips = [e for e in result.timeline if e.kind == "job" and e.action == "skip"]
    assert skips and "fewer than min_samples_threshold=1000000000" in skips[0].reason
    assert any(d.estimated_auc is not None for d in result.days)
    assert any(d.realised_auc is not None for d in result.days)
    assert result.report_path.read_text().count("data:image/png;base64,") == 4


@pytest.mark.parametrize("flags, message", [
    (["--weeks", "0"], "--weeks must be > 0"),
    (["--weeks", "1", "--drift", "price_shift@March:1"], "--drift: drift scenario"),
    (["--weeks", "1", "--start", "soon"], "--start must be a date"),
    (["--weeks", "1", "--schedule", "weekly"], "retrain_schedule"),
    (["--weeks", "1", "--trades-per-day", "-5"], "--trades-per-day must be > 0"),
])
def test_simulate_command_refuses_bad_flags_in_one_line(tmp_path, capsys, flags, message):
    from ml import cli

    assert cli.main(["continuous", "simulate", "--home", str(tmp_path), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("error: ") and len(err.strip().splitlines()) == 1


def test_benchmark_measures_and_its_section_from_fabricated_runs():
    """The benchmark's arithmetic on made-up runs (the runs themselves need TFX jobs)."""
    import argparse
    import types

    from benchmarks import bench_continuous as bench

    onset = epoch(bench.DRIFT_ONSET)
    days = [DayFigures(str(bench.DRIFT_ONSET - dt.timedelta(days=1)), 1, None, {}, {1: 10}, 0),
            DayFigures(str(bench.DRIFT_ONSET), 1, None, {}, {1: 10}, 0)]
    moves = [{"time": onset + 3600, "before": {"stable": 1}, "after": {"stable": 1, "canary": 2}},
             {"time": onset + 1.5 * 86400, "before": {"stable": 1, "canary": 2},
              "after": {"stable": 2, "canary": 2}, "probe_requests": 40, "probe_failed": 0}]
    simulation = types.SimpleNamespace(days=days, label_moves=moves)
    assert bench.days_to_retrained_stable(simulation) == pytest.approx(1.5)
    pushed_before = [{"time": onset - 86400, "before": {"stable": 1},
                      "after": {"stable": 1, "canary": 2}},
                     {"time": onset + 0.1 * 86400, "before": {"stable": 1, "canary": 2},
                      "after": {"stable": 2, "canary": 2}}]
    assert bench.days_to_retrained_stable(types.SimpleNamespace(
        days=days, label_moves=pushed_before)) is None, "v2 was pushed before the onset"

    quiet_days = [DayFigures("2024-02-05", 1, None, {}, {}, 0, realised_auc=0.75, labelled=100),
                  DayFigures("2024-02-12", 2, None, {}, {}, 0, realised_auc=0.65, labelled=100)]
    assert bench.realised_by_stable(SimulationResult(MODEL, "", quiet_days, [], "")) == {
        1: 0.75, 2: 0.65}

    result = SimulationResult(MODEL, "2024-02-05", days, [], "")
    run = {"days": 1.5, "triggers": ["drift: x"], "moves": moves, "result": result}
    options = bench.Options(150, 2, 2, 1, 40, False, False)
    text = bench.report(options, argparse.Namespace(quick=True, kill9=False), "2 cores", [{
        "drift": bench.DRIFTS[1], "drift triggers": run,
        "weekly cron alone": {**run, "days": 4.5, "moves": []}}],
        {"good": 1, "bad": 2, "hours": 11.0, "bad_requests": 120, "moves": [], "result": result},
        None, {"promotions": 1, "worse": [], "rollbacks": 0, "triggers": 2, "moves": [],
               "result": result}, None, None)
    assert text.startswith("## Continuous learning on the simulation (")
    assert f"| drift onset ({bench.DRIFTS[1]}) to a retrained `stable` | 1.50 days | weekly " \
        "cron alone: 4.50 days | <= 2 days: met" in text
    assert "one guard interval of 12 simulated hours" in text
    assert "0 of 40 probe requests over 1 moves" in text and "NOT met" not in text
    partial = bench.report(options, argparse.Namespace(quick=True, kill9=False,
                                                       scenarios=["bad-model"]), "2 cores",
                           None, {"good": 1, "bad": 2, "hours": 30.0, "bad_requests": 90,
                                  "moves": [], "result": result}, None, None, None, None)
    assert partial.startswith("## Continuous learning on the simulation: bad-model (")
    assert "--quick --scenarios bad-model" in partial
    assert "after 30.0 simulated hours, 90 requests answered by it" in partial
    assert "within one analysis window (12 h): NOT met" in partial
    assert "drift onset" not in partial and "weeks without drift" not in partial
    with pytest.raises(SystemExit):
        bench.main(["--scenarios", "drift,typo"])


class SkippingRunner:
    """A JobRunner that skips every job (no TFX), so the real loop's triggers can be watched."""

    def run(self, context):
        from ml.lifecycle.jobs import JobOutcome

        return JobOutcome("skipped", "test runner: nothing trained")


@pytest.mark.network
def test_the_real_loop_ticks_on_the_simulated_clock_and_its_cron_fires(served_home):
    from ml.lifecycle.loop import ContinuousLearningLoop

    home, server = served_home

    def real_loop(simulation, home, store, settings, clock):
        return ContinuousLearningLoop(home, store, SkippingRunner(), settings, clock,
                                      echo=lambda line: None)

    simulation = Simulation(home, 1, SETTINGS, start=MONDAY, server=server,
                            loop_factory=real_loop, echo=lambda line: None)
    result = simulation.run()
    triggers = [e for e in result.timeline if e.action == "trigger"]
    assert [e.day for e in triggers] == ["2024-01-14"] and "cron" in triggers[0].reason
    assert [e.action for e in result.timeline if e.kind == "job"] == ["skip"]
    assert sum(sum(d.requests_by_label.values()) for d in result.days) == 5 * 120


def test_simulate_flags_become_the_simulation_they_describe(tmp_path):
    import argparse

    from ml.cli.continuous_simulate import add_simulate_command, build

    parser = argparse.ArgumentParser()
    add_simulate_command(parser.add_subparsers())
    args = parser.parse_args(["simulate", "--weeks", "3", "--home", str(tmp_path),
                              "--drift", "volatility_shock@2024-02-14:2.5",
                              "--drift", "mix_change@2024-02-20:0.5", "--trades-per-day", "200",
                              "--span-days", "7", "--seed", "5", "--no-auto-deploy",
                              "--start", "2024-02-05", "--report", str(tmp_path / "r.html")])
    simulation, report = build(args)
    assert (simulation.weeks, simulation.start) == (3, dt.date(2024, 2, 5))
    assert simulation.settings.records_per_span == 1400 and simulation.settings.span_days == 7
    assert simulation.settings.drift_scenarios == ("volatility_shock@2024-02-14:2.5,"
                                                   "mix_change@2024-02-20:0.5")
    assert simulation.settings.seed == 5 and simulation.configs[0].auto_deploy is False
    assert str(report) == str(tmp_path / "r.html")
