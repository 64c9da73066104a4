"""TF Serving's BatchingParameters and MonitoringConfig messages, and readers for their files.

tensorflow-serving-api does not ship these two protos, so they are declared here field for
field (same package, names and numbers as tensorflow_serving/servables/tensorflow/
session_bundle_config.proto and tensorflow_serving/config/monitoring_config.proto), in a private
descriptor pool so they can never clash with a later tensorflow-serving-api.
"""
import os
import pathlib
from typing import Union

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
from google.protobuf import wrappers_pb2

_PACKAGE = "tensorflow.serving"
_FieldProto = descriptor_pb2.FieldDescriptorProto


def _field(message, name, number, field_type, type_name=None, repeated=False):
    field = message.field.add(name=name, number=number, type=field_type)
    field.label = _FieldProto.LABEL_REPEATED if repeated else _FieldProto.LABEL_OPTIONAL
    if type_name:
        field.type_name = type_name


def _build_pool() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)

    batching = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/servables/tensorflow/batching_parameters.proto",
        package=_PACKAGE, syntax="proto3", dependency=[wrappers.name])
    params = batching.message_type.add(name="BatchingParameters")
    int64_value = ".google.protobuf.Int64Value"
    _field(params, "max_batch_size", 1, _FieldProto.TYPE_MESSAGE, int64_value)
    _field(params, "batch_timeout_micros", 2, _FieldProto.TYPE_MESSAGE, int64_value)
    _field(params, "max_enqueued_batches", 3, _FieldProto.TYPE_MESSAGE, int64_value)
    _field(params, "num_batch_threads", 4, _FieldProto.TYPE_MESSAGE, int64_value)
    _field(params, "thread_pool_name", 5, _FieldProto.TYPE_MESSAGE, ".google.protobuf.StringValue")
    _field(params, "allowed_batch_sizes", 6, _FieldProto.TYPE_INT64, repeated=True)
    _field(params, "pad_variable_length_inputs", 7, _FieldProto.TYPE_BOOL)
    pool.Add(batching)

    monitoring = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/config/monitoring_config.proto",
        package=_PACKAGE, syntax="proto3")
    prometheus = monitoring.message_type.add(name="PrometheusConfig")
    _field(prometheus, "enable", 1, _FieldProto.TYPE_BOOL)
    _field(prometheus, "path", 2, _FieldProto.TYPE_STRING)
    config = monitoring.message_type.add(name="MonitoringConfig")
    _field(config, "prometheus_config", 1, _FieldProto.TYPE_MESSAGE, f".{_PACKAGE}.PrometheusConfig")
    pool.Add(monitoring)
    return pool


_POOL = _build_pool()
_FACTORY = message_factory.MessageFactory(_POOL)
BatchingParameters = _FACTORY.GetPrototype(
    _POOL.FindMessageTypeByName(f"{_PACKAGE}.BatchingParameters"))
PrometheusConfig = _FACTORY.GetPrototype(_POOL.FindMessageTypeByName(f"{_PACKAGE}.PrometheusConfig"))
MonitoringConfig = _FACTORY.GetPrototype(_POOL.FindMessageTypeByName(f"{_PACKAGE}.MonitoringConfig"))

DEFAULT_PROMETHEUS_PATH = "/monitoring/prometheus/metrics"


def read_batching_parameters(path: Union[str, os.PathLike]):
    """Parses a batching_parameters_file; raises text_format.ParseError when malformed."""
    return text_format.Parse(pathlib.Path(path).read_text(encoding="utf-8"), BatchingParameters())


def read_monitoring_config(path: Union[str, os.PathLike]):
    """Parses a monitoring_config_file; raises text_format.ParseError when malformed."""
    return text_format.Parse(pathlib.Path(path).read_text(encoding="utf-8"), MonitoringConfig())
