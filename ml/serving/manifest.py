"""The integrity manifest of a pushed model version: SHA-256 of every file, signed with Ed25519.

The Pusher writes `etrm_manifest.json` into each version; the model server refuses a version
whose files do not match it. A digest list alone only catches accidents (whoever can change the
files can rewrite it), so the Pusher signs it with a private key kept outside the serving tree
and the server, given the public key(s), refuses unsigned or badly signed versions.

The server never loads the folder it verified: `verify_version` copies each file into a private
staging folder while hashing the bytes it copies, and the SavedModel is loaded from that copy.
A file changed after the check therefore cannot be served. Symlinks (to files or folders),
special files and files the manifest does not list are refused rather than followed.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import pathlib
import shutil
import stat
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple, Union

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ml.core.atomic_files import atomic_write, atomic_write_text

MANIFEST_NAME = "etrm_manifest.json"
ALGORITHM = "sha256"
SIGNATURE_ALGORITHM = "ed25519"
_SIGNED_DOMAIN = b"etrm-model-manifest-v1\n"
_CHUNK = 1 << 20
_MAX_MANIFEST_BYTES = 16 << 20
PathLike = Union[str, os.PathLike]


class ManifestError(ValueError):
    """A version that must not be served; the message is its status for GetModelStatus."""


@dataclasses.dataclass(frozen=True)
class VerifiedVersion:
    """A version whose bytes matched its manifest, copied read-only to `path` for loading."""
    source: pathlib.Path
    path: pathlib.Path
    files: Dict[str, str]
    key_id: Optional[str]


def key_id(public_key: Ed25519PublicKey) -> str:
    """Short fingerprint of a public key (first 16 hex digits of SHA-256 of its raw bytes)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_public_keys(path: PathLike) -> List[Ed25519PublicKey]:
    """Every Ed25519 public key of a PEM file; several keys let a rotation overlap."""
    path = pathlib.Path(path)
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read model signing public key file {path}: {error}") from error
    begin, end = "-----BEGIN PUBLIC KEY-----", "-----END PUBLIC KEY-----"
    keys, rest = [], text
    while begin in rest:
        start = rest.index(begin)
        stop = rest.find(end, start)
        if stop < 0:
            raise ValueError(f"model signing public key file {path}: unterminated PEM block")
        block = rest[start:stop + len(end)]
        rest = rest[stop + len(end):]
        try:
            key = serialization.load_pem_public_key(block.encode("ascii"))
        except ValueError as error:
            raise ValueError(f"model signing public key file {path}: key {len(keys) + 1} is "
                             f"not a valid PEM public key: {error}") from error
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"model signing public key file {path}: key {len(keys) + 1} is a "
                             f"{type(key).__name__}, not an Ed25519 public key")
        keys.append(key)
    if not keys:
        raise ValueError(f"model signing public key file {path} holds no PEM public key "
                         f"({begin} block)")
    return keys


def load_private_key(path: PathLike) -> Ed25519PrivateKey:
    """The Pusher's signing key (unencrypted PKCS#8 PEM, as `signing_keys keygen` writes it)."""
    path = pathlib.Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ValueError(f"cannot read model signing key {path}: {error}") from error
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as error:
        raise ValueError(f"model signing key {path} is not an unencrypted PEM private key: "
                         f"{error}") from error
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"model signing key {path} is a {type(key).__name__}, not Ed25519")
    return key


def generate_signing_key(out_dir: PathLike, name: str = "model_signing"
                         ) -> Tuple[pathlib.Path, pathlib.Path]:
    """Writes <name>.pem (private, mode 0600) and <name>.pub.pem; never overwrites a key."""
    out_dir = pathlib.Path(out_dir)
    private_path, public_path = out_dir / f"{name}.pem", out_dir / f"{name}.pub.pem"
    for path in (private_path, public_path):
        if path.exists():
            raise FileExistsError(f"{path} already exists; choose another --out or --name")
    out_dir.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    atomic_write(private_path, lambda handle: handle.write(private_pem), binary=True, mode=0o600)
    atomic_write(public_path, lambda handle: handle.write(public_pem), binary=True, mode=0o644)
    return private_path, public_path


