"""`etrm lineage` on a hand-built ML Metadata store (tests/lineage_fixtures.py): the walk from a
push back to its data and checks, where it stops, the forward query from a span, the tree,
JSON, DOT and HTML outputs, and one-line errors. No TensorFlow."""
import json
import re
import subprocess
import sys

import pytest

from benchmarks.bench_lineage import CountingStore
from ml.cli import main
from ml.core import lineage
from ml.lifecycle.lineage_render import dot_text
from tests.lineage_fixtures import MODEL, build_home


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return build_home(tmp_path_factory.mktemp("lineage-home"))


def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_pushed_version_leads_back_to_its_model_data_checks_and_judges(home):
    described = lineage.describe_push(home["store"], MODEL, 2)
    assert described["push"]["push_key"] == f"{MODEL}@2024-01-05#job2"
    assert described["push"]["destination"].endswith(f"{MODEL}/2")
    assert described["model_artifact"]["artifact_id"] == home["second"]["model"].id
    trainer = described["trainer"]
    assert trainer["execution_id"] == home["second"]["trainer"].id
    assert trainer["run_fn"] == "models.risk.trainer.run_fn"
    assert trainer["train_args"] == {"num_steps": 40}
    assert trainer["custom_config"]["hyperparameters"] == {"learning_rate": 0.001}
    assert trainer["warm_start_parent"]["model_artifact_id"] == home["first"]["model"].id
    assert trainer["warm_start_parent"]["serving_version"] == 1
    assert described["transform"]["preprocessing_fn"] == "models.risk.preprocessing.preprocessing_fn"
    assert described["schema"]["schema_file"] == "/data/schema/trades/schema.pbtxt"
    assert described["spans"] == [2, 3, 4]
    evaluation = described["evaluation"]
    assert evaluation["blessed"] is True
    assert evaluation["baseline"]["serving_version"] == 1
    # the overall slice, not the per-commodity one (+0.5) nor the diff (9.0)
    assert evaluation["metrics"]["auc"] == pytest.approx(0.82)
    assert evaluation["baseline_metrics"]["auc"] == pytest.approx(0.70)
    assert described["infra_blessing"]["blessed"] is True
    assert described["infra_blessing"]["latency_p99_ms"] == pytest.approx(30.25)


def test_each_span_carries_its_generator_settings_validation_and_drift(home):
    described = lineage.describe_push(home["store"], MODEL, 2)
    by_span = {entry["span"]: entry for entry in described["examples"]}
    span4 = by_span[4]
    assert span4["artifact_id"] == home["ingested"][4]["examples"].id
    assert span4["generator"]["seed"] == 42 and span4["generator"]["records_per_span"] == 300
    assert span4["example_gen"]["component"] == "ETRMExampleGen"
    assert span4["statistics"]["artifact_id"] == home["ingested"][4]["statistics"].id
    assert span4["validation"]["splits_without_anomalies"] == {"train": 1.0, "eval": 1.0}
    assert span4["validation"]["gate"]["state"] == "COMPLETE"
    assert span4["drift"]["against_span"] == 3
    assert span4["drift"]["drifted_features"] == "volatility"
    assert span4["drift"]["gate"]["component"] == "DriftGate"
    assert by_span[2]["drift"]["against_span"] == 1
    assert span4["validation"]["anomalies_by_split"] == {"train": {}, "eval": {}}
    assert by_span[3]["validation"]["anomalies_by_split"]["eval"] == {"price": "Out-of-range values"}


def test_the_walk_stops_at_the_parent_model_and_skips_resolvers(home):
    graph = lineage.walk(home["store"], [home["second"]["pushed"].id])
    kinds = [lineage.short_type(e) for e in graph.executions.values()]
    assert kinds.count("Trainer") == 1 and kinds.count("ServingPusher") == 1
    assert "Resolver" not in kinds
    assert home["first"]["trainer"].id not in graph.executions
    assert home["first"]["model"].id in graph.artifacts      # named, not walked
    assert home["rejected"]["model"].id not in graph.artifacts
    # the span before the window is only what span 2's drift check compared with
    assert home["ingested"][1]["examples"].id in graph.artifacts
    ingest_of_span1 = {e.id for e in home["store"].get_executions_by_context(home["ingested"][1]["run"].id)}
    assert not ingest_of_span1 & set(graph.executions)




