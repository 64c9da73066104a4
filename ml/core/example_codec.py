"""TF Serving JSON examples ({"feature": value or list}) as serialized tf.Examples.

One codec for the model server (REST :classify/:regress bodies) and the client (gRPC
Classify/Regress), so the same JSON means the same tf.Example on both sides. It writes the
protobuf wire format itself: REST clients must start without importing TensorFlow.

Type rules (TF Serving's): all ints or all bools -> int64_list (bools as 0/1, which is what the
risk model's int features parse; a "True" string would not), all numbers -> float_list, strings
or {"b64": ...} -> bytes_list, an empty list -> a feature of no kind.
"""
from __future__ import annotations

import base64
import binascii
from typing import Any, Mapping, Optional, Sequence, Tuple

import numpy as np

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


class ExampleCodecError(ValueError):
    """A JSON example that has no tf.Example form (the server answers INVALID_ARGUMENT)."""


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _length_delimited(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _feature_bytes(name: str, kind: Optional[str], values: Sequence[Any]) -> bytes:
    """A serialized tf.train.Feature; kind None is the empty feature."""
    if kind is None:
        return b""
    if kind == "float":
        body = _length_delimited(1, np.asarray(values, dtype="<f4").tobytes())
        return _length_delimited(2, body)
    if kind == "int":
        integers = [int(value) for value in values]
        if any(not INT64_MIN <= value <= INT64_MAX for value in integers):
            raise ExampleCodecError(f"feature {name!r}: integer out of int64 range")
        return _length_delimited(3, _length_delimited(1, b"".join(_varint(v) for v in integers)))
    return _length_delimited(1, b"".join(
        _length_delimited(1, value if isinstance(value, bytes) else str(value).encode("utf-8"))
        for value in values))


def encode_example(features: Mapping[str, Tuple[Optional[str], Sequence[Any]]]) -> bytes:
    """Serializes a tf.Example from {name: (type, values)}, type in float, int, string (or
    None for an empty feature)."""
    entries = b""
    for name in sorted(features):
        kind, values = features[name]
        entry = (_length_delimited(1, name.encode("utf-8"))
                 + _length_delimited(2, _feature_bytes(name, kind, values)))
        entries += _length_delimited(1, entry)
    return _length_delimited(1, entries) if entries else b""


def _json_feature(name: str, value: Any) -> Tuple[Optional[str], list]:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values:
        return None, []
    if all(isinstance(item, bool) for item in values) or all(
            isinstance(item, int) and not isinstance(item, bool) for item in values):
        return "int", [int(item) for item in values]
    if all(isinstance(item, (int, float)) and not isinstance(item, bool) for item in values):
        return "float", [float(item) for item in values]
    encoded = []
    for item in values:
        if isinstance(item, str):
            encoded.append(item.encode("utf-8"))
        elif isinstance(item, dict) and set(item) == {"b64"} and isinstance(item["b64"], str):
            try:
                encoded.append(base64.b64decode(item["b64"], validate=True))
            except (binascii.Error, ValueError) as error:
                raise ExampleCodecError(f"feature {name!r}: invalid base64: {error}") from error
        else:
            raise ExampleCodecError(
                f"feature {name!r}: values must be all numbers or all strings, got {value!r:.80}")
    return "string", encoded


def json_example_bytes(features: Mapping[str, Any]) -> bytes:
    """One TF Serving JSON example as a serialized tf.Example."""
    if not isinstance(features, Mapping):
        raise ExampleCodecError(f"each example must be a JSON object, got {features!r:.80}")
    return encode_example({name: _json_feature(name, value) for name, value in features.items()})
