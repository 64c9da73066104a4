"""Which versions of a model should be served, following TF Serving's model_version_policy."""
from typing import Iterable, List

from tensorflow_serving.config import model_server_config_pb2


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
