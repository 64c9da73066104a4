"""The project's resolver strategies as Kubeflow Pipelines V2 artifact queries.

TFX's KFP V2 compiler turns only LatestArtifactStrategy and LatestBlessedModelStrategy into
ResolverSpec tasks; PreviousSpanStrategy, SpanWindowStrategy and ServingVersionModelStrategy make
it raise. Each of them is a query on artifact properties (newest first, `limit` artifacts), so
every Resolver node keeps its id and channels: it is compiled as a LatestArtifact task whose
filter is then replaced by the strategy's query. The stable model needs two queries, like
LatestBlessedModel: the PushedModel of the serving version, then the Model it pushed.

A query is also rendered as an ML Metadata filter (`mlmd_filter`) so its answer can be compared
with the strategy's own on a real store. What a query cannot see (the ValidationGate's verdict,
a dataset on statistics) is in the README's Kubeflow section.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
from typing import Dict, Iterator, List, Tuple, Union

Value = Union[int, str]
INPUT_KEY = "input"  # the input of a second-phase query (as in TFX's blessed-model tasks)
PUSHED_MODEL_TASK_SUFFIX = "-pushed-model-resolver"


@dataclasses.dataclass(frozen=True)
class Condition:
    """`metadata.<key> <op> <value>`; key "uri" is the artifact's URI; a value `InputMetadata`
    is read from the query's input artifact when it runs."""

    key: str
    op: str
    value: Union[Value, "InputMetadata"]


@dataclasses.dataclass(frozen=True)
class InputMetadata:
    """A metadata value of a second-phase query's input artifact (`model_uri`)."""

    key: str


@dataclasses.dataclass(frozen=True)
class ArtifactQuery:
    """LIVE artifacts of type_name meeting every condition, the newest `limit` of them."""

    type_name: str
    conditions: Tuple[Condition, ...] = ()
    limit: int = 1


def kfp_filter(query: ArtifactQuery) -> str:
    """The ResolverSpec filter, in the syntax TFX's compiler writes for its own strategies."""
    parts = [f'schema_title="tfx.{query.type_name}"', "state=LIVE"]
    for condition in query.conditions:
        value = condition.value
        if isinstance(value, InputMetadata):
            rendered = f"\"{{{{$.inputs.artifacts['{INPUT_KEY}'].metadata['{value.key}']}}}}\""
        else:
            rendered = str(value) if isinstance(value, int) else json.dumps(value)
        field = "uri" if condition.key == "uri" else (
            f"metadata.{condition.key}.{'number_value' if isinstance(value, int) else 'string_value'}")
        parts.append(f"{field}{condition.op}{rendered}")
    return " AND ".join(parts)


# The properties the project's artifacts carry as type properties in ML Metadata (StatisticsGen
# copies the span into one); the others are custom properties (ETRMExampleGen's span). KFP's
# artifact metadata holds both kinds, so its filters need no such distinction.
TYPE_PROPERTIES = {"ExampleStatistics": {"span"}}


def mlmd_filter(query: ArtifactQuery, input_metadata: Dict[str, str] = None) -> str:
    """The same query as an ML Metadata filter_query."""
    parts = [f"type = '{query.type_name}'", "state = LIVE"]
    for condition in query.conditions:
        value = condition.value
        if isinstance(value, InputMetadata):
            value = (input_metadata or {})[value.key]
        rendered = str(value) if isinstance(value, int) else "'" + value.replace("'", "\\'") + "'"
        if condition.key == "uri":
            parts.append(f"uri {condition.op} {rendered}")
            continue
        kind = "int_value" if isinstance(value, int) else "string_value"
        where = TYPE_PROPERTIES.get(query.type_name, set())
        field = "properties" if condition.key in where else "custom_properties"
        parts.append(f"{field}.{condition.key}.{kind} {condition.op} {rendered}")
    return " AND ".join(parts)


def _dataset_scope(type_name: str, dataset: str) -> Tuple[Condition, ...]:
    """Examples name their dataset (ETRMExampleGen's etrm_dataset), so their queries see only
    the pipeline's own; other types carry nothing to scope them by."""
    return (Condition("etrm_dataset", "=", dataset),) if type_name == "Examples" else ()


def previous_span_queries(config: Dict, channel_types: Dict[str, str],
                          dataset: str) -> Dict[str, ArtifactQuery]:
    return {key: ArtifactQuery(type_name, (Condition("span", "<", int(config["current_span"])),)
                               + _dataset_scope(type_name, dataset))
            for key, type_name in channel_types.items()}


def span_window_queries(config: Dict, channel_types: Dict[str, str],
                        dataset: str) -> Dict[str, ArtifactQuery]:
    first, last = int(config["first_span"]), int(config["last_span"])
    grid = (Condition("etrm_period_days", "=", int(config.get("period_days", 7))),
            Condition("etrm_history_start", "=", str(config.get("history_start", "2024-01-01"))))
    return {key: ArtifactQuery(type_name, (Condition("span", ">=", first),
                                           Condition("span", "<=", last))
                               + _dataset_scope(type_name, dataset) + grid,
                               limit=last - first + 1)
            for key, type_name in channel_types.items()}


