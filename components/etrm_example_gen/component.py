"""ETRMExampleGen component: one span (a week by default) of synthetic ETRM data per run."""
from __future__ import annotations

from typing import Sequence, Tuple

from tfx import types
from tfx.components.example_gen import driver
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.proto import example_gen_pb2, range_config_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ExecutionParameter

from components.etrm_example_gen import executor
from ml.synthetic.spans import SpanRequest


class ETRMExampleGenSpec(standard_component_specs.QueryBasedExampleGenSpec):
    """QueryBasedExampleGen's spec plus the generator's settings, as typed parameters."""

    PARAMETERS = {
        **standard_component_specs.QueryBasedExampleGenSpec.PARAMETERS,
        **{name: ExecutionParameter(type=kind, optional=True)
           for name, kind in SpanRequest.generator_fields().items()},
    }


class ETRMExampleGen(base_beam_component.BaseBeamComponent):
    """Ingests span `request.span` of dataset `trades` (tabular) or `reports` (text).

    The span comes from a static RangeConfig, resolved by TFX's query-based driver and stored
    as the artifact's `span` property, so downstream resolvers and drift checks can ask ML
    Metadata for earlier spans. Train/eval are split by hash with `split_ratios` buckets.
    """

    SPEC_CLASS = ETRMExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
    DRIVER_CLASS = driver.QueryBasedDriver

    def __init__(self, request: SpanRequest,
                 split_ratios: Sequence[Tuple[str, int]] = (("train", 4), ("eval", 1))):
        if not split_ratios or any(buckets <= 0 for _, buckets in split_ratios):
            raise ValueError(f"split_ratios must be (name, positive buckets) pairs, got {split_ratios!r}")
        input_config = example_gen_pb2.Input(
            splits=[example_gen_pb2.Input.Split(name="single_split", pattern=request.dataset)])
        output_config = example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
            example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=buckets)
            for name, buckets in split_ratios]))
        range_config = range_config_pb2.RangeConfig(
            static_range=range_config_pb2.StaticRange(start_span_number=request.span, end_span_number=request.span))
        spec = ETRMExampleGenSpec(
            input_config=input_config,
            output_config=output_config,
            range_config=range_config,
            output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
            output_file_format=example_gen_pb2.FORMAT_TFRECORDS_GZIP,
            custom_config=None,
            **request.generator_properties(),
            examples=types.Channel(type=standard_artifacts.Examples),
        )
        super().__init__(spec=spec)
