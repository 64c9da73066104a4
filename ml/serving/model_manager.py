"""Model store and loader: which versions are loaded, their states, and label resolution.

Mirrors TF Serving's aspired-versions manager: versions wanted by the policy are loaded in the
background (manifest check, load, warmup) and only then served. Labels only ever point at
available versions: a label whose new target is not available yet stays where it was and moves
as soon as the target is. A version leaves memory only when the policy no longer wants it, no
label points at it, and a wanted version is available, so a label move, a push or a rollback
under traffic loses no request (TF Serving's availability-preserving transition).

Versions are checked against their manifest (signed, when the server has public keys) and
loaded from a private verified copy; a refused version is retried when its folder changes.
"""
import concurrent.futures
import dataclasses
import functools
import logging
import pathlib
import tempfile
import threading
import weakref
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import grpc
from tensorflow_serving.config import model_server_config_pb2

from ml.core.home import Home
from ml.serving.errors import ServingError, not_found, unavailable
from ml.serving.manifest import (ManifestError, remove_verified_copy, tree_fingerprint,
                                 verify_version)
from ml.serving.model_config import ModelConfigError, check_model_server_config
from ml.serving.servable import Servable
from ml.core.serving_layout import list_version_dirs
from ml.serving.version_policy import aspired_versions
from ml.serving.warmup import warm_up

LOGGER = logging.getLogger(__name__)

START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"


@dataclasses.dataclass
class VersionStatus:
    """What GetModelStatus reports for one version."""
    version: int
    state: str
    error_code: grpc.StatusCode = grpc.StatusCode.OK
    error_message: str = ""


@dataclasses.dataclass
class _Version:
    version: int
    path: pathlib.Path
    state: str = START
    servable: Optional[Servable] = None
    error: Optional[ServingError] = None
    fingerprint: Tuple = ()


@dataclasses.dataclass
class _Model:
    config: model_server_config_pb2.ModelConfig
    base_path: pathlib.Path
    versions: Dict[int, _Version] = dataclasses.field(default_factory=dict)
    labels: Dict[str, int] = dataclasses.field(default_factory=dict)


_UNSIGNED_WARNING = threading.Event()


def load_version(model_name: str, version: int, path: pathlib.Path,
                 public_keys: Optional[Sequence] = None,
                 staging_root: Optional[pathlib.Path] = None) -> Servable:
    """Verifies the manifest (and its signature, given keys) while copying the version into a
    private read-only folder, then loads and warms up that copy: what is served is exactly
    what was verified. The copy is removed once nothing holds the servable."""
    try:
        verified = verify_version(path, public_keys, staging_root, version)
    except ManifestError as error:
        raise ServingError(grpc.StatusCode.DATA_LOSS,
                           f"Refused version {version} of model {model_name}: {error}") from error
    try:
        servable = Servable(model_name, version, verified.path)
        warm_up(servable)
    except BaseException:
        remove_verified_copy(verified.path)
        raise
    weakref.finalize(servable, remove_verified_copy, verified.path)
    return servable


