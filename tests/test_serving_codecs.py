"""Tensor conversions of the gRPC fast path and TF Serving's REST JSON tensor format."""
import tracemalloc

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2

from ml.serving.errors import ServingError
from ml.serving.rest_codec import array_to_json, decode_inputs, encode_predictions, json_to_array
from ml.serving.signatures import SignatureSpec, TensorSpec
from ml.serving.tensor_codec import (MAX_TENSOR_ELEMENTS, TensorTooLarge, array_to_tensor_proto,
                                     tensor_proto_to_array)


@pytest.mark.parametrize("value, dtype", [
    (np.array([0.5, -1.25], dtype=np.float32), tf.float32),
    (np.array([[1, 2], [3, 4]], dtype=np.int64), tf.int64),
    (np.array(7, dtype=np.int32), tf.int32),
    (np.array([True, False]), tf.bool),
    (np.array([[b"a", b"\xff"], [b"", b"long text"]], dtype=object), tf.string),
    (np.array(2.5, dtype=np.float64), tf.float64),
])
def test_tensor_proto_round_trip_matches_tensorflow(value, dtype):
    proto = array_to_tensor_proto(value, dtype.as_datatype_enum)
    np.testing.assert_array_equal(tf.make_ndarray(proto), value)
    np.testing.assert_array_equal(tensor_proto_to_array(proto), value)
    reference = tf.make_tensor_proto(value, dtype=dtype)
    np.testing.assert_array_equal(tensor_proto_to_array(reference), tf.make_ndarray(reference))


def test_scalar_broadcast_protos_fall_back_to_tensorflow():
    proto = tf.make_tensor_proto(1.5, dtype=tf.float32, shape=[3])
    np.testing.assert_array_equal(tensor_proto_to_array(proto), [1.5, 1.5, 1.5])


def test_json_tensors_follow_tf_serving_rules():
    string = tf.string.as_datatype_enum
    assert json_to_array([{"b64": "aGk="}, "x"], string, "a").tolist() == [b"hi", b"x"]
    assert json_to_array([[1, 2]], tf.float32.as_datatype_enum, "a").dtype == np.float32
    with pytest.raises(ServingError, match="expects integers"):
        json_to_array([1.5], tf.int32.as_datatype_enum, "a")
    assert array_to_json("text", np.array([b"ok"], dtype=object)) == ["ok"]
    assert array_to_json("raw_bytes", np.array([b"ok"], dtype=object)) == [{"b64": "b2s="}]
    spec = SignatureSpec("s", "tensorflow/serving/predict",
                         {"x": TensorSpec("x", tf.float32.as_datatype_enum, (-1,))},
                         {"y": TensorSpec("y", tf.float32.as_datatype_enum, (-1,))})
    assert decode_inputs([1.0, 2.0], spec)["x"].tolist() == [1.0, 2.0]
    assert encode_predictions({"y": np.array([1.0, 2.0]), "z": np.array([3, 4])}) == [
        {"y": 1.0, "z": 3}, {"y": 2.0, "z": 4}]
    with pytest.raises(ServingError, match="batch dimension"):
        encode_predictions({"y": np.array([1.0, 2.0]), "z": np.array(3)})


def test_client_and_server_encode_the_same_json_examples_identically():
    from ml.serving.examples import json_to_input
    from ml.serving_client.client import examples_input

    examples = [{"volume": 1000, "price": 75.5, "commodity": "gas", "is_option": True,
                 "flags": [True, False], "blob": {"b64": "/w=="}, "empty": []},
                {"tenor_months": [3, 6], "ratio": [1, 2.5]}]
    context = {"region": "EU", "hedged": False}
    client = examples_input(examples, context)
    assert client == json_to_input({"examples": examples, "context": context})
    features = client.example_list_with_context.examples[0].features.feature
    assert list(features["is_option"].int64_list.value) == [1]
    assert list(features["flags"].int64_list.value) == [1, 0]
    assert list(features["blob"].bytes_list.value) == [b"\xff"]
    second = client.example_list_with_context.examples[1].features.feature
    assert list(second["ratio"].float_list.value) == [1.0, 2.5]
    assert list(second["tenor_months"].int64_list.value) == [3, 6]
    assert features["empty"].WhichOneof("kind") is None
    assert list(client.example_list_with_context.context.features.feature["hedged"]
                .int64_list.value) == [0]


def test_json_examples_the_codec_cannot_encode_are_invalid_arguments():
    from ml.serving.examples import json_to_example

    for bad in ({"a": [1, "x"]}, {"a": {"b64": "!!"}}, ["not an object"], {"a": 1 << 70}):
        with pytest.raises(ServingError):
            json_to_example(bad)


