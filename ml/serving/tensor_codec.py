"""TensorProto <-> numpy for the gRPC path, with fast paths for the common tensors.

tf.make_tensor_proto and tf.make_ndarray cost ~100 us per call in Python; most requests carry
strings (serialized examples) or plain numeric arrays, which are converted here directly. On a
batched server this per-request work, not the model, bounds throughput, so the fast paths avoid
numpy reductions and protobuf copies too.
"""
from typing import List

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2

from ml.serving.servable import numpy_dtype

# A request is refused before anything is allocated when a tensor claims more elements than
# this: 16.8M elements is 64 MiB of float32, far above any batch the served models take, and
# far below what a 110-byte proto claiming 2^31 rows would ask for (>100 GB).
MAX_TENSOR_ELEMENTS = 2**24

# The repeated field holding each dtype's values when tensor_content is empty, and how many
# field entries make one element (complex numbers take two).
_VALUE_FIELDS = {
    types_pb2.DT_FLOAT: ("float_val", 1), types_pb2.DT_DOUBLE: ("double_val", 1),
    types_pb2.DT_INT32: ("int_val", 1), types_pb2.DT_INT16: ("int_val", 1),
    types_pb2.DT_INT8: ("int_val", 1), types_pb2.DT_UINT8: ("int_val", 1),
    types_pb2.DT_UINT16: ("int_val", 1), types_pb2.DT_QINT8: ("int_val", 1),
    types_pb2.DT_QUINT8: ("int_val", 1), types_pb2.DT_QINT16: ("int_val", 1),
    types_pb2.DT_QUINT16: ("int_val", 1), types_pb2.DT_QINT32: ("int_val", 1),
    types_pb2.DT_INT64: ("int64_val", 1), types_pb2.DT_UINT32: ("uint32_val", 1),
    types_pb2.DT_UINT64: ("uint64_val", 1), types_pb2.DT_BOOL: ("bool_val", 1),
    types_pb2.DT_HALF: ("half_val", 1), types_pb2.DT_BFLOAT16: ("half_val", 1),
    types_pb2.DT_COMPLEX64: ("scomplex_val", 2), types_pb2.DT_COMPLEX128: ("dcomplex_val", 2),
    types_pb2.DT_STRING: ("string_val", 1),
}


class TensorTooLarge(ValueError):
    """A TensorProto claims more elements than the server allows or than its content holds."""


def _dtype_name(dtype_enum: int) -> str:
    return types_pb2.DataType.Name(dtype_enum) if dtype_enum in types_pb2.DataType.values() \
        else f"dtype {dtype_enum}"


def _claimed_shape(proto: tensor_pb2.TensorProto, max_elements: int):
    """The proto's shape and element count, refused before any product can grow unbounded."""
    shape: List[int] = [dim.size for dim in proto.tensor_shape.dim]
    if proto.tensor_shape.unknown_rank:
        raise ValueError("tensor_shape has an unknown rank; a value needs a fully defined shape")
    for index, dim in enumerate(shape):
        if dim < 0:
            raise ValueError(f"tensor_shape dimension {index} is {dim}; sizes must be >= 0")
        if dim > max_elements:
            raise TensorTooLarge(f"tensor_shape dimension {index} is {dim}, above the limit of "
                                 f"{max_elements} elements per tensor")
    size = 1
    for dim in shape:
        size *= dim
        if size > max_elements:
            raise TensorTooLarge(f"tensor_shape {shape} claims more than {max_elements} elements, "
                                 "the limit per tensor")
    return shape, size


def _held_values(proto: tensor_pb2.TensorProto) -> int:
    """How many elements the proto's content actually carries."""
    if proto.tensor_content and proto.dtype != types_pb2.DT_STRING:
        itemsize = numpy_dtype(proto.dtype).itemsize
        if len(proto.tensor_content) % itemsize:
            raise ValueError(f"tensor_content holds {len(proto.tensor_content)} bytes, not a "
                             f"multiple of {itemsize} for {_dtype_name(proto.dtype)}")
        return len(proto.tensor_content) // itemsize
    field, per_element = _VALUE_FIELDS[proto.dtype]
    count = len(getattr(proto, field))
    if count % per_element:
        raise ValueError(f"{field} holds {count} numbers; complex values need pairs")
    return count // per_element


def tensor_proto_to_array(proto: tensor_pb2.TensorProto,
                          max_elements: int = MAX_TENSOR_ELEMENTS) -> np.ndarray:
    """The numpy value of a TensorProto (strings as an object array of bytes).

    The claimed shape is checked against max_elements and against the content before
    anything is allocated: a client could otherwise make a few bytes expand to any size.
    TensorFlow's convention that a single value fills the whole shape
    (tf.make_tensor_proto(1.5, shape=[3])) is kept, bounded by max_elements; any other
    content shorter than the shape (which TensorFlow pads with its last value) is refused.
    """
    if proto.dtype not in _VALUE_FIELDS:
        raise ValueError(f"unsupported tensor dtype {_dtype_name(proto.dtype)}")
    shape, size = _claimed_shape(proto, max_elements)
    held = _held_values(proto)
    if held > size:
        raise ValueError(f"tensor content holds {held} values but tensor_shape {shape} has {size}")
    if held < size and held != 1:
        raise TensorTooLarge(f"tensor_shape {shape} claims {size} elements but the content holds "
                             f"only {held}")
    if proto.dtype == types_pb2.DT_STRING and held == size:
        values = np.empty(size, dtype=object)
        values[:] = proto.string_val
        return values.reshape(shape) if len(shape) != 1 else values
    if proto.dtype != types_pb2.DT_STRING and proto.tensor_content and held == size:
        dtype = numpy_dtype(proto.dtype)
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
