"""TF Serving's gRPC API (port 8500): PredictionService and ModelService."""
import concurrent.futures
import logging
from typing import Callable, Optional

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (classification_pb2, inference_pb2,
                                     model_management_pb2, model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc, regression_pb2)
from tensorflow_serving.config import model_server_config_pb2

from ml.serving.errors import ServingError, failed_precondition, invalid_argument
from ml.serving.examples import input_to_serialized_examples
from ml.serving.inference import InferenceService, ModelAddress
from ml.serving.responses import SIGNATURE_DEF_FIELD, model_metadata_response, model_status_response
from ml.serving.signatures import CLASSIFY_METHOD_NAME, DEFAULT_SIGNATURE, REGRESS_METHOD_NAME
from ml.serving.tensor_codec import array_to_tensor_proto, tensor_proto_to_array

LOGGER = logging.getLogger(__name__)


def _address(model_spec) -> ModelAddress:
    if not model_spec.name:
        raise invalid_argument("ModelSpec has no name specified.")
    choice = model_spec.WhichOneof("version_choice")
    if choice == "version":
        return ModelAddress(model_spec.name, version=model_spec.version.value)
    if choice == "version_label":
        return ModelAddress(model_spec.name, label=model_spec.version_label)
    return ModelAddress(model_spec.name)


def _abort(context: grpc.ServicerContext, error: ServingError):
    context.abort(error.code, error.message)


