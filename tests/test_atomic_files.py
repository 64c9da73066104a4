"""Durable write-then-rename and the cleanup of temporaries left by dead writers."""
import os
import pathlib
import time

import pytest

from ml.core import atomic_files
from ml.core.atomic_files import (atomic_write_text, durable_replace, fsync_directory,
                                  remove_stale_temporaries)


def _record_syscalls(monkeypatch):
    """Which paths were fsynced and renamed, in order (fsync of a folder makes a rename last)."""
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(descriptor):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{descriptor}")))
        real_fsync(descriptor)

    def replace(source, destination):
        events.append(("replace", str(pathlib.Path(destination).resolve())))
        real_replace(source, destination)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def test_atomic_write_fsyncs_the_folder_after_the_rename(tmp_path, monkeypatch):
    events = _record_syscalls(monkeypatch)
    target = tmp_path / "models.config"
    atomic_write_text(target, "model_config_list {}")
    assert target.read_text() == "model_config_list {}"
    renamed = events.index(("replace", str(target.resolve())))
    assert ("fsync", str(tmp_path.resolve())) in events[renamed + 1:], events
    assert events[renamed - 1][0] == "fsync" and events[renamed - 1][1].endswith(".tmp")
    assert os.listdir(tmp_path) == ["models.config"]


def test_durable_replace_fsyncs_both_folders_of_a_move(tmp_path, monkeypatch):
    (tmp_path / "staging").mkdir()
    (tmp_path / "served").mkdir()
    source = tmp_path / "staging" / "a"
    source.write_text("x")
    events = _record_syscalls(monkeypatch)
    durable_replace(source, tmp_path / "served" / "a")
    assert events == [("replace", str((tmp_path / "served" / "a").resolve())),
                      ("fsync", str((tmp_path / "served").resolve())),
                      ("fsync", str((tmp_path / "staging").resolve()))]
    fsync_directory(tmp_path)
    with pytest.raises(FileNotFoundError):
        fsync_directory(tmp_path / "missing")


def test_stale_temporaries_are_removed_and_fresh_ones_kept(tmp_path):
    old = time.time() - 3600
    stale = [tmp_path / ".models.config.k2j4_x9.tmp", tmp_path / ".saved_model.pb.abc.tmp"]
    fresh = tmp_path / ".models.config.fresh1.tmp"
    kept = [tmp_path / "models.config", tmp_path / "notes.tmp", tmp_path / ".hidden.tmp",
            tmp_path / "report.abc.tmp", fresh]
    for path in stale + kept:
        path.write_text("x")
    for path in stale + kept[:-1]:
        os.utime(path, (old, old))
    folder = tmp_path / ".staging.abc.tmp"
    folder.mkdir()
    link = tmp_path / ".link.abc.tmp"
    link.symlink_to(tmp_path / "models.config")
    os.utime(link, (old, old), follow_symlinks=False)
    removed = remove_stale_temporaries(tmp_path, older_than_seconds=600)
    assert sorted(removed) == sorted(stale)
    assert all(path.exists() for path in kept) and folder.is_dir() and link.is_symlink()
    assert remove_stale_temporaries(tmp_path / "missing", 600) == []
    with pytest.raises(ValueError, match="older_than_seconds"):
        remove_stale_temporaries(tmp_path, -1)


def test_the_cleanup_matches_the_temporaries_atomic_write_makes(tmp_path, monkeypatch):
    made = []
    real_mkstemp = atomic_files.tempfile.mkstemp

    def mkstemp(**kwargs):
        descriptor, name = real_mkstemp(**kwargs)
        made.append(pathlib.Path(name))
        return descriptor, name
    monkeypatch.setattr(atomic_files.tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(atomic_files, "durable_replace", lambda source, target: None)
    atomic_write_text(tmp_path / "a.json", "{}")  # a writer that died before its rename
    assert [path.name for path in tmp_path.iterdir()] == [made[0].name]
    assert made[0].name.startswith(atomic_files.temporary_prefix(tmp_path / "a.json"))
    os.utime(made[0], (0, 0))
    assert remove_stale_temporaries(tmp_path, 60) == made
