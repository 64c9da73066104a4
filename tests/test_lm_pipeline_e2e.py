"""Issue 4 end to end: the report LM pipeline blesses and pushes a model, then refuses an
under-trained candidate against it.

Two runs on one home through `ml.model_fine_tuning.main` (the spec's run_fine_tuning) with a
small ModelConfig: span 0 is trained, blessed (it beats the Kneser-Ney trigram fitted in the
same run) and pushed as version 1; on span 1 a cold-started candidate trained for one step
is refused, with version 1 as the serving model it was compared with.
"""
import json

import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from ml.model_fine_tuning import MODEL_NAME, main as run_fine_tuning
from ml.serving.manifest import verify_manifest
from models.lm.config import ModelConfig

pytestmark = pytest.mark.e2e
RECORDS_PER_SPAN = 900
# One small block, 600 steps: about two minutes of training, enough to beat the trigram on
# the generator's ten confirmation styles and option/strip terms.
E2E_CONFIG = ModelConfig(vocab_size=800, embedding_dim=48, max_length=128, batch_size=32,
                         epochs=4, learning_rate=0.005, hidden_dim=96, num_heads=2, num_layers=1,
                         dropout=0.0, steps_per_epoch=150)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("lm_home")


@pytest.fixture(scope="module")
def first_run(home):
    return run_fine_tuning(config=E2E_CONFIG, home=str(home), records_per_span=RECORDS_PER_SPAN)


def _version_dirs(home):
    base = home / "serving_models" / MODEL_NAME
    return sorted(int(p.name) for p in base.iterdir() if p.name.isdigit())


def test_first_language_model_is_blessed_and_pushed_as_version_1(home, first_run):
    assert first_run["pipeline"] == "etrm-report-lm-pipeline" and first_run["span"] == 0
    model = first_run["model"]
    assert model["baseline"] is None and model["warm_started_from"] is None
    assert model["blessed"] is True and model["pushed_version"] == 1
    overall = model["metrics"]["overall"]
    assert overall["perplexity"] < overall["ngram_perplexity"]
    assert 0.0 < overall["token_accuracy"] < 1.0
    assert {"kind=trade_confirmation", "kind=risk_summary"} <= set(model["metrics"]["slices"])
    assert model["training"]["vocabulary_source"] == "transform"
    assert json.loads((home / "runs" / "latest.json").read_text())["model"]["pushed_version"] == 1
    assert _version_dirs(home) == [1]
    assert verify_manifest(home / "serving_models" / MODEL_NAME / "1") == []
    config = text_format.Parse((home / "serving_config" / "models.config").read_text(),
                               model_server_config_pb2.ModelServerConfig())
    assert [c.name for c in config.model_config_list.config] == [MODEL_NAME]


def test_pushed_model_generates_and_scores(home, first_run):
    loaded = tf.saved_model.load(str(home / "serving_models" / MODEL_NAME / "1"))
    arguments = dict(prompt=tf.constant(["Trade confirmation"]), max_new_tokens=tf.constant(20),
                     temperature=tf.constant(0.0), top_k=tf.constant(0))
    first = loaded.signatures["generate"](**arguments)["text"].numpy()
    assert (first == loaded.signatures["generate"](**arguments)["text"].numpy()).all()
    assert first[0].decode().startswith("Trade confirmation")
    scores = loaded.signatures["score"](text=tf.constant(["Breaches: none.", ""]))
    assert scores["num_tokens"].numpy().tolist()[1] == 1
    assert (scores["log_likelihood"].numpy() < 0).all()


def test_under_trained_candidate_is_refused_against_version_1(home, first_run):
    summary = run_fine_tuning(config=E2E_CONFIG, home=str(home), records_per_span=RECORDS_PER_SPAN,
                              train_steps=1, warm_start=False)
    model = summary["model"]
    assert summary["span"] == 1
    assert model["blessed"] is False and model["pushed_version"] is None
    assert model["baseline"]["serving_version"] == 1
    assert model["warm_started_from"] is None
    failures = " ".join(model["validation_failures"])
    assert "gram baseline" in failures and "serving model" in failures
    assert _version_dirs(home) == [1]
