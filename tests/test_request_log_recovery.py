"""Request logs survive their writer: a SIGKILLed server's flushed records reach monitoring.

The slow test kills a real writer process; the others build the same situations in process
(a writer's lock is an flock, which a process can hold against itself on another descriptor).
"""
import errno
import os
import pathlib
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ml.core import request_log
from ml.core.request_log import (FINISHED_SUFFIX, PARTIAL_SUFFIX, TORN_SUFFIX, create_partial_log,
                                 encode_record, finish_partial_log, log_file_key, log_files,
                                 model_log_dir, read_complete_records, read_log_frame,
                                 recover_partial_logs, write_records)

REPO = pathlib.Path(__file__).resolve().parents[1]
TORN = encode_record(b"the record being written when the writer died")[:-7]

WRITER = textwrap.dedent("""
    import sys, time
    import numpy as np
    from ml.serving.request_log import RequestLogger

    logger = RequestLogger(sys.argv[1], 1.0, max_records_per_file=1000, seed=0)
    for index in range(int(sys.argv[2])):
        logger.maybe_log("risk", 3, "serving_default", {"volume": np.array([float(index)])},
                         {"score": np.array([0.5])})
    print("flushed" if logger.flush(timeout=300) else "timed out", flush=True)
    time.sleep(600)
""")


def _records(count, offset=0):
    return [f"record {index}".encode() for index in range(offset, offset + count)]


def _dead_partial(folder, records, tail=b"", stamp="20260101T000000"):
    """A `.partial` log whose writer died: written and locked like the server's, then the lock
    dropped (as the kernel does for a killed process) without the rename."""
    descriptor, partial, _ = create_partial_log(folder, stamp, 1)
    write_records(descriptor, records)
    os.write(descriptor, tail)
    os.close(descriptor)
    return partial


@pytest.mark.slow
def test_a_sigkilled_writer_loses_none_of_its_flushed_records(tmp_path):
    root = tmp_path / "serving_logs"
    environment = dict(os.environ, PYTHONPATH=str(REPO), TF_USE_LEGACY_KERAS="1")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(root), "50"], cwd=REPO,
                              env=environment, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "flushed"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(60)
    folder = root / "risk"
    (partial,) = folder.glob("*" + PARTIAL_SUFFIX)
    assert f"-{writer.pid}-00001" in partial.name and not list(folder.glob("*" + FINISHED_SUFFIX))
    with open(partial, "ab") as handle:
        handle.write(TORN)  # as if it had died inside its next write

    copy = tmp_path / "copy" / "risk"
    copy.mkdir(parents=True)
    (copy / partial.name).write_bytes(partial.read_bytes())

    (finished,) = log_files(folder)  # a reader (drift gate, etrm monitor) recovers it
    assert finished.name == partial.name.replace(PARTIAL_SUFFIX, FINISHED_SUFFIX)
    assert not partial.exists()
    frame = read_log_frame([finished], ["volume", "prediction/score", "model_version"])
    assert frame["volume"].tolist() == [float(index) for index in range(50)]
    assert set(frame["model_version"]) == {3}
    import tensorflow as tf
    assert sum(1 for _ in tf.data.TFRecordDataset(str(finished))) == 50

    from ml.serving.request_log import RequestLogger
    restarted = RequestLogger(tmp_path / "copy", 1.0)  # a restarted server recovers it too
    assert restarted.flush(timeout=300)
    restarted.close()
    (recovered,) = copy.glob("*" + FINISHED_SUFFIX)
    assert not list(copy.glob("*" + PARTIAL_SUFFIX))
    assert read_complete_records(recovered)[0] == read_complete_records(finished)[0]


def test_a_dead_writers_partial_is_recovered_exactly_to_its_complete_records(tmp_path):
    partial = _dead_partial(tmp_path, _records(7), tail=TORN)
    empty = _dead_partial(tmp_path, [], stamp="20260101T000001")
    recovered = recover_partial_logs(tmp_path)
    assert [path.name for path in recovered] == [partial.name.replace(PARTIAL_SUFFIX,
                                                                      FINISHED_SUFFIX)]
    records, end, size = read_complete_records(recovered[0])
    assert records == _records(7) and end == size
    assert not partial.exists() and not empty.exists(), "an empty dead log holds nothing to keep"
    torn = tmp_path / (log_file_key(partial) + TORN_SUFFIX)
    assert torn.read_bytes() == TORN, "the cut bytes are kept aside, not destroyed"
    assert sorted(os.listdir(tmp_path)) == sorted([recovered[0].name, torn.name])
    assert log_files(tmp_path) == recovered


