"""ServingPusher component: TFX Pusher's spec and blessing rules, TF Serving's layout."""
from __future__ import annotations

from typing import Optional

from tfx import types
from tfx.components.pusher import component as tfx_pusher_component
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_artifacts, standard_component_specs
from tfx.utils import json_utils

from components.serving_pusher import executor


class ServingPusher(tfx_pusher_component.Pusher):
    """Pushes to <serving_base_dir>/<model_name>/<version>/ and updates models.config."""

    SPEC_CLASS = standard_component_specs.PusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, model: types.BaseChannel, model_blessing: types.BaseChannel,
                 model_name: str, serving_base_dir: str, models_config_path: str,
                 infra_blessing: Optional[types.BaseChannel] = None, num_versions: int = 2,
                 signing_key_path: Optional[str] = None, push_key: str = ""):
        """signing_key_path: the Ed25519 private key PEM that signs each pushed manifest
        (`python -m ml.serving.signing_keys keygen`); kept outside serving_base_dir.
        push_key: a push already published under this key is not repeated (retried jobs)."""
        custom_config = {executor.MODEL_NAME_KEY: model_name,
                         executor.SERVING_BASE_KEY: serving_base_dir,
                         executor.MODELS_CONFIG_KEY: models_config_path,
                         executor.NUM_VERSIONS_KEY: num_versions,
                         executor.SIGNING_KEY_KEY: signing_key_path,
                         executor.PUSH_KEY_KEY: push_key}
        spec = standard_component_specs.PusherSpec(
            model=model, model_blessing=model_blessing, infra_blessing=infra_blessing,
            push_destination=None,
            custom_config=json_utils.dumps(custom_config),
            pushed_model=types.Channel(type=standard_artifacts.PushedModel))
        super(tfx_pusher_component.Pusher, self).__init__(spec=spec)
