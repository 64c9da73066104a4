"""Publishes a SavedModel into TF Serving's layout (ml/core/serving_layout.py) as one version."""
from __future__ import annotations

import os
import pathlib
import shutil


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
