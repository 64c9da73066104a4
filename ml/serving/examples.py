"""tf.Example inputs of Classify, Regress and MultiInference, from protos or TF Serving JSON."""
from typing import Any, Dict, List, Mapping, Optional

import grpc
import tensorflow as tf
from tensorflow_serving.apis import input_pb2

from ml.core.example_codec import ExampleCodecError, json_example_bytes
from ml.serving.errors import ServingError, invalid_argument

# The context is copied into every example, so a large context with many empty examples
# (two bytes each on the wire) would expand without bound; the merged examples are capped.
MAX_MERGED_EXAMPLES_BYTES = 64 * 2**20


def input_to_serialized_examples(input_proto: input_pb2.Input,
                                 max_bytes: int = MAX_MERGED_EXAMPLES_BYTES) -> List[bytes]:
    """Serialized examples of an Input; context features are merged into every example.

    Refused with RESOURCE_EXHAUSTED, before merging, when the merged examples would exceed
    max_bytes."""
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
    if context is not None and context.features.feature:
        merged_bytes = sum(example.ByteSize() for example in examples) + \
            len(examples) * context.ByteSize()
        if merged_bytes > max_bytes:
            raise ServingError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"Input of {len(examples)} examples with a {context.ByteSize()}-byte context "
                f"would merge to {merged_bytes} bytes, above the limit of {max_bytes}")
    return [_merge_context(example, context).SerializeToString() for example in examples]


def _merge_context(example: tf.train.Example, context: Optional[tf.train.Example]) -> tf.train.Example:
    if context is None or not context.features.feature:
        return example
    merged = tf.train.Example()
    merged.CopyFrom(context)
    for name, feature in example.features.feature.items():
        merged.features.feature[name].CopyFrom(feature)
    return merged


def json_to_example(features: Mapping[str, Any]) -> tf.train.Example:
    """One TF Serving JSON example ({"feature": value or list}) as a tf.Example."""
    try:
        return tf.train.Example.FromString(json_example_bytes(features))
    except ExampleCodecError as error:
        raise invalid_argument(str(error)) from error


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