def test_the_walk_batches_its_queries_instead_of_one_per_node(home):
    counting = CountingStore(home["store"])
    graph = lineage.walk(counting, [home["second"]["pushed"].id])
    nodes = len(graph.artifacts) + len(graph.executions)
    assert nodes > 50
    assert counting.calls == graph.calls <= 30


def test_first_version_has_no_baseline_and_no_parent(home):
    described = lineage.describe_push(home["store"], MODEL, 1)
    assert described["spans"] == [1, 2, 3]
    assert described["trainer"]["warm_start_parent"] is None
    assert described["evaluation"]["baseline"] is None
    assert described["evaluation"]["baseline_metrics"] == {}


def test_the_default_is_the_stable_version_drawn_as_a_tree(home, capsys):
    code, out, err = cli(capsys, "lineage", MODEL, "--home", str(home["root"]))
    assert code == 0, err
    assert out.splitlines()[0] == f"{MODEL} v1 (labels: stable)"
    code, out, _ = cli(capsys, "lineage", "risk", "--label", "canary", "--home", str(home["root"]))
    lines = out.splitlines()
    assert lines[0] == f"{MODEL} v2 (labels: canary)"
    assert any("warm start from: v1 (Model #%d)" % home["first"]["model"].id in line for line in lines)
    assert any(line.strip().startswith("evaluation: blessed against baseline v1") for line in lines)
    assert any("auc 0.8200 (baseline 0.7000)" in line for line in lines)
    assert any(line.strip() == "examples: spans 2-4" for line in lines)
    assert any(f"key {MODEL}@2024-01-05#job2" in line for line in lines)
    assert any("eval price: Out-of-range values, train clean" in line for line in lines)
    span_lines = [line for line in lines if re.match(r"^ {8}span \d", line)]
    assert [line.split()[1] for line in span_lines] == ["2", "3", "4"]


def test_json_is_the_whole_structure(home, capsys):
    code, out, _ = cli(capsys, "lineage", MODEL, "--version", "2", "--json", "--home", str(home["root"]))
    assert code == 0
    data = json.loads(out)
    assert data["labels"] == ["canary"] and data["version"] == 2 and data["spans"] == [2, 3, 4]
    assert data["evaluation"]["baseline"]["serving_version"] == 1
    ids = {node["id"] for node in data["graph"]["nodes"]}
    assert all(edge["from"] in ids and edge["to"] in ids for edge in data["graph"]["edges"])


def test_dot_draws_every_node_and_the_edges_by_event_key(home, capsys):
    code, out, _ = cli(capsys, "lineage", MODEL, "--version", "2", "--dot", "--home", str(home["root"]))
    assert code == 0
    described = lineage.describe_push(home["store"], MODEL, 2)
    assert out == dot_text(described)
    assert out.startswith(f'digraph "{MODEL} v2" {{') and out.rstrip().endswith("}")
    model, pushed = home["second"]["model"].id, home["second"]["pushed"].id
    assert f'a{home["first"]["model"].id} -> e{home["second"]["trainer"].id} [label="base_model"];' in out
    assert re.search(rf'a{model} -> e\d+ \[label="model"\];', out)
    assert re.search(rf'e\d+ -> a{pushed} \[label="pushed_model"\];', out)
    assert len(re.findall(r"^  [ae]\d+ \[label=", out, re.M)) == len(described["graph"]["nodes"])
    pydot = pytest.importorskip("pydot")
    [parsed] = pydot.graph_from_dot_data(out)
    assert len(parsed.get_edges()) == len(described["graph"]["edges"])


