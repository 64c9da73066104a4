"""Write-then-rename: a reader (a polling model server, a dashboard) never sees half a file."""
from __future__ import annotations

import os
import pathlib
import tempfile
from typing import IO, Callable, Union

PathLike = Union[str, os.PathLike]


def atomic_write(path: PathLike, write: Callable[[IO], None], binary: bool = False,
                 mode: int = 0o644) -> pathlib.Path:
    """Calls write(handle) on a temporary file beside `path`, fsyncs it, then renames it over."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb" if binary else "w",
                       **({} if binary else {"encoding": "utf-8", "newline": ""})) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)  # mkstemp makes files private; servers and readers need them
        os.replace(temporary, path)
    except BaseException:
        pathlib.Path(temporary).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: PathLike, text: str) -> pathlib.Path:
    return atomic_write(path, lambda handle: handle.write(text))