def pushed_model_query(config: Dict) -> ArtifactQuery:
    """First phase of the stable model: the PushedModel that became the serving version."""
    return ArtifactQuery("PushedModel", (
        Condition("pushed", "=", 1), Condition("model_name", "=", str(config["model_name"])),
        Condition("pushed_version", "=", str(int(config["version"])))))


def pushed_model_source_query() -> ArtifactQuery:
    """Second phase: the Model whose URI the PushedModel recorded."""
    return ArtifactQuery("Model", (Condition("uri", "=", InputMetadata("model_uri")),))


def _query_builders():
    from components.drift_gate.previous_span import PreviousSpanStrategy
    from pipeline.strategies import ServingVersionModelStrategy, SpanWindowStrategy

    return {PreviousSpanStrategy: previous_span_queries,
            SpanWindowStrategy: span_window_queries,
            ServingVersionModelStrategy: None}  # two phases: see _chain_first_phase


@dataclasses.dataclass
class CompiledResolver:
    node_id: str
    strategy: str
    config: Dict
    queries: Dict[str, ArtifactQuery]
    pushed_model_query: ArtifactQuery = None


@contextlib.contextmanager
def as_latest_artifact_resolvers(pipeline) -> Iterator[List[CompiledResolver]]:
    """While open, the pipeline's custom-strategy Resolvers read as LatestArtifact ones (which
    the compiler accepts); yields what each of them must query instead. Restored on exit."""
    from tfx.dsl.components.common import resolver
    from tfx.dsl.input_resolution.strategies.latest_artifact_strategy import LatestArtifactStrategy

    from ml.core import registry

    builders = _query_builders()
    dataset = registry.get_model(pipeline.pipeline_info.pipeline_name).dataset
    compiled, saved = [], []
    for node in pipeline.components:
        if not isinstance(node, resolver.Resolver):
            continue
        strategy = node.exec_properties[resolver.RESOLVER_STRATEGY_CLASS]
        if strategy not in builders:
            continue
        config = dict(node.exec_properties[resolver.RESOLVER_CONFIG] or {})
        types = {key: channel.type.TYPE_NAME for key, channel in node.inputs.items()}
        if builders[strategy] is None:
            entry = CompiledResolver(node.id, strategy.__name__, config,
                                     {key: pushed_model_source_query() for key in types},
                                     pushed_model_query(config))
        else:
            entry = CompiledResolver(node.id, strategy.__name__, config,
                                     builders[strategy](config, types, dataset))
        compiled.append(entry)
        # Resolver.exec_properties is built from these two attributes on every read.
        saved.append((node, node._strategy_class, node._config))
        node._strategy_class, node._config = LatestArtifactStrategy, {}
    try:
        yield compiled
    finally:
        for node, strategy, config in saved:
            node._strategy_class, node._config = strategy, config


def apply_queries(spec: Dict, compiled: List[CompiledResolver]) -> Dict:
    """Writes each resolver's queries into the compiled PipelineSpec (a dict), and the first
    phase of a two-phase one as its own task feeding the node's task."""
    executors = spec["deploymentSpec"]["executors"]
    for entry in compiled:
        queries = executors[f"{entry.node_id}_executor"]["resolver"]["outputArtifactQueries"]
        for key, query in entry.queries.items():
            queries[key] = {"filter": kfp_filter(query)}
            if query.limit > 1:
                queries[key]["limit"] = query.limit
        # The task's parameters name the strategy the queries implement, not LatestArtifact.
        parameters = spec["root"]["dag"]["tasks"][entry.node_id].get("inputs", {}).get("parameters", {})
        for name, value in (("resolver_class", entry.strategy),
                            ("source_uri", json.dumps(entry.config, sort_keys=True))):
            if name in parameters:
                parameters[name] = {"runtimeValue": {"constantValue": {"stringValue": value}}}
        if entry.pushed_model_query is not None:
            _chain_first_phase(spec, entry.node_id, entry.pushed_model_query)
    return spec


def _chain_first_phase(spec: Dict, node_id: str, query: ArtifactQuery) -> None:
    from google.protobuf import json_format
    from tfx.orchestration.kubeflow.v2 import compiler_utils
    from tfx.types import channel, standard_artifacts

    first = node_id + PUSHED_MODEL_TASK_SUFFIX
    pushed = channel.Channel(type=standard_artifacts.PushedModel)
    spec["deploymentSpec"]["executors"][f"{first}_executor"] = {
        "resolver": {"outputArtifactQueries": {"pushed_model": {"filter": kfp_filter(query)}}}}
    spec["components"][first] = {
        "executorLabel": f"{first}_executor",
        "outputDefinitions": {"artifacts": {"pushed_model": json_format.MessageToDict(
            compiler_utils.build_output_artifact_spec(pushed))}}}
    spec["components"][node_id].setdefault("inputDefinitions", {}).setdefault(
        "artifacts", {})[INPUT_KEY] = json_format.MessageToDict(
            compiler_utils.build_input_artifact_spec(pushed))
    tasks = spec["root"]["dag"]["tasks"]
    tasks[first] = {"taskInfo": {"name": first}, "componentRef": {"name": first}}
    task = tasks[node_id]
    task.setdefault("inputs", {}).setdefault("artifacts", {})[INPUT_KEY] = {
        "taskOutputArtifact": {"producerTask": first, "outputArtifactKey": "pushed_model"}}
    task["dependentTasks"] = sorted(set(task.get("dependentTasks", [])) | {first})
