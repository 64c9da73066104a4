"""Two DirectRunner workers compute what one does: StatisticsGen's statistics and Transform's
analyzers (vocabularies, means, variances) on the same span agree, so the multi-processing
mode chosen for big spans (ml.core.beam) changes speed, not results. One worker is the risk
e2e home's first run (tests/conftest.py::risk_home); two reruns the same executors."""
import math
import os

import pytest

from ml.core.beam import beam_args

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def one_worker(risk_home):
    """The risk home's first run, made with one in-process worker: its Examples (as the TFX
    artifact the executors take), StatisticsGen's output and Transform's graph, by URI."""
    from tfx.types import artifact_utils

    from ml.core import metadata
    from tests.pipeline_helpers import store_for

    home, summary = risk_home
    assert summary["beam_workers"] == 1
    store = store_for(home)
    outputs = {row["component"]: metadata.output_artifacts(store, row["execution_id"])
               for row in summary["components"]}
    [examples] = outputs["ETRMExampleGen"]["examples"]
    [examples_type] = store.get_artifact_types_by_id([examples.type_id])
    return {"examples": artifact_utils.deserialize_artifact(examples_type, examples),
            "statistics": outputs["StatisticsGen"]["statistics"][0].uri,
            "transform_graph": outputs["Transform"]["transform_graph"][0].uri}


def _statistics(examples, folder, workers):
    from tfx.components.statistics_gen import executor
    from tfx.types import standard_artifacts

    statistics = standard_artifacts.ExampleStatistics()
    statistics.uri = os.path.join(folder, "statistics")
    context = executor.Executor.Context(beam_pipeline_args=beam_args(workers),
                                        tmp_dir=os.path.join(folder, "tmp"))
    executor.Executor(context).Do({"examples": [examples]}, {"statistics": [statistics]},
                                  {"exclude_splits": "[]"})
    return statistics


def _transform(examples, folder, workers):
    from tfx.components.transform import executor
    from tfx.types import standard_artifacts

    from pipeline.create import schema_file

    schema = standard_artifacts.Schema()
    schema.uri = os.path.join(folder, "schema")
    os.makedirs(schema.uri)
    with open(schema_file("trades")) as source, \
            open(os.path.join(schema.uri, "schema.pbtxt"), "w") as target:
        target.write(source.read())
    graph = standard_artifacts.TransformGraph()
    graph.uri = os.path.join(folder, "transform_graph")
    context = executor.Executor.Context(beam_pipeline_args=beam_args(workers),
                                        tmp_dir=os.path.join(folder, "tmp"))
    executor.Executor(context).Do(
        {"examples": [examples], "schema": [schema]}, {"transform_graph": [graph]},
        {"preprocessing_fn": "models.risk.preprocessing.preprocessing_fn",
         "disable_statistics": 1, "force_tf_compat_v1": 0, "splits_config": None,
         "custom_config": "null"})
    return graph


def _close(a, b, path="") -> list:
    """Where two plain structures differ (floats compared at 1e-9 relative)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for key in sorted(set(a) | set(b))
                for d in _close(a.get(key), b.get(key), f"{path}.{key}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} vs {len(b)} items"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _close(x, y, f"{path}[{i}]")]
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None or not math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12):
            return [f"{path}: {a} vs {b}"]
        return []
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


@pytest.fixture(scope="module")
def two_workers(one_worker, tmp_path_factory):
    """StatisticsGen and Transform rerun on the same Examples with two multi-processing workers."""
    folder = str(tmp_path_factory.mktemp("two-workers"))
    return {"statistics": _statistics(one_worker["examples"], folder, 2).uri,
            "transform_graph": _transform(one_worker["examples"], folder, 2).uri}


def test_statistics_with_two_workers_equal_those_with_one(one_worker, two_workers):
    import tensorflow_data_validation as tfdv
    from google.protobuf import json_format

    from ml.core.example_tables import split_names, split_uri

    one, two = one_worker["statistics"], two_workers["statistics"]
    assert split_names(one) == split_names(two) == ["eval", "train"]
    for split in ("train", "eval"):
        stats = [tfdv.load_stats_binary(os.path.join(split_uri(uri, split), "FeatureStats.pb"))
                 for uri in (one, two)]
        assert stats[0].datasets[0].num_examples == stats[1].datasets[0].num_examples > 0
        by_feature = [{".".join(f.path.step): json_format.MessageToDict(f)
                       for f in s.datasets[0].features} for s in stats]
        assert len(by_feature[0]) == len(stats[0].datasets[0].features) > 10
        assert _close(by_feature[0], by_feature[1]) == [], split


def test_transform_analyzers_with_two_workers_equal_those_with_one(one_worker, two_workers):
    import tensorflow as tf
    import tensorflow_transform as tft

    from ml.core.example_tables import read_records, split_files

    outputs = [tft.TFTransformOutput(run["transform_graph"]) for run in (one_worker, two_workers)]
    vocabularies = [sorted(os.listdir(output.transform_savedmodel_dir + "/assets"))
                    for output in outputs]
    assert vocabularies[0] == vocabularies[1] and vocabularies[0]
    for name in vocabularies[0]:
        assert outputs[0].vocabulary_by_name(name) == outputs[1].vocabulary_by_name(name), name
    raw = read_records(split_files(one_worker["examples"].uri, "eval"))[:256]
    spec = outputs[0].raw_feature_spec()
    batch = tf.io.parse_example(tf.constant(raw), spec)
    transformed = [output.transform_features_layer()(dict(batch)) for output in outputs]
    assert set(transformed[0]) == set(transformed[1])
    for key in transformed[0]:
        left, right = transformed[0][key], transformed[1][key]
        if isinstance(left, tf.SparseTensor):
            left, right = tf.sparse.to_dense(left), tf.sparse.to_dense(right)
        if left.dtype.is_floating:
            assert float(tf.reduce_max(tf.abs(left - right))) <= 1e-6, key
        else:
            assert bool(tf.reduce_all(left == right)), key
