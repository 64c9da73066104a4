"""Canary requests look like client requests: eval examples without label-only features."""
import tensorflow as tf

from components.canary_validator.requests import eval_request_examples
from ml.core.example_tables import split_uri


def _write_split(tmp_path, count):
    split = tmp_path / "Split-eval"
    split.mkdir()
    with tf.io.TFRecordWriter(str(split / "data.gz"), options="GZIP") as writer:
        for i in range(count):
            example = tf.train.Example()
            example.features.feature["price"].float_list.value.append(float(i))
            example.features.feature["high_risk"].int64_list.value.append(i % 2)
            example.features.feature["high_risk_probability"].float_list.value.append(0.5)
            writer.write(example.SerializeToString())


def test_requests_drop_label_features_and_respect_the_count(tmp_path):
    _write_split(tmp_path, 5)
    requests = eval_request_examples(split_uri(str(tmp_path), "eval"), 3,
                                     ["high_risk", "high_risk_probability"])
    assert len(requests) == 3
    parsed = [tf.train.Example.FromString(r).features.feature for r in requests]
    assert all(set(p.keys()) == {"price"} for p in parsed)
    assert [p["price"].float_list.value[0] for p in parsed] == [0.0, 1.0, 2.0]


def test_missing_split_is_a_clear_error(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="no examples in split folder .*Split-eval"):
        eval_request_examples(split_uri(str(tmp_path), "eval"), 3, [])
