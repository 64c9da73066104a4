"""Clients for TensorFlow Serving (the docker image or `etrm serve`; they cannot be told apart).

`TensorFlowServingClient` speaks REST (default, port 8501) or gRPC (port 8500): predict,
batch predict, classify, regress, model status and metadata, addressed by latest, version or
label; timeouts; connection reuse; retries with backoff on transient errors only.

`ETRMModelClient` wraps it for the ETRM models:

    client = ETRMModelClient(TensorFlowServingClient())
    result = client.predict_risk_score({'volume': 1000, 'price': 75.5})

The risk model's `feature_defaults` signature tells which raw features exist, their types
(from the model metadata) and their defaults (a predict on an empty tf.Example), so a client may
send only some features and is told which were filled in. The REST path imports no TensorFlow.
"""
import base64
import dataclasses
import json
import os
import random
import threading
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import requests

from ml.core.example_codec import encode_example, json_example_bytes
from ml.core.registry import REPORT_LM, RISK_MODEL
from ml.core.tls import ClientTls, PathLike

DEFAULT_HOST = "localhost"
DEFAULT_REST_PORT = 8501
DEFAULT_GRPC_PORT = 8500
RISK_MODEL_NAME = RISK_MODEL.serving_name
REPORT_LM_NAME = REPORT_LM.serving_name
FEATURE_DEFAULTS_SIGNATURE = "feature_defaults"
MODEL_VERSION_HEADER = "X-Model-Version"
_RETRYABLE_HTTP = {503}
_TYPE_OF_DTYPE = {"DT_FLOAT": "float", "DT_DOUBLE": "float", "DT_INT64": "int", "DT_INT32": "int",
                  "DT_STRING": "string"}


class TensorFlowServingError(RuntimeError):
    """The server answered with an error (or could not be reached after the retries)."""

    def __init__(self, message: str, code: str, http_status: Optional[int] = None):
        super().__init__(f"{code}: {message}")
        self.message = message
        self.code = code
        self.http_status = http_status


@dataclasses.dataclass
class Prediction:
    """Outputs of one Predict call and the model version that answered it."""
    outputs: Dict[str, np.ndarray]
    model_name: str
    model_version: Optional[int]
    signature_name: str


@dataclasses.dataclass
class InferenceResult:
    """Classify results [[(label, score), ...] per example] or Regress values, with the version."""
    results: list
    model_name: str
    model_version: Optional[int]


# ----------------------------------------------------------------------------------------------
# REST JSON <-> numpy

def _to_json(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return _to_json(value.tolist())
    if isinstance(value, (list, tuple)):
        return [_to_json(item) for item in value]
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, list):
        return [_from_json(item) for item in value]
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, str):
        return value.encode("utf-8")
    return value


def _as_array(value: Any) -> np.ndarray:
    converted = _from_json(value)
    array = np.asarray(converted)
    if array.dtype.kind in "SU":
        array = np.asarray(converted, dtype=object)
    return array


