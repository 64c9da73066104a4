"""TF Serving's on-disk layout of a model: <base path>/<integer version>/ SavedModel folders.

TF Serving discovers versions by these folder names (anything not an integer, such as a
pusher's hidden staging folder, is ignored), so the pusher, the model server and the CLI list
them here, the same way.
"""
from __future__ import annotations

import os
import pathlib
from typing import List, Optional, Union

MAX_VERSION = 2**63 - 1
_ASCII_DIGITS = frozenset("0123456789")


def parse_version_dir_name(name: str) -> Optional[int]:
    """The version a folder name stands for, or None when it is not one.

    Only ASCII digits count: str.isdigit() also accepts '١٢' or '²', which int() reads
    differently or not at all, and a poller must ignore such a folder, not crash on it.
    Versions are int64 in TF Serving's protos, so larger numbers are not versions either.
    Leading zeros are refused so that a version has one folder, `<base>/<str(version)>`,
    the path the server loads from.
    """
    if (not name or len(name) > len(str(MAX_VERSION)) or not _ASCII_DIGITS.issuperset(name)
            or (name[0] == "0" and name != "0")):
        return None
    version = int(name)
    return version if version <= MAX_VERSION else None


def list_version_dirs(base_path: Union[str, os.PathLike]) -> List[int]:
    """Integer-named subdirectories of base_path, ascending; none if it does not exist."""
    base = pathlib.Path(base_path)
    if not base.is_dir():
        return []
    versions = []
    for entry in base.iterdir():
        version = parse_version_dir_name(entry.name)
        if version is not None and entry.is_dir():
            versions.append(version)
    return sorted(versions)


def next_version(base_path: Union[str, os.PathLike]) -> int:
    """One above the newest version folder: TF Serving serves by these numbers, so they decide."""
    return max(list_version_dirs(base_path) + [0]) + 1
