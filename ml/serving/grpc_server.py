"""TF Serving's gRPC API (port 8500): PredictionService and ModelService.

The handlers are coroutines on the server's one event loop (shared with REST). A batched
Predict never leaves the loop except for its batch (see InferenceService.predict_async); its
input tensors are decoded on the loop only when the request is small, otherwise on the thread
pool, so a large request never stalls the others. Every other call runs its synchronous body
on the thread pool, as grpcio's threaded server would.
"""
import asyncio
import concurrent.futures
import functools
import ipaddress
import logging
from typing import Callable, Dict, Optional

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (classification_pb2, inference_pb2,
                                     model_management_pb2, model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc, regression_pb2)
from tensorflow_serving.config import model_server_config_pb2

from ml.serving import tensor_codec
from ml.serving.errors import ServingError, failed_precondition, invalid_argument
from ml.serving.event_loop import EventLoopThread
from ml.serving.examples import input_to_serialized_examples
from ml.serving.inference import InferenceService, ModelAddress
from ml.serving.responses import SIGNATURE_DEF_FIELD, model_metadata_response, model_status_response
from ml.serving.signatures import CLASSIFY_METHOD_NAME, DEFAULT_SIGNATURE, REGRESS_METHOD_NAME
from ml.serving.tensor_codec import fill_tensor_proto, tensor_proto_to_array

LOGGER = logging.getLogger(__name__)
# Requests up to this size have their tensors decoded on the event loop (a thread hand-off
# costs more than decoding them); larger ones on the thread pool.
INLINE_REQUEST_BYTES = 64 * 1024


def _address(model_spec) -> ModelAddress:
    if not model_spec.name:
        raise invalid_argument("ModelSpec has no name specified.")
    choice = model_spec.WhichOneof("version_choice")
    if choice == "version":
        return ModelAddress(model_spec.name, version=model_spec.version.value)
    if choice == "version_label":
        return ModelAddress(model_spec.name, label=model_spec.version_label)
    return ModelAddress(model_spec.name)


async def _abort(context: grpc.aio.ServicerContext, error: ServingError):
    await context.abort(error.code, error.message)


def _tensor_to_array(alias: str, proto, expected_dtype: Optional[int]) -> np.ndarray:
    if expected_dtype is not None and proto.dtype != expected_dtype:
        raise invalid_argument(
            f"Expects arg[{alias}] to be {tf.dtypes.as_dtype(expected_dtype).name} but "
            f"{tf.dtypes.as_dtype(proto.dtype).name if proto.dtype else 'invalid'} is provided")
    try:
        return tensor_proto_to_array(proto)
    except tensor_codec.TensorTooLarge as error:
        raise ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                           f"Input '{alias}' is too large: {error}") from error
    except (TypeError, ValueError, OverflowError, MemoryError) as error:
        raise invalid_argument(f"Input '{alias}' is not a valid TensorProto: {error}") from error


def _decode_inputs(request: predict_pb2.PredictRequest, spec) -> Dict[str, np.ndarray]:
    return {alias: _tensor_to_array(alias, proto, spec.inputs[alias].dtype
                                    if alias in spec.inputs else None)
            for alias, proto in request.inputs.items()}


