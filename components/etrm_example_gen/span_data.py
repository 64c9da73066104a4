"""Plain functions behind ETRMExampleGen: span windows, generation and tf.Example encoding.

Kept free of Beam and TFX so they can be tested and benchmarked on their own. Encoding uses
tfx-bsl's C++ RecordBatch-to-tf.Example encoder: building protos in Python is ~10x slower.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Iterator, List

import numpy as np
import pandas as pd
import pyarrow as pa

DATASETS = ("trades", "reports")
ID_COLUMNS = {"trades": "trade_id", "reports": "record_id"}
DRIFT_SPEC_HELP = "KIND@YYYY-MM-DD:MAGNITUDE[,KIND@YYYY-MM-DD:MAGNITUDE...]"


@dataclasses.dataclass(frozen=True)
class SpanRequest:
    """Everything needed to regenerate one span exactly; recorded on the Examples artifact."""

    dataset: str
    span: int
    records_per_span: int
    seed: int = 42
    history_start: str = "2024-01-01"
    period_days: int = 7
    drift_scenarios: str = ""
    shuffle_labels: bool = False

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {list(DATASETS)}, got {self.dataset!r}")
        if self.span < 0:
            raise ValueError(f"span must be >= 0, got {self.span}")
        if self.records_per_span <= 0:
            raise ValueError(f"records_per_span must be > 0, got {self.records_per_span}")
        if self.period_days <= 0:
            raise ValueError(f"period_days must be > 0, got {self.period_days}")
        parse_history_start(self.history_start)
        parse_drift_scenarios(self.drift_scenarios)

    def window(self) -> tuple[dt.datetime, dt.datetime]:
        """First and last day (inclusive) of this span."""
        return span_window(self.span, self.history_start, self.period_days)

    def generator_config(self):
        """The ETRMDataConfig that produces this span's records."""
        from ml.synthetic_data_generator import ETRMDataConfig

        from ml.synthetic.config import trading_days

        start, end = self.window()
        books = ETRMDataConfig.num_books
        return ETRMDataConfig(
            num_trades=self.records_per_span,
            # One daily risk report per book and trading day of the span.
            num_risk_reports=len(trading_days(start, end)) * books,
            num_books=books,
            start_date=start,
            end_date=end,
            seed=self.seed,
            drift_scenarios=parse_drift_scenarios(self.drift_scenarios) or None,
            shuffle_labels=self.shuffle_labels,
        )


def parse_history_start(value: str) -> dt.datetime:
    try:
        return dt.datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        raise ValueError(f"history_start must be a date YYYY-MM-DD, got {value!r}") from None


def span_window(span: int, history_start: str, period_days: int) -> tuple[dt.datetime, dt.datetime]:
    """Span N covers period_days days starting history_start + N * period_days."""
    start = parse_history_start(history_start) + dt.timedelta(days=span * period_days)
    return start, start + dt.timedelta(days=period_days - 1)


def span_for_date(date: dt.datetime, history_start: str, period_days: int) -> int:
    """The span whose window contains `date` (dates before history_start are rejected)."""
    days = (date - parse_history_start(history_start)).days
    if days < 0:
        raise ValueError(f"date {date:%Y-%m-%d} is before history_start {history_start}")
    return days // period_days


def parse_drift_scenarios(spec: str) -> List:
    """Parses 'price_shift@2024-03-01:1.5,new_category@2024-04-01:0.2' into DriftScenarios."""
    if not spec or not spec.strip():
        return []
    from ml.synthetic_data_generator import DriftScenario

    scenarios = []
    for item in spec.split(","):
        try:
            kind, rest = item.strip().split("@", 1)
            date_text, magnitude_text = rest.split(":", 1)
            start = dt.datetime.strptime(date_text, "%Y-%m-%d")
            magnitude = float(magnitude_text)
        except ValueError:
            raise ValueError(
                f"drift scenario {item!r} is not of the form {DRIFT_SPEC_HELP}") from None
        scenarios.append(DriftScenario(kind=kind, start_date=start, magnitude=magnitude))
    return scenarios


def generate_table(request: SpanRequest) -> pd.DataFrame:
    """The span's records as a table: trades with labels, or report texts."""
    from ml.synthetic_data_generator import SyntheticETRMDataGenerator

    generator = SyntheticETRMDataGenerator(request.generator_config())
    if request.dataset == "trades":
        return generator.generate_trades()
    return generator.generate_text_records()


def split_assignments(ids: pd.Series, split_buckets: List[int]) -> np.ndarray:
    """Split index per record from a stable hash of its id (same id, same split, every run).

    Hashing the serialized example instead (TFX's default) is not stable: the encoder's field
    order may differ between runs. pandas' hash uses a fixed key, so it is.
    """
    cumulative = np.cumsum(split_buckets)
    hashes = pd.util.hash_pandas_object(ids.astype(str), index=False).to_numpy()
    return np.searchsorted(cumulative, hashes % np.uint64(cumulative[-1]), side="right")


def _column_to_list_array(values: pd.Series) -> pa.Array:
    """One value per example, as the list array the tf.Example encoder expects."""
    offsets = pa.array(np.arange(len(values) + 1, dtype=np.int32))
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_integer_dtype(values):
        flat = pa.array(values.to_numpy(dtype=np.int64))
    elif pd.api.types.is_float_dtype(values):
        flat = pa.array(values.to_numpy(dtype=np.float32))
    else:
        flat = pa.array(values.astype(str).to_numpy(dtype=object), type=pa.binary())
    return pa.ListArray.from_arrays(offsets, flat)


def table_to_record_batches(table: pd.DataFrame, batch_size: int = 8192) -> Iterator[pa.RecordBatch]:
    """Splits a table into Arrow record batches of list columns (float32, int64, bytes)."""
    if table.isna().any().any():
        missing = [c for c in table.columns if table[c].isna().any()]
        raise ValueError(f"generated table has missing values in columns {missing}")
    for start in range(0, len(table), batch_size):
        chunk = table.iloc[start:start + batch_size]
        arrays = [_column_to_list_array(chunk[name]) for name in chunk.columns]
        yield pa.RecordBatch.from_arrays(arrays, [str(c) for c in chunk.columns])


def encode_record_batch(record_batch: pa.RecordBatch) -> List[bytes]:
    """Serialized tf.Examples for a record batch, via tfx-bsl's C++ encoder."""
    from tfx_bsl.coders import example_coder

    return example_coder.RecordBatchToExamplesEncoder().encode(record_batch)
