"""Sampled request and prediction logging for skew and drift monitoring.

Each sampled row becomes one tf.Example: the request features (those of a serialized
tf.Example input, or each input tensor under its alias), the outputs as `prediction/<alias>`,
and `model_name`, `model_version`, `signature_name`, `timestamp_micros`. Records go to
`<root>/<model>/requests-<start>-<pid>-<n>.tfrecord`; a file is written under a `.partial`
name and renamed when rotated or closed, so readers only ever see complete files.
"""
import logging
import os
import pathlib
import queue
import random
import threading
import time
from typing import Dict, List, Mapping, Optional

import numpy as np
import tensorflow as tf
from google.protobuf import message

LOGGER = logging.getLogger(__name__)
EXAMPLE_INPUT_ALIASES = ("examples", "inputs")
PREDICTION_PREFIX = "prediction/"
FINISHED_SUFFIX = ".tfrecord"
PARTIAL_SUFFIX = ".tfrecord.partial"


def _feature(values: np.ndarray) -> tf.train.Feature:
    flat = np.asarray(values).reshape(-1)
    if flat.dtype == object or flat.dtype.kind in "SU":
        return tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[value if isinstance(value, bytes) else str(value).encode() for value in flat]))
    if flat.dtype.kind == "f":
        return tf.train.Feature(float_list=tf.train.FloatList(value=flat.astype(np.float32)))
    return tf.train.Feature(int64_list=tf.train.Int64List(value=flat.astype(np.int64)))


def _row_count(inputs: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray]) -> Optional[int]:
    """The shared batch size of every tensor, or None when the request is not batch-major."""
    sizes = {value.shape[0] if np.ndim(value) else None
             for value in list(inputs.values()) + list(outputs.values())}
    return sizes.pop() if len(sizes) == 1 and None not in sizes else None


def build_log_examples(model_name: str, version: int, signature_name: str,
                       inputs: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray],
                       timestamp_micros: int) -> List[bytes]:
    """Serialized tf.Examples, one per row (one per request when tensors are not batch-major)."""
    rows = _row_count(inputs, outputs)
    indices = range(rows) if rows is not None else [None]
    records = []
    for index in indices:
        features: Dict[str, tf.train.Feature] = {}
        for alias, value in inputs.items():
            row = value if index is None else value[index]
            if alias in EXAMPLE_INPUT_ALIASES and np.ndim(row) == 0 and isinstance(row, bytes):
                try:
                    features.update(tf.train.Example.FromString(row).features.feature)
                    continue
                except message.DecodeError:
                    pass  # not a tf.Example: logged as plain bytes below
            features[alias] = _feature(row)
        for alias, value in outputs.items():
            features[PREDICTION_PREFIX + alias] = _feature(value if index is None else value[index])
        features["model_name"] = _feature(np.array([model_name.encode()], dtype=object))
        features["model_version"] = _feature(np.array([version], dtype=np.int64))
        features["signature_name"] = _feature(np.array([signature_name.encode()], dtype=object))
        features["timestamp_micros"] = _feature(np.array([timestamp_micros], dtype=np.int64))
        records.append(tf.train.Example(features=tf.train.Features(feature=features))
                       .SerializeToString())
    return records


class _RotatingWriter:
    """TFRecord file for one model, renamed from .partial to .tfrecord when finished."""

    def __init__(self, directory: pathlib.Path, max_records: int, max_age_seconds: float):
        self._directory = directory
        self._max_records = max_records
        self._max_age = max_age_seconds
        self._sequence = 0
        self._writer = None
        self._partial_path: Optional[pathlib.Path] = None
        self._records = 0
        self._opened_at = 0.0

    def write(self, records: List[bytes]) -> None:
        for record in records:
            if self._writer is None:
                self._open()
            self._writer.write(record)
            self._records += 1
            if self._records >= self._max_records:
                self.finish()
        if self._writer is not None:
            self._writer.flush()

    def rotate_if_old(self) -> None:
        if self._writer is not None and time.monotonic() - self._opened_at >= self._max_age:
            self.finish()

    def _open(self) -> None:
        self._directory.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        self._sequence += 1
        stem = f"requests-{stamp}-{os.getpid()}-{self._sequence:05d}"
        self._partial_path = self._directory / (stem + PARTIAL_SUFFIX)
        self._writer = tf.io.TFRecordWriter(str(self._partial_path))
        self._records = 0
        self._opened_at = time.monotonic()

    def finish(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        finished = self._partial_path.with_name(
            self._partial_path.name[:-len(PARTIAL_SUFFIX)] + FINISHED_SUFFIX)
        os.replace(self._partial_path, finished)
        self._writer = None


class RequestLogger:
    """Samples requests and writes them from a background thread; never blocks serving."""

    def __init__(self, root: pathlib.Path, sampling_rate: float, max_records_per_file: int = 10000,
                 max_file_age_seconds: float = 300.0, queue_size: int = 10000, metrics=None,
                 seed: Optional[int] = None):
        if not 0.0 <= sampling_rate <= 1.0:
            raise ValueError("request log sampling rate must be within [0, 1]")
        self.root = pathlib.Path(root)
        self.sampling_rate = sampling_rate
        self._max_records = max_records_per_file
        self._max_age = max_file_age_seconds
        self._metrics = metrics
        self._random = random.Random(seed)
        self._random_lock = threading.Lock()
        self._queue: "queue.Queue" = queue.Queue(maxsize=queue_size)
        self._writers: Dict[str, _RotatingWriter] = {}
        self._thread = threading.Thread(target=self._drain, name="request-log", daemon=True)
        self._stopped = threading.Event()
        self._thread.start()

    def maybe_log(self, model_name: str, version: int, signature_name: str,
                  inputs: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray]) -> None:
        if self.sampling_rate <= 0.0:
            return
        with self._random_lock:
            if self._random.random() >= self.sampling_rate:
                return
        item = (model_name, version, signature_name, dict(inputs), dict(outputs),
                int(time.time() * 1e6))
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            if self._metrics is not None:
                self._metrics.record_log_records(model_name, "dropped", 1)

    def flush(self, timeout: float = 10.0) -> None:
        """Waits until everything queued so far is written (files stay open)."""
        done = threading.Event()
        self._queue.put(done, timeout=timeout)
        done.wait(timeout)

    def close(self) -> None:
        """Writes what is queued and finishes every open file."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _drain(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=1.0)
            except queue.Empty:
                for writer in self._writers.values():
                    writer.rotate_if_old()
                continue
            if item is None:
                break
            if isinstance(item, threading.Event):
                item.set()
                continue
            self._write(item)
        for writer in self._writers.values():
            writer.finish()

    def _write(self, item) -> None:
        model_name, version, signature_name, inputs, outputs, timestamp = item
        try:
            records = build_log_examples(model_name, version, signature_name, inputs, outputs,
                                         timestamp)
            writer = self._writers.get(model_name)
            if writer is None:
                writer = self._writers[model_name] = _RotatingWriter(
                    self.root / model_name, self._max_records, self._max_age)
            writer.write(records)
            writer.rotate_if_old()
        except (OSError, ValueError, tf.errors.OpError) as error:
            LOGGER.warning("request log for %s could not be written: %s", model_name, error)
            if self._metrics is not None:
                self._metrics.record_log_records(model_name, "dropped", 1)
            return
        if self._metrics is not None:
            self._metrics.record_log_records(model_name, "written", len(records))
