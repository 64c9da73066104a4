"""ETRMExampleGen's executor on small data: splits, span properties, exact regeneration."""
import glob
import os

import pytest
import tensorflow as tf
from tfx.types import artifact_utils

from components.etrm_example_gen import standalone
from ml.synthetic import spans

pytestmark = pytest.mark.slow


def _run(tmp_path, name: str, dataset: str = "trades", span: int = 2, records: int = 600):
    request = spans.SpanRequest(dataset=dataset, span=span, records_per_span=records, seed=7)
    return standalone.run_executor(request, str(tmp_path / name))


def _read_split(examples, split: str):
    files = glob.glob(os.path.join(artifact_utils.get_split_uri([examples], split), "*.gz"))
    records = list(tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator())
    return [tf.train.Example.FromString(r) for r in records]


def test_trades_span_is_split_and_recorded(tmp_path):
    examples = _run(tmp_path, "first")
    assert artifact_utils.decode_split_names(examples.split_names) == ["train", "eval"]
    train, evaluation = _read_split(examples, "train"), _read_split(examples, "eval")
    assert len(train) + len(evaluation) == 600
    assert 0.1 < len(evaluation) / 600 < 0.3
    dates = {e.features.feature["trade_date"].bytes_list.value[0] for e in train + evaluation}
    assert min(dates) >= b"2024-01-15" and max(dates) <= b"2024-01-21"
    feature = train[0].features.feature
    assert feature["high_risk"].int64_list.value[0] in (0, 1)
    assert feature["commodity"].bytes_list.value[0]
    assert examples.get_int_custom_property("etrm_seed") == 7
    assert examples.get_string_custom_property("etrm_period_start") == "2024-01-15"
    assert examples.get_int_custom_property("etrm_records_per_span") == 600


def test_a_span_regenerates_exactly_from_its_recorded_config(tmp_path):
    first, second = _run(tmp_path, "a"), _run(tmp_path, "b")
    ids = lambda ex: sorted(e.SerializeToString(deterministic=True) for e in _read_split(ex, "eval"))
    assert ids(first) == ids(second)


def test_reports_dataset_yields_texts(tmp_path):
    examples = _run(tmp_path, "reports", dataset="reports", records=200)
    texts = _read_split(examples, "train") + _read_split(examples, "eval")
    assert texts
    kinds = {e.features.feature["kind"].bytes_list.value[0] for e in texts}
    assert kinds <= {b"trade_confirmation", b"risk_summary", b"compliance_note"}
    assert all(e.features.feature["text"].bytes_list.value[0] for e in texts)


def test_large_spans_are_written_as_finished_shards_only(tmp_path, monkeypatch):
    from components.etrm_example_gen import executor

    monkeypatch.setattr(executor, "RECORDS_PER_SHARD", 100)
    examples = _run(tmp_path, "sharded", records=600)
    train_files = os.listdir(artifact_utils.get_split_uri([examples], "train"))
    assert len(train_files) >= 4
    assert all(name.startswith("data_tfrecord-") and name.endswith(".gz") for name in train_files)
    assert sorted(os.listdir(examples.uri)) == ["Split-eval", "Split-train"]
    trade_ids = [e.features.feature["trade_id"].bytes_list.value[0]
                 for split in ("train", "eval") for e in _read_split(examples, split)]
    assert len(trade_ids) == len(set(trade_ids)) == 600
    assert examples.get_string_custom_property("payload_format") == "FORMAT_TF_EXAMPLE"
