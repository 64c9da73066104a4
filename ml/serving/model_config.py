"""Reads and edits `models.config` (TF Serving's model_config_list text format).

The Pusher calls `admit_pushed_version` before the new version folder appears and
`register_pushed_version` after; `promote` moves a label. All keep TF Serving's rule that a
label may only point at a version the policy serves, which `check_model_server_config` enforces
on the server side.
"""
import contextlib
import os
import pathlib
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Union

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from ml.core.atomic_files import atomic_write_text
from ml.core.model_names import check_model_name
from ml.core.serving_layout import list_version_dirs
from ml.serving.version_policy import aspired_versions

CANARY_LABEL = "canary"
STABLE_LABEL = "stable"
PathLike = Union[str, os.PathLike]


class ModelConfigError(ValueError):
    """A models.config the server refuses; the message names the model, label and version.

    `labels_only`: every problem is a label on a version that cannot become available, which
    TF Serving answers with FAILED_PRECONDITION (the rest is INVALID_ARGUMENT)."""

    def __init__(self, message: str, labels_only: bool = False):
        super().__init__(message)
        self.labels_only = labels_only


def parse_model_server_config(text: str) -> model_server_config_pb2.ModelServerConfig:
    """Parses a models.config text; raises text_format.ParseError on a malformed file."""
    return text_format.Parse(text, model_server_config_pb2.ModelServerConfig())


def read_model_server_config(config_path: PathLike) -> model_server_config_pb2.ModelServerConfig:
    """Reads models.config; a missing file is an empty model_config_list."""
    path = pathlib.Path(config_path)
    if not path.exists():
        config = model_server_config_pb2.ModelServerConfig()
        config.model_config_list.SetInParent()
        return config
    return parse_model_server_config(path.read_text(encoding="utf-8"))


def write_model_server_config(config_path: PathLike,
                              config: model_server_config_pb2.ModelServerConfig) -> pathlib.Path:
    """Writes models.config atomically so a polling server never reads half a file."""
    return atomic_write_text(config_path, text_format.MessageToString(config))


def find_model_config(config: model_server_config_pb2.ModelServerConfig,
                      model_name: str) -> model_server_config_pb2.ModelConfig:
    """Returns the ModelConfig named model_name; KeyError if the config does not list it."""
    for model in config.model_config_list.config:
        if model.name == model_name:
            return model
    raise KeyError(f"model {model_name!r} is not in the model config")


def version_labels(config_path: PathLike, model_name: str) -> Dict[str, int]:
    """Each label of the model in models.config and its version (empty when not configured)."""
    try:
        model = find_model_config(read_model_server_config(config_path), model_name)
    except KeyError:
        return {}
    return {label: int(version) for label, version in model.version_labels.items()}


def served_versions(model: model_server_config_pb2.ModelConfig) -> list:
    """Versions this model's policy serves, given the version directories under its base_path."""
    return aspired_versions(model, list_version_dirs(model.base_path))


def policy_text(model: model_server_config_pb2.ModelConfig) -> str:
    """The model_version_policy as it reads in models.config, for messages."""
    policy = model.model_version_policy
    choice = policy.WhichOneof("policy_choice")
    if choice == "specific":
        return f"specific {{versions: {sorted(policy.specific.versions)}}}"
    if choice == "all":
        return "all {}"
    return f"latest {{num_versions: {max(1, policy.latest.num_versions)}}}"


def label_problems(model: model_server_config_pb2.ModelConfig,
                   versions_on_disk: Iterable[int]) -> List[str]:
    """Labels that point outside the model's own version policy (a version it would never
    load: not in `specific`, or older than what `latest N` serves), each naming the model,
    the label and the version."""
    on_disk = sorted(set(versions_on_disk))
    policy = model.model_version_policy
    choice = policy.WhichOneof("policy_choice")
    served = aspired_versions(model, on_disk)
    problems = []
    for label, version in sorted(model.version_labels.items()):
        if not label:
            problems.append(f"model {model.name!r}: a version label has an empty name")
        elif choice == "specific":
            if version not in policy.specific.versions:
                problems.append(f"model {model.name!r}: label {label!r} points at version "
                                f"{version}, which is not currently available and outside its "
                                f"version policy {policy_text(model)}")
        elif choice != "all" and served and version < served[0]:
            # Newer versions on disk push it out of latest N; a newer, not yet pushed version
            # may still enter it, so that label only waits.
            problems.append(f"model {model.name!r}: label {label!r} points at version {version}, "
                            f"which is not currently available and outside its version policy "
                            f"{policy_text(model)}, which serves versions {served} of the "
                            f"versions on disk {on_disk}")
    return problems


