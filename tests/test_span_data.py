"""ETRMExampleGen's plain functions: span windows, request validation, Arrow conversion."""
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from components.etrm_example_gen import span_data
from ml.synthetic import spans


def test_span_windows_tile_the_calendar_without_gaps():
    first = spans.span_window(0, "2024-01-01", 7)
    second = spans.span_window(1, "2024-01-01", 7)
    assert first == (dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 7))
    assert second[0] == first[1] + dt.timedelta(days=1)
    assert spans.span_for_date(dt.datetime(2024, 1, 8), "2024-01-01", 7) == 1
    assert spans.span_for_date(dt.datetime(2024, 1, 7), "2024-01-01", 7) == 0


@pytest.mark.parametrize("field, kwargs, fragment", [
    ("dataset", {"dataset": "prices"}, "dataset must be one of"),
    ("span", {"span": -1}, "span must be >= 0"),
    ("records", {"records_per_span": 0}, "records_per_span must be > 0"),
    ("period", {"period_days": 0}, "period_days must be > 0"),
    ("history", {"history_start": "01/01/2024"}, "history_start must be a date"),
    ("drift", {"drift_scenarios": "price_shift"}, "is not of the form"),
])
def test_bad_span_request_names_the_field(field, kwargs, fragment):
    params = {"dataset": "trades", "span": 0, "records_per_span": 10, **kwargs}
    with pytest.raises(ValueError, match=fragment):
        spans.SpanRequest(**params)


def test_record_batches_keep_every_row_and_type():
    table = pd.DataFrame({"price": np.array([1.5, 2.5, 3.5]), "tenor_months": np.array([1, 2, 3]),
                          "commodity": ["power", "coal", "lng"]})
    batches = list(span_data.table_to_record_batches(table, batch_size=2))
    assert [b.num_rows for b in batches] == [2, 1]
    examples = [e for b in batches for e in span_data.encode_record_batch(b)]
    import tensorflow as tf

    parsed = [tf.train.Example.FromString(e).features.feature for e in examples]
    assert [p["commodity"].bytes_list.value[0] for p in parsed] == [b"power", b"coal", b"lng"]
    assert [p["tenor_months"].int64_list.value[0] for p in parsed] == [1, 2, 3]
    assert [p["price"].float_list.value[0] for p in parsed] == [1.5, 2.5, 3.5]


def test_missing_values_are_refused_before_encoding():
    table = pd.DataFrame({"price": [1.0, np.nan]})
    with pytest.raises(ValueError, match=r"missing values in columns \['price'\]"):
        list(span_data.table_to_record_batches(table))


def test_split_assignment_follows_the_id_and_the_ratios():
    ids = pd.Series([f"TRD-{i:07d}" for i in range(20000)])
    first = span_data.split_assignments(ids, [4, 1])
    assert (first == span_data.split_assignments(ids.sample(frac=1, random_state=1).sort_index(), [4, 1])).all()
    assert set(np.unique(first)) == {0, 1}
    assert abs((first == 1).mean() - 0.2) < 0.02
    three = span_data.split_assignments(ids, [1, 1, 2])
    assert abs((three == 2).mean() - 0.5) < 0.02
