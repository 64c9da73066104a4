"""`etrm lineage` and `etrm models` on the ML Metadata two real retraining jobs left
(conftest.continuous_home: v1 trained on spans 1-3 from nothing, v2 on spans 2-4 warm-started
from and judged against v1). The simulation test may move labels on the same home later, so
labels are checked against models.config as it is now."""
import json

import pytest

from ml.cli import main
from ml.serving.model_config import version_labels

pytestmark = pytest.mark.e2e
MODEL = "etrm_risk_model"


def test_lineage_of_v2_finds_its_parent_baseline_window_blessing_and_push(continuous_home, capsys):
    home = continuous_home["home"]
    v1_model = continuous_home["resolved"]["pushed_as"][1]
    assert main(["lineage", MODEL, "--version", "2", "--json", "--home", str(home.root)]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["version"] == 2 and described["spans"] == [2, 3, 4]
    assert described["push"]["destination"].endswith(f"{MODEL}/2")
    assert described["push"]["push_key"].startswith(f"{MODEL}@")
    assert described["push"]["execution"]["state"] == "COMPLETE"
    assert described["model_artifact"]["artifact_id"] == continuous_home["resolved"]["pushed_as"][2]
    parent = described["trainer"]["warm_start_parent"]
    assert parent == {"model_artifact_id": v1_model, "uri": parent["uri"], "serving_version": 1}
    evaluation = described["evaluation"]
    assert evaluation["blessed"] is True
    assert evaluation["baseline"]["model_artifact_id"] == v1_model
    assert evaluation["baseline"]["serving_version"] == 1
    assert 0.0 < evaluation["metrics"]["auc"] <= 1.0 and "auc" in evaluation["baseline_metrics"]
    assert described["infra_blessing"]["blessed"] is True
    assert described["transform"]["transform_graph"]["artifact_id"]
    for entry in described["examples"]:
        assert entry["generator"]["period_days"] == 1 and "seed" in entry["generator"]
        assert entry["validation"]["gate"]["state"] == "COMPLETE"
        assert entry["statistics"] is not None and entry["drift"] is not None
    assert main(["lineage", MODEL, "--version", "2", "--home", str(home.root)]) == 0
    tree = capsys.readouterr().out
    assert "warm start from: v1" in tree and "blessed against baseline v1" in tree
    assert "examples: spans 2-4" in tree and "pre-push serving check: passed" in tree


def test_models_lists_both_versions_with_their_labels(continuous_home, capsys):
    home = continuous_home["home"]
    assert main(["models", MODEL, "--json", "--home", str(home.root)]) == 0
    view = json.loads(capsys.readouterr().out)[MODEL]
    rows = {row["version"]: row for row in view["versions"]}
    assert {1, 2} <= set(rows)
    labels = version_labels(home.models_config_path, MODEL)
    assert view["labels"] == labels
    for label, version in labels.items():
        assert label in rows[version]["labels"]
    if labels == continuous_home["labels"]:
        assert rows[1]["labels"] == ["stable"] and rows[2]["labels"] == ["canary"]
    assert rows[1]["baseline_version"] is None and rows[2]["baseline_version"] == 1
    assert rows[1]["spans"] == [1, 2, 3] and rows[2]["spans"] == [2, 3, 4]
    assert "auc" in rows[2]["metrics"]
    assert main(["models", MODEL, "--home", str(home.root)]) == 0
    out = capsys.readouterr().out
    assert "  v1" in out and "  v2" in out and "blessed against v1; spans 2-4" in out
