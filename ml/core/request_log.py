"""The serving request-log format: what the model server writes and monitoring reads.

Each sampled row is one tf.Example: the request features (those of a serialized tf.Example
input, or each input tensor under its alias), the outputs as `prediction/<alias>`, and
`model_name`, `model_version`, `signature_name`, `timestamp_micros`. Records go to
`<serving log dir of the model>/requests-<start>-<pid>-<n>.tfrecord` (uncompressed TFRecords:
length, CRC of the length, data, CRC of the data). A file is written under a `.partial` name and
renamed when complete. Its writer holds an exclusive flock on it for as long as it writes: the
kernel drops that lock when the writer dies, even by SIGKILL, so an unlocked `.partial` belongs
to a dead writer. Its complete records are recovered (the file renamed to finished, the torn
trailing record, if any, moved to `<name>.tfrecord.torn`) by the next server or reader, so a
crash loses at most the record being written. Writer (ml/serving/request_log.py) and readers
(drift gate, `etrm monitor`) share this module so they cannot disagree. TensorFlow is imported
on use: the CLI imports this early.
"""
from __future__ import annotations

import errno
import fcntl
import logging
import os
import pathlib
import struct
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import tempfile

import google_crc32c
import numpy as np
import pandas as pd

from ml.core.atomic_files import (TEMPORARY_SUFFIX, atomic_write, durable_replace,
                                  fsync_directory, temporary_prefix)
from ml.core.example_tables import records_to_frame, sample_records
from ml.core.model_names import check_model_name

LOGGER = logging.getLogger(__name__)

EXAMPLE_INPUT_ALIASES = ("examples", "inputs")
PREDICTION_PREFIX = "prediction/"
FINISHED_SUFFIX = ".tfrecord"
PARTIAL_SUFFIX = ".tfrecord.partial"
TORN_SUFFIX = ".tfrecord.torn"
FILE_PREFIX = "requests-"
MODEL_NAME_FEATURE = "model_name"
MODEL_VERSION_FEATURE = "model_version"
SIGNATURE_NAME_FEATURE = "signature_name"
TIMESTAMP_FEATURE = "timestamp_micros"


def prediction_column(output_alias: str) -> str:
    """The logged feature (and table column) holding a signature output."""
    return PREDICTION_PREFIX + output_alias


def finished_name(partial_name: str) -> str:
    """The name a `.partial` log file is renamed to once complete."""
    return partial_name[:-len(PARTIAL_SUFFIX)] + FINISHED_SUFFIX


def log_file_key(path: os.PathLike) -> str:
    """A log file's name without its suffix: the same before and after its rename."""
    name = pathlib.Path(path).name
    for suffix in (PARTIAL_SUFFIX, FINISHED_SUFFIX):
        if name.endswith(suffix):
            return name[:-len(suffix)]
    return name


def model_log_dir(serving_logs_root: os.PathLike, model_name: str) -> pathlib.Path:
    """The model's log folder, refused unless it is a direct child of serving_logs_root.

    The name is checked as a plain path component, and the resolved folder too, so neither
    `../../x`, an absolute name nor a symlinked model folder can make a writer leave the root.
    """
    check_model_name(model_name, "request log model name")
    root = pathlib.Path(serving_logs_root).resolve()
    folder = (root / model_name).resolve()
    if folder.parent != root:
        raise ValueError(f"request log folder of model {model_name!r} resolves to {folder}, "
                         f"outside {root}")
    return folder


_LENGTH = struct.Struct("<Q")
_CRC = struct.Struct("<I")
_HEADER_BYTES = _LENGTH.size + _CRC.size
_MASK_DELTA = 0xA282EAD8
_NO_HARD_LINKS = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK)


