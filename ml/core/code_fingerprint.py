"""A short digest of a package's Python sources, recorded beside what the code produced
(Examples, Trainer runs), so a reproduction can tell changed code from changed settings."""
from __future__ import annotations

import functools
import hashlib

from ml.core.repo import REPO_ROOT

# Where the digests are recorded: a Trainer's custom_config, an Examples artifact's properties.
MODEL_CODE_KEY = "model_code"
GENERATOR_CODE_SETTING = "generator_code"  # as ml.core.metadata.generator_settings names it
GENERATOR_CODE_PROPERTY = f"etrm_{GENERATOR_CODE_SETTING}"
GENERATOR_PACKAGES = ("ml/synthetic", "components/etrm_example_gen")


@functools.lru_cache(maxsize=None)
def source_fingerprint(*packages: str) -> str:
    """sha256 (16 hex digits) over the .py files under the given repo-relative package folders,
    tests excluded, in path order; the same sources give the same digest on any machine."""
    digest = hashlib.sha256()
    for package in packages:
        folder = REPO_ROOT / package
        if not folder.is_dir():  # an installed copy without that package: say so in the digest
            digest.update(f"missing:{package}\0".encode())
            continue
        for path in sorted(folder.rglob("*.py")):
            relative = path.relative_to(REPO_ROOT).as_posix()
            if path.name.endswith("_test.py") or path.name.startswith("test_"):
                continue
            digest.update(relative.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
