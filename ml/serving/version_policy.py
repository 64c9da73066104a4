"""Which versions of a model should be served, following TF Serving's model_version_policy."""
import os
import pathlib
from typing import Iterable, List, Union

from tensorflow_serving.config import model_server_config_pb2


def list_version_dirs(base_path: Union[str, os.PathLike]) -> List[int]:
    """Integer-named subdirectories of base_path, ascending (TF Serving's version discovery)."""
    base = pathlib.Path(base_path)
    if not base.is_dir():
        return []
    versions = []
    for entry in base.iterdir():
        if entry.is_dir() and entry.name.isdigit():
            versions.append(int(entry.name))
    return sorted(versions)


def aspired_versions(model_config: model_server_config_pb2.ModelConfig,
                     versions_on_disk: Iterable[int]) -> List[int]:
    """Versions the policy wants served: latest N (default 1), all, or specific ones present."""
    on_disk = sorted(set(versions_on_disk))
    policy = model_config.model_version_policy
    choice = policy.WhichOneof("policy_choice")
    if choice == "all":
        return on_disk
    if choice == "specific":
        wanted = set(policy.specific.versions)
        return [version for version in on_disk if version in wanted]
    num_versions = policy.latest.num_versions if choice == "latest" else 0
    num_versions = max(1, num_versions)
    return on_disk[-num_versions:]
