"""TensorProto <-> numpy for the gRPC path, with fast paths for the common tensors.

tf.make_tensor_proto and tf.make_ndarray cost ~100 us per call in Python; most requests carry
strings (serialized examples) or plain numeric arrays, which are converted here directly. On a
batched server this per-request work, not the model, bounds throughput, so the fast paths avoid
numpy reductions and protobuf copies too.
"""
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2

from ml.serving.servable import numpy_dtype


class TensorTooLarge(ValueError):
    """A TensorProto claims more elements than the server will expand."""


def _shape_and_size(proto: tensor_pb2.TensorProto):
    shape = [dim.size for dim in proto.tensor_shape.dim]
    size = 1
    for dim in shape:
        size *= dim
    return shape, size


def tensor_proto_to_array(proto: tensor_pb2.TensorProto) -> np.ndarray:
    """The numpy value of a TensorProto (strings as an object array of bytes)."""
    shape, size = _shape_and_size(proto)
    if proto.dtype == types_pb2.DT_STRING and len(proto.string_val) == size:
        values = np.empty(size, dtype=object)
        values[:] = proto.string_val
        return values.reshape(shape) if len(shape) != 1 else values
    if proto.dtype not in (types_pb2.DT_STRING, types_pb2.DT_INVALID) and proto.tensor_content:
        dtype = numpy_dtype(proto.dtype)
        if len(proto.tensor_content) == size * dtype.itemsize:
            return np.frombuffer(proto.tensor_content, dtype=dtype).reshape(shape).copy()
    return tf.make_ndarray(proto)


def fill_tensor_proto(proto: tensor_pb2.TensorProto, value: np.ndarray, dtype_enum: int) -> None:
    """Writes value into an empty TensorProto (e.g. a response's output map entry) as the
    signature's dtype, avoiding a CopyFrom."""
    proto.dtype = dtype_enum
    dims = proto.tensor_shape.dim
    for size in np.shape(value):
        dims.add().size = size
    if dtype_enum == types_pb2.DT_STRING:
        flat = np.asarray(value, dtype=object).ravel().tolist()
        try:
            proto.string_val.extend(flat)
        except TypeError:
            del proto.string_val[:]
            proto.string_val.extend(item if isinstance(item, bytes) else str(item).encode()
                                    for item in flat)
        return
    dtype = numpy_dtype(dtype_enum)
    if dtype.kind in "biuf" and dtype.itemsize > 0:
        proto.tensor_content = np.ascontiguousarray(value, dtype=dtype).tobytes()
        return
    proto.CopyFrom(tf.make_tensor_proto(value, dtype=dtype_enum))


def array_to_tensor_proto(value: np.ndarray, dtype_enum: int) -> tensor_pb2.TensorProto:
    """A TensorProto of the signature's dtype holding value."""
    proto = tensor_pb2.TensorProto()
    fill_tensor_proto(proto, value, dtype_enum)
    return proto
