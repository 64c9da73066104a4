"""Runs a freshly loaded version once before it serves, so no client pays for first calls.

Uses `assets.extra/tf_serving_warmup_requests` (TFRecord of PredictionLog, TF Serving's warmup
format) when the version has it; a failing recorded request fails the load, as in TF Serving.
Otherwise each signature runs once on a synthesized sample (an empty tf.Example for string
inputs, ones for numbers); a model that rejects such a sample is still served, with a warning.
"""
import logging
import pathlib

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from ml.serving.errors import ServingError
from ml.serving.examples import input_to_serialized_examples
from ml.serving.servable import Servable, numpy_dtype
from ml.serving.signatures import DEFAULT_SIGNATURE, SignatureSpec

LOGGER = logging.getLogger(__name__)
WARMUP_FILE = pathlib.Path("assets.extra") / "tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000


def sample_inputs(spec: SignatureSpec) -> dict:
    """One-row inputs matching the signature's dtypes and shapes."""
    inputs = {}
    for alias, tensor in spec.inputs.items():
        shape = () if tensor.shape is None else tuple(1 if dim < 0 else dim for dim in tensor.shape)
        dtype = numpy_dtype(tensor.dtype)
        if dtype == object:
            inputs[alias] = np.full(shape, b"", dtype=object)
        else:
            inputs[alias] = np.ones(shape, dtype=dtype)
    return inputs


def _single_input(servable: Servable, signature_name: str, serialized: list) -> None:
    spec = servable.signature(signature_name or DEFAULT_SIGNATURE)
    alias = next(iter(spec.inputs))
    servable.run(spec.name, {alias: np.array(serialized, dtype=object)})


def _replay(servable: Servable, record: prediction_log_pb2.PredictionLog) -> None:
    kind = record.WhichOneof("log_type")
    if kind == "predict_log":
        request = record.predict_log.request
        inputs = {alias: tf.make_ndarray(proto) for alias, proto in request.inputs.items()}
        servable.run(request.model_spec.signature_name or DEFAULT_SIGNATURE, inputs)
    elif kind == "classify_log":
        request = record.classify_log.request
        _single_input(servable, request.model_spec.signature_name,
                      input_to_serialized_examples(request.input))
    elif kind == "regress_log":
        request = record.regress_log.request
        _single_input(servable, request.model_spec.signature_name,
                      input_to_serialized_examples(request.input))
    elif kind == "multi_inference_log":
        request = record.multi_inference_log.request
        serialized = input_to_serialized_examples(request.input)
        for task in request.tasks:
            _single_input(servable, task.model_spec.signature_name, serialized)
    else:
        raise ValueError(f"unsupported warmup record type {kind!r}")


def warm_up(servable: Servable) -> int:
    """Warms the servable up; returns how many requests ran. Raises on a bad warmup file."""
    warmup_path = servable.path / WARMUP_FILE
    if warmup_path.exists():
        count = 0
        for raw in tf.data.TFRecordDataset(str(warmup_path)).take(MAX_WARMUP_RECORDS):
            _replay(servable, prediction_log_pb2.PredictionLog.FromString(raw.numpy()))
            count += 1
        return count
    count = 0
    for name, spec in servable.signatures.items():
        try:
            servable.run(name, sample_inputs(spec))
            count += 1
        except ServingError as error:
            LOGGER.warning("warmup of %s version %d signature %s on a synthesized sample failed: %s",
                           servable.model_name, servable.version, name, error.message)
    return count