def is_loopback_peer(peer: str) -> bool:
    """Whether a grpc peer string ("ipv4:127.0.0.1:5000", "ipv6:[::1]:5000", "unix:...") is
    this machine."""
    kind, _, address = peer.partition(":")
    if kind == "unix":
        return True
    if kind not in ("ipv4", "ipv6"):
        return False
    host = address.rsplit(":", 1)[0].strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict, Classify, Regress, MultiInference and GetModelMetadata."""

    def __init__(self, service: InferenceService, executor: concurrent.futures.Executor):
        self.service = service
        self._executor = executor

    async def _call(self, context, model_spec, api: str, body: Callable):
        """Runs the synchronous body(servable) on the thread pool; errors abort the RPC."""
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, functools.partial(self._observed, model_spec, api, body))
        except ServingError as error:
            await _abort(context, error)

    def _observed(self, model_spec, api: str, body: Callable):
        address = _address(model_spec)
        with self.service.observe(address, api, "GRPC") as observation:
            servable = self.service.manager.resolve(address.name, address.version, address.label)
            observation.version = servable.version
            return body(servable)

    async def Predict(self, request, context):  # noqa: N802 - gRPC naming
        try:
            address = _address(request.model_spec)
            with self.service.observe(address, "predict", "GRPC") as observation:
                servable = self.service.manager.resolve(address.name, address.version, address.label)
                observation.version = servable.version
                signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
                spec = servable.signature(signature_name)
                if request.ByteSize() > INLINE_REQUEST_BYTES:
                    inputs = await asyncio.get_running_loop().run_in_executor(
                        self._executor, _decode_inputs, request, spec)
                else:
                    inputs = _decode_inputs(request, spec)
                outputs = await self.service.predict_async(
                    servable, signature_name, inputs, request.output_filter, self._executor)
                response = predict_pb2.PredictResponse()
                self._fill_spec(response.model_spec, servable, signature_name)
                for alias, value in outputs.items():
                    fill_tensor_proto(response.outputs[alias], value, spec.outputs[alias].dtype)
                return response
        except ServingError as error:
            await _abort(context, error)

    async def Classify(self, request, context):  # noqa: N802 - gRPC naming
        def run(servable):
            signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
            serialized = input_to_serialized_examples(request.input)
            classes, scores = self.service.classify(servable, signature_name, serialized)
            response = classification_pb2.ClassificationResponse()
            self._fill_spec(response.model_spec, servable, signature_name)
            _fill_classifications(response.result, classes, scores, len(serialized))
            return response
        return await self._call(context, request.model_spec, "classify", run)

    async def Regress(self, request, context):  # noqa: N802 - gRPC naming
        def run(servable):
            signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
            values = self.service.regress(servable, signature_name,
                                          input_to_serialized_examples(request.input))
            response = regression_pb2.RegressionResponse()
            self._fill_spec(response.model_spec, servable, signature_name)
            for value in values:
                response.result.regressions.add(value=float(value))
            return response
        return await self._call(context, request.model_spec, "regress", run)

    async def MultiInference(self, request, context):  # noqa: N802 - gRPC naming
        if not request.tasks:
            await _abort(context, invalid_argument("MultiInferenceRequest has no tasks"))
        names = {task.model_spec.name for task in request.tasks}
        if len(names) != 1:
            await _abort(context, invalid_argument("All tasks of a MultiInference must use one model"))

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
        return await self._call(context, request.tasks[0].model_spec, "multi_inference", run)

    async def GetModelMetadata(self, request, context):  # noqa: N802 - gRPC naming
        def run(servable):
            unsupported = [field for field in request.metadata_field if field != SIGNATURE_DEF_FIELD]
            if not request.metadata_field or unsupported:
                raise invalid_argument(
                    f"Metadata field {unsupported[0] if unsupported else '(none)'} is not "
                    f"supported; request '{SIGNATURE_DEF_FIELD}'")
            return model_metadata_response(servable)
        return await self._call(context, request.model_spec, "metadata", run)

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
                 reload_config: Callable[[model_server_config_pb2.ModelServerConfig], list],
                 executor: concurrent.futures.Executor, allow_remote_reload: bool = False):
        self.service = service
        self._reload_config = reload_config
        self._executor = executor
        self._allow_remote_reload = allow_remote_reload

    async def GetModelStatus(self, request, context):  # noqa: N802 - gRPC naming
        try:
            address = _address(request.model_spec)
            statuses = await asyncio.get_running_loop().run_in_executor(
                self._executor, self.service.manager.status, address.name, address.version,
                address.label)
            return model_status_response(statuses)
        except ServingError as error:
            await _abort(context, error)

    async def HandleReloadConfigRequest(self, request, context):  # noqa: N802 - gRPC naming
        """Applies a new model_config_list; like TF Serving, a failure is a gRPC error too.

        The RPC can point the server at any base path, and ModelService has no authentication,
        so only clients on this machine may call it unless the server allows remote reloads."""
        if not self._allow_remote_reload and not is_loopback_peer(context.peer()):
            await _abort(context, ServingError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"HandleReloadConfigRequest is only accepted from loopback clients (this one "
                f"is {context.peer()}); start the server with --allow_remote_reload to accept "
                f"it from other hosts"))
        response = model_management_pb2.ReloadConfigResponse()
        try:
            problems = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._reload_config, request.config)
        except ServingError as error:
            await _abort(context, error)
        if problems:
            await _abort(context, failed_precondition("; ".join(problems)))
        response.status.error_code = grpc.StatusCode.OK.value[0]
        return response


class GrpcServer:
    """A grpc.aio server on the model server's event loop, started and stopped from other
    threads (the model server's lifecycle is threaded)."""

    def __init__(self, loop: EventLoopThread, service: InferenceService, reload_config,
                 host: str, port: int, max_message_bytes: int,
                 executor: concurrent.futures.Executor, max_concurrent_rpcs: int,
                 credentials: Optional[grpc.ServerCredentials] = None,
                 allow_remote_reload: bool = False):
        self._loop = loop
        self._server, self.port = loop.run(self._create(
            service, reload_config, f"{host}:{port}", max_message_bytes, executor,
            max_concurrent_rpcs, credentials, allow_remote_reload))

    @staticmethod
    async def _create(service, reload_config, address: str, max_message_bytes: int, executor,
                      max_concurrent_rpcs: int, credentials, allow_remote_reload: bool):
        options = [("grpc.max_receive_message_length", max_message_bytes),
                   ("grpc.max_send_message_length", max_message_bytes),
                   ("grpc.so_reuseport", 0)]
        server = grpc.aio.server(options=options, maximum_concurrent_rpcs=max_concurrent_rpcs)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionServicer(service, executor), server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(
            ModelServicer(service, reload_config, executor, allow_remote_reload), server)
        if credentials is not None:
            bound = server.add_secure_port(address, credentials)
        else:
            bound = server.add_insecure_port(address)
        if bound == 0:
            raise OSError(f"could not bind gRPC to {address}")
        return server, bound

    def start(self) -> None:
        self._loop.run(self._server.start())

    async def stop(self, grace_seconds: float) -> None:
        """Refuses new RPCs and lets in-flight ones finish (bounded by the grace)."""
        await self._server.stop(grace_seconds)