def _hostile_proto(dtype, shape, **content):
    proto = tensor_pb2.TensorProto(dtype=dtype.as_datatype_enum, **content)
    for size in shape:
        proto.tensor_shape.dim.add().size = size
    return proto


def test_claimed_shapes_beyond_the_limit_are_refused_before_allocating():
    """A 110-byte proto claiming 2^31 rows asked numpy for >100 GB; now nothing is allocated."""
    hostile = [
        _hostile_proto(tf.float32, [2**31, 16], float_val=[1.0]),
        tf.make_tensor_proto(1.0, dtype=tf.float32, shape=[2**31, 16]),
        _hostile_proto(tf.float32, [2**31, 16], tensor_content=b"\0" * 8),
        _hostile_proto(tf.string, [2**31], string_val=[b"x"]),
        _hostile_proto(tf.int64, [0, 2**62]),
        _hostile_proto(tf.float64, [2**20] * 6, double_val=[0.5]),
    ]
    tracemalloc.start()
    try:
        for proto in hostile:
            assert proto.ByteSize() < 120
            with pytest.raises(TensorTooLarge, match="limit"):
                tensor_proto_to_array(proto)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20
    assert issubclass(TensorTooLarge, ValueError) and MAX_TENSOR_ELEMENTS == 2**24


def test_shapes_larger_than_their_content_are_refused():
    """2M rows claimed over 8 bytes of content or two values: TensorFlow would pad the rest."""
    short = [
        _hostile_proto(tf.float32, [2_000_000, 4], tensor_content=b"\0" * 8),
        _hostile_proto(tf.float32, [2_000_000, 4], float_val=[1.0, 2.0]),
        _hostile_proto(tf.int64, [3], int64_val=[1, 2]),
        _hostile_proto(tf.string, [4], string_val=[b"a", b"b"]),
        _hostile_proto(tf.float32, [5]),
    ]
    for proto in short:
        with pytest.raises(TensorTooLarge, match="content holds only"):
            tensor_proto_to_array(proto)


def test_a_single_value_fills_its_shape_only_within_the_limit():
    proto = _hostile_proto(tf.float32, [2_000, 10], float_val=[1.5])
    assert tensor_proto_to_array(proto, max_elements=20_000).shape == (2_000, 10)
    with pytest.raises(TensorTooLarge, match="more than 19999 elements"):
        tensor_proto_to_array(proto, max_elements=19_999)
    strings = tensor_proto_to_array(_hostile_proto(tf.string, [3], string_val=[b"s"]))
    assert strings.tolist() == [b"s"] * 3


@pytest.mark.parametrize("proto, message", [
    (_hostile_proto(tf.float32, [-1], float_val=[1.0]), "dimension 0 is -1"),
    (_hostile_proto(tf.float32, [2, -5], float_val=[1.0]), "dimension 1 is -5"),
    (_hostile_proto(tf.float32, [1], tensor_content=b"\0" * 6), "not a multiple of 4"),
    (_hostile_proto(tf.float32, [1], tensor_content=b"\0" * 8), "holds 2 values"),
    (_hostile_proto(tf.complex64, [1], scomplex_val=[1.0]), "need pairs"),
    (tensor_pb2.TensorProto(dtype=tf.resource.as_datatype_enum), "unsupported tensor dtype"),
    (tensor_pb2.TensorProto(dtype=0), "unsupported tensor dtype DT_INVALID"),
    (tensor_pb2.TensorProto(dtype=1, tensor_shape={"unknown_rank": True}), "unknown rank"),
])
def test_malformed_shapes_and_content_are_value_errors(proto, message):
    with pytest.raises(ValueError, match=message) as raised:
        tensor_proto_to_array(proto)
    assert not isinstance(raised.value, TensorTooLarge)


def test_a_large_context_copied_into_many_empty_examples_is_refused():
    import grpc
    from tensorflow_serving.apis import input_pb2

    from ml.serving.examples import input_to_serialized_examples

    request = input_pb2.Input()
    target = request.example_list_with_context
    target.context.features.feature["blob"].bytes_list.value.append(b"x" * 1000)
    for _ in range(2000):
        target.examples.add()
    assert request.ByteSize() < 10_000
    with pytest.raises(ServingError, match="2000 examples") as raised:
        input_to_serialized_examples(request, max_bytes=1_000_000)
    assert raised.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert len(input_to_serialized_examples(request, max_bytes=4_000_000)) == 2000
