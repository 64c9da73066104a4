"""ETRMExampleGen component: one span (a week by default) of synthetic ETRM data per run."""
from __future__ import annotations

from typing import Sequence, Tuple

from tfx import types
from tfx.components.example_gen import driver
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.proto import example_gen_pb2, range_config_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ExecutionParameter

from components.etrm_example_gen import executor, span_data


class ETRMExampleGenSpec(standard_component_specs.QueryBasedExampleGenSpec):
    """QueryBasedExampleGen's spec plus the generator's settings, as typed parameters."""

    PARAMETERS = {
        **standard_component_specs.QueryBasedExampleGenSpec.PARAMETERS,
        executor.RECORDS_PER_SPAN_KEY: ExecutionParameter(type=int),
        executor.SEED_KEY: ExecutionParameter(type=int),
        executor.HISTORY_START_KEY: ExecutionParameter(type=str),
        executor.PERIOD_DAYS_KEY: ExecutionParameter(type=int),
        executor.DRIFT_SCENARIOS_KEY: ExecutionParameter(type=str, optional=True),
        executor.SHUFFLE_LABELS_KEY: ExecutionParameter(type=int, optional=True),
    }


class ETRMExampleGen(base_beam_component.BaseBeamComponent):
    """Ingests span `span` of dataset `trades` (tabular) or `reports` (text).

    The span comes from a static RangeConfig, resolved by TFX's query-based driver and stored
    as the artifact's `span` property, so downstream resolvers and drift checks can ask ML
    Metadata for earlier spans. Train/eval are split by hash with `split_ratios` buckets.
    """

    SPEC_CLASS = ETRMExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
    DRIVER_CLASS = driver.QueryBasedDriver

    def __init__(self, dataset: str = "trades", span: int = 0, records_per_span: int = 5000,
                 seed: int = 42, history_start: str = "2024-01-01", period_days: int = 7,
                 drift_scenarios: str = "", shuffle_labels: bool = False,
                 split_ratios: Sequence[Tuple[str, int]] = (("train", 4), ("eval", 1))):
        span_data.SpanRequest(dataset=dataset, span=span, records_per_span=records_per_span,
                              seed=seed, history_start=history_start, period_days=period_days,
                              drift_scenarios=drift_scenarios, shuffle_labels=shuffle_labels)
        if not split_ratios or any(buckets <= 0 for _, buckets in split_ratios):
            raise ValueError(f"split_ratios must be (name, positive buckets) pairs, got {split_ratios!r}")
        input_config = example_gen_pb2.Input(
            splits=[example_gen_pb2.Input.Split(name="single_split", pattern=dataset)])
        output_config = example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
            example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=buckets)
            for name, buckets in split_ratios]))
        range_config = range_config_pb2.RangeConfig(
            static_range=range_config_pb2.StaticRange(start_span_number=span, end_span_number=span))
        spec = ETRMExampleGenSpec(
            input_config=input_config,
            output_config=output_config,
            range_config=range_config,
            output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
            output_file_format=example_gen_pb2.FORMAT_TFRECORDS_GZIP,
            custom_config=None,
            records_per_span=records_per_span,
            seed=seed,
            history_start=history_start,
            period_days=period_days,
            drift_scenarios=drift_scenarios,
            shuffle_labels=int(shuffle_labels),
            examples=types.Channel(type=standard_artifacts.Examples),
        )
        super().__init__(spec=spec)
