"""Protocol-independent request handling shared by the REST and gRPC front ends.

Resolves the servable, checks inputs against the signature, runs through the batcher when it
is on, and records metrics and sampled request logs.
"""
import asyncio
import collections
import concurrent.futures
import dataclasses
import functools
import threading
import time
import weakref
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

import grpc
import numpy as np
import tensorflow as tf

from ml.serving.batching import BatchScheduler
from ml.serving.errors import ServingError, invalid_argument
from ml.serving.metrics import ServingMetrics
from ml.serving.model_manager import ModelManager
from ml.serving.request_log import RequestLogger
from ml.serving.servable import Servable, numpy_dtype
from ml.serving.signatures import (CLASSIFY_METHOD_NAME, DEFAULT_SIGNATURE, REGRESS_METHOD_NAME,
                                   SignatureSpec)


@dataclasses.dataclass(frozen=True)
class ModelAddress:
    """Which model a request is for: latest, a version or a label."""
    name: str
    version: Optional[int] = None
    label: Optional[str] = None


def _dtype_name(dtype_enum: int) -> str:
    return tf.dtypes.as_dtype(dtype_enum).name


def validate_inputs(spec: SignatureSpec, inputs: Mapping[str, np.ndarray]) -> Optional[int]:
    """Checks names, dtypes and shapes; returns the batch size of batch-major inputs."""
    sent, expected = set(inputs), set(spec.inputs)
    if sent != expected:
        raise invalid_argument(
            f"input size does not match signature: {len(sent)}!={len(expected)} "
            f"len({{{', '.join(sorted(sent))}}}) != len({{{', '.join(sorted(expected))}}}). "
            f"Sent extra: {{{', '.join(sorted(sent - expected))}}}. "
            f"Missing but required: {{{', '.join(sorted(expected - sent))}}}.")
    batch_sizes = set()
    for alias, value in inputs.items():
        tensor = spec.inputs[alias]
        want = numpy_dtype(tensor.dtype)
        if value.dtype != want and not (want == object and value.dtype.kind in "SO"):
            raise invalid_argument(f"Input '{alias}' expects {_dtype_name(tensor.dtype)} but got "
                                   f"values of type {value.dtype}")
        if tensor.shape is None:
            continue
        if value.ndim != len(tensor.shape) or any(
                dim >= 0 and dim != actual for dim, actual in zip(tensor.shape, value.shape)):
            raise invalid_argument(f"Input '{alias}' expects shape {list(tensor.shape)} "
                                   f"(-1 = any size) but got shape {list(value.shape)}")
        if tensor.batch_major:
            batch_sizes.add(value.shape[0])
    if len(batch_sizes) > 1:
        raise invalid_argument(f"Inputs have different batch sizes: {sorted(batch_sizes)}")
    return batch_sizes.pop() if batch_sizes else None