def _masked_crc(data: bytes) -> int:
    """TFRecord's masked CRC-32C (a plain CRC of data holding CRCs is weak, so it is rotated)."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def encode_record(data: bytes) -> bytes:
    """One TFRecord as written to a log file, readable by tf.data.TFRecordDataset."""
    length = _LENGTH.pack(len(data))
    return length + _CRC.pack(_masked_crc(length)) + data + _CRC.pack(_masked_crc(data))


def _complete_records(data: bytes) -> Tuple[List[bytes], int]:
    """The records of a TFRecord file's bytes up to the first torn or corrupt one, and the
    offset where those complete records end."""
    records, offset = [], 0
    while offset + _HEADER_BYTES <= len(data):
        length_bytes = data[offset:offset + _LENGTH.size]
        (crc,) = _CRC.unpack_from(data, offset + _LENGTH.size)
        if crc != _masked_crc(length_bytes):
            break
        (length,) = _LENGTH.unpack(length_bytes)
        start = offset + _HEADER_BYTES
        end = start + length + _CRC.size
        if end > len(data):
            break
        record = data[start:start + length]
        if _CRC.unpack_from(data, start + length)[0] != _masked_crc(record):
            break
        records.append(record)
        offset = end
    return records, offset


def read_complete_records(path: os.PathLike) -> Tuple[List[bytes], int, int]:
    """A log file's complete records, where they end and the file's size (a size above the end
    means a torn or corrupt tail)."""
    data = pathlib.Path(path).read_bytes()
    records, end = _complete_records(data)
    return records, end, len(data)


def _locked_by_writer(descriptor: int, exclusive: bool) -> bool:
    """True while a live writer holds the file's flock; else takes the lock for the caller."""
    try:
        fcntl.flock(descriptor, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    return False


def _same_file(descriptor: int, path: pathlib.Path) -> bool:
    """Whether path still names the open file (another recoverer may have renamed it)."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(descriptor)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def _free_finished_path(partial: pathlib.Path) -> pathlib.Path:
    target = partial.with_name(finished_name(partial.name))
    attempt = 1
    while target.exists():
        attempt += 1
        target = partial.with_name(f"{log_file_key(partial)}-{attempt}{FINISHED_SUFFIX}")
    return target


def recover_partial_log(partial: os.PathLike) -> Optional[pathlib.Path]:
    """Finishes the `.partial` log of a dead writer: cuts a torn trailing record, renames it.

    Returns the finished file, or None when a live writer still holds the file, it has gone
    (another recoverer was first) or held no complete record (then it is deleted).
    """
    partial = pathlib.Path(partial)
    try:
        descriptor = os.open(partial, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        if _locked_by_writer(descriptor, exclusive=True) or not _same_file(descriptor, partial):
            return None
        records, end, size = read_complete_records(partial)
        if end < size:
            # Usually the record being written at the kill; kept aside, not destroyed, in case
            # it is damage in the middle of the file with records after it.
            torn = partial.with_name(log_file_key(partial) + TORN_SUFFIX)
            atomic_write(torn, lambda handle: handle.write(os.pread(descriptor, size - end, end)),
                         binary=True)
            os.ftruncate(descriptor, end)
            LOGGER.warning("request log %s of a dead writer: %d bytes after its %d complete "
                           "records moved to %s", partial, size - end, len(records), torn.name)
        if not records:
            partial.unlink()
            fsync_directory(partial.parent)
            return None
        os.fsync(descriptor)
        target = _free_finished_path(partial)
        durable_replace(partial, target)
        LOGGER.info("recovered %d request log records of a dead writer into %s",
                    len(records), target.name)
        return target
    finally:
        os.close(descriptor)


def create_partial_log(directory: os.PathLike, start_stamp: str,
                       sequence: int) -> Tuple[int, pathlib.Path, int]:
    """Creates, locks and names a new log `requests-<start>-<pid>-<n>.tfrecord.partial`.

    The file is locked before it gets its `.partial` name (a hidden temporary is linked into
    place), so no recoverer can ever see it unlocked while its writer lives; the name is taken
    with a link, which never replaces a file, and skipped if its finished name exists (a
    restarted container has the same pid). Returns (descriptor, path, sequence used).
    """
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        dir=directory, prefix=temporary_prefix(directory / f"{FILE_PREFIX}new"),
        suffix=TEMPORARY_SUFFIX)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        os.fchmod(descriptor, 0o644)
        while True:
            stem = f"{FILE_PREFIX}{start_stamp}-{os.getpid()}-{sequence:05d}"
            partial = directory / (stem + PARTIAL_SUFFIX)
            if not (directory / (stem + FINISHED_SUFFIX)).exists():
                if _link_or_rename(temporary, partial):
                    break
            sequence += 1
        pathlib.Path(temporary).unlink(missing_ok=True)
        fsync_directory(directory)
    except BaseException:
        pathlib.Path(temporary).unlink(missing_ok=True)
        os.close(descriptor)
        raise
    return descriptor, partial, sequence


def _link_or_rename(temporary: str, target: pathlib.Path) -> bool:
    """Gives the temporary the name target unless that exists; False if it does."""
    try:
        os.link(temporary, target)
        return True
    except FileExistsError:
        return False
    except OSError as error:
        if error.errno not in _NO_HARD_LINKS:
            raise
    # A filesystem without hard links: check, then rename (only a writer with the same pid
    # starting in the same second in the same folder could race this).
    if target.exists():
        return False
    os.rename(temporary, target)
    return True


def write_records(descriptor: int, records: Sequence[bytes]) -> int:
    """Appends whole records with one write, so what reaches the file is whole records (a
    writer killed inside a write can leave one torn record, which recovery cuts off).
    Returns the bytes written."""
    data = memoryview(b"".join(encode_record(record) for record in records))
    total = len(data)
    while data:
        data = data[os.write(descriptor, data):]
    return total


def finish_partial_log(descriptor: int, partial: os.PathLike) -> pathlib.Path:
    """fsyncs a written log, renames it to its finished name durably, then drops its lock
    (after the rename, so no recoverer can take a file its writer is still finishing)."""
    partial = pathlib.Path(partial)
    try:
        os.fsync(descriptor)
        finished = partial.with_name(finished_name(partial.name))
        durable_replace(partial, finished)
    finally:
        os.close(descriptor)
    return finished


def _partial_logs(directory: pathlib.Path) -> List[pathlib.Path]:
    return sorted(path for path in directory.iterdir()
                  if path.name.startswith(FILE_PREFIX) and path.name.endswith(PARTIAL_SUFFIX)
                  and path.is_file() and not path.is_symlink())


def recover_partial_logs(log_dir: os.PathLike) -> List[pathlib.Path]:
    """Recovers every `.partial` log of a dead writer in one model's log folder.

    A file this process may not change (a read-only mount) is left for a writer with the
    rights; log_files then reads its complete records in place.
    """
    directory = pathlib.Path(log_dir)
    if not directory.is_dir():
        return []
    recovered = []
    for partial in _partial_logs(directory):
        try:
            finished = recover_partial_log(partial)
        except OSError as error:
            if error.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
            LOGGER.info("cannot recover request log %s here (%s); reading it in place",
                        partial, error.strerror)
            continue
        if finished is not None:
            recovered.append(finished)
    return recovered


def _dead_writer(partial: pathlib.Path) -> bool:
    try:
        descriptor = os.open(partial, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        return not _locked_by_writer(descriptor, exclusive=False)
    finally:
        os.close(descriptor)


def _feature(values: np.ndarray):
    import tensorflow as tf

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
    import tensorflow as tf
    from google.protobuf import message

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
            features[prediction_column(alias)] = _feature(value if index is None else value[index])
        features[MODEL_NAME_FEATURE] = _feature(np.array([model_name.encode()], dtype=object))
        features[MODEL_VERSION_FEATURE] = _feature(np.array([version], dtype=np.int64))
        features[SIGNATURE_NAME_FEATURE] = _feature(np.array([signature_name.encode()], dtype=object))
        features[TIMESTAMP_FEATURE] = _feature(np.array([timestamp_micros], dtype=np.int64))
        records.append(tf.train.Example(features=tf.train.Features(feature=features))
                       .SerializeToString())
    return records


def log_files(log_dir, recover: bool = True) -> List[pathlib.Path]:
    """Log files of one model ready to read, oldest first (names start with the UTC start time).

    These are the finished files and, after the `.partial` files of dead writers were
    recovered (recover=True), those that could not be renamed here; files of live writers are
    left to them.
    """
    directory = pathlib.Path(log_dir)
    if not directory.is_dir():
        return []
    if recover:
        recover_partial_logs(directory)
    finished = [path for path in directory.iterdir()
                if path.name.endswith(FINISHED_SUFFIX) and path.is_file()]
    unrecovered = [path for path in _partial_logs(directory) if _dead_writer(path)]
    return sorted(finished + unrecovered, key=lambda path: path.name)


def iter_log_records(files: Sequence[os.PathLike]) -> Iterator[bytes]:
    """The complete records of each file; a torn or corrupt tail is skipped with a warning."""
    for path in files:
        try:
            records, end, size = read_complete_records(path)
        except FileNotFoundError:
            # A `.partial` recovered since it was listed: read it under its finished name.
            path = pathlib.Path(path)
            finished = path.with_name(finished_name(path.name))
            if not path.name.endswith(PARTIAL_SUFFIX):
                raise
            if not finished.exists():
                continue  # it held no record, or the next listing finds it under a new name
            records, end, size = read_complete_records(finished)
        if end < size:
            LOGGER.warning("request log %s: %d bytes after its %d complete records are torn or "
                           "corrupt; skipped", path, size - end, len(records))
        yield from records


def read_log_frame(files: Sequence[os.PathLike], columns: Sequence[str],
                   max_rows: Optional[int] = None, seed: int = 0) -> pd.DataFrame:
    """The logged requests of the given files: the named columns, sampled to max_rows."""
    records = list(iter_log_records(files))
    return records_to_frame(sample_records(records, max_rows, seed), columns)