def check_model_server_config(config: model_server_config_pb2.ModelServerConfig,
                              versions_on_disk: Callable[[model_server_config_pb2.ModelConfig],
                                                         Iterable[int]]) -> None:
    """Refuses a config the server could not serve as written (ModelConfigError naming the
    model and the problem): a server keeps its current config rather than apply half of it."""
    choice = config.WhichOneof("config")
    if choice not in (None, "model_config_list"):
        raise ModelConfigError(f"only model_config_list is supported, not {choice}")
    problems, label_issues, seen = [], [], set()
    for model in config.model_config_list.config:
        try:
            check_model_name(model.name, "model name in the model config")
        except ValueError as error:
            problems.append(str(error))
            continue
        if model.name in seen:
            problems.append(f"model {model.name!r} is listed twice in the model config")
        seen.add(model.name)
        if not model.base_path:
            problems.append(f"model {model.name!r} has no base_path")
            continue
        if model.model_platform not in ("", "tensorflow"):
            problems.append(f"model {model.name!r}: platform {model.model_platform!r} is not "
                            f"served (only tensorflow)")
        label_issues.extend(label_problems(model, versions_on_disk(model)))
    if problems or label_issues:
        raise ModelConfigError("model config refused: " + "; ".join(problems + label_issues),
                               labels_only=not problems)


def _set_push_policy(model: model_server_config_pb2.ModelConfig, on_disk: List[int],
                     num_versions: int) -> None:
    """The policy after a push: latest N while it covers every labelled version, else
    specific{the labelled versions} (and the recent ones a specific policy already kept)."""
    labelled = set(model.version_labels.values())
    choice = model.model_version_policy.WhichOneof("policy_choice")
    if choice == "specific":
        kept = set(model.model_version_policy.specific.versions) & set(on_disk)
        recent = set(on_disk[-num_versions:])
        model.model_version_policy.specific.ClearField("versions")
        model.model_version_policy.specific.versions.extend(sorted(kept & recent | labelled))
    elif choice != "all":
        latest = model.model_version_policy.latest.num_versions or num_versions
        if not labelled <= set(on_disk[-latest:]):
            model.model_version_policy.specific.versions.extend(sorted(labelled))
        else:
            model.model_version_policy.latest.num_versions = latest


def _pushed_model(config: model_server_config_pb2.ModelServerConfig, model_name: str,
                  base_path: PathLike, version: int, num_versions: int
                  ) -> model_server_config_pb2.ModelConfig:
    """Edits config in place to the state after the push: labels moved, policy adjusted."""
    try:
        model = find_model_config(config, model_name)
    except KeyError:
        model = config.model_config_list.config.add()
        model.name = model_name
        model.model_platform = "tensorflow"
        model.model_version_policy.latest.num_versions = num_versions
    model.base_path = str(base_path)
    if STABLE_LABEL not in model.version_labels:
        model.version_labels[STABLE_LABEL] = version
    model.version_labels[CANARY_LABEL] = version
    _set_push_policy(model, sorted(set(list_version_dirs(base_path)) | {version}), num_versions)
    return model


def admit_pushed_version(config_path: PathLike, model_name: str, base_path: PathLike,
                         version: int, num_versions: int = 2
                         ) -> model_server_config_pb2.ModelConfig:
    """Step one of a push, written BEFORE the version folder appears: the policy serves the new
    version and everything served now, and no label moves. Returns the model's entry for step
    two (`complete_pushed_version`, once the folder is in place), computed from the config as
    it was before the push.

    A server that sees the folder first (file-system poll) or this config first (config poll)
    loads the new version without unloading anything a label points at; step two moves
    `canary`. This is TF Serving's two-step rule: load both, then move the label.
    """
    version = int(version)
    check_model_name(model_name)
    config = read_model_server_config(config_path)
    after = model_server_config_pb2.ModelServerConfig()
    after.CopyFrom(config)
    final = model_server_config_pb2.ModelConfig()
    final.CopyFrom(_pushed_model(after, model_name, base_path, version, num_versions))
    on_disk_before = list_version_dirs(base_path)
    on_disk_after = sorted(set(on_disk_before) | {version})
    try:
        model = find_model_config(config, model_name)
    except KeyError:
        model = config.model_config_list.config.add()
        model.CopyFrom(final)
        model.ClearField("version_labels")
        write_model_server_config(config_path, config)
        return final
    model.base_path = str(base_path)
    labelled = set(model.version_labels.values())
    if model.model_version_policy != final.model_version_policy \
            or not labelled <= set(aspired_versions(model, on_disk_after)):
        served = (set(aspired_versions(model, on_disk_before)) | labelled
                  | set(aspired_versions(final, on_disk_after)))
        model.model_version_policy.specific.ClearField("versions")
        model.model_version_policy.specific.versions.extend(sorted(served))
    write_model_server_config(config_path, config)
    return final


