"""The model server's sampled request logger: a background thread writes rotating files.

The format (features, file names, `.partial` then renamed, the writer's lock, recovery) is
ml/core/request_log.py's. Each batch of records reaches the file with one write, so a killed
server leaves complete records (and at most one torn one); the next logger to start recovers
the `.partial` files of dead writers and removes their stale temporaries.
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

from ml.core.atomic_files import remove_stale_temporaries
from ml.core.model_names import is_valid_model_name
from ml.core.request_log import (build_log_examples, create_partial_log, finish_partial_log,
                                 model_log_dir, recover_partial_logs, write_records)

LOGGER = logging.getLogger(__name__)
# A temporary of a live writer exists for microseconds (until it is linked into place); one
# this old belongs to a writer that died.
STALE_TEMPORARY_SECONDS = 600.0


class _RotatingWriter:
    """TFRecord file for one model, renamed from .partial to .tfrecord when finished."""

    def __init__(self, directory: pathlib.Path, max_records: int, max_age_seconds: float):
        self._directory = directory
        self._max_records = max_records
        self._max_age = max_age_seconds
        self._sequence = 0
        self._descriptor: Optional[int] = None
        self._partial_path: Optional[pathlib.Path] = None
        self._records = 0
        self._bytes = 0
        self._opened_at = 0.0

    def write(self, records: List[bytes]) -> None:
        while records:
            if self._descriptor is None:
                self._open()
            chunk = records[:self._max_records - self._records]
            try:
                self._bytes += write_records(self._descriptor, chunk)
            except OSError:
                self._abandon()
                raise
            self._records += len(chunk)
            records = records[len(chunk):]
            if self._records >= self._max_records:
                self.finish()

    def _abandon(self) -> None:
        """After a failed write (a full disk), cuts what it left and finishes the file, so
        later records never follow a torn one; if even that fails, the file is unlocked and
        left to recovery, which cuts it at the same place."""
        descriptor, self._descriptor = self._descriptor, None
        try:
            os.ftruncate(descriptor, self._bytes)
        except OSError as error:
            LOGGER.warning("request log %s left for recovery: %s", self._partial_path, error)
            os.close(descriptor)
            return
        if self._records:
            finish_partial_log(descriptor, self._partial_path)
            return
        try:
            self._partial_path.unlink()
        finally:
            os.close(descriptor)

    def rotate_if_old(self) -> None:
        if self._descriptor is not None and time.monotonic() - self._opened_at >= self._max_age:
            self.finish()

    def _open(self) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        self._descriptor, self._partial_path, self._sequence = create_partial_log(
            self._directory, stamp, self._sequence + 1)
        self._records = 0
        self._bytes = 0
        self._opened_at = time.monotonic()

    def finish(self) -> None:
        if self._descriptor is None:
            return
        descriptor, self._descriptor = self._descriptor, None
        finish_partial_log(descriptor, self._partial_path)


class RequestLogger:
    """Samples requests and writes them from a background thread; never blocks serving."""

    def __init__(self, root: pathlib.Path, sampling_rate: float, max_records_per_file: int = 10000,
                 max_file_age_seconds: float = 300.0, queue_size: int = 10000, metrics=None,
                 seed: Optional[int] = None):
        if not 0.0 <= sampling_rate <= 1.0:
            raise ValueError("request log sampling rate must be within [0, 1]")
        if max_records_per_file < 1:
            raise ValueError(f"request log max records per file must be >= 1, got "
                             f"{max_records_per_file}")
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
        if not is_valid_model_name(model_name):
            # Never a folder name: `../../x` or an absolute name would leave serving_logs/.
            if self._metrics is not None:
                self._metrics.record_log_records(model_name, "dropped", 1)
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

    def flush(self, timeout: float = 10.0) -> bool:
        """Waits until everything queued so far is written (files stay open); False if that
        took longer than timeout."""
        done = threading.Event()
        self._queue.put(done, timeout=timeout)
        return done.wait(timeout)

    def close(self) -> None:
        """Writes what is queued and finishes every open file."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _recover(self) -> None:
        """Finishes the logs that dead servers left `.partial`, and drops their temporaries."""
        if not self.root.is_dir():
            return
        for folder in sorted(self.root.iterdir()):
            if not is_valid_model_name(folder.name) or folder.is_symlink() or not folder.is_dir():
                continue
            try:
                recovered = recover_partial_logs(folder)
                removed = remove_stale_temporaries(folder, STALE_TEMPORARY_SECONDS)
            except Exception as error:  # noqa: BLE001 - logging must start even so
                LOGGER.warning("request logs in %s could not be recovered: %s", folder, error)
                continue
            if recovered or removed:
                LOGGER.info("request logs of %s: recovered %d files of dead writers, removed %d "
                            "stale temporaries", folder.name, len(recovered), len(removed))

    def _drain(self) -> None:
        self._recover()
        while True:
            try:
                item = self._queue.get(timeout=1.0)
            except queue.Empty:
                self._for_each_writer(lambda writer: writer.rotate_if_old())
                continue
            if item is None:
                break
            if isinstance(item, threading.Event):
                item.set()
                continue
            self._write(item)
        self._for_each_writer(lambda writer: writer.finish())

    def _for_each_writer(self, action) -> None:
        for model_name, writer in self._writers.items():
            try:
                action(writer)
            except OSError as error:
                LOGGER.warning("request log for %s could not be finished: %s", model_name, error)

    def _write(self, item) -> None:
        model_name, version, signature_name, inputs, outputs, timestamp = item
        try:
            records = build_log_examples(model_name, version, signature_name, inputs, outputs,
                                         timestamp)
            writer = self._writers.get(model_name)
            if writer is None:
                writer = self._writers[model_name] = _RotatingWriter(
                    model_log_dir(self.root, model_name), self._max_records, self._max_age)
            writer.write(records)
            writer.rotate_if_old()
        except Exception as error:  # noqa: BLE001 - the log thread must outlive any bad record
            LOGGER.warning("request log for %s could not be written: %s", model_name, error)
            if self._metrics is not None:
                self._metrics.record_log_records(model_name, "dropped", 1)
            return
        if self._metrics is not None:
            self._metrics.record_log_records(model_name, "written", len(records))
