"""ETRMExampleGen executor: a BaseExampleGenExecutor whose 'query' is the dataset name."""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List

import apache_beam as beam
from tfx import types
from tfx.components.example_gen import base_example_gen_executor
from tfx.components.example_gen import utils as example_gen_utils
from tfx.types import artifact_utils, standard_component_specs

from components.etrm_example_gen import span_data

RECORDS_PER_SPAN_KEY = "records_per_span"
SEED_KEY = "seed"
HISTORY_START_KEY = "history_start"
PERIOD_DAYS_KEY = "period_days"
DRIFT_SCENARIOS_KEY = "drift_scenarios"
SHUFFLE_LABELS_KEY = "shuffle_labels"
ENCODE_BATCH_SIZE = 8192


def span_request(exec_properties: Dict[str, Any], dataset: str) -> span_data.SpanRequest:
    """Builds the SpanRequest from resolved execution properties (span comes from the driver)."""
    return span_data.SpanRequest(
        dataset=dataset,
        span=int(exec_properties[example_gen_utils.SPAN_PROPERTY_NAME]),
        records_per_span=int(exec_properties[RECORDS_PER_SPAN_KEY]),
        seed=int(exec_properties[SEED_KEY]),
        history_start=exec_properties[HISTORY_START_KEY],
        period_days=int(exec_properties[PERIOD_DAYS_KEY]),
        drift_scenarios=exec_properties.get(DRIFT_SCENARIOS_KEY) or "",
        shuffle_labels=bool(exec_properties.get(SHUFFLE_LABELS_KEY) or 0),
    )


def _generate_split_batches(request: span_data.SpanRequest, split_buckets: List[int]):
    """(split index, record batch) pairs: the span is generated once and split by record id."""
    table = span_data.generate_table(request)
    assignments = span_data.split_assignments(table[span_data.ID_COLUMNS[request.dataset]], split_buckets)
    for index in range(len(split_buckets)):
        part = table[assignments == index]
        for batch in span_data.table_to_record_batches(part, ENCODE_BATCH_SIZE):
            yield index, batch


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(bytes)
def _GenerateSpanExamples(pipeline: beam.Pipeline, exec_properties: Dict[str, Any],
                          split_pattern: str) -> beam.pvalue.PCollection:
    """All of a span's examples, unsplit (TFX's contract for input-to-record transforms)."""
    request = span_request(exec_properties, split_pattern.strip())
    return (pipeline
            | "SpanRequest" >> beam.Create([request])
            | "GenerateRecordBatches" >> beam.FlatMap(_generate_split_batches, [1])
            | "DropSplitIndex" >> beam.Map(lambda pair: pair[1])
            | "Distribute" >> beam.Reshuffle()
            | "EncodeExamples" >> beam.FlatMap(span_data.encode_record_batch))


class Executor(base_example_gen_executor.BaseExampleGenExecutor):
    """Generates one span of synthetic ETRM examples and records how to regenerate it."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _GenerateSpanExamples

    def GenerateExamplesByBeam(self, pipeline: beam.Pipeline,
                               exec_properties: Dict[str, Any]) -> Dict[str, beam.pvalue.PCollection]:
        """Splits by a stable hash of the record id before encoding, then encodes in parallel."""
        from tfx.proto import example_gen_pb2
        from tfx.utils import proto_utils

        output_config = example_gen_pb2.Output()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY],
                                  output_config)
        splits = list(output_config.split_config.splits)
        if not splits:
            raise ValueError("ETRMExampleGen needs output_config.split_config with hash buckets")
        request = span_request(exec_properties, _single_split_pattern(exec_properties))
        batches = (pipeline
                   | "SpanRequest" >> beam.Create([request])
                   | "GenerateSplitBatches" >> beam.FlatMap(
                       _generate_split_batches, [split.hash_buckets for split in splits])
                   | "Distribute" >> beam.Reshuffle())
        return {split.name: (batches
                             | f"Select[{split.name}]" >> beam.Filter(lambda pair, i=index: pair[0] == i)
                             | f"Encode[{split.name}]" >> beam.FlatMap(
                                 lambda pair: span_data.encode_record_batch(pair[1])))
                for index, split in enumerate(splits)}

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        dataset = _single_split_pattern(exec_properties)
        request = span_request(exec_properties, dataset)
        super().Do(input_dict, output_dict, exec_properties)
        examples = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.EXAMPLES_KEY])
        start, end = request.window()
        for name, value in dataclasses.asdict(request).items():
            if isinstance(value, bool):
                value = int(value)
            if isinstance(value, int):
                examples.set_int_custom_property(f"etrm_{name}", value)
            else:
                examples.set_string_custom_property(f"etrm_{name}", str(value))
        examples.set_string_custom_property("etrm_period_start", f"{start:%Y-%m-%d}")
        examples.set_string_custom_property("etrm_period_end", f"{end:%Y-%m-%d}")


def _single_split_pattern(exec_properties: Dict[str, Any]) -> str:
    from tfx.proto import example_gen_pb2
    from tfx.utils import proto_utils

    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY],
                              input_config)
    return input_config.splits[0].pattern.strip()
