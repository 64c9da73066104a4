"""The model server's sampled request logger: a background thread writes rotating files.

The format (features, file names, `.partial` then renamed) is ml/core/request_log.py's.
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

from ml.core.request_log import FILE_PREFIX, PARTIAL_SUFFIX, build_log_examples, finished_name

LOGGER = logging.getLogger(__name__)


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
        stem = f"{FILE_PREFIX}{stamp}-{os.getpid()}-{self._sequence:05d}"
        self._partial_path = self._directory / (stem + PARTIAL_SUFFIX)
        self._writer = tf.io.TFRecordWriter(str(self._partial_path))
        self._records = 0
        self._opened_at = time.monotonic()

    def finish(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        finished = self._partial_path.with_name(finished_name(self._partial_path.name))
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
