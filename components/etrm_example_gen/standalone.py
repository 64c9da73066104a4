"""Runs ETRMExampleGen's executor outside a pipeline: for tests, benchmarks and backfills."""
from __future__ import annotations

import os
from typing import Sequence, Tuple

from tfx.components.example_gen import utils as example_gen_utils
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.utils import proto_utils

from components.etrm_example_gen import executor
from ml.core.beam import beam_args
from ml.synthetic.spans import SpanRequest


def exec_properties_for(request: SpanRequest,
                        split_ratios: Sequence[Tuple[str, int]] = (("train", 4), ("eval", 1))) -> dict:
    """The execution properties the pipeline's driver would resolve for this span."""
    input_config = example_gen_pb2.Input(
        splits=[example_gen_pb2.Input.Split(name="single_split", pattern=request.dataset)])
    output_config = example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
        example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=buckets)
        for name, buckets in split_ratios]))
    return {
        standard_component_specs.INPUT_CONFIG_KEY: proto_utils.proto_to_json(input_config),
        standard_component_specs.OUTPUT_CONFIG_KEY: proto_utils.proto_to_json(output_config),
        standard_component_specs.OUTPUT_DATA_FORMAT_KEY: example_gen_pb2.FORMAT_TF_EXAMPLE,
        standard_component_specs.OUTPUT_FILE_FORMAT_KEY: example_gen_pb2.FORMAT_TFRECORDS_GZIP,
        example_gen_utils.SPAN_PROPERTY_NAME: request.span,
        example_gen_utils.VERSION_PROPERTY_NAME: None,
        **request.generator_properties(),
    }


def run_executor(request: SpanRequest, output_dir: str, beam_workers: int = 1):
    """Generates and writes one span into output_dir; returns the Examples artifact."""
    examples = standard_artifacts.Examples()
    examples.uri = os.path.join(output_dir, "examples")
    context = executor.Executor.Context(beam_pipeline_args=beam_args(beam_workers),
                                        tmp_dir=os.path.join(output_dir, "tmp"))
    executor.Executor(context).Do({}, {standard_component_specs.EXAMPLES_KEY: [examples]},
                                  exec_properties_for(request))
    return examples