def _signed_payload(files: Dict[str, str], version: Optional[int]) -> bytes:
    body = {"algorithm": ALGORITHM, "files": files, "version": version}
    return _SIGNED_DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


class _Walk:
    """Reads a version tree through directory descriptors without following any symlink.

    Each file is opened with O_NOFOLLOW relative to its already opened parent, so a path
    swapped for a symlink during the walk is refused, not followed. With a destination the
    hashed bytes are also written there: those are the bytes the server loads.
    """

    def __init__(self, expected: Optional[Dict[str, str]], destination: Optional[pathlib.Path]):
        self.expected = expected
        self.destination = destination
        self.digests: Dict[str, str] = {}
        self.problems: List[str] = []

    def run(self, root_fd: int) -> None:
        self._directory(root_fd, "")

    def _directory(self, directory_fd: int, prefix: str) -> None:
        with os.scandir(directory_fd) as entries:
            names = sorted(entry.name for entry in entries)
        for name in names:
            relative = prefix + name
            if relative == MANIFEST_NAME:
                continue
            try:
                info = os.stat(name, dir_fd=directory_fd, follow_symlinks=False)
            except FileNotFoundError:
                self.problems.append(f"file {relative} vanished while it was checked")
                continue
            if stat.S_ISLNK(info.st_mode):
                self.problems.append(f"symlink {relative} (symlinks are never followed)")
            elif stat.S_ISDIR(info.st_mode):
                self._subdirectory(directory_fd, name, relative)
            elif stat.S_ISREG(info.st_mode):
                self._file(directory_fd, name, relative)
            else:
                self.problems.append(f"{relative} is not a regular file")

    def _subdirectory(self, directory_fd: int, name: str, relative: str) -> None:
        try:
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=directory_fd)
        except OSError as error:
            self.problems.append(f"cannot open folder {relative}: {error.strerror}")
            return
        try:
            if self.destination is not None:
                (self.destination / relative).mkdir()
            self._directory(child, relative + "/")
        finally:
            os.close(child)

    def _file(self, directory_fd: int, name: str, relative: str) -> None:
        if self.expected is not None and relative not in self.expected:
            self.problems.append(f"extra file {relative}")
            return
        try:
            descriptor = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK,
                                 dir_fd=directory_fd)
        except OSError as error:
            self.problems.append(f"cannot open {relative}: {error.strerror}")
            return
        digest = hashlib.sha256()
        with os.fdopen(descriptor, "rb") as source:
            if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
                self.problems.append(f"{relative} is not a regular file")
                return
            sink = open(self.destination / relative, "xb") if self.destination is not None else None
            try:
                for chunk in iter(lambda: source.read(_CHUNK), b""):
                    digest.update(chunk)
                    if sink is not None:
                        sink.write(chunk)
            finally:
                if sink is not None:
                    sink.close()
        self.digests[relative] = digest.hexdigest()