class ModelManager:
    """Holds every configured model's versions and answers which servable serves a request."""

    def __init__(self, home: pathlib.Path, load_threads: int = 1,
                 on_unload: Optional[Callable[[str, int], None]] = None,
                 loader: Optional[Callable[[str, int, pathlib.Path], Servable]] = None,
                 public_keys: Optional[Sequence] = None,
                 staging_dir: Optional[pathlib.Path] = None):
        """public_keys: Ed25519 keys (manifest.load_public_keys) every version must be signed
        with; None serves digest-only manifests, as before, with a warning. staging_dir: where
        verified copies are made (default: a private temporary folder removed on close)."""
        self._home = Home(pathlib.Path(home))
        self._on_unload = on_unload
        self._own_staging = staging_dir is None
        self._staging = pathlib.Path(staging_dir or tempfile.mkdtemp(prefix="etrm-verified-"))
        if loader is None:
            loader = functools.partial(load_version, public_keys=list(public_keys or []) or None,
                                       staging_root=self._staging)
            if not public_keys and not _UNSIGNED_WARNING.is_set():
                _UNSIGNED_WARNING.set()
                LOGGER.warning("no model signing public key configured: versions are checked "
                               "against their digest manifest only, and unsigned versions are "
                               "served (set --model_signing_public_key_file)")
        self._loader = loader
        self._models: Dict[str, _Model] = {}
        self._desired_labels: Dict[str, Dict[str, int]] = {}
        self._lock = threading.RLock()
        self._loads_done = threading.Condition(self._lock)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=load_threads, thread_name_prefix="model-loader")
        self._closed = False

    def apply_config(self, config: model_server_config_pb2.ModelServerConfig,
                     wait_seconds: float = 300.0) -> List[str]:
        """Applies a model_config_list; returns label assignments that could not be made yet.

        Models no longer listed are unloaded; new models are waited for (bounded), so their
        labels can be applied; labels of existing models need their target available now (else
        they move when it is). A config the server cannot serve as written (a label outside its
        model's policy, no base_path, a duplicate or invalid name) is refused whole with
        INVALID_ARGUMENT (FAILED_PRECONDITION when only labels are wrong, as TF Serving answers
        a label on a version it cannot serve), and the current config keeps serving.
        """
        try:
            check_model_server_config(config, lambda model: list_version_dirs(
                self._home.local_base_path(model.base_path)))
        except ModelConfigError as error:
            code = (grpc.StatusCode.FAILED_PRECONDITION if error.labels_only
                    else grpc.StatusCode.INVALID_ARGUMENT)
            raise ServingError(code, f"{error}; the current config keeps serving") from error
        new_configs = {model.name: model for model in config.model_config_list.config}
        with self._lock:
            for name in [name for name in self._models if name not in new_configs]:
                LOGGER.info("model %s removed from the config: unloading it", name)
                for version in self._models[name].versions.values():
                    self._unload(name, version)
                del self._models[name]
                self._desired_labels.pop(name, None)
            added = []
            for name, model_config in new_configs.items():
                base_path = self._home.local_base_path(model_config.base_path)
                model = self._models.get(name)
                if model is None:
                    model = self._models[name] = _Model(config=model_config, base_path=base_path)
                    added.append(name)
                else:
                    model.config, model.base_path = model_config, base_path
                self._desired_labels[name] = dict(model_config.version_labels)
                self._sync(name)
            if added:
                self._wait_for_loads(added, wait_seconds)
            return [problem for name in new_configs for problem in self._apply_labels(name)]

    def poll_filesystem(self) -> None:
        """Picks up new or removed version directories of every model.

        This poll, not a re-read of models.config, is what a push relies on: with the config
        poll off (TF Serving's default, models.config read at start and on reload RPCs) the
        new version still loads, and labels keep their versions loaded, so nothing a label
        serves disappears until the Pusher's config is read and moves it."""
        with self._lock:
            for name in list(self._models):
                self._sync(name)

    def wait_until_idle(self, timeout: float) -> bool:
        """Waits until no version is loading; True when that happened within timeout."""
        with self._lock:
            return self._wait_for_loads(list(self._models), timeout)

    def model_names(self) -> List[str]:
        with self._lock:
            return sorted(self._models)

    def resolve(self, model_name: str, version: Optional[int] = None,
                label: Optional[str] = None) -> Servable:
        """The servable for a request addressed by latest, version or label."""
        with self._lock:
            model = self._models.get(model_name)
            if model is None:
                raise not_found(f"Servable not found for request: Latest({model_name})")
            if label:
                if label not in model.labels:
                    raise not_found(f"Unrecognized servable version label: {label} "
                                    f"(model {model_name} has labels {sorted(model.labels)})")
                version = model.labels[label]
            if version is not None:
                entry = model.versions.get(version)
                if entry is not None and entry.state == AVAILABLE:
                    return entry.servable
                if entry is not None and entry.state in (START, LOADING):
                    raise unavailable(f"Servable {model_name} version {version} is still loading")
                raise not_found(f"Servable not found for request: Specific({model_name}, {version})")
            available = [entry for entry in model.versions.values() if entry.state == AVAILABLE]
            if available:
                return max(available, key=lambda entry: entry.version).servable
            if any(entry.state in (START, LOADING) for entry in model.versions.values()):
                raise unavailable(f"Model {model_name} is loading; no version is available yet")
            refused = [entry for entry in model.versions.values() if entry.error is not None]
            detail = f": {refused[-1].error.message}" if refused else ""
            raise not_found(f"Servable not found for request: Latest({model_name}){detail}")

    def status(self, model_name: str, version: Optional[int] = None,
               label: Optional[str] = None) -> List[VersionStatus]:
        """Version states like GetModelStatus: one version when addressed, else all known."""
        with self._lock:
            model = self._models.get(model_name)
            if model is None:
                raise not_found(f"Could not find any versions of model {model_name}")
            if label:
                if label not in model.labels:
                    raise not_found(f"Unrecognized servable version label: {label}")
                version = model.labels[label]
            entries = sorted(model.versions.values(), key=lambda entry: entry.version)
            if version is not None:
                entries = [entry for entry in entries if entry.version == version]
                if not entries:
                    raise not_found(f"Could not find version {version} of model {model_name}")
            return [VersionStatus(version=entry.version, state=entry.state,
                                  error_code=entry.error.code if entry.error else grpc.StatusCode.OK,
                                  error_message=entry.error.message if entry.error else "")
                    for entry in entries]

    def labels(self, model_name: str) -> Dict[str, int]:
        with self._lock:
            model = self._models.get(model_name)
            return dict(model.labels) if model else {}

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self._own_staging:
            remove_verified_copy(self._staging)

    def _wait_for_loads(self, names: List[str], timeout: float) -> bool:
        def loading() -> bool:
            return any(entry.state in (START, LOADING) for name in names if name in self._models
                       for entry in self._models[name].versions.values())
        return self._loads_done.wait_for(lambda: not loading(), timeout=timeout)

    def _sync(self, name: str) -> None:
        """Starts loads of wanted versions (and retries of refused ones whose folder changed),
        moves labels whose target is available, then unloads what nothing needs any more."""
        model = self._models[name]
        wanted = set(aspired_versions(model.config, list_version_dirs(model.base_path)))
        for version in sorted(wanted):
            entry = model.versions.get(version)
            if entry is None or (entry.state == END and (
                    entry.error is None or tree_fingerprint(entry.path) != entry.fingerprint)):
                if entry is not None and entry.error is not None:
                    LOGGER.info("version %d of model %s changed since it was refused: retrying",
                                version, name)
                entry = model.versions[version] = _Version(version, model.base_path / str(version))
                self._schedule_load(name, entry)
        self._apply_labels(name)
        labelled = set(model.labels.values())
        wanted_available = any(entry.state == AVAILABLE and version in wanted
                               for version, entry in model.versions.items())
        for version, entry in model.versions.items():
            if entry.state == AVAILABLE and version not in wanted and version not in labelled \
                    and wanted_available:
                self._unload(name, entry)

    def _schedule_load(self, name: str, entry: _Version) -> None:
        if self._closed:
            return
        entry.state = LOADING
        LOGGER.info("loading version %d of model %s from %s", entry.version, name, entry.path)
        self._executor.submit(self._load, name, entry)

    def _load(self, name: str, entry: _Version) -> None:
        servable, error = None, None
        # Taken before the check, so a change made during it also triggers a retry.
        entry.fingerprint = tree_fingerprint(entry.path)
        try:
            servable = self._loader(name, entry.version, entry.path)
        except ServingError as serving_error:
            error = serving_error
        except Exception as load_error:  # noqa: BLE001 - any load failure must become a status
            error = ServingError(grpc.StatusCode.UNKNOWN,
                                 f"Failed to load version {entry.version} of model {name}: "
                                 f"{type(load_error).__name__}: {load_error}")
        with self._lock:
            if error is not None:
                entry.state, entry.error = END, error
                LOGGER.error("%s", error.message)
            else:
                entry.state, entry.servable = AVAILABLE, servable
                LOGGER.info("version %d of model %s is available", entry.version, name)
            if name in self._models and self._models[name].versions.get(entry.version) is entry:
                self._sync(name)
                if error is not None:
                    for problem in self._apply_labels(name):
                        LOGGER.warning("%s", problem)
            self._loads_done.notify_all()

    def _unload(self, name: str, entry: _Version) -> None:
        entry.state = UNLOADING
        entry.servable = None
        entry.state = END
        LOGGER.info("unloaded version %d of model %s", entry.version, name)
        if self._on_unload is not None:
            self._on_unload(name, entry.version)

    def _apply_labels(self, name: str) -> List[str]:
        """Points each desired label at its version once available; returns what had to wait.

        A label whose target is not available stays on its current version (which it keeps
        loaded); a label is never left on a version that is not served.
        """
        model = self._models[name]
        desired = self._desired_labels.get(name, {})
        for label in [label for label in model.labels if label not in desired]:
            del model.labels[label]
        problems = []
        for label, version in desired.items():
            entry = model.versions.get(version)
            if entry is not None and entry.state == AVAILABLE:
                if model.labels.get(label) != version:
                    LOGGER.info("label %s of model %s now points at version %d", label, name, version)
                model.labels[label] = version
                continue
            current = model.labels.get(label)
            if current is not None and model.versions.get(current) is not None \
                    and model.versions[current].state != AVAILABLE:
                LOGGER.error("label %s of model %s pointed at version %d, which is no longer "
                             "served: label removed", label, name, current)
                del model.labels[label]
                current = None
            if current == version:
                continue
            refused = (f" (version {version} was refused: {entry.error.message})"
                       if entry is not None and entry.error is not None else "")
            kept = (f"; label {label} stays on version {current}" if current is not None
                    else f"; label {label} is set once it is")
            problems.append(
                f"Request to assign label {label} to version {version} of model {name}, which "
                f"is not currently available. Label assignment may only be made to available "
                f"model versions{refused}{kept}")
        return problems
