"""`etrm models` (the registry view) and `etrm runs` (past pipeline runs) on the hand-built ML
Metadata store of tests/lineage_fixtures.py. No TensorFlow."""
import json

import pytest
from ml_metadata.proto import metadata_store_pb2 as pb

from ml.cli import main
from ml.core import registry
from ml.lifecycle.registry_view import version_rows
from ml.lifecycle.run_history import pipeline_runs
from tests.lineage_fixtures import MODEL, StoreBuilder, build_home


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return build_home(tmp_path_factory.mktemp("registry-home"))


def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_every_pushed_version_with_labels_metrics_baseline_and_window(home):
    rows = version_rows(home["store"], registry.RISK_MODEL, {"stable": 1, "canary": 2})
    assert [row["version"] for row in rows] == [1, 2]
    first, second = rows
    assert first["labels"] == ["stable"] and second["labels"] == ["canary"]
    assert first["baseline_version"] is None and second["baseline_version"] == 1
    assert second["warm_start_version"] == 1
    assert first["spans"] == [1, 2, 3] and second["spans"] == [2, 3, 4]
    assert second["metrics"] == {"auc": pytest.approx(0.82), "binary_accuracy": pytest.approx(0.86)}
    assert second["blessed"] is True and second["push_key"] == f"{MODEL}@2024-01-05#job2"


def test_models_command_prints_one_line_per_version(home, capsys):
    code, out, err = cli(capsys, "models", "--home", str(home["root"]))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"{MODEL}: 2 pushed version(s)"
    assert lines[1].startswith("  v1 [stable] pushed ") and "without a baseline; spans 1-3" in lines[1]
    assert lines[2].startswith("  v2 [canary] pushed ") and "auc 0.8200" in lines[2]
    assert "blessed against v1; spans 2-4" in lines[2]
    assert "etrm_report_lm: no pushed version" in out
    code, out, _ = cli(capsys, "models", "risk", "--json", "--home", str(home["root"]))
    data = json.loads(out)
    assert list(data) == [MODEL] and data[MODEL]["labels"] == {"stable": 1, "canary": 2}
    assert [v["version"] for v in data[MODEL]["versions"]] == [1, 2]


def test_models_command_refuses_an_unknown_model(home, capsys):
    code, out, err = cli(capsys, "models", "nope", "--home", str(home["root"]))
    assert code == 2 and out == "" and err.startswith("error: unknown model 'nope'")


def test_runs_newest_first_with_spans_pushes_and_the_runners_summary(home):
    rows = pipeline_runs(home["store"], home["root"] / "runs")
    assert len(rows) == 7 and all(row["pipeline"] == "etrm-risk-pipeline" for row in rows)
    rejected, second, first = rows[:3]
    assert rejected["pushed"] == [{"model": None, "version": None,
                                   "not_pushed_reason": "not blessed by the Evaluator"}]
    assert second["pushed"] == [{"model": MODEL, "version": 2}]
    assert second["window_spans"] == [2, 3, 4] and second["wall_seconds"] == 321.5
    assert second["summary"].endswith("run-20240105T000000000000.json")
    assert first["pushed"] == [{"model": MODEL, "version": 1}] and first["summary"] is None
    assert [row["ingested_spans"] for row in rows[3:]] == [[4], [3], [2], [1]]
    assert all(row["status"] == "succeeded" for row in rows)
    assert len(pipeline_runs(home["store"], limit=2)) == 2


def test_a_run_with_a_failed_execution_is_failed_and_an_unfinished_one_running(tmp_path):
    builder = StoreBuilder(tmp_path)
    failed = builder.run()
    builder.execute(failed, "ETRMExampleGen", state=pb.Execution.FAILED)
    unfinished = builder.run()
    builder.execute(unfinished, "ETRMExampleGen")
    builder.execute(unfinished, "StatisticsGen", state=pb.Execution.RUNNING)
    statuses = {row["run_id"]: row["status"] for row in pipeline_runs(builder.store)}
    assert statuses == {failed.name: "failed", unfinished.name: "running"}
    from ml.cli.runs import run_line
    lines = [run_line(row) for row in pipeline_runs(builder.store)]
    assert " running   " in lines[0] and "≥" in lines[0] and "≥" not in lines[1]


def test_runs_command_lists_and_limits(home, capsys):
    code, out, _ = cli(capsys, "runs", "--limit", "3", "--home", str(home["root"]))
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 3
    assert "not pushed (not blessed by the Evaluator)" in lines[0]
    assert f"window spans 2-4; pushed {MODEL} v2" in lines[1]
    code, out, _ = cli(capsys, "runs", "--json", "--home", str(home["root"]))
    assert len(json.loads(out)) == 7
    code, _, err = cli(capsys, "runs", "--limit", "0", "--home", str(home["root"]))
    assert code == 2 and err.strip() == "error: --limit must be > 0, got 0"