def _tensor_to_array(alias: str, proto, expected_dtype: Optional[int]) -> np.ndarray:
    if expected_dtype is not None and proto.dtype != expected_dtype:
        raise invalid_argument(
            f"Expects arg[{alias}] to be {tf.dtypes.as_dtype(expected_dtype).name} but "
            f"{tf.dtypes.as_dtype(proto.dtype).name if proto.dtype else 'invalid'} is provided")
    try:
        return tensor_proto_to_array(proto)
    except (TypeError, ValueError) as error:
        raise invalid_argument(f"Input '{alias}' is not a valid TensorProto: {error}") from error


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict, Classify, Regress, MultiInference and GetModelMetadata."""

    def __init__(self, service: InferenceService):
        self.service = service

    def _call(self, context, model_spec, api: str, body: Callable):
        try:
            address = _address(model_spec)
            with self.service.observe(address, api, "GRPC") as observation:
                servable = self.service.manager.resolve(address.name, address.version, address.label)
                observation.version = servable.version
                return body(servable)
        except ServingError as error:
            _abort(context, error)

    def Predict(self, request, context):  # noqa: N802 - gRPC naming
        def run(servable):
            signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
            spec = servable.signature(signature_name)
            inputs = {alias: _tensor_to_array(alias, proto, spec.inputs[alias].dtype
                                              if alias in spec.inputs else None)
                      for alias, proto in request.inputs.items()}
            outputs = self.service.predict(servable, signature_name, inputs, request.output_filter)
            response = predict_pb2.PredictResponse()
            self._fill_spec(response.model_spec, servable, signature_name)
            for alias, value in outputs.items():
                response.outputs[alias].CopyFrom(array_to_tensor_proto(
                    value, spec.outputs[alias].dtype))
            return response
        return self._call(context, request.model_spec, "predict", run)

    def Classify(self, request, context):  # noqa: N802 - gRPC naming
        def run(servable):
            signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
            serialized = input_to_serialized_examples(request.input)
            classes, scores = self.service.classify(servable, signature_name, serialized)
            response = classification_pb2.ClassificationResponse()
            self._fill_spec(response.model_spec, servable, signature_name)
            _fill_classifications(response.result, classes, scores, len(serialized))
            return response
        return self._call(context, request.model_spec, "classify", run)

    def Regress(self, request, context):  # noqa: N802 - gRPC naming
        def run(servable):
            signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
            values = self.service.regress(servable, signature_name,
                                          input_to_serialized_examples(request.input))
            response = regression_pb2.RegressionResponse()
            self._fill_spec(response.model_spec, servable, signature_name)
            for value in values:
                response.result.regressions.add(value=float(value))
            return response
        return self._call(context, request.model_spec, "regress", run)

    def MultiInference(self, request, context):  # noqa: N802 - gRPC naming
        if not request.tasks:
            _abort(context, invalid_argument("MultiInferenceRequest has no tasks"))
        names = {task.model_spec.name for task in request.tasks}
        if len(names) != 1:
            _abort(context, invalid_argument("All tasks of a MultiInference must use one model"))

        def run(servable):
            serialized = input_to_serialized_examples(request.input)
            response = inference_pb2.MultiInferenceResponse()
            for task in request.tasks:
                signature_name = task.model_spec.signature_name or DEFAULT_SIGNATURE
                result = response.results.add()
                self._fill_spec(result.model_spec, servable, signature_name)
                if task.method_name == CLASSIFY_METHOD_NAME:
                    classes, scores = self.service.classify(servable, signature_name, serialized)
                    _fill_classifications(result.classification_result, classes, scores,
                                          len(serialized))
                elif task.method_name == REGRESS_METHOD_NAME:
                    for value in self.service.regress(servable, signature_name, serialized):
                        result.regression_result.regressions.add(value=float(value))
                else:
                    raise invalid_argument(f"Unsupported signature method_name: {task.method_name}")
            return response
        return self._call(context, request.tasks[0].model_spec, "multi_inference", run)

    def GetModelMetadata(self, request, context):  # noqa: N802 - gRPC naming
        def run(servable):
            unsupported = [field for field in request.metadata_field if field != SIGNATURE_DEF_FIELD]
            if not request.metadata_field or unsupported:
                raise invalid_argument(
                    f"Metadata field {unsupported[0] if unsupported else '(none)'} is not "
                    f"supported; request '{SIGNATURE_DEF_FIELD}'")
            return model_metadata_response(servable)
        return self._call(context, request.model_spec, "metadata", run)

    @staticmethod
    def _fill_spec(model_spec, servable, signature_name: str) -> None:
        model_spec.name = servable.model_name
        model_spec.version.value = servable.version
        model_spec.signature_name = signature_name


def _fill_classifications(result, classes, scores, rows: int) -> None:
    width = (classes if classes is not None else scores).shape[1]
    for row in range(rows):
        classifications = result.classifications.add()
        for column in range(width):
            entry = classifications.classes.add()
            if classes is not None:
                entry.label = classes[row, column].decode("utf-8", "replace")
            if scores is not None:
                entry.score = float(scores[row, column])


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus and HandleReloadConfigRequest."""

    def __init__(self, service: InferenceService,
                 reload_config: Callable[[model_server_config_pb2.ModelServerConfig], list]):
        self.service = service
        self._reload_config = reload_config

    def GetModelStatus(self, request, context):  # noqa: N802 - gRPC naming
        try:
            address = _address(request.model_spec)
            return model_status_response(
                self.service.manager.status(address.name, address.version, address.label))
        except ServingError as error:
            _abort(context, error)

    def HandleReloadConfigRequest(self, request, context):  # noqa: N802 - gRPC naming
        """Applies a new model_config_list; like TF Serving, a failure is a gRPC error too."""
        response = model_management_pb2.ReloadConfigResponse()
        try:
            problems = self._reload_config(request.config)
        except ServingError as error:
            _abort(context, error)
        if problems:
            _abort(context, failed_precondition("; ".join(problems)))
        response.status.error_code = grpc.StatusCode.OK.value[0]
        return response


def build_grpc_server(service: InferenceService, reload_config, host: str, port: int,
                      max_message_bytes: int, max_workers: int = 64) -> tuple:
    """A started-later grpc.Server and the port it bound (port 0 picks a free one)."""
    options = [("grpc.max_receive_message_length", max_message_bytes),
               ("grpc.max_send_message_length", max_message_bytes),
               ("grpc.so_reuseport", 0)]
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(
        max_workers=max_workers, thread_name_prefix="grpc"), options=options,
        maximum_concurrent_rpcs=max_workers * 4)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(service), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(
        ModelServicer(service, reload_config), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"could not bind gRPC to {host}:{port}")
    return server, bound