class TensorFlowServingClient:
    """REST or gRPC client for TF Serving's APIs, with retries on transient errors only."""

    def __init__(self, host: Optional[str] = None, rest_port: Optional[int] = None,
                 grpc_port: Optional[int] = None, protocol: str = "rest",
                 timeout_seconds: float = 10.0, max_retries: int = 3,
                 backoff_seconds: float = 0.1, max_backoff_seconds: float = 2.0,
                 ca_bundle: Optional[PathLike] = None, client_cert: Optional[PathLike] = None,
                 client_key: Optional[PathLike] = None):
        """Defaults: localhost:8501 (REST) and :8500 (gRPC), overridable by ETRM_SERVING_HOST,
        ETRM_SERVING_REST_PORT and ETRM_SERVING_GRPC_PORT for deployments and tests.

        TLS (a server started with --ssl_config_file): ca_bundle is the PEM file of the CA
        that signed the server's certificate; client_cert and client_key are the client's
        certificate and key when the server verifies clients (mutual TLS). Without any of them
        the client speaks plain HTTP and insecure gRPC, as before."""
        if protocol not in ("rest", "grpc"):
            raise ValueError(f"protocol must be 'rest' or 'grpc', got {protocol!r}")
        self.host = host or os.environ.get("ETRM_SERVING_HOST", DEFAULT_HOST)
        self.rest_port = int(rest_port or os.environ.get("ETRM_SERVING_REST_PORT", DEFAULT_REST_PORT))
        self.grpc_port = int(grpc_port or os.environ.get("ETRM_SERVING_GRPC_PORT", DEFAULT_GRPC_PORT))
        self.protocol = protocol
        self.timeout_seconds = timeout_seconds
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.tls = (ClientTls(ca_bundle, client_cert, client_key)
                    if ca_bundle or client_cert or client_key else None)
        self._session = requests.Session()
        # Per request, not on the session: requests lets REQUESTS_CA_BUNDLE override a
        # session's verify.
        self._tls_options = self.tls.requests_options() if self.tls is not None else {}
        self._grpc = None
        self._grpc_lock = threading.Lock()
        self._input_dtypes: Dict[Tuple, Dict[str, int]] = {}
        self._output_aliases: Dict[Tuple, List[str]] = {}

    @property
    def rest_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.rest_port}"

    def close(self) -> None:
        self._session.close()
        if self._grpc is not None:
            self._grpc["channel"].close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # -- retries ---------------------------------------------------------------------------

    def _with_retries(self, call):
        attempt = 0
        while True:
            try:
                return call()
            except _Transient as transient:
                attempt += 1
                if attempt > self.max_retries:
                    raise transient.error from None
                delay = min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (attempt - 1))
                time.sleep(delay * (0.5 + random.random() / 2))

    # -- REST ------------------------------------------------------------------------------

    @staticmethod
    def _model_path(model_name: str, version: Optional[int], label: Optional[str]) -> str:
        if version is not None and label:
            raise ValueError("address a model by version or by label, not both")
        path = f"/v1/models/{model_name}"
        if version is not None:
            path += f"/versions/{int(version)}"
        elif label:
            path += f"/labels/{label}"
        return path

    def _rest(self, method: str, path: str, body: Optional[dict] = None):
        def call():
            try:
                response = self._session.request(
                    method, self.rest_url + path, timeout=self.timeout_seconds,
                    data=None if body is None else json.dumps(body),
                    headers={"Content-Type": "application/json"} if body is not None else None,
                    **self._tls_options)
            except requests.exceptions.SSLError as error:
                raise TensorFlowServingError(f"TLS with {self.rest_url} failed (check the CA "
                                             f"bundle and client certificate): {error}",
                                             "UNAVAILABLE") from error
            except requests.ConnectionError as error:
                raise _Transient(TensorFlowServingError(
                    f"cannot reach {self.rest_url}: {error}", "UNAVAILABLE")) from error
            except requests.Timeout as error:
                raise TensorFlowServingError(f"{method} {path} timed out after "
                                             f"{self.timeout_seconds}s", "DEADLINE_EXCEEDED") from error
            if response.status_code != 200:
                try:
                    message = response.json().get("error", response.text)
                except ValueError:
                    message = response.text
                error = TensorFlowServingError(message, f"HTTP {response.status_code}",
                                               response.status_code)
                if response.status_code in _RETRYABLE_HTTP:
                    raise _Transient(error)
                raise error
            return response
        return self._with_retries(call)

    def _rest_version(self, response, model_name, version, label) -> Optional[int]:
        header = response.headers.get(MODEL_VERSION_HEADER)
        if header and header.isdigit():
            return int(header)
        if version is not None:
            return int(version)
        statuses = self.model_status(model_name, label=label)
        available = [entry["version"] for entry in statuses if entry["state"] == "AVAILABLE"]
        return max(available) if available else None

    # -- gRPC ------------------------------------------------------------------------------

    def _grpc_stubs(self):
        with self._grpc_lock:
            if self._grpc is None:
                import grpc
                from tensorflow_serving.apis import (model_service_pb2_grpc,
                                                     prediction_service_pb2_grpc)
                target = f"{self.host}:{self.grpc_port}"
                options = [("grpc.max_receive_message_length", 64 * 1024 * 1024),
                           ("grpc.max_send_message_length", 64 * 1024 * 1024)]
                if self.tls is not None:
                    channel = grpc.secure_channel(target, self.tls.grpc_channel_credentials(),
                                                  options=options)
                else:
                    channel = grpc.insecure_channel(target, options=options)
                self._grpc = {
                    "channel": channel, "grpc": grpc,
                    "prediction": prediction_service_pb2_grpc.PredictionServiceStub(channel),
                    "model": model_service_pb2_grpc.ModelServiceStub(channel)}
            return self._grpc

    def _rpc(self, service: str, method: str, request):
        stubs = self._grpc_stubs()
        grpc = stubs["grpc"]

        def call():
            try:
                return getattr(stubs[service], method)(request, timeout=self.timeout_seconds)
            except grpc.RpcError as error:
                wrapped = TensorFlowServingError(error.details() or str(error), error.code().name)
                if error.code() == grpc.StatusCode.UNAVAILABLE:
                    raise _Transient(wrapped) from None
                raise wrapped from None
        return self._with_retries(call)

    @staticmethod
    def _model_spec(spec, model_name, version, label, signature_name=None):
        if version is not None and label:
            raise ValueError("address a model by version or by label, not both")
        spec.name = model_name
        if version is not None:
            spec.version.value = int(version)
        elif label:
            spec.version_label = label
        if signature_name:
            spec.signature_name = signature_name

    def _grpc_input_dtypes(self, model_name, signature_name, version, label) -> Dict[str, int]:
        key = (model_name, signature_name, version, label)
        if key not in self._input_dtypes:
            metadata = self.model_metadata(model_name, version=version, label=label)
            signature = metadata["signature_def"].get(signature_name)
            if signature is None:
                raise TensorFlowServingError(f'Serving signature key "{signature_name}" not found.',
                                             "FAILED_PRECONDITION")
            from tensorflow.core.framework import types_pb2
            self._input_dtypes[key] = {alias: types_pb2.DataType.Value(spec["dtype"])
                                       for alias, spec in signature["inputs"].items()}
        return self._input_dtypes[key]

    def _sole_output(self, model_name, signature_name, version, label, output_filter) -> str:
        """TF Serving's REST answers a one-output call with the bare tensor: name it."""
        if output_filter and len(output_filter) == 1:
            return output_filter[0]
        key = (model_name, signature_name, version, label)
        if key not in self._output_aliases:
            metadata = self.model_metadata(model_name, version=version, label=label)
            self._output_aliases[key] = list(metadata["signature_def"][signature_name]["outputs"])
        return self._output_aliases[key][0]

    # -- public API ------------------------------------------------------------------------

    def predict(self, model_name: str, inputs: Mapping[str, Any],
                signature_name: str = "serving_default", version: Optional[int] = None,
                label: Optional[str] = None,
                output_filter: Optional[Sequence[str]] = None) -> Prediction:
        """Predict with columnar inputs {alias: value}; bytes values are sent as binary."""
        if self.protocol == "rest":
            path = self._model_path(model_name, version, label) + ":predict"
            body = {"signature_name": signature_name,
                    "inputs": {alias: _to_json(value) for alias, value in inputs.items()}}
            response = self._rest("POST", path, body)
            payload = response.json()["outputs"]
            if not isinstance(payload, dict) or set(payload) == {"b64"}:
                payload = {self._sole_output(model_name, signature_name, version, label,
                                             output_filter): payload}
            outputs = {alias: _as_array(value) for alias, value in payload.items()
                       if not output_filter or alias in output_filter}
            return Prediction(outputs, model_name,
                              self._rest_version(response, model_name, version, label),
                              signature_name)
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2
        dtypes = self._grpc_input_dtypes(model_name, signature_name, version, label)
        request = predict_pb2.PredictRequest()
        self._model_spec(request.model_spec, model_name, version, label, signature_name)
        for alias, value in inputs.items():
            request.inputs[alias].CopyFrom(tf.make_tensor_proto(value, dtype=dtypes.get(alias)))
        request.output_filter.extend(output_filter or [])
        response = self._rpc("prediction", "Predict", request)
        outputs = {alias: tf.make_ndarray(proto) for alias, proto in response.outputs.items()}
        return Prediction(outputs, model_name, response.model_spec.version.value, signature_name)

    def predict_batch(self, model_name: str, instances: Sequence[Mapping[str, Any]],
                      signature_name: str = "serving_default", version: Optional[int] = None,
                      label: Optional[str] = None) -> Prediction:
        """Many rows in one call (REST `instances`; one batched tensor per input over gRPC)."""
        if not instances:
            raise ValueError("predict_batch needs at least one instance")
        columns = {alias: [row[alias] for row in instances] for alias in instances[0]}
        if self.protocol == "grpc":
            return self.predict(model_name, columns, signature_name, version, label)
        path = self._model_path(model_name, version, label) + ":predict"
        body = {"signature_name": signature_name,
                "instances": [{alias: _to_json(value) for alias, value in row.items()}
                              for row in instances]}
        response = self._rest("POST", path, body)
        predictions = response.json()["predictions"]
        if predictions and isinstance(predictions[0], dict) and set(predictions[0]) != {"b64"}:
            outputs = {alias: _as_array([row[alias] for row in predictions])
                       for alias in predictions[0]}
        else:
            alias = self._sole_output(model_name, signature_name, version, label, None)
            outputs = {alias: _as_array(predictions)}
        return Prediction(outputs, model_name,
                          self._rest_version(response, model_name, version, label), signature_name)

    def _examples_call(self, verb: str, model_name, examples, context, signature_name, version,
                       label) -> InferenceResult:
        if self.protocol == "rest":
            body = {"signature_name": signature_name, "examples": list(examples)}
            if context:
                body["context"] = context
            response = self._rest("POST", self._model_path(model_name, version, label) + f":{verb}",
                                  body)
            results = response.json()["results"]
            if verb == "classify":
                results = [[(label_, score) for label_, score in row] for row in results]
            return InferenceResult(results, model_name,
                                   self._rest_version(response, model_name, version, label))
        from tensorflow_serving.apis import classification_pb2, regression_pb2
        input_proto = examples_input(examples, context)
        if verb == "classify":
            request = classification_pb2.ClassificationRequest(input=input_proto)
            self._model_spec(request.model_spec, model_name, version, label, signature_name)
            response = self._rpc("prediction", "Classify", request)
            results = [[(entry.label, entry.score) for entry in row.classes]
                       for row in response.result.classifications]
        else:
            request = regression_pb2.RegressionRequest(input=input_proto)
            self._model_spec(request.model_spec, model_name, version, label, signature_name)
            response = self._rpc("prediction", "Regress", request)
            results = [entry.value for entry in response.result.regressions]
        return InferenceResult(results, model_name, response.model_spec.version.value)

    def classify(self, model_name: str, examples: Sequence[Mapping[str, Any]],
                 context: Optional[Mapping[str, Any]] = None,
                 signature_name: str = "serving_default", version: Optional[int] = None,
                 label: Optional[str] = None) -> InferenceResult:
        """Classify JSON-style examples ({feature: value or list}); results are (label, score)."""
        return self._examples_call("classify", model_name, examples, context, signature_name,
                                   version, label)

    def regress(self, model_name: str, examples: Sequence[Mapping[str, Any]],
                context: Optional[Mapping[str, Any]] = None,
                signature_name: str = "serving_default", version: Optional[int] = None,
                label: Optional[str] = None) -> InferenceResult:
        return self._examples_call("regress", model_name, examples, context, signature_name,
                                   version, label)

    def model_status(self, model_name: str, version: Optional[int] = None,
                     label: Optional[str] = None) -> List[Dict[str, Any]]:
        """[{version, state, error_code, error_message}] as GetModelStatus reports them."""
        if self.protocol == "rest":
            payload = self._rest("GET", self._model_path(model_name, version, label)).json()
            return [{"version": int(entry["version"]), "state": entry["state"],
                     "error_code": entry.get("status", {}).get("error_code", "OK"),
                     "error_message": entry.get("status", {}).get("error_message", "")}
                    for entry in payload.get("model_version_status", [])]
        from tensorflow_serving.apis import get_model_status_pb2
        request = get_model_status_pb2.GetModelStatusRequest()
        self._model_spec(request.model_spec, model_name, version, label)
        response = self._rpc("model", "GetModelStatus", request)
        states = get_model_status_pb2.ModelVersionStatus.State
        codes = response.DESCRIPTOR.fields_by_name["model_version_status"].message_type \
            .fields_by_name["status"].message_type.fields_by_name["error_code"].enum_type
        return [{"version": entry.version, "state": states.Name(entry.state),
                 "error_code": codes.values_by_number[entry.status.error_code].name,
                 "error_message": entry.status.error_message}
                for entry in response.model_version_status]

    def model_metadata(self, model_name: str, version: Optional[int] = None,
                       label: Optional[str] = None) -> Dict[str, Any]:
        """{"model_version", "signature_def": {name: {method_name, inputs, outputs}}} where each
        tensor is {"dtype": "DT_FLOAT", "shape": [-1, ...] or None}."""
        if self.protocol == "rest":
            response = self._rest("GET", self._model_path(model_name, version, label) + "/metadata")
            payload = response.json()
            signatures = payload["metadata"]["signature_def"]["signature_def"]
            version_answered = int(payload["model_spec"]["version"])
        else:
            from tensorflow_serving.apis import get_model_metadata_pb2
            from google.protobuf import json_format
            request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
            self._model_spec(request.model_spec, model_name, version, label)
            response = self._rpc("prediction", "GetModelMetadata", request)
            signature_map = get_model_metadata_pb2.SignatureDefMap()
            response.metadata["signature_def"].Unpack(signature_map)
            signatures = json_format.MessageToDict(signature_map, preserving_proto_field_name=True,
                                                   including_default_value_fields=True)["signature_def"]
            version_answered = response.model_spec.version.value
        return {"model_version": version_answered,
                "signature_def": {name: _signature_summary(signature)
                                  for name, signature in signatures.items()}}

    def wait_until_available(self, model_name: str, timeout_seconds: float = 60.0,
                             version: Optional[int] = None, label: Optional[str] = None) -> int:
        """Polls the status until a version is AVAILABLE; returns it."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            try:
                statuses = self.model_status(model_name, version=version, label=label)
                available = [entry["version"] for entry in statuses if entry["state"] == "AVAILABLE"]
                if available:
                    return max(available)
            except TensorFlowServingError:
                if time.monotonic() > deadline:
                    raise
            if time.monotonic() > deadline:
                raise TensorFlowServingError(f"{model_name} not available after {timeout_seconds}s",
                                             "DEADLINE_EXCEEDED")
            time.sleep(0.2)


def examples_input(examples: Sequence[Mapping[str, Any]],
                   context: Optional[Mapping[str, Any]] = None):
    """The gRPC Input of JSON-style examples, encoded as the server decodes a REST body."""
    from tensorflow_serving.apis import input_pb2
    input_proto = input_pb2.Input()
    target = input_proto.example_list_with_context if context else input_proto.example_list
    if context:
        target.context.ParseFromString(json_example_bytes(context))
    for features in examples:
        target.examples.add().ParseFromString(json_example_bytes(features))
    return input_proto


class _Transient(Exception):
    """Internal: a failure worth retrying (connection refused, HTTP 503, UNAVAILABLE)."""

    def __init__(self, error: TensorFlowServingError):
        super().__init__(str(error))
        self.error = error


def _signature_summary(signature: Dict[str, Any]) -> Dict[str, Any]:
    def tensors(entries):
        summary = {}
        for alias, info in (entries or {}).items():
            shape = info.get("tensor_shape", {})
            dims = None if shape.get("unknown_rank") else [int(dim.get("size", -1))
                                                          for dim in shape.get("dim", [])]
            summary[alias] = {"dtype": info.get("dtype"), "shape": dims}
        return summary
    return {"method_name": signature.get("method_name", ""),
            "inputs": tensors(signature.get("inputs")),
            "outputs": tensors(signature.get("outputs"))}


# ----------------------------------------------------------------------------------------------
# ETRM models


@dataclasses.dataclass(frozen=True)
class FeatureInfo:
    """A raw feature the risk model accepts: its type (float, int, string) and default."""
    name: str
    type: str
    default: Any


@dataclasses.dataclass(frozen=True)
class ABSplit:
    """Sends `fraction_b` of the calls to label_b and the rest to label_a."""
    label_a: str = "stable"
    label_b: str = "canary"
    fraction_b: float = 0.1

    def __post_init__(self):
        if not 0.0 <= self.fraction_b <= 1.0:
            raise ValueError("fraction_b must be within [0, 1]")


class ETRMModelClient:
    """Risk scoring and report generation against the served ETRM models."""

    def __init__(self, serving_client: Optional[TensorFlowServingClient] = None,
                 risk_model_name: str = RISK_MODEL_NAME, report_model_name: str = REPORT_LM_NAME,
                 label: Optional[str] = None, version: Optional[int] = None,
                 ab_split: Optional[ABSplit] = None, seed: Optional[int] = None,
                 identifier_features: Sequence[str] = ()):
        """identifier_features: names in a trade sent as text beside the model's features
        (e.g. trade_id, trade_date), never checked against its schema: the model ignores them
        and the server's request log keeps them, so outcomes can be joined on them later."""
        if ab_split is not None and (label or version is not None):
            raise ValueError("use either an A/B split or a fixed label/version")
        self.client = serving_client or TensorFlowServingClient()
        self.risk_model_name = risk_model_name
        self.report_model_name = report_model_name
        self.label = label
        self.version = version
        self.ab_split = ab_split
        self.identifier_features = frozenset(identifier_features)
        self._random = random.Random(seed)
        self._schemas: Dict[Tuple, Optional[Dict[str, FeatureInfo]]] = {}
        self._lock = threading.Lock()

    def _target(self) -> Tuple[Optional[int], Optional[str]]:
        if self.ab_split is not None:
            with self._lock:
                use_b = self._random.random() < self.ab_split.fraction_b
            return None, self.ab_split.label_b if use_b else self.ab_split.label_a
        return self.version, self.label

    def feature_schema(self, version: Optional[int] = None,
                       label: Optional[str] = None) -> Optional[Dict[str, FeatureInfo]]:
        """Raw features of the addressed model version (None if it has no feature_defaults)."""
        key = (version, label)
        with self._lock:
            if key in self._schemas:
                return self._schemas[key]
        metadata = self.client.model_metadata(self.risk_model_name, version=version, label=label)
        signature = metadata["signature_def"].get(FEATURE_DEFAULTS_SIGNATURE)
        schema = None
        if signature is not None:
            defaults = self.client.predict(
                self.risk_model_name, {next(iter(signature["inputs"])): [b""]},
                signature_name=FEATURE_DEFAULTS_SIGNATURE, version=metadata["model_version"])
            schema = {}
            for name, info in signature["outputs"].items():
                kind = _TYPE_OF_DTYPE.get(info["dtype"], "string")
                value = np.asarray(defaults.outputs[name]).reshape(-1)[0]
                if kind == "string":
                    value = value.decode("utf-8") if isinstance(value, bytes) else str(value)
                else:
                    value = float(value) if kind == "float" else int(value)
                schema[name] = FeatureInfo(name, kind, value)
        with self._lock:
            self._schemas[key] = schema
        return schema

    def _encode_trade(self, features: Mapping[str, Any],
                      schema: Optional[Dict[str, FeatureInfo]]) -> Tuple[bytes, Dict[str, Any]]:
        if not isinstance(features, Mapping):
            raise ValueError(f"features must be a mapping of feature name to value, "
                             f"got {type(features).__name__}")
        typed = {}
        for name, value in features.items():
            if name in self.identifier_features:
                typed[name] = ("string", [str(value).encode("utf-8")])
                continue
            info = schema.get(name) if schema is not None else None
            if schema is not None and info is None:
                raise ValueError(f"unknown feature {name!r}: the model accepts "
                                 f"{', '.join(sorted(schema))}")
            kind = info.type if info else _guess_type(name, value)
            typed[name] = (kind, [_check_value(name, kind, value)])
        filled = {} if schema is None else {name: info.default for name, info in schema.items()
                                            if name not in features
                                            and name not in self.identifier_features}
        return encode_example(typed), filled

    def predict_risk_score(self, features: Mapping[str, Any]) -> Dict[str, Any]:
        """Scores one trade. Returns risk_score, risk_level, model_version, model_label and
        defaults_filled ({feature: default} for every feature the caller left out)."""
        return self.predict_risk_scores([features])[0]

    def predict_risk_scores(self, trades: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
        """Scores many trades in one batched call."""
        if not trades:
            return []
        version, label = self._target()
        schema = self.feature_schema(version=version, label=label)
        encoded = [self._encode_trade(trade, schema) for trade in trades]
        prediction = self.client.predict(
            self.risk_model_name, {"examples": [serialized for serialized, _ in encoded]},
            signature_name="serving_default", version=version, label=label)
        scores = np.asarray(prediction.outputs["risk_score"]).reshape(-1)
        levels = np.asarray(prediction.outputs["risk_level"]).reshape(-1)
        results = []
        for index, (_, filled) in enumerate(encoded):
            level = levels[index]
            results.append({
                "risk_score": float(scores[index]),
                "risk_level": level.decode("utf-8") if isinstance(level, bytes) else str(level),
                "model_name": self.risk_model_name,
                "model_version": prediction.model_version,
                "model_label": label,
                "defaults_filled": filled if schema is not None else None,
            })
        return results

    def generate_report(self, prompt: Optional[str] = None, max_new_tokens: Optional[int] = None,
                        temperature: Optional[float] = None, top_k: Optional[int] = None, *,
                        book: Optional[str] = None, date: Optional[str] = None,
                        home=None, checked: bool = True) -> str:
        """A risk report from the language model.

        With book and date: that book-day's risk record is looked up in the home's report
        pipeline history (`home`: a path or ml.core.home.Home, default $ETRM_HOME or .etrm) and
        the `summarize` signature writes its summary: every figure in it is the record's, and it
        is checked against the record before it is returned (redrafted if it fails; SummaryRejected
        when no draft passes; `checked=False` returns the first draft unchecked, to inspect the
        model). With a prompt instead: `generate` continues it, for exploration (figures are
        the model's own).
        Sampling defaults are the product's (ml.reports.generation).
        """
        from ml.reports import generation

        if (book is None) != (date is None):
            raise ValueError("give both book and date (or a prompt instead)")
        if book is not None and prompt is not None:
            raise ValueError("give either a prompt or a book and date, not both")
        version, label = self._target()

        def predict(signature: str):
            return lambda inputs: self.client.predict(
                self.report_model_name, inputs, signature_name=signature, version=version,
                label=label).outputs

        if book is None:
            inputs = generation.prompt_request(prompt, max_new_tokens, temperature, top_k)
            return generation.output_text(predict(generation.GENERATE_SIGNATURE)(inputs))
        from ml.core.home import Home
        from ml.reports.records import RiskRecordSource

        record = RiskRecordSource(home if isinstance(home, Home) else Home.resolve(home)
                                  ).record(book, date)
        summarize = predict(generation.SUMMARIZE_SIGNATURE)
        if not checked:
            return generation.unchecked_summary(summarize, record, max_new_tokens, temperature,
                                                top_k)
        return generation.checked_summary(summarize, record, max_new_tokens, temperature,
                                          top_k).text

    def score_text(self, text: str) -> Dict[str, Any]:
        """Log-likelihood and token count of a text under the language model."""
        version, label = self._target()
        prediction = self.client.predict(self.report_model_name, {"text": [text.encode("utf-8")]},
                                         signature_name="score", version=version, label=label)
        return {"log_likelihood": float(np.asarray(prediction.outputs["log_likelihood"]).reshape(-1)[0]),
                "num_tokens": int(np.asarray(prediction.outputs["num_tokens"]).reshape(-1)[0]),
                "model_version": prediction.model_version}


def _guess_type(name: str, value: Any) -> str:
    """Without a feature_defaults signature: numbers are floats, text is string."""
    if isinstance(value, (str, bytes)):
        return "string"
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return "float"
    raise ValueError(f"feature {name!r} has a value of unsupported type {type(value).__name__}")


def _check_value(name: str, kind: str, value: Any) -> Any:
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValueError(f"feature {name!r} must be a number, got {type(value).__name__} "
                             f"{value!r:.40}")
        return float(value)
    if kind == "int":
        if isinstance(value, (bool, np.bool_)):
            raise ValueError(f"feature {name!r} must be an integer, got a boolean")
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return int(value)
        if not isinstance(value, (int, np.integer)):
            raise ValueError(f"feature {name!r} must be an integer, got {type(value).__name__} "
                             f"{value!r:.40}")
        return int(value)
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise ValueError(f"feature {name!r} must be a string, got {type(value).__name__} "
                         f"{value!r:.40}")
    return value.encode("utf-8")
