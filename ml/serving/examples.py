"""tf.Example inputs of Classify, Regress and MultiInference, from protos or TF Serving JSON."""
import base64
import binascii
from typing import Any, Dict, List, Mapping, Optional

import tensorflow as tf
from tensorflow_serving.apis import input_pb2

from ml.serving.errors import invalid_argument


def input_to_serialized_examples(input_proto: input_pb2.Input) -> List[bytes]:
    """Serialized examples of an Input; context features are merged into every example."""
    kind = input_proto.WhichOneof("kind")
    if kind == "example_list":
        examples = list(input_proto.example_list.examples)
        context = None
    elif kind == "example_list_with_context":
        examples = list(input_proto.example_list_with_context.examples)
        context = input_proto.example_list_with_context.context
    else:
        raise invalid_argument("Input is empty: set example_list or example_list_with_context")
    if not examples:
        raise invalid_argument("Input is empty: no examples")
    return [_merge_context(example, context).SerializeToString() for example in examples]


def _merge_context(example: tf.train.Example, context: Optional[tf.train.Example]) -> tf.train.Example:
    if context is None or not context.features.feature:
        return example
    merged = tf.train.Example()
    merged.CopyFrom(context)
    for name, feature in example.features.feature.items():
        merged.features.feature[name].CopyFrom(feature)
    return merged


def _json_feature(name: str, value: Any) -> tf.train.Feature:
    values = value if isinstance(value, list) else [value]
    if not values:
        return tf.train.Feature()
    if all(isinstance(item, bool) for item in values) or all(
            isinstance(item, int) and not isinstance(item, bool) for item in values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(item) for item in values]))
    if all(isinstance(item, (int, float)) and not isinstance(item, bool) for item in values):
        return tf.train.Feature(float_list=tf.train.FloatList(value=[float(item) for item in values]))
    encoded = []
    for item in values:
        if isinstance(item, str):
            encoded.append(item.encode("utf-8"))
        elif isinstance(item, dict) and set(item) == {"b64"} and isinstance(item["b64"], str):
            try:
                encoded.append(base64.b64decode(item["b64"], validate=True))
            except (binascii.Error, ValueError) as error:
                raise invalid_argument(f"feature {name!r}: invalid base64: {error}") from error
        else:
            raise invalid_argument(
                f"feature {name!r}: values must be all numbers or all strings, got {value!r:.80}")
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=encoded))


def json_to_example(features: Mapping[str, Any]) -> tf.train.Example:
    """One TF Serving JSON example ({"feature": value or list}) as a tf.Example."""
    if not isinstance(features, dict):
        raise invalid_argument(f"each example must be a JSON object, got {features!r:.80}")
    example = tf.train.Example()
    for name, value in features.items():
        example.features.feature[name].CopyFrom(_json_feature(name, value))
    return example


def json_to_input(body: Dict[str, Any]) -> input_pb2.Input:
    """The Input of a REST :classify/:regress body {"examples": [...], "context": {...}}."""
    examples = body.get("examples")
    if not isinstance(examples, list) or not examples:
        raise invalid_argument("'examples' must be a non-empty list of JSON objects")
    input_proto = input_pb2.Input()
    context = body.get("context")
    if context is not None:
        target = input_proto.example_list_with_context
        target.context.CopyFrom(json_to_example(context))
    else:
        target = input_proto.example_list
    for features in examples:
        target.examples.add().CopyFrom(json_to_example(features))
    return input_proto
