"""TensorProto <-> numpy for the gRPC path, with fast paths for the common tensors.

tf.make_tensor_proto and tf.make_ndarray cost ~100 us per call in Python; most requests carry
strings (serialized examples) or plain numeric arrays, which are converted here directly.
"""
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2

from ml.serving.servable import numpy_dtype


def _shape(proto: tensor_pb2.TensorProto):
    return [dim.size for dim in proto.tensor_shape.dim]


def tensor_proto_to_array(proto: tensor_pb2.TensorProto) -> np.ndarray:
    """The numpy value of a TensorProto (strings as an object array of bytes)."""
    shape = _shape(proto)
    size = int(np.prod(shape)) if shape else 1
    if proto.dtype == types_pb2.DT_STRING and len(proto.string_val) == size:
        values = np.empty(size, dtype=object)
        values[:] = list(proto.string_val)
        return values.reshape(shape)
    if proto.dtype not in (types_pb2.DT_STRING, types_pb2.DT_INVALID) and proto.tensor_content:
        dtype = numpy_dtype(proto.dtype)
        if len(proto.tensor_content) == size * dtype.itemsize:
            return np.frombuffer(proto.tensor_content, dtype=dtype).reshape(shape).copy()
    return tf.make_ndarray(proto)


def array_to_tensor_proto(value: np.ndarray, dtype_enum: int) -> tensor_pb2.TensorProto:
    """A TensorProto of the signature's dtype holding value."""
    proto = tensor_pb2.TensorProto(dtype=dtype_enum)
    for dim in np.shape(value):
        proto.tensor_shape.dim.add(size=dim)
    if dtype_enum == types_pb2.DT_STRING:
        flat = np.asarray(value, dtype=object).reshape(-1)
        proto.string_val.extend(item if isinstance(item, bytes) else str(item).encode()
                                for item in flat)
        return proto
    dtype = numpy_dtype(dtype_enum)
    if dtype.kind in "biuf" and dtype.itemsize > 0:
        proto.tensor_content = np.ascontiguousarray(value, dtype=dtype).tobytes()
        return proto
    return tf.make_tensor_proto(value, dtype=dtype_enum)
