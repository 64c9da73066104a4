"""Copies a blessed SavedModel into TF Serving's layout: <base>/<integer version>/."""
from __future__ import annotations

import os
import pathlib
import shutil
from typing import List


def existing_versions(base_dir: pathlib.Path) -> List[int]:
    """Integer version folders under base_dir: TF Serving discovers versions the same way."""
    if not base_dir.is_dir():
        return []
    return sorted(int(p.name) for p in base_dir.iterdir() if p.is_dir() and p.name.isdigit())


def next_version(base_dir: pathlib.Path) -> int:
    """One above the newest version folder: TF Serving serves by these numbers, so they decide."""
    return max(existing_versions(base_dir) + [0]) + 1


def publish_version(model_dir: str, base_dir: pathlib.Path, version: int) -> pathlib.Path:
    """Copies to a hidden staging folder, writes the manifest, then renames into place.

    TF Serving ignores folders whose names are not integers, so it never sees a half copy.
    """
    from ml.serving.manifest import write_manifest

    target = base_dir / str(version)
    if target.exists():
        raise FileExistsError(f"serving version folder {target} already exists")
    base_dir.mkdir(parents=True, exist_ok=True)
    staging = base_dir / f".staging-{version}-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    try:
        shutil.copytree(model_dir, staging)
        write_manifest(staging)
        os.rename(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return target