def test_a_live_writers_partial_is_neither_read_nor_recovered(tmp_path):
    descriptor, partial, _ = create_partial_log(tmp_path, "20260101T000000", 1)
    write_records(descriptor, _records(3))
    assert log_files(tmp_path) == [] and partial.exists()
    write_records(descriptor, _records(2, offset=3))
    finished = finish_partial_log(descriptor, partial)
    assert log_files(tmp_path) == [finished]
    assert read_complete_records(finished)[0] == _records(5)
    assert log_file_key(finished) == log_file_key(partial)


def test_a_reader_that_may_not_rename_reads_the_complete_records_in_place(tmp_path, monkeypatch):
    partial = _dead_partial(tmp_path, _records(4), tail=TORN)

    def read_only(path):
        raise PermissionError(errno.EROFS, "Read-only file system", str(path))
    monkeypatch.setattr(request_log, "recover_partial_log", read_only)
    assert log_files(tmp_path) == [partial]
    assert list(request_log.iter_log_records([partial])) == _records(4)


def test_a_new_log_never_takes_the_name_of_an_earlier_one(tmp_path):
    """A restarted container has the same pid; its first log must not replace the old one."""
    pid = os.getpid()
    old = tmp_path / f"requests-20260101T000000-{pid}-00001{FINISHED_SUFFIX}"
    old.write_bytes(encode_record(b"old"))
    held = tmp_path / f"requests-20260101T000000-{pid}-00002{PARTIAL_SUFFIX}"
    held.write_bytes(b"")
    descriptor, partial, sequence = create_partial_log(tmp_path, "20260101T000000", 1)
    finish_partial_log(descriptor, partial)
    assert sequence == 3 and partial.name.endswith(f"-{pid}-00003{PARTIAL_SUFFIX}")
    assert read_complete_records(old)[0] == [b"old"] and held.exists()
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


def test_the_serving_writer_cuts_a_failed_write_and_keeps_the_records_before_it(tmp_path,
                                                                               monkeypatch):
    from ml.serving import request_log as serving_log

    writer = serving_log._RotatingWriter(tmp_path, max_records=100, max_age_seconds=300)
    writer.write(_records(3))
    real_write = os.write

    def full_disk(descriptor, data):
        real_write(descriptor, bytes(data[:5]))
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(OSError, match="No space"):
        writer.write(_records(2, offset=3))
    monkeypatch.setattr(os, "write", real_write)
    writer.write(_records(1, offset=5))
    writer.finish()
    files = log_files(tmp_path)
    assert [read_complete_records(path)[0] for path in files] == [_records(3), _records(1, 5)]
    assert all(read_complete_records(path)[1:] == (path.stat().st_size,) * 2 for path in files)


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/absolute", "a/b", "..", "x" * 300])
def test_model_names_cannot_lead_the_request_log_out_of_its_folder(tmp_path, name):
    from ml.serving.request_log import RequestLogger

    root = tmp_path / "home" / "serving_logs"
    root.mkdir(parents=True)
    logger = RequestLogger(root, 1.0)
    try:
        logger.maybe_log(name, 1, "serving_default", {"x": np.array([1.0])},
                         {"y": np.array([2.0])})
        assert logger.flush(timeout=300)
    finally:
        logger.close()
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert written == [] and not (tmp_path / "escaped").exists()
    with pytest.raises(ValueError, match="invalid request log model name"):
        model_log_dir(root, name)


def test_a_symlinked_model_folder_is_refused(tmp_path):
    root = tmp_path / "serving_logs"
    root.mkdir()
    (root / "risk").symlink_to(tmp_path)
    with pytest.raises(ValueError, match="outside"):
        model_log_dir(root, "risk")
    assert model_log_dir(root, "other") == (root / "other").resolve()


def test_a_starting_logger_recovers_dead_logs_and_removes_stale_temporaries(tmp_path):
    from ml.serving.request_log import RequestLogger

    folder = tmp_path / "risk"
    partial = _dead_partial(folder, _records(2))
    stale = folder / ".requests-new.k3j2h1.tmp"  # a writer killed before naming its file
    fresh = folder / ".requests-new.a1b2c3.tmp"
    stale.write_bytes(b"")
    fresh.write_bytes(b"")
    os.utime(stale, (0, 0))
    logger = RequestLogger(tmp_path, 1.0)
    try:
        assert logger.flush(timeout=60)
    finally:
        logger.close()
    assert not partial.exists() and not stale.exists() and fresh.exists()
    (finished,) = folder.glob("*" + FINISHED_SUFFIX)
    assert read_complete_records(finished)[0] == _records(2)
