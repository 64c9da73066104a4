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
from ml.synthetic.summary_check import check_summary
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


def _report_cli(*argv):
    import argparse

    from ml.cli.generate_report import add_arguments, run

    return run(add_arguments(argparse.ArgumentParser()).parse_args(list(argv)))


@pytest.fixture(scope="module")
def span_0_records(home, first_run):
    from ml.core.home import Home
    from ml.reports.records import RiskRecordSource

    source = RiskRecordSource(Home.resolve(home))
    assert [first for _, first, _ in source.covered()][0] == "2024-01-01"
    return source.span_records(0)


def test_a_book_day_summary_is_written_from_that_days_record(home, span_0_records, capsys):
    """The record's book and date come out of the model's slots (read back by the benchmark's
    parser), so two books on the same day get their own names and the day's date, and no slot
    is left unfilled. Unchecked: this small model's drafts are cut short (next test)."""
    from ml.reports.generation import UNCHECKED_NOTE

    last_day = span_0_records[-1].report_date
    books = [r.book for r in span_0_records if r.report_date == last_day][:2]
    texts = []
    for book in books:
        assert _report_cli("--book", book, "--date", last_day, "--home", str(home),
                           "--temperature", "0", "--unchecked") == 0
        out = capsys.readouterr()
        assert f"conditioned on the risk record of {book} on {last_day}, not checked" in out.err
        marker, text = out.out.split("\n", 1)
        assert marker == f"[{UNCHECKED_NOTE}]"
        texts.append(text.strip())
    records = {r.book: r for r in span_0_records if r.report_date == last_day}
    for book, text in zip(books, texts):
        assert "\u27e8" not in text and not text.startswith("Risk record:")
        stated = check_summary(text, records[book]).stated
        assert (stated["book"], stated["report_date"]) == (book, last_day), text
    assert texts[0] != texts[1]


def test_a_summary_that_does_not_state_its_record_is_refused_not_printed(home, span_0_records,
                                                                         capsys):
    """This model's context (E2E_CONFIG.max_length 128 tokens) holds no whole summary, so its
    every draft is cut short: the checker rejects it and the command prints no summary."""
    record = span_0_records[-1]
    assert _report_cli("--book", record.book, "--date", record.report_date, "--home", str(home),
                       "--temperature", "0") == 1
    out = capsys.readouterr()
    assert out.out == "" and "Traceback" not in out.err
    assert out.err.startswith(f"error: no summary of {record.book} on {record.report_date} "
                              "stated its risk record in 1 draft(s)")
    assert "not a phrasing of this section" in out.err


@pytest.mark.parametrize("book, date, message", [
    ("NO_SUCH_BOOK", "2024-01-03", "unknown book 'NO_SUCH_BOOK'; books: "),
    (None, "2024-01-06", "has no risk report on 2024-01-06 (not a trading day)"),
    (None, "2025-06-02", "no risk report on 2025-06-02: the report pipeline under"),
])
def test_an_unknown_book_or_a_day_without_a_report_is_named(home, span_0_records, capsys,
                                                             book, date, message):
    book = book or span_0_records[0].book
    assert _report_cli("--book", book, "--date", date, "--home", str(home)) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.network
def test_the_client_writes_the_same_summary_through_a_running_server(home, span_0_records, capsys):
    from ml.reports.generation import SummaryRejected
    from ml.tensorflow_serving_client import ETRMModelClient, TensorFlowServingClient
    from tests.serving_fixtures import start_server

    record = span_0_records[-1]
    day = dict(book=record.book, date=record.report_date, home=str(home), temperature=0.0)
    assert _report_cli("--book", record.book, "--date", record.report_date, "--home", str(home),
                       "--temperature", "0", "--unchecked") == 0
    local = capsys.readouterr().out.split("\n", 1)[1].strip()
    assert _report_cli("--book", record.book, "--date", record.report_date, "--home", str(home),
                       "--temperature", "0") == 1
    refusal = capsys.readouterr().err.strip()
    server = start_server(home)
    try:
        with TensorFlowServingClient(rest_port=server.rest_api_port, timeout_seconds=120) as serving:
            client = ETRMModelClient(serving)
            served = client.generate_report(**day, checked=False)
            with pytest.raises(SummaryRejected) as rejected:
                client.generate_report(**day)
    finally:
        server.stop()
    assert served == local
    assert refusal == f"error: {rejected.value}"


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
