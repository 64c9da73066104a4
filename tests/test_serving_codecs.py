"""Tensor conversions of the gRPC fast path and TF Serving's REST JSON tensor format."""
import numpy as np
import pytest
import tensorflow as tf

from ml.serving.errors import ServingError
from ml.serving.rest_codec import array_to_json, decode_inputs, encode_predictions, json_to_array
from ml.serving.signatures import SignatureSpec, TensorSpec
from ml.serving.tensor_codec import array_to_tensor_proto, tensor_proto_to_array


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
