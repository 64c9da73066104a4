"""`etrm monitor` on a temporary home with hand-written serving logs in the server's format
(ml.core.request_log.build_log_examples); the training reference is a real Examples folder."""
import numpy as np
import pytest
import tensorflow as tf

from components.etrm_example_gen import span_data
from ml import cli
from ml.core import metadata
from ml.synthetic import outcomes, spans
from ml.core.request_log import build_log_examples
from models.risk.features import LABEL_KEY

SETTINGS = {"dataset": "trades", "records_per_span": 1200, "seed": 42,
            "history_start": "2024-01-01", "period_days": 7, "drift_scenarios": "",
            "shuffle_labels": 0}


def _span_table(span, drift=""):
    request = {**SETTINGS, "shuffle_labels": False, "span": span, "drift_scenarios": drift}
    return spans.generate_table(spans.SpanRequest(**request))


def _write_examples(folder, table):
    split = folder / "Split-train"
    split.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(split / "data.gz"), options="GZIP") as writer:
        for batch in span_data.table_to_record_batches(table):
            for record in span_data.encode_record_batch(batch):
                writer.write(record)


def _write_logs(log_dir, table, name, score):
    log_dir.mkdir(parents=True, exist_ok=True)
    requests = table.drop(columns=[LABEL_KEY, "high_risk_probability"])
    records = [r for b in span_data.table_to_record_batches(requests)
               for r in span_data.encode_record_batch(b)]
    with tf.io.TFRecordWriter(str(log_dir / name)) as writer:
        for index, record in enumerate(records):
            for logged in build_log_examples(
                    "etrm_risk_model", 1, "serving_default", {"examples": np.array([record], dtype=object)},
                    {"risk_score": np.array([score[index]], dtype=np.float32),
                     "risk_level": np.array([b"LOW"], dtype=object)}, 1_700_000_000_000_000 + index):
                writer.write(logged)


@pytest.fixture
def home(tmp_path, monkeypatch):
    reference_table = _span_table(0)
    _write_examples(tmp_path / "examples", reference_table)
    reference = metadata.TrainingReference(
        model_dir="unused", serving_version=1, examples_uri=str(tmp_path / "examples"), span=0,
        generator_settings=SETTINGS)
    monkeypatch.setattr(metadata, "training_reference", lambda store, name: reference)
    # The served model's scores on the reference: a stand-in for loading the SavedModel.
    monkeypatch.setattr("models.risk.scoring.risk_scores",
                        lambda model_dir, records: np.linspace(0.05, 0.95, len(records)))
    return tmp_path


def test_no_logs_means_nothing_to_check(home, capsys):
    assert cli.main(["monitor", "--home", str(home)]) == 0
    assert "no new serving logs" in capsys.readouterr().out


def test_drifted_logs_raise_alerts_write_a_report_and_are_read_once(home, capsys):
    logs = home / "serving_logs" / "etrm_risk_model"
    shifted = _span_table(1, drift="price_shift@2024-01-08:1.5").head(600)
    _write_logs(logs, shifted, "requests-20240108T000000-1-00001.tfrecord",
                np.full(len(shifted), 0.9))
    (logs / "requests-20240108T000000-1-00002.tfrecord.partial").write_bytes(b"")

    assert cli.main(["monitor", "--home", str(home), "--reference-rows", "1000"]) == 0
    out = capsys.readouterr().out
    assert "600 logged requests from 1 files against training span 0" in out
    assert "drifted features:" in out and "price" in out.split("drifted features:")[1].splitlines()[0]
    assert "prediction drift: yes" in out
    assert "performance: checked on realised outcomes" in out
    assert "ALERT" in out
    report = out.split("report: ")[1].strip()
    assert "data:image/png;base64" in open(report).read()

    assert cli.main(["monitor", "--home", str(home)]) == 0
    assert "no new serving logs" in capsys.readouterr().out


def test_realised_labels_come_from_regenerating_the_span():
    table = _span_table(1).head(50)
    labels = outcomes.realised_labels(table[["trade_id", "trade_date"]], SETTINGS)
    assert (labels.to_numpy() == table[LABEL_KEY].to_numpy()).all()


def test_no_pushed_model_is_a_clear_error(tmp_path, capsys):
    logs = tmp_path / "serving_logs" / "etrm_risk_model"
    _write_logs(logs, _span_table(0).head(20), "requests-1.tfrecord", np.full(20, 0.5))
    assert cli.main(["monitor", "--home", str(tmp_path)]) == 2
    assert "no pushed version of 'etrm_risk_model'" in capsys.readouterr().err