def test_html_is_one_self_contained_page_with_the_graph(home, capsys, tmp_path):
    page = tmp_path / "v2.html"
    code, out, _ = cli(capsys, "lineage", MODEL, "--version", "2", "--html", str(page),
                       "--home", str(home["root"]))
    assert code == 0 and out.strip() == f"wrote {page}"
    text = page.read_text()
    assert text.count("<svg") == 1 and "<script" not in text and "<link" not in text
    described = lineage.describe_push(home["store"], MODEL, 2)
    for node in described["graph"]["nodes"]:
        assert f">{node['label']}</text>" in text
    assert text.count('marker-end="url(#arrow)"') == len(described["graph"]["edges"])


def test_forward_from_a_span_lists_every_model_trained_on_it(home, capsys):
    rows = lineage.models_trained_on_span(home["store"], 3)
    assert [row["pushed_as"] for row in rows] == [{"model": MODEL, "version": 1},
                                                  {"model": MODEL, "version": 2}, None]
    assert [row["spans"] for row in rows] == [[1, 2, 3], [2, 3, 4], [2, 3, 4]]
    assert [row["pushed_as"]["version"] for row in lineage.models_trained_on_span(home["store"], 1)] == [1]
    code, out, _ = cli(capsys, "lineage", "--span", "4", "--pipeline", "etrm-risk-pipeline",
                       "--home", str(home["root"]))
    assert code == 0
    assert out.splitlines()[0] == "span 4: trained into 2 Model(s)"
    assert f"{MODEL} v2, window spans 2-4" in out and "not pushed, window spans 2-4" in out
    code, out, _ = cli(capsys, "lineage", "--span", "1", "--json", "--home", str(home["root"]))
    assert [m["pushed_as"]["version"] for m in json.loads(out)["models"]] == [1]


@pytest.mark.parametrize("argv, message", [
    (["lineage", "no_such_model"], "unknown model 'no_such_model'"),
    (["lineage", MODEL, "--version", "7"], f"{MODEL} has no pushed version 7 in ML Metadata (pushed versions: 1, 2)"),
    (["lineage", MODEL, "--label", "gold"], f"{MODEL} has no label 'gold'"),
    (["lineage", "--span", "9"], "no Examples of span 9 in ML Metadata"),
    (["lineage", "--span", "2", "--pipeline", "nope"], "no pipeline 'nope' in ML Metadata"),
    (["lineage"], "name a model"),
    (["lineage", MODEL, "--pipeline", "etrm-risk-pipeline"], "--pipeline goes with --span"),
    (["lineage", "--span", "2", "--dot"], "--dot and --html draw one version's lineage"),
])
def test_bad_input_is_one_line_and_exit_2(home, capsys, argv, message):
    code, out, err = cli(capsys, *argv, "--home", str(home["root"]))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err


def test_a_home_without_metadata_is_named_and_left_untouched(capsys, tmp_path):
    empty = tmp_path / "empty-home"
    for argv in (["lineage", MODEL], ["models"], ["runs"]):
        code, _, err = cli(capsys, *argv, "--home", str(empty))
        assert code == 2 and err.strip() == (f"error: home {empty} has no ML Metadata "
                                             f"({empty}/metadata.sqlite does not exist)")
    assert not empty.exists()


def test_a_corrupt_store_is_one_line_not_a_traceback(capsys, tmp_path):
    (tmp_path / "metadata.sqlite").write_bytes(b"this is not a database" * 100)
    for argv in (["lineage", MODEL, "--version", "1"], ["models"], ["runs"]):
        code, out, err = cli(capsys, *argv, "--home", str(tmp_path))
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
        assert err.strip() == (f"error: cannot read ML Metadata at {tmp_path}/metadata.sqlite: "
                               "file is not a database")


def test_lineage_needs_no_tensorflow(home):
    script = ("import sys; from ml.core import lineage, metadata; "
              f"store = metadata.open_store(metadata.sqlite_config({str(home['root'] / 'metadata.sqlite')!r})); "
              f"assert lineage.describe_push(store, {MODEL!r}, 2)['evaluation']['metrics']['auc'] > 0.8; "
              "print('tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
