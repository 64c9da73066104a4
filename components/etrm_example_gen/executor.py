"""ETRMExampleGen executor: a BaseExampleGenExecutor whose 'query' is the dataset name."""
from __future__ import annotations

import dataclasses
import functools
import math
import os
from typing import Any, Dict, List, Tuple

import apache_beam as beam
import pandas as pd
import pyarrow as pa
import tensorflow as tf
from absl import logging
from tfx import types
from tfx.components.example_gen import base_example_gen_executor, write_split
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from components.etrm_example_gen import shard_writer, span_data
from ml.core.code_fingerprint import GENERATOR_CODE_PROPERTY, GENERATOR_PACKAGES, source_fingerprint
from ml.synthetic.spans import ID_COLUMNS, SpanRequest, generate_table

RECORDS_PER_SHARD = 8192


def span_request(exec_properties: Dict[str, Any], dataset: str) -> SpanRequest:
    """Builds the SpanRequest from resolved execution properties (span comes from the driver)."""
    return SpanRequest.from_properties(
        dataset, exec_properties[example_gen_utils.SPAN_PROPERTY_NAME], exec_properties)


@functools.lru_cache(maxsize=1)
def _split_tables(request: SpanRequest, split_buckets: Tuple[int, ...]) -> List[pd.DataFrame]:
    """The span's records per split, by a stable hash of the record id.

    Cached per process: every Beam worker regenerates the span once (deterministic, seconds)
    instead of receiving hundreds of megabytes of records from the worker that generated it.
    """
    table = generate_table(request)
    assignments = span_data.split_assignments(table[ID_COLUMNS[request.dataset]],
                                              list(split_buckets))
    return [table[assignments == index].reset_index(drop=True) for index in range(len(split_buckets))]


def _shard_plan(request: SpanRequest, split_buckets: Tuple[int, ...]) -> List[Tuple[int, int]]:
    """(split index, shard index) of every shard: what the Beam workers share out."""
    return [(split_index, shard_index)
            for split_index, part in enumerate(_split_tables(request, split_buckets))
            for shard_index in range(math.ceil(len(part) / RECORDS_PER_SHARD))]


def _shard_records(request: SpanRequest, split_buckets: Tuple[int, ...],
                   shard: Tuple[int, int]) -> pa.RecordBatch:
    """One shard's records as an Arrow record batch, ready for the C++ encoder."""
    split_index, shard_index = shard
    part = _split_tables(request, split_buckets)[split_index]
    start = shard_index * RECORDS_PER_SHARD
    chunk = part.iloc[start:start + RECORDS_PER_SHARD]
    return next(span_data.table_to_record_batches(chunk, len(chunk)))


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(bytes)
def _GenerateSpanExamples(pipeline: beam.Pipeline, exec_properties: Dict[str, Any],
                          split_pattern: str) -> beam.pvalue.PCollection:
    """All of a span's examples, unsplit (TFX's contract for input-to-record transforms)."""
    request = span_request(exec_properties, split_pattern.strip())
    return (pipeline
            | "SpanRequest" >> beam.Create([request])
            | "PlanShards" >> beam.FlatMap(_shard_plan, (1,))
            | "Distribute" >> beam.Reshuffle()
            | "EncodeExamples" >> beam.FlatMap(
                lambda shard: span_data.encode_record_batch(_shard_records(request, (1,), shard))))


class Executor(base_example_gen_executor.BaseExampleGenExecutor):
    """Generates one span of synthetic ETRM examples and records how to regenerate it."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        """TFX's contract for reusing this source in another ExampleGen; Do() does not use it."""
        return _GenerateSpanExamples

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        """Splits by a stable hash of the record id, then encodes and writes shard by shard.

        Replaces the base class's per-example Reshuffle + WriteToTFRecord (see shard_writer);
        the output is what TFX's ExampleGen writes: gzipped TFRecords of tf.Examples per split.
        """
        self._log_startup(input_dict, output_dict, exec_properties)
        splits = _output_splits(exec_properties)
        request = span_request(exec_properties, _single_split_pattern(exec_properties))
        examples = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.EXAMPLES_KEY])
        examples.split_names = artifact_utils.encode_split_names([s.name for s in splits])
        split_uris = [artifact_utils.get_split_uri([examples], s.name) for s in splits]
        staging_dir = os.path.join(examples.uri, ".staging")
        for folder in split_uris + [staging_dir]:
            tf.io.gfile.makedirs(folder)
        buckets = tuple(split.hash_buckets for split in splits)
        logging.info("Generating span %d of %s: %d records", request.span, request.dataset,
                     request.records_per_span)
        with self._make_beam_pipeline() as pipeline:
            _ = (pipeline
                 | "SpanRequest" >> beam.Create([request])
                 | "PlanShards" >> beam.FlatMap(_shard_plan, buckets)
                 | "Distribute" >> beam.Reshuffle()
                 | "EncodeAndWrite" >> beam.Map(
                     lambda shard: shard_writer.write_shard(
                         shard, _shard_records(request, buckets, shard), split_uris, staging_dir)))
        _split_tables.cache_clear()
        tf.io.gfile.rmtree(staging_dir)
        examples_utils.set_payload_format(examples, example_gen_pb2.FORMAT_TF_EXAMPLE)
        examples_utils.set_file_format(
            examples, write_split.to_file_format_str(example_gen_pb2.FORMAT_TFRECORDS_GZIP))
        _record_span_request(examples, request)


def _record_span_request(examples: types.Artifact, request: SpanRequest) -> None:
    """The generator's request on the artifact, so the span can be regenerated exactly."""
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
    examples.set_string_custom_property(GENERATOR_CODE_PROPERTY,
                                        source_fingerprint(*GENERATOR_PACKAGES))


def _output_splits(exec_properties: Dict[str, Any]) -> list:
    output_config = example_gen_pb2.Output()
    proto_utils.json_to_proto(exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY],
                              output_config)
    splits = list(output_config.split_config.splits)
    if not splits:
        raise ValueError("ETRMExampleGen needs output_config.split_config with hash buckets")
    return splits


def _single_split_pattern(exec_properties: Dict[str, Any]) -> str:
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY],
                              input_config)
    return input_config.splits[0].pattern.strip()
