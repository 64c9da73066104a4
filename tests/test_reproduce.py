"""`etrm reproduce`'s recipe and verdict on the hand-built store (tests/lineage_fixtures.py),
without TensorFlow: what a rerun needs is read from lineage alone, and the comparison says
reproduced only for identical Examples and figures within the tolerance."""
import dataclasses

import pytest

from ml.cli import main
from ml.core.home import Home
from ml.lifecycle import reproduce
from tests.lineage_fixtures import build_home


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return build_home(tmp_path_factory.mktemp("reproduce-home"))


def test_a_windowed_version_is_rebuilt_from_its_spans_settings_and_baseline(home):
    recipe = reproduce.read_recipe(home["store"], "risk", 2)
    assert [settings.span for settings in recipe.spans] == [2, 3, 4]
    assert all(s.records_per_span == 300 and s.seed == 42 and s.dataset == "trades"
               for s in recipe.spans)
    assert recipe.model.train and recipe.model.train_steps == 40
    assert recipe.model.hyperparameters == {"learning_rate": 0.001} and recipe.model.seed == 42
    assert recipe.baseline_version == 1
    assert recipe.metrics["auc"] == pytest.approx(0.82)


def test_the_chain_reruns_the_baseline_first(home):
    chain = reproduce.recipe_chain(home["store"], "risk", 2)
    assert [recipe.version for recipe in chain] == [1, 2]
    assert chain[0].baseline_version is None


@pytest.mark.slow
def test_the_evaluators_thresholds_come_back_from_its_recorded_eval_config():
    from tfx.utils import proto_utils  # how TFX records an execution's proto properties

    from pipeline.config import ModelSettings
    from pipeline.risk_nodes import risk_eval_config

    recorded = proto_utils.proto_to_json(risk_eval_config(ModelSettings(min_auc=0.61,
                                                                        auc_tolerance=0.03)))
    assert reproduce._auc_thresholds(recorded) == {"min_auc": 0.61, "auc_tolerance": 0.03}


def _comparison(home, metrics=None, checksums=None, code=None):
    original = reproduce.read_recipe(home["store"], "risk", 2)
    original = dataclasses.replace(original, checksums={2: {"train": {"records": 5, "sha256": "ab"}}},
                                   code={"generator": "g1", "model": "m1"})
    return reproduce.Reproduction(
        original=original, reproduced_version=2,
        reproduced_metrics=metrics if metrics is not None else dict(original.metrics),
        reproduced_checksums=checksums if checksums is not None else dict(original.checksums),
        reproduced_code=code or dict(original.code), tolerance=1e-6)


def test_identical_examples_and_figures_are_reproduced(home):
    result = _comparison(home)
    assert result.reproduced and result.examples_identical and not result.code_changes()
    assert {row["metric"] for row in result.metric_rows()} >= {"auc", "binary_accuracy"}


def test_a_figure_outside_the_tolerance_or_other_examples_is_not(home):
    original = reproduce.read_recipe(home["store"], "risk", 2).metrics
    moved = dict(original, auc=original["auc"] + 1e-3)
    assert not _comparison(home, metrics=moved).reproduced
    other = {2: {"train": {"records": 5, "sha256": "cd"}}}
    result = _comparison(home, checksums=other, code={"generator": "g2", "model": "m1"})
    assert not result.reproduced and not result.examples_identical
    assert result.code_changes() == ["generator"]
    assert result.to_dict()["code"]["changed"] == ["generator"]


@pytest.mark.parametrize("argv, message", [
    (["reproduce", "nope", "--version", "1"], "nope"),
    (["reproduce", "risk", "--version", "7"], "version 7"),
    (["reproduce", "risk", "--version", "1", "--tolerance", "-1"], "--tolerance"),
])
def test_bad_input_is_one_line_and_exit_2(home, capsys, tmp_path, argv, message):
    code = main(argv + ["--home", str(home["root"]), "--into", str(tmp_path / "fresh")])
    out, err = capsys.readouterr()
    assert code == 2 and message in err and "Traceback" not in err + out
    assert len(err.strip().splitlines()) == 1


def test_the_original_home_is_never_the_fresh_one(home):
    with pytest.raises(ValueError, match="fresh home"):
        reproduce.reproduce(Home(home["root"]), "risk", 1, Home(home["root"]))