def complete_pushed_version(config_path: PathLike, final: model_server_config_pb2.ModelConfig
                            ) -> model_server_config_pb2.ModelServerConfig:
    """Step two of a push: writes the entry `admit_pushed_version` returned (labels moved,
    policy trimmed); other models' entries are kept as they are now."""
    config = read_model_server_config(config_path)
    try:
        find_model_config(config, final.name).CopyFrom(final)
    except KeyError:
        config.model_config_list.config.add().CopyFrom(final)
    write_model_server_config(config_path, config)
    return config


@contextlib.contextmanager
def config_write_lock(config_path: PathLike, timeout: float = 60.0) -> Iterator[None]:
    """An exclusive lock (a sibling `.lock` file, across threads and processes) that every
    read-modify-write of models.config holds: a push, a promotion, a rollback."""
    import portalocker

    path = pathlib.Path(config_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = portalocker.Lock(str(path.with_name(path.name + ".lock")), mode="a", timeout=timeout,
                            check_interval=0.02,
                            flags=portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING)
    with lock:
        yield


def register_pushed_version(config_path: PathLike, model_name: str, base_path: PathLike,
                            version: int, num_versions: int = 2
                            ) -> model_server_config_pb2.ModelServerConfig:
    """Records a pushed version in one write, once its folder is in place: `canary` -> it,
    `stable` kept (or set on the first push).

    Adds the model (policy latest{num_versions}) if missing. When latest N would unload the
    version `stable` points at, the policy becomes specific{labelled versions}, so every label
    keeps pointing at a served version.
    """
    version = int(version)
    check_model_name(model_name)
    config = read_model_server_config(config_path)
    _pushed_model(config, model_name, base_path, version, num_versions)
    write_model_server_config(config_path, config)
    return config


def promote(config_path: PathLike, model_name: str, label: str, version: int
            ) -> model_server_config_pb2.ModelServerConfig:
    """Moves `label` to `version`; refuses a version the model's policy does not serve.

    This is the second of TF Serving's two steps: the version must already be in the policy
    (step one), and the server applies the label once that version is loaded.
    """
    version = int(version)
    config = read_model_server_config(config_path)
    model = find_model_config(config, model_name)
    serving = served_versions(model)
    if version not in serving:
        raise ValueError(
            f"cannot point label {label!r} of {model_name!r} at version {version}: the policy "
            f"serves versions {serving}; add the version to the policy first")
    model.version_labels[label] = version
    write_model_server_config(config_path, config)
    return config


def admit_version(config_path: PathLike, model_name: str, version: int,
                  versions_on_disk: Optional[Iterable[int]] = None) -> bool:
    """Step one for a version already on disk that the policy no longer serves (a rollback
    target trimmed by later pushes): the policy becomes specific{what it serves now, every
    labelled version, this one}; no label moves. False when the policy serves it already.

    `versions_on_disk` defaults to the folders under the model's base_path (pass them when
    base_path is a docker mount that this machine reads elsewhere).
    """
    version = int(version)
    config = read_model_server_config(config_path)
    model = find_model_config(config, model_name)
    on_disk = sorted(set(versions_on_disk if versions_on_disk is not None
                         else list_version_dirs(model.base_path)))
    if version not in on_disk:
        raise ValueError(f"cannot admit version {version} of {model_name!r}: it is not on disk "
                         f"(versions on disk: {on_disk})")
    served = aspired_versions(model, on_disk)
    if version in served:
        return False
    kept = set(served) | set(model.version_labels.values()) | {version}
    model.model_version_policy.specific.ClearField("versions")
    model.model_version_policy.specific.versions.extend(sorted(kept))
    write_model_server_config(config_path, config)
    return True
