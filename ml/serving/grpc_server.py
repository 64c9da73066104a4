"""TF Serving's gRPC API (port 8500): PredictionService and ModelService.

The handlers are coroutines on one grpc.aio event loop. A batched Predict never leaves the loop
except for its batch (see InferenceService.predict_async); every other call runs its
synchronous body on a thread pool, as grpcio's threaded server would.
"""
import asyncio
import concurrent.futures
import functools
import logging
import threading
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
from ml.serving.tensor_codec import fill_tensor_proto, tensor_proto_to_array

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


async def _abort(context: grpc.aio.ServicerContext, error: ServingError):
    await context.abort(error.code, error.message)


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
                inputs = {alias: _tensor_to_array(alias, proto, spec.inputs[alias].dtype
                                                  if alias in spec.inputs else None)
                          for alias, proto in request.inputs.items()}
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
                 executor: concurrent.futures.Executor):
        self.service = service
        self._reload_config = reload_config
        self._executor = executor

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
        """Applies a new model_config_list; like TF Serving, a failure is a gRPC error too."""
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
    """A grpc.aio server on its own event-loop thread, started and stopped from other threads
    (the model server's lifecycle is threaded; the gRPC front end is not)."""

    def __init__(self, service: InferenceService, reload_config, host: str, port: int,
                 max_message_bytes: int, max_workers: int):
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="grpc")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="grpc-loop", daemon=True)
        self._thread.start()
        try:
            self._server, self.port = self._wait(self._create(
                service, reload_config, f"{host}:{port}", max_message_bytes, max_workers))
        except BaseException:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._executor.shutdown(wait=False)
            raise

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    def _wait(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    async def _create(self, service, reload_config, address: str, max_message_bytes: int,
                      max_workers: int):
        options = [("grpc.max_receive_message_length", max_message_bytes),
                   ("grpc.max_send_message_length", max_message_bytes),
                   ("grpc.so_reuseport", 0)]
        server = grpc.aio.server(options=options, maximum_concurrent_rpcs=max_workers * 4)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionServicer(service, self._executor), server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(
            ModelServicer(service, reload_config, self._executor), server)
        bound = server.add_insecure_port(address)
        if bound == 0:
            raise OSError(f"could not bind gRPC to {address}")
        return server, bound

    def start(self) -> None:
        self._wait(self._server.start())

    def stop(self, grace_seconds: float) -> threading.Event:
        """Refuses new RPCs and lets in-flight ones finish; the event is set once stopped."""
        stopped = threading.Event()
        if not self._thread.is_alive():
            stopped.set()
            return stopped

        def finished(_future) -> None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._executor.shutdown(wait=False)
            stopped.set()
        asyncio.run_coroutine_threadsafe(self._server.stop(grace_seconds),
                                         self._loop).add_done_callback(finished)
        return stopped


def build_grpc_server(service: InferenceService, reload_config, host: str, port: int,
                      max_message_bytes: int, max_workers: int = 64) -> tuple:
    """A started-later GrpcServer and the port it bound (port 0 picks a free one)."""
    server = GrpcServer(service, reload_config, host, port, max_message_bytes, max_workers)
    return server, server.port