class InferenceService:
    """Predict, Classify, Regress and metadata over the model manager."""

    def __init__(self, manager: ModelManager, metrics: ServingMetrics,
                 batcher: Optional[BatchScheduler] = None,
                 request_logger: Optional[RequestLogger] = None):
        self.manager = manager
        self.metrics = metrics
        self.batcher = batcher
        self.request_logger = request_logger
        self._deliveries: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopDelivery]" = (
            weakref.WeakKeyDictionary())

    def observe(self, address: ModelAddress, api: str, entrypoint: str):
        """Context manager recording count and latency of one request."""
        return _Observation(self.metrics, address, api, entrypoint)

    def predict(self, servable: Servable, signature_name: str, inputs: Dict[str, np.ndarray],
                output_filter: Iterable[str] = ()) -> Dict[str, np.ndarray]:
        spec = servable.signature(signature_name or DEFAULT_SIGNATURE)
        return _select_outputs(self._run(servable, spec, inputs), output_filter)

    async def predict_async(self, servable: Servable, signature_name: str,
                            inputs: Dict[str, np.ndarray], output_filter: Iterable[str],
                            executor: concurrent.futures.Executor) -> Dict[str, np.ndarray]:
        """predict() for an asyncio front end.

        A batched request waits for its batch on the event loop, so no thread is parked and
        woken per request (the handoffs, not the model, limited batched gRPC throughput);
        anything else runs on `executor`, as it would on a threaded server.
        """
        spec = servable.signature(signature_name or DEFAULT_SIGNATURE)
        batch_size = validate_inputs(spec, inputs)
        loop = asyncio.get_running_loop()
        if not self._batches(spec, batch_size):
            outputs = await loop.run_in_executor(executor, functools.partial(
                self._run_validated, servable, spec, inputs, batch_size))
            return _select_outputs(outputs, output_filter)
        delivery = self._deliveries.get(loop)
        if delivery is None:
            delivery = self._deliveries[loop] = _LoopDelivery(loop)
        future = loop.create_future()
        self.batcher.enqueue(self._batch_key(servable, spec), self._batch_runner(servable, spec),
                             inputs, batch_size, functools.partial(delivery.deliver, future))
        outputs = await future
        self._log(servable, spec, inputs, outputs)
        return _select_outputs(outputs, output_filter)

    def classify(self, servable: Servable, signature_name: str, serialized: List[bytes]
                 ) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
        """(classes [N, K] bytes or None, scores [N, K] float or None)."""
        spec = self._method_signature(servable, signature_name, CLASSIFY_METHOD_NAME,
                                      "classification")
        outputs = self._run(servable, spec, {self._sole_input(spec): np.array(serialized, dtype=object)})
        classes, scores = outputs.get("classes"), outputs.get("scores")
        if classes is None and scores is None:
            raise invalid_argument("classification signature has neither 'classes' nor 'scores'")
        for name, value in (("classes", classes), ("scores", scores)):
            if value is not None and (value.ndim != 2 or value.shape[0] != len(serialized)):
                raise invalid_argument(f"Expected output tensor '{name}' of shape [batch_size, "
                                       f"num_classes], got {list(value.shape)}")
        return classes, scores

    def regress(self, servable: Servable, signature_name: str, serialized: List[bytes]) -> np.ndarray:
        """Regression values, one float per example."""
        spec = self._method_signature(servable, signature_name, REGRESS_METHOD_NAME, "regression")
        outputs = self._run(servable, spec, {self._sole_input(spec): np.array(serialized, dtype=object)})
        if "outputs" not in outputs:
            raise invalid_argument("regression signature has no 'outputs' tensor")
        values = outputs["outputs"]
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if values.ndim != 1 or values.shape[0] != len(serialized):
            raise invalid_argument(f"Expected output tensor 'outputs' of shape [batch_size] or "
                                   f"[batch_size, 1], got {list(values.shape)}")
        return values.astype(np.float32)

    @staticmethod
    def _method_signature(servable: Servable, signature_name: str, method: str,
                          kind: str) -> SignatureSpec:
        spec = servable.signature(signature_name or DEFAULT_SIGNATURE)
        if spec.method_name != method:
            raise invalid_argument(f"Expected {kind} signature method_name to be {method}. "
                                   f"Was: {spec.method_name}")
        return spec

    @staticmethod
    def _sole_input(spec: SignatureSpec) -> str:
        if len(spec.inputs) != 1:
            raise invalid_argument(f"Expected one input tensor in signature {spec.name}, "
                                   f"found {len(spec.inputs)}")
        return next(iter(spec.inputs))

    def _run(self, servable: Servable, spec: SignatureSpec,
             inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        return self._run_validated(servable, spec, inputs, validate_inputs(spec, inputs))

    def _run_validated(self, servable: Servable, spec: SignatureSpec,
                       inputs: Dict[str, np.ndarray], batch_size: Optional[int]
                       ) -> Dict[str, np.ndarray]:
        if self._batches(spec, batch_size):
            outputs = self.batcher.submit(self._batch_key(servable, spec),
                                          self._batch_runner(servable, spec), inputs, batch_size)
        else:
            outputs = servable.run(spec.name, inputs)
        self._log(servable, spec, inputs, outputs)
        return outputs

    def _batches(self, spec: SignatureSpec, batch_size: Optional[int]) -> bool:
        return bool(self.batcher is not None and spec.batchable and batch_size
                    and batch_size <= self.batcher.options.max_batch_size)

    @staticmethod
    def _batch_key(servable: Servable, spec: SignatureSpec) -> tuple:
        return (servable.model_name, servable.version, spec.name)

    @staticmethod
    def _batch_runner(servable: Servable, spec: SignatureSpec):
        return lambda merged: servable.run(spec.name, merged)

    def _log(self, servable: Servable, spec: SignatureSpec, inputs: Dict[str, np.ndarray],
             outputs: Dict[str, np.ndarray]) -> None:
        if self.request_logger is not None:
            self.request_logger.maybe_log(servable.model_name, servable.version, spec.name,
                                          inputs, outputs)


def _select_outputs(outputs: Dict[str, np.ndarray], output_filter: Iterable[str]
                    ) -> Dict[str, np.ndarray]:
    wanted = list(output_filter)
    if not wanted:
        return outputs
    unknown = [alias for alias in wanted if alias not in outputs]
    if unknown:
        raise invalid_argument(f"output tensor alias not found in signature: {unknown[0]}")
    return {alias: outputs[alias] for alias in wanted}


class _LoopDelivery:
    """Hands finished batched requests back to an event loop with one wake-up per batch rather
    than one per request (each wake-up is a syscall and a loop iteration)."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self._lock = threading.Lock()
        self._finished: collections.deque = collections.deque()
        self._drain_scheduled = False

    def deliver(self, future: asyncio.Future, outputs, error) -> None:
        """Called from a batch thread, once per request of the batch."""
        with self._lock:
            self._finished.append((future, outputs, error))
            if self._drain_scheduled:
                return
            self._drain_scheduled = True
        self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._lock:
            finished, self._finished = self._finished, collections.deque()
            self._drain_scheduled = False
        for future, outputs, error in finished:
            if future.done():  # the RPC was cancelled while its batch ran
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(outputs)


class _Observation:
    """Times a request and counts it by status; the version is filled in once resolved."""

    def __init__(self, metrics: ServingMetrics, address: ModelAddress, api: str, entrypoint: str):
        self._metrics = metrics
        self._address = address
        self._api = api
        self._entrypoint = entrypoint
        self.version: Optional[int] = None

    def __enter__(self):
        self._started = time.perf_counter()
        return self

    def __exit__(self, exc_type, exc, traceback):
        if exc is None:
            status = "OK"
        elif isinstance(exc, ServingError):
            status = exc.code.name
        else:
            status = grpc.StatusCode.INTERNAL.name
        self._metrics.record_request(self._address.name, self.version, self._api,
                                     self._entrypoint, status, time.perf_counter() - self._started)
        return False
