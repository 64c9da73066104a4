"""CanaryValidator: the pre-push serving check of a blessed candidate in a local model server.

Placed between Evaluator and Pusher; its id (and `canary_result.json`) are kept because ML
Metadata node ids and the run summary name them, but it has nothing to do with the `canary`
version label of models.config. TFX's InfraValidator needs Docker to start TF Serving;
this starts the project's TF-Serving-compatible server in its own process, sends requests built
from the eval split over REST and gRPC, and writes an InfraBlessing in InfraValidator's format,
so TFX's Pusher logic accepts or refuses the push on it.
"""
import json
import os

from absl import logging
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import path_utils

BLESSED_KEY = "blessed"
RESULT_FILE = "canary_result.json"


@component
def CanaryValidator(model: InputArtifact[standard_artifacts.Model],
                    model_blessing: InputArtifact[standard_artifacts.ModelBlessing],
                    examples: InputArtifact[standard_artifacts.Examples],
                    blessing: OutputArtifact[standard_artifacts.InfraBlessing],
                    model_name: Parameter[str],
                    num_requests: Parameter[int] = 50,
                    latency_budget_ms: Parameter[float] = 250.0,
                    label_features: Parameter[str] = "high_risk,high_risk_probability",
                    eval_split: Parameter[str] = "eval",
                    ssl_config_file: Parameter[str] = "", ca_bundle: Parameter[str] = "",
                    client_cert: Parameter[str] = "", client_key: Parameter[str] = "") -> None:
    """Blesses the candidate only if every request of the serving check succeeds within the
    latency budget. The TLS parameters (empty: plain) serve the check over TLS as production
    does: the server's SSLConfig file and the client's CA bundle and certificate/key."""
    from components.canary_validator.requests import eval_request_examples
    from components.canary_validator.serving_check import run_serving_check

    if not model_blessing.get_int_custom_property(BLESSED_KEY):
        result = {"blessed": False, "reason": "the Evaluator did not bless the candidate; not served"}
    else:
        requests = eval_request_examples(artifact_utils.get_split_uri([examples], eval_split),
                                         num_requests, [f for f in label_features.split(",") if f])
        result = run_serving_check(path_utils.serving_model_path(model.uri), model_name,
                                   requests, latency_budget_ms,
                                   ssl_config_file=ssl_config_file or None,
                                   ca_bundle=ca_bundle or None, client_cert=client_cert or None,
                                   client_key=client_key or None)
    os.makedirs(blessing.uri, exist_ok=True)
    with open(os.path.join(blessing.uri, RESULT_FILE), "w") as handle:
        json.dump(result, handle, indent=2, default=str)
    marker = "INFRA_BLESSED" if result["blessed"] else "INFRA_NOT_BLESSED"
    open(os.path.join(blessing.uri, marker), "w").close()
    blessing.set_int_custom_property(BLESSED_KEY, int(result["blessed"]))
    for key in ("latency_p50_ms", "latency_p99_ms"):
        if result.get(key) is not None:
            blessing.set_float_custom_property(key, float(result[key]))
    if result.get("reason"):
        blessing.set_string_custom_property("reason", str(result["reason"]))
    logging.info("Serving check of %s: %s", model_name, result.get("reason") or "blessed")
