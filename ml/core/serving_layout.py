"""TF Serving's on-disk layout of a model: <base path>/<integer version>/ SavedModel folders.

TF Serving discovers versions by these folder names (anything not an integer, such as a
pusher's hidden staging folder, is ignored), so the pusher, the model server and the CLI list
them here, the same way.
"""
from __future__ import annotations

import os
import pathlib
from typing import List, Union


def list_version_dirs(base_path: Union[str, os.PathLike]) -> List[int]:
    """Integer-named subdirectories of base_path, ascending; none if it does not exist."""
    base = pathlib.Path(base_path)
    if not base.is_dir():
        return []
    return sorted(int(entry.name) for entry in base.iterdir()
                  if entry.is_dir() and entry.name.isdigit())


def next_version(base_path: Union[str, os.PathLike]) -> int:
    """One above the newest version folder: TF Serving serves by these numbers, so they decide."""
    return max(list_version_dirs(base_path) + [0]) + 1
