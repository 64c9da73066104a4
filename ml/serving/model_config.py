"""Reads and edits `models.config` (TF Serving's model_config_list text format).

The Pusher calls `register_pushed_version` after copying a version; `promote` moves a label.
Both keep TF Serving's rule that a label may only point at a version the policy serves.
"""
import os
import pathlib
from typing import Union

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from ml.core.atomic_files import atomic_write_text
from ml.core.serving_layout import list_version_dirs
from ml.serving.version_policy import aspired_versions

CANARY_LABEL = "canary"
STABLE_LABEL = "stable"
PathLike = Union[str, os.PathLike]


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


def served_versions(model: model_server_config_pb2.ModelConfig) -> list:
    """Versions this model's policy serves, given the version directories under its base_path."""
    return aspired_versions(model, list_version_dirs(model.base_path))


def register_pushed_version(config_path: PathLike, model_name: str, base_path: PathLike,
                            version: int, num_versions: int = 2
                            ) -> model_server_config_pb2.ModelServerConfig:
    """Records a freshly pushed version: `canary` -> it, `stable` kept (or set on first push).

    Adds the model (policy latest{num_versions}) if missing. When latest N would unload the
    version `stable` points at, the policy becomes specific{labelled versions}, so every label
    keeps pointing at a served version.
    """
    version = int(version)
    config = read_model_server_config(config_path)
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
    on_disk = sorted(set(list_version_dirs(base_path)) | {version})
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
