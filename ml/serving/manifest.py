"""SHA-256 integrity manifest of a pushed model version.

The Pusher writes it; the model server refuses a version whose files do not match it, so a
half-copied or tampered model is never served.
"""
import hashlib
import json
import os
import pathlib
from typing import Dict, List, Union

from ml.core.atomic_files import atomic_write_text

MANIFEST_NAME = "etrm_manifest.json"
ALGORITHM = "sha256"
_CHUNK = 1 << 20


def _file_digest(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _version_files(version_dir: pathlib.Path) -> Dict[str, pathlib.Path]:
    """Every regular file under version_dir except the manifest, keyed by relative posix path."""
    files = {}
    for path in sorted(version_dir.rglob("*")):
        if path.is_file():
            relative = path.relative_to(version_dir).as_posix()
            if relative != MANIFEST_NAME:
                files[relative] = path
    return files


def compute_digests(version_dir: Union[str, os.PathLike]) -> Dict[str, str]:
    """Returns {relative posix path: sha256 hex digest} for every file of the version."""
    version_dir = pathlib.Path(version_dir)
    return {relative: _file_digest(path) for relative, path in _version_files(version_dir).items()}


def write_manifest(version_dir: Union[str, os.PathLike]) -> pathlib.Path:
    """Writes <version_dir>/etrm_manifest.json atomically (temp file + os.replace)."""
    version_dir = pathlib.Path(version_dir)
    if not version_dir.is_dir():
        raise FileNotFoundError(f"model version directory {version_dir} does not exist")
    manifest = {"algorithm": ALGORITHM, "files": compute_digests(version_dir)}
    target = version_dir / MANIFEST_NAME
    return atomic_write_text(target, json.dumps(manifest, indent=2, sort_keys=True))


def verify_manifest(version_dir: Union[str, os.PathLike]) -> List[str]:
    """Returns the list of integrity problems of a version directory; empty means it verifies."""
    version_dir = pathlib.Path(version_dir)
    manifest_path = version_dir / MANIFEST_NAME
    if not manifest_path.is_file():
        return [f"missing manifest {MANIFEST_NAME}"]
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return [f"unreadable manifest {MANIFEST_NAME}: {error}"]
    if not isinstance(manifest, dict) or manifest.get("algorithm") != ALGORITHM \
            or not isinstance(manifest.get("files"), dict):
        return [f"manifest {MANIFEST_NAME} is not a {ALGORITHM} manifest"]
    expected = manifest["files"]
    actual_files = _version_files(version_dir)
    problems = []
    for relative in sorted(set(expected) - set(actual_files)):
        problems.append(f"missing file {relative}")
    for relative in sorted(set(actual_files) - set(expected)):
        problems.append(f"extra file {relative}")
    for relative in sorted(set(expected) & set(actual_files)):
        if _file_digest(actual_files[relative]) != expected[relative]:
            problems.append(f"digest mismatch for {relative}")
    return problems
