"""The artifact queries Kubeflow runs in place of the project's resolver strategies answer as the
strategies do, on a real ML Metadata store holding the real artifact types (each query is run
there as the equivalent ML Metadata filter, newest first, `limit` artifacts)."""
import pytest

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline import kubeflow_resolvers as kr

pytestmark = pytest.mark.slow


@pytest.fixture
def store(tmp_path):
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(tmp_path / "metadata.sqlite")
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    return metadata_store.MetadataStore(config)


def put(store, artifact):
    """Records a TFX artifact (its type registered as TFX registers it); returns it with its id."""
    from tfx.types import artifact_utils

    type_id = store.put_artifact_type(artifact.artifact_type)
    artifact.type_id = type_id
    artifact.state = "published"
    artifact.mlmd_artifact.state = metadata_store_pb2.Artifact.LIVE
    [artifact_id] = store.put_artifacts([artifact.mlmd_artifact])
    artifact.id = artifact_id
    return artifact_utils.deserialize_artifact(artifact.artifact_type, artifact.mlmd_artifact)


def examples(store, span, uri, dataset="trades"):
    from tfx.types import standard_artifacts

    artifact = standard_artifacts.Examples()
    artifact.uri = uri
    artifact.set_int_custom_property("span", span)
    artifact.set_string_custom_property("etrm_dataset", dataset)
    artifact.set_int_custom_property("etrm_period_days", 7)
    artifact.set_string_custom_property("etrm_history_start", "2024-01-01")
    return put(store, artifact)


def statistics(store, span, uri):
    from tfx.types import standard_artifacts

    artifact = standard_artifacts.ExampleStatistics()
    artifact.uri = uri
    artifact.span = span
    return put(store, artifact)


def run(store, query, input_metadata=None):
    """The query as KFP runs it: the newest `limit` matches (ids grow with creation)."""
    options = metadata_store.ListOptions(filter_query=kr.mlmd_filter(query, input_metadata))
    found = sorted(store.get_artifacts(list_options=options), key=lambda a: -a.id)
    return [a.id for a in found[:query.limit]]


@pytest.mark.parametrize("current_span", [0, 1, 2, 3, 5])
def test_previous_span_query_answers_as_the_strategy(store, current_span):
    from components.drift_gate.previous_span import PreviousSpanStrategy

    # Spans 0..3, span 1 ingested twice (a re-run after a crash): the newest copy counts.
    ingested = {"examples": [examples(store, s, f"/e/{i}") for i, s in enumerate([0, 1, 1, 2, 3])],
                "statistics": [statistics(store, s, f"/s/{i}") for i, s in enumerate([0, 1, 1, 2, 3])]}
    # The report LM's spans, ingested last, are not the trades pipeline's previous span.
    [examples(store, s, f"/reports/{s}", dataset="reports") for s in range(4)]
    expected = PreviousSpanStrategy(current_span).resolve_artifacts(store, ingested)
    queries = kr.previous_span_queries({"current_span": current_span},
                                       {"examples": "Examples", "statistics": "ExampleStatistics"},
                                       "trades")
    for key, query in queries.items():
        assert run(store, query) == [a.id for a in expected[key]], key


def test_span_window_query_keeps_the_window_of_one_calendar_grid(store):
    window = [examples(store, s, f"/e/{s}") for s in range(5)]
    [examples(store, s, f"/reports/{s}", dataset="reports") for s in range(5)]
    other_grid = examples(store, 2, "/daily/2")
    other_grid.set_int_custom_property("etrm_period_days", 1)
    store.put_artifacts([other_grid.mlmd_artifact])
    [query] = kr.span_window_queries({"first_span": 1, "last_span": 3, "period_days": 7,
                                      "history_start": "2024-01-01"}, {"examples": "Examples"},
                                     "trades").values()
    assert query.limit == 3
    assert run(store, query) == [window[3].id, window[2].id, window[1].id]


def test_stable_model_queries_find_the_model_pushed_as_the_version(store):
    from tfx.types import standard_artifacts
    from ml.core import metadata

    def pushed(model, version, name="etrm_risk_model"):
        """A ServingPusher execution: the Model in, the PushedModel out, as the executor records it."""
        push = standard_artifacts.PushedModel()
        push.uri = f"/pushed/{name}/{version}"
        push.set_int_custom_property("pushed", 1)
        push.set_string_custom_property("pushed_version", str(version))
        push.set_string_custom_property("pushed_destination", f"/serving/{name}/{version}")
        push.set_string_custom_property("model_name", name)
        push.set_string_custom_property("model_uri", model.uri)
        push = put(store, push)
        execution_type = store.put_execution_type(metadata_store_pb2.ExecutionType(name="ServingPusher"))
        [execution_id] = store.put_executions([metadata_store_pb2.Execution(type_id=execution_type)])
        events = []
        for artifact, kind, key in ((model, metadata_store_pb2.Event.INPUT, "model"),
                                    (push, metadata_store_pb2.Event.OUTPUT, "pushed_model")):
            event = metadata_store_pb2.Event(artifact_id=artifact.id, execution_id=execution_id, type=kind)
            event.path.steps.add().key = key
            events.append(event)
        store.put_events(events)

    models = []
    for i in range(3):
        model = standard_artifacts.Model()
        model.uri = f"/models/{i}"
        models.append(put(store, model))
    pushed(models[0], 1)
    pushed(models[1], 2)
    pushed(models[2], 1, name="etrm_report_lm")

    for version in (1, 2, 3):
        expected = metadata.model_pushed_as(store, "etrm_risk_model", version)
        [first] = [kr.pushed_model_query({"model_name": "etrm_risk_model", "version": version})]
        found_push = run(store, first)
        if expected is None:
            assert found_push == []
            continue
        [push] = store.get_artifacts_by_id(found_push)
        second = kr.pushed_model_source_query()
        assert run(store, second, {"model_uri": push.custom_properties["model_uri"].string_value}) == [expected.id]


def test_kfp_filters_use_the_compilers_syntax():
    query = kr.previous_span_queries({"current_span": 3}, {"examples": "Examples"}, "trades")["examples"]
    assert kr.kfp_filter(query) == ('schema_title="tfx.Examples" AND state=LIVE AND '
                                    'metadata.span.number_value<3 AND '
                                    'metadata.etrm_dataset.string_value="trades"')
    assert kr.kfp_filter(kr.pushed_model_source_query()) == (
        "schema_title=\"tfx.Model\" AND state=LIVE AND "
        "uri=\"{{$.inputs.artifacts['input'].metadata['model_uri']}}\"")