def _open_version_dir(version_dir: pathlib.Path) -> int:
    try:
        return os.open(version_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as error:
        if os.path.islink(version_dir):
            raise ManifestError(f"version folder {version_dir} is a symlink; it is never "
                                f"followed") from error
        raise ManifestError(f"cannot open version folder {version_dir}: "
                            f"{error.strerror}") from error


def _scan(version_dir: pathlib.Path, expected: Optional[Dict[str, str]] = None,
          destination: Optional[pathlib.Path] = None) -> _Walk:
    walk = _Walk(expected, destination)
    root = _open_version_dir(version_dir)
    try:
        walk.run(root)
    finally:
        os.close(root)
    return walk


def compute_digests(version_dir: PathLike) -> Dict[str, str]:
    """{relative posix path: sha256} of every file; ManifestError on symlinks or special files."""
    walk = _scan(pathlib.Path(version_dir))
    if walk.problems:
        raise ManifestError(f"cannot write a manifest for {version_dir}: "
                            f"{'; '.join(walk.problems[:5])}")
    return walk.digests


def write_manifest(version_dir: PathLike) -> pathlib.Path:
    """Writes an unsigned (digest-only) manifest atomically; servers without a key accept it."""
    version_dir = pathlib.Path(version_dir)
    if not version_dir.is_dir():
        raise FileNotFoundError(f"model version directory {version_dir} does not exist")
    manifest = {"algorithm": ALGORITHM, "files": compute_digests(version_dir)}
    return atomic_write_text(version_dir / MANIFEST_NAME, json.dumps(manifest, indent=2,
                                                                     sort_keys=True))


def sign_manifest(version_dir: PathLike, private_key: Union[Ed25519PrivateKey, PathLike],
                  version: Optional[int] = None) -> pathlib.Path:
    """Writes a manifest signed with the Pusher's key; `version` binds it to its folder number,
    so a signed old version copied under a new number is refused."""
    version_dir = pathlib.Path(version_dir)
    if not version_dir.is_dir():
        raise FileNotFoundError(f"model version directory {version_dir} does not exist")
    if not isinstance(private_key, Ed25519PrivateKey):
        private_key = load_private_key(private_key)
    files = compute_digests(version_dir)
    version = None if version is None else int(version)
    signature = private_key.sign(_signed_payload(files, version))
    manifest = {"algorithm": ALGORITHM, "files": files, "version": version,
                "signature": {"algorithm": SIGNATURE_ALGORITHM,
                              "key_id": key_id(private_key.public_key()),
                              "value": base64.b64encode(signature).decode("ascii")}}
    return atomic_write_text(version_dir / MANIFEST_NAME, json.dumps(manifest, indent=2,
                                                                     sort_keys=True))


def _read_manifest(root_fd: int) -> dict:
    try:
        descriptor = os.open(MANIFEST_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK,
                             dir_fd=root_fd)
    except FileNotFoundError as error:
        raise ManifestError(f"missing manifest {MANIFEST_NAME}") from error
    except OSError as error:
        raise ManifestError(f"unreadable manifest {MANIFEST_NAME}: {error.strerror} "
                            f"(a symlinked manifest is refused)") from error
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise ManifestError(f"manifest {MANIFEST_NAME} is not a regular file")
        data = handle.read(_MAX_MANIFEST_BYTES + 1)
    if len(data) > _MAX_MANIFEST_BYTES:
        raise ManifestError(f"manifest {MANIFEST_NAME} is larger than {_MAX_MANIFEST_BYTES} bytes")
    try:
        manifest = json.loads(data.decode("utf-8"))
    except ValueError as error:
        raise ManifestError(f"unreadable manifest {MANIFEST_NAME}: {error}") from error
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or manifest.get("algorithm") != ALGORITHM or not all(
            isinstance(name, str) and isinstance(value, str) for name, value in files.items()):
        raise ManifestError(f"manifest {MANIFEST_NAME} is not a {ALGORITHM} manifest")
    return manifest


def _problems(walk: _Walk, expected: Dict[str, str]) -> List[str]:
    problems = list(walk.problems)
    problems += [f"missing file {name}" for name in sorted(set(expected) - set(walk.digests))]
    problems += [f"digest mismatch for {name}" for name in sorted(walk.digests)
                 if walk.digests[name] != expected.get(name)]
    return problems


def _check_signature(manifest: dict, public_keys: Sequence[Ed25519PublicKey],
                     version: Optional[int]) -> str:
    """The key id that signed the manifest; ManifestError when no configured key did."""
    signature = manifest.get("signature")
    if not isinstance(signature, dict):
        raise ManifestError(f"manifest {MANIFEST_NAME} is not signed and this server requires "
                            f"signed models")
    if signature.get("algorithm") != SIGNATURE_ALGORITHM:
        raise ManifestError(f"manifest signature algorithm {signature.get('algorithm')!r} is not "
                            f"{SIGNATURE_ALGORITHM}")
    try:
        value = base64.b64decode(str(signature.get("value", "")), validate=True)
    except ValueError as error:
        raise ManifestError(f"manifest signature is not base64: {error}") from error
    signed_version = manifest.get("version")
    if signed_version is not None and not isinstance(signed_version, int):
        raise ManifestError(f"manifest version {signed_version!r} is not an integer")
    payload = _signed_payload(manifest["files"], signed_version)
    for public_key in public_keys:
        try:
            public_key.verify(value, payload)
        except InvalidSignature:
            continue
        if version is not None and signed_version is not None and signed_version != version:
            raise ManifestError(f"manifest was signed for version {signed_version}, not for "
                                f"version {version}")
        return key_id(public_key)
    configured = ", ".join(key_id(key) for key in public_keys)
    raise ManifestError(f"manifest signature (key id {signature.get('key_id')!r}) does not verify "
                        f"with any configured public key (key ids {configured})")


def _make_read_only(root: pathlib.Path) -> None:
    for folder, subfolders, files in os.walk(root, topdown=False):
        for name in files:
            os.chmod(os.path.join(folder, name), 0o400)
        os.chmod(folder, 0o500)


def remove_verified_copy(path: PathLike) -> None:
    """Deletes a staging copy made read-only by verify_version."""
    path = pathlib.Path(path)
    if not path.exists():
        return
    for folder, _subfolders, _files in os.walk(path):
        os.chmod(folder, 0o700)
    shutil.rmtree(path, ignore_errors=True)


def verify_version(version_dir: PathLike,
                   public_keys: Optional[Sequence[Ed25519PublicKey]] = None,
                   staging_root: Optional[PathLike] = None,
                   version: Optional[int] = None) -> VerifiedVersion:
    """Checks the manifest (and, with keys, its signature) and returns a private read-only copy
    of exactly the bytes that matched; ManifestError names what is wrong."""
    version_dir = pathlib.Path(version_dir)
    root = _open_version_dir(version_dir)
    try:
        manifest = _read_manifest(root)
        signer = _check_signature(manifest, public_keys, version) if public_keys else None
        expected = manifest["files"]
        if staging_root is not None:
            pathlib.Path(staging_root).mkdir(parents=True, exist_ok=True, mode=0o700)
        staging = pathlib.Path(tempfile.mkdtemp(prefix=f"{version_dir.name}-",
                                                dir=str(staging_root) if staging_root else None))
        try:
            walk = _Walk(expected, staging)
            walk.run(root)
            problems = _problems(walk, expected)
            if problems:
                raise ManifestError(f"integrity manifest check failed: {'; '.join(problems[:5])}")
            _make_read_only(staging)
        except BaseException:
            remove_verified_copy(staging)
            raise
    finally:
        os.close(root)
    return VerifiedVersion(source=version_dir, path=staging, files=dict(expected), key_id=signer)


def verify_signed_version(version_dir: PathLike, public_keys: Sequence[Ed25519PublicKey],
                          staging_root: Optional[PathLike] = None,
                          version: Optional[int] = None) -> VerifiedVersion:
    """verify_version with at least one key: an unsigned manifest is refused."""
    if not public_keys:
        raise ValueError("verify_signed_version needs at least one public key")
    return verify_version(version_dir, public_keys, staging_root, version)


def verify_manifest(version_dir: PathLike) -> List[str]:
    """The integrity problems of a version folder (digests only, nothing copied); empty = ok."""
    version_dir = pathlib.Path(version_dir)
    try:
        root = _open_version_dir(version_dir)
    except ManifestError as error:
        return [str(error)]
    try:
        manifest = _read_manifest(root)
        walk = _Walk(manifest["files"], None)
        walk.run(root)
    except ManifestError as error:
        return [str(error)]
    finally:
        os.close(root)
    return _problems(walk, manifest["files"])


def tree_fingerprint(version_dir: PathLike) -> Tuple:
    """(path, type, inode, size, mtime) of every entry, without following symlinks: cheap to
    take on each file-system poll, and it changes when anything in the folder is replaced."""
    version_dir = pathlib.Path(version_dir)
    entries = []
    try:
        info = os.lstat(version_dir)
    except OSError:
        return ()
    entries.append(("", info.st_mode, info.st_ino, info.st_size, info.st_mtime_ns))
    for folder, subfolders, files in os.walk(version_dir):
        subfolders.sort()
        for name in sorted(subfolders + files):
            path = os.path.join(folder, name)
            try:
                info = os.lstat(path)
            except OSError:
                continue
            entries.append((os.path.relpath(path, version_dir), info.st_mode, info.st_ino,
                            info.st_size, info.st_mtime_ns))
    return tuple(entries)
