"""ServingPusher executor: pushes only blessed models, as the next integer version."""
from __future__ import annotations

from typing import Any, Dict, List

from absl import logging
from tfx import types
from tfx.components.pusher import executor as tfx_pusher_executor
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import json_utils

from components.serving_pusher import versions

MODEL_NAME_KEY = "model_name"
MODELS_CONFIG_KEY = "models_config_path"
SERVING_BASE_KEY = "serving_base_dir"
NUM_VERSIONS_KEY = "num_versions"
SIGNING_KEY_KEY = "signing_key_path"
PUSH_KEY_KEY = "push_key"


class Executor(tfx_pusher_executor.Executor):
    """TFX Pusher semantics (both blessings checked) with TF Serving's layout and config."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            model_push.set_string_custom_property("not_pushed_reason", "candidate was not blessed")
            self._MarkNotPushed(model_push)
            return
        config = json_utils.loads(exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY) or "{}")
        model_name = config[MODEL_NAME_KEY]
        target = versions.push_model(
            self.GetModelPath(input_dict), config[SERVING_BASE_KEY], model_name,
            config[MODELS_CONFIG_KEY], num_versions=int(config.get(NUM_VERSIONS_KEY, 2)),
            signing_key=config.get(SIGNING_KEY_KEY) or None,
            push_key=config.get(PUSH_KEY_KEY) or "")
        version = int(target.name)
        logging.info("Pushed %s version %d to %s", model_name, version, target)
        model_push.set_string_custom_property("pushed_destination", str(target))
        model_push.set_string_custom_property("models_config", str(config[MODELS_CONFIG_KEY]))
        # The model's name and source URI let an artifact query (Kubeflow's stable-model
        # resolver) find the Model a serving version came from without reading executions.
        model_push.set_string_custom_property("model_name", model_name)
        model_push.set_string_custom_property(
            "model_uri", artifact_utils.get_single_instance(
                input_dict[standard_component_specs.MODEL_KEY]).uri)
        if config.get(PUSH_KEY_KEY):
            model_push.set_string_custom_property("push_key", config[PUSH_KEY_KEY])
        self._MarkPushed(model_push, pushed_destination=str(target), pushed_version=str(version))
