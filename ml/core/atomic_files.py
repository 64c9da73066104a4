"""Write-then-rename: a reader (a polling model server, a dashboard) never sees half a file.

A rename is only durable once the folder holding it is fsynced: without that a power cut can
bring back the old file (or no file) after the new one was reported written. Temporaries of
writers that died before their rename are left as `.<name>.<random>.tmp`;
remove_stale_temporaries cleans them.
"""
from __future__ import annotations

import errno
import os
import pathlib
import re
import tempfile
import time
from typing import IO, Callable, List, Union

PathLike = Union[str, os.PathLike]
TEMPORARY_SUFFIX = ".tmp"
# mkstemp(prefix=".<name>.", suffix=".tmp") names: a hidden name, a random part, then .tmp.
_TEMPORARY_NAME = re.compile(r"\..+\.[A-Za-z0-9_]+\.tmp")
# Filesystems that cannot fsync a folder (some FUSE and network mounts) answer with these.
_UNSUPPORTED = (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP)


def temporary_prefix(path: PathLike) -> str:
    """The prefix of the temporaries made beside path (what remove_stale_temporaries matches)."""
    return f".{pathlib.Path(path).name}."


def fsync_directory(path: PathLike) -> None:
    """Makes the entries of folder `path` (a rename, a new or deleted file) durable."""
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(descriptor)
    except OSError as error:
        if error.errno not in _UNSUPPORTED:
            raise
    finally:
        os.close(descriptor)


def durable_replace(source: PathLike, destination: PathLike) -> None:
    """os.replace, then fsync of the destination's folder (and the source's, if another)."""
    os.replace(source, destination)
    target_folder = pathlib.Path(destination).absolute().parent
    fsync_directory(target_folder)
    source_folder = pathlib.Path(source).absolute().parent
    if source_folder != target_folder:
        fsync_directory(source_folder)


def atomic_write(path: PathLike, write: Callable[[IO], None], binary: bool = False,
                 mode: int = 0o644) -> pathlib.Path:
    """Calls write(handle) on a temporary file beside `path`, fsyncs it, then renames it over
    durably."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=temporary_prefix(path),
                                             suffix=TEMPORARY_SUFFIX)
    try:
        with os.fdopen(descriptor, "wb" if binary else "w",
                       **({} if binary else {"encoding": "utf-8", "newline": ""})) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)  # mkstemp makes files private; servers and readers need them
        durable_replace(temporary, path)
    except BaseException:
        pathlib.Path(temporary).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: PathLike, text: str) -> pathlib.Path:
    return atomic_write(path, lambda handle: handle.write(text))


def remove_stale_temporaries(folder: PathLike, older_than_seconds: float) -> List[pathlib.Path]:
    """Deletes `.<name>.<random>.tmp` files in folder last modified over older_than_seconds ago.

    The age keeps a temporary that a live writer is still filling; symlinks and folders are
    never touched. Returns what was removed; a missing folder has nothing to clean.
    """
    if older_than_seconds < 0:
        raise ValueError(f"older_than_seconds must be >= 0, got {older_than_seconds}")
    folder = pathlib.Path(folder)
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    cutoff = time.time() - older_than_seconds
    removed = []
    for entry in entries:
        if not _TEMPORARY_NAME.fullmatch(entry.name):
            continue
        try:
            if not entry.is_file(follow_symlinks=False) or \
                    entry.stat(follow_symlinks=False).st_mtime > cutoff:
                continue
            os.unlink(entry.path)
        except FileNotFoundError:
            continue  # another cleaner or the writer's own rename got there first
        removed.append(pathlib.Path(entry.path))
    if removed:
        fsync_directory(folder)
    return removed
