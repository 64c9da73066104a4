"""Lineage of a served version in ML Metadata: from the push back to everything it came from,
and forward from a span to every Model trained on it.

The walk goes layer by layer over events, four batched calls a layer (events of the frontier's
artifacts, their executions, those executions' events, the new artifacts), never one query per
node. It follows producers upstream, and downstream only into the checks run on the data
(statistics, ExampleValidator, ValidationGate, drift), and it stops at the Models a Trainer
warm-started from and an Evaluator compared with: those are named (with their serving
version), not walked, or every lineage would contain every earlier version's.

`store.get_lineage_subgraph` works in this ML Metadata build (1.16 on SQLite; probed with a
filter query, no ZetaSQL error) and is not used: it stops at nodes, not at edges by input key,
so upstream from v2's push it returned v1's Trainer and spans and 17 resolver runs, and it never
reaches the data checks, which lie downstream of the Examples. Filtering its answer and then
walking the checks would be a second traversal, while this walk alone took no longer than
that one call (benchmarks/bench_lineage.py times both, and the naive walk, one call a node).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from typing import Dict, Iterable, List, Optional, Set

from ml_metadata.proto import metadata_store_pb2

from ml.core import metadata
from ml.core.validation_results import anomalies_by_split

Artifact = metadata_store_pb2.Artifact
Execution = metadata_store_pb2.Execution
Event = metadata_store_pb2.Event

PRODUCED = (Event.OUTPUT, Event.DECLARED_OUTPUT)
CONSUMED = (Event.INPUT, Event.DECLARED_INPUT)
# Executions that check data: the walk goes downstream into these only.
DATA_CHECKS = frozenset({"StatisticsGen", "ExampleValidator", "ValidationGate", "DriftCheck",
                         "DriftGate"})
# Inputs named but not walked: another version's Model, the span a drift check compared with.
NOT_WALKED_INPUTS = frozenset({"base_model", "baseline_model", "previous_examples",
                               "previous_statistics"})


class LineageError(LookupError):
    """A lineage question ML Metadata cannot answer (unknown version, no such span)."""


def short_type(execution_or_type) -> str:
    """'tfx.components.trainer.component.Trainer' -> 'Trainer'."""
    name = execution_or_type if isinstance(execution_or_type, str) else execution_or_type.type
    return name.rsplit(".", 1)[-1]


def event_key(event: Event) -> str:
    return event.path.steps[0].key if event.path.steps else ""


def iso_ms(milliseconds: int) -> str:
    return dt.datetime.fromtimestamp(milliseconds / 1000.0, dt.timezone.utc).isoformat(
        timespec="seconds")


def property_value(value: metadata_store_pb2.Value):
    kind = value.WhichOneof("value")
    if kind in ("int_value", "double_value", "string_value", "bool_value"):
        return getattr(value, kind)
    if kind == "struct_value":
        from google.protobuf import json_format
        return json_format.MessageToDict(value.struct_value)
    return None


def properties(node) -> Dict:
    """Properties and custom properties of an artifact or execution, as plain values."""
    values = {name: property_value(value) for name, value in node.properties.items()}
    values.update({name: property_value(value) for name, value in node.custom_properties.items()})
    return values


@dataclasses.dataclass
class LineageGraph:
    """Artifacts and executions reached, and the events between them."""

    artifacts: Dict[int, Artifact] = dataclasses.field(default_factory=dict)
    executions: Dict[int, Execution] = dataclasses.field(default_factory=dict)
    events: List[Event] = dataclasses.field(default_factory=list)
    calls: int = 0

    def inputs(self, execution_id: int, key: str) -> List[Artifact]:
        return self._ends(execution_id, key, CONSUMED)

    def outputs(self, execution_id: int, key: str) -> List[Artifact]:
        return self._ends(execution_id, key, PRODUCED)

    def _ends(self, execution_id: int, key: str, types) -> List[Artifact]:
        found = sorted(((event.path.steps[-1].index if len(event.path.steps) > 1 else 0,
                         event.artifact_id) for event in self.events
                        if event.execution_id == execution_id and event.type in types
                        and event_key(event) == key and event.artifact_id in self.artifacts))
        return [self.artifacts[artifact_id] for _, artifact_id in found]

    def producer(self, artifact_id: int) -> Optional[Execution]:
        for event in self.events:
            if event.artifact_id == artifact_id and event.type in PRODUCED:
                return self.executions.get(event.execution_id)
        return None

    def consumers(self, artifact_id: int, kind: str) -> List[Execution]:
        ids = {event.execution_id for event in self.events
               if event.artifact_id == artifact_id and event.type in CONSUMED}
        return sorted((self.executions[i] for i in ids
                       if i in self.executions and short_type(self.executions[i]) == kind),
                      key=lambda execution: execution.id)


def walk(store, start_artifact_ids: Iterable[int]) -> LineageGraph:
    """Everything the start artifacts came from, and the checks run on that data."""
    graph = LineageGraph()
    frontier: Set[int] = set(start_artifact_ids)
    graph.artifacts.update({a.id: a for a in store.get_artifacts_by_id(sorted(frontier))})
    graph.calls += 1
    walked: Set[int] = set()
    seen_events = set()
    while frontier:
        walked |= frontier
        artifact_events = store.get_events_by_artifact_ids(sorted(frontier))
        graph.calls += 1
        candidates = {event.execution_id for event in artifact_events
                      if event.execution_id not in graph.executions
                      and (event.type in PRODUCED or (event.type in CONSUMED
                                                      and event_key(event) not in NOT_WALKED_INPUTS))}
        if not candidates:
            break
        fetched = store.get_executions_by_id(sorted(candidates))
        graph.calls += 1
        producers = {event.execution_id for event in artifact_events if event.type in PRODUCED}
        new = [e for e in fetched if e.id in producers or short_type(e) in DATA_CHECKS]
        if not new:
            break
        graph.executions.update({e.id: e for e in new})
        execution_events = store.get_events_by_execution_ids([e.id for e in new])
        graph.calls += 1
        next_frontier: Set[int] = set()
        for event in execution_events:
            if event.type not in PRODUCED + CONSUMED:
                continue
            identity = (event.execution_id, event.artifact_id, event.type, event_key(event))
            if identity not in seen_events:
                seen_events.add(identity)
                graph.events.append(event)
            if event.type in CONSUMED and event_key(event) in NOT_WALKED_INPUTS:
                continue
            if event.artifact_id not in walked:
                next_frontier.add(event.artifact_id)
        missing = sorted({event.artifact_id for event in graph.events} - set(graph.artifacts))
        if missing:
            graph.artifacts.update({a.id: a for a in store.get_artifacts_by_id(missing)})
            graph.calls += 1
        frontier = next_frontier
    return graph


def pushes_of(store, model_ids: Iterable[int]) -> Dict[int, Dict]:
    """Model artifact id -> {'model': serving name, 'version': N} of its push (three batched
    calls; Models never pushed are absent)."""
    model_ids = sorted(set(model_ids))
    if not model_ids:
        return {}
    consumer_of = {event.execution_id: event.artifact_id
                   for event in store.get_events_by_artifact_ids(model_ids)
                   if event.type in CONSUMED and event_key(event) == "model"}
    if not consumer_of:
        return {}
    pushed_by = {event.artifact_id: consumer_of[event.execution_id]
                 for event in store.get_events_by_execution_ids(sorted(consumer_of))
                 if event.type in PRODUCED and event_key(event) == "pushed_model"}
    pushes = {}
    for pushed in store.get_artifacts_by_id(sorted(pushed_by)) if pushed_by else []:
        props = pushed.custom_properties
        if "pushed" in props and props["pushed"].int_value:
            destination = props["pushed_destination"].string_value
            pushes[pushed_by[pushed.id]] = {
                "model": os.path.basename(os.path.dirname(destination)),
                "version": int(props["pushed_version"].string_value)}
    return pushes


def serving_versions_of(store, model_ids: Iterable[int]) -> Dict[int, int]:
    """Model artifact id -> the serving version it was pushed as."""
    return {model_id: push["version"] for model_id, push in pushes_of(store, model_ids).items()}


def find_push(store, model_name: str, version: int) -> Artifact:
    for pushed in metadata.pushed_models(store, model_name):
        if int(pushed.custom_properties["pushed_version"].string_value) == int(version):
            return pushed
    known = [int(p.custom_properties["pushed_version"].string_value)
             for p in metadata.pushed_models(store, model_name)]
    raise LineageError(f"{model_name} has no pushed version {version} in ML Metadata"
                       + (f" (pushed versions: {', '.join(map(str, known))})" if known
                          else " (nothing was pushed)"))


def _artifact_ref(artifact: Optional[Artifact]) -> Optional[Dict]:
    if artifact is None:
        return None
    return {"artifact_id": artifact.id, "type": artifact.type, "uri": artifact.uri}


def _execution_ref(execution: Optional[Execution]) -> Optional[Dict]:
    if execution is None:
        return None
    return {"execution_id": execution.id, "component": short_type(execution),
            "state": Execution.State.Name(execution.last_known_state),
            "started_at": iso_ms(execution.create_time_since_epoch),
            "duration_s": round((execution.last_update_time_since_epoch
                                 - execution.create_time_since_epoch) / 1000.0, 2)}


def _json_or_text(text):
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _model_ref(artifact: Optional[Artifact], versions: Dict[int, int]) -> Optional[Dict]:
    if artifact is None:
        return None
    return {"model_artifact_id": artifact.id, "uri": artifact.uri,
            "serving_version": versions.get(artifact.id)}


def _first(items):
    return items[0] if items else None


def _examples_entry(graph: LineageGraph, examples: Artifact) -> Dict:
    """One span: where it came from, its generator settings and the checks run on it."""
    props = examples.custom_properties
    entry = {"artifact_id": examples.id, "uri": examples.uri,
             "span": props["span"].int_value if "span" in props else None,
             "period": {"start": props["etrm_period_start"].string_value,
                        "end": props["etrm_period_end"].string_value}
             if "etrm_period_start" in props else None,
             "generator": metadata.generator_settings(examples),
             "example_gen": _execution_ref(graph.producer(examples.id))}
    statistics_run = _first(graph.consumers(examples.id, "StatisticsGen"))
    statistics = _first(graph.outputs(statistics_run.id, "statistics")) if statistics_run else None
    entry["statistics"] = _artifact_ref(statistics)
    validator = _first(graph.consumers(statistics.id, "ExampleValidator")) if statistics else None
    anomalies = _first(graph.outputs(validator.id, "anomalies")) if validator else None
    gate = _first(graph.consumers(examples.id, "ValidationGate"))
    entry["validation"] = {
        "anomalies": _artifact_ref(anomalies),
        "splits_without_anomalies": properties(anomalies).get("blessed") if anomalies else None,
        "anomalies_by_split": anomalies_by_split(anomalies.uri) if anomalies else None,
        "gate": _execution_ref(gate),
    }
    drift_check = next((run for run in graph.consumers(examples.id, "DriftCheck")
                        if examples in graph.inputs(run.id, "examples")), None)
    drift = _first(graph.outputs(drift_check.id, "drift_result")) if drift_check else None
    if drift is not None:
        values = properties(drift)
        previous = _first(graph.inputs(drift_check.id, "previous_examples"))
        entry["drift"] = {
            "artifact_id": drift.id, "drift_status": values.get("drift_status"),
            "skew_status": values.get("skew_status"),
            "drifted_features": values.get("drifted_features") or "",
            "skewed_features": values.get("skewed_features") or "",
            "blocked": bool(values.get("blocked")),
            "against_span": (previous.custom_properties["span"].int_value
                             if previous is not None and "span" in previous.custom_properties
                             else None),
            "gate": _execution_ref(_first(graph.consumers(drift.id, "DriftGate"))),
        }
    else:
        entry["drift"] = None
    return entry


def describe_push(store, model_name: str, version: int, graph: Optional[LineageGraph] = None
                  ) -> Dict:
    """The whole lineage of one pushed version as plain data (JSON-ready), plus the graph."""
    from ml.core.evaluation_results import overall_metrics

    pushed = find_push(store, model_name, version)
    graph = graph or walk(store, [pushed.id])
    pusher = graph.producer(pushed.id)
    model = _first(graph.inputs(pusher.id, "model")) if pusher else None
    trainer = graph.producer(model.id) if model else None
    blessing = _first(graph.inputs(pusher.id, "model_blessing")) if pusher else None
    evaluator = graph.producer(blessing.id) if blessing else None
    infra = _first(graph.inputs(pusher.id, "infra_blessing")) if pusher else None
    canary = graph.producer(infra.id) if infra else None
    transform_graph = _first(graph.inputs(trainer.id, "transform_graph")) if trainer else None
    transform = graph.producer(transform_graph.id) if transform_graph else None
    schema = _first(graph.inputs(trainer.id, "schema")) if trainer else None
    base = _first(graph.inputs(trainer.id, "base_model")) if trainer else None
    baseline = _first(graph.inputs(evaluator.id, "baseline_model")) if evaluator else None
    versions = serving_versions_of(store, [m.id for m in (base, baseline) if m is not None])
    examples = sorted(graph.inputs(trainer.id, "examples") if trainer else [],
                      key=lambda a: (a.custom_properties["span"].int_value
                                     if "span" in a.custom_properties else -1, a.id))
    push_props = properties(pushed)
    lineage = {
        "model": model_name, "version": int(version),
        "push": {"artifact_id": pushed.id, "uri": pushed.uri,
                 "pushed_at": iso_ms(pusher.last_update_time_since_epoch) if pusher else None,
                 "push_key": push_props.get("push_key") or None,
                 "destination": push_props.get("pushed_destination"),
                 "execution": _execution_ref(pusher)},
        "model_artifact": _artifact_ref(model),
        "trainer": None, "transform": None, "schema": None,
        "spans": [], "examples": [_examples_entry(graph, e) for e in examples],
        "evaluation": None, "infra_blessing": None,
    }
    if trainer is not None:
        values = properties(trainer)
        lineage["trainer"] = dict(_execution_ref(trainer), **{
            "run_fn": values.get("run_fn") or None, "module_file": values.get("module_file") or None,
            "train_args": _json_or_text(values.get("train_args")),
            "eval_args": _json_or_text(values.get("eval_args")),
            "custom_config": _json_or_text(values.get("custom_config")),
            "warm_start_parent": _model_ref(base, versions)})
    if transform is not None:
        values = properties(transform)
        lineage["transform"] = dict(_execution_ref(transform), **{
            "preprocessing_fn": values.get("preprocessing_fn") or None,
            "module_file": values.get("module_file") or None,
            "transform_graph": _artifact_ref(transform_graph)})
    if schema is not None:
        importer = graph.producer(schema.id)
        lineage["schema"] = dict(_artifact_ref(schema), schema_file=(
            properties(importer).get("schema_file") if importer else None))
    if evaluator is not None:
        evaluation = _first(graph.outputs(evaluator.id, "evaluation"))
        metrics = overall_metrics(evaluation.uri) if evaluation and os.path.isdir(evaluation.uri) else {}
        lineage["evaluation"] = dict(_execution_ref(evaluator), **{
            "evaluation": _artifact_ref(evaluation),
            "metrics": metrics.get("candidate", {}),
            "baseline_metrics": metrics.get("baseline", {}),
            "ngram_metrics": metrics.get("ngram", {}),
            "blessed": bool(blessing.custom_properties["blessed"].int_value)
            if "blessed" in blessing.custom_properties else None,
            "blessing_artifact_id": blessing.id,
            "baseline": _model_ref(baseline, versions)})
    if infra is not None:
        values = properties(infra)
        lineage["infra_blessing"] = dict(_execution_ref(canary) or {}, **{
            "artifact_id": infra.id, "blessed": bool(values.get("blessed")),
            "latency_p50_ms": values.get("latency_p50_ms"),
            "latency_p99_ms": values.get("latency_p99_ms")})
    lineage["spans"] = [entry["span"] for entry in lineage["examples"]]
    lineage["graph"] = graph_nodes(graph)
    return lineage


def graph_nodes(graph: LineageGraph) -> Dict[str, List[Dict]]:
    """Nodes and edges for drawing: 'a<id>' artifacts, 'e<id>' executions; edges follow the
    data (artifact -> consuming execution -> produced artifact)."""
    nodes = []
    for artifact in sorted(graph.artifacts.values(), key=lambda a: a.id):
        props = artifact.custom_properties
        detail = (f"span {props['span'].int_value}" if artifact.type == "Examples" and "span" in props
                  else f"v{props['pushed_version'].string_value}"
                  if artifact.type == "PushedModel" and "pushed_version" in props else "")
        nodes.append({"id": f"a{artifact.id}", "kind": "artifact", "type": artifact.type,
                      "label": f"{artifact.type} #{artifact.id}" + (f" ({detail})" if detail else "")})
    for execution in sorted(graph.executions.values(), key=lambda e: e.id):
        nodes.append({"id": f"e{execution.id}", "kind": "execution", "type": short_type(execution),
                      "label": f"{short_type(execution)} #{execution.id}",
                      "state": Execution.State.Name(execution.last_known_state)})
    edges = []
    for event in graph.events:
        if event.artifact_id not in graph.artifacts:
            continue
        if event.type in CONSUMED:
            edges.append({"from": f"a{event.artifact_id}", "to": f"e{event.execution_id}",
                          "key": event_key(event)})
        else:
            edges.append({"from": f"e{event.execution_id}", "to": f"a{event.artifact_id}",
                          "key": event_key(event)})
    return {"nodes": nodes, "edges": edges}


def models_trained_on_span(store, span: int, pipeline_name: Optional[str] = None) -> List[Dict]:
    """Every Model a Trainer trained on this span (newest Examples or any re-ingestion of it),
    with the serving version it was pushed as (None if it never was), oldest first."""
    examples = [a for a in store.get_artifacts_by_type("Examples")
                if "span" in a.custom_properties and a.custom_properties["span"].int_value == span]
    if pipeline_name is not None:
        context = store.get_context_by_type_and_name("pipeline", pipeline_name)
        if context is None:
            raise LineageError(f"no pipeline {pipeline_name!r} in ML Metadata")
        in_pipeline = {a.id for a in store.get_artifacts_by_context(context.id)}
        examples = [a for a in examples if a.id in in_pipeline]
    if not examples:
        where = f" of pipeline {pipeline_name}" if pipeline_name else ""
        raise LineageError(f"no Examples of span {span}{where} in ML Metadata")
    by_examples = {a.id: a for a in examples}
    trainer_ids = sorted({event.execution_id
                          for event in store.get_events_by_artifact_ids(sorted(by_examples))
                          if event.type in CONSUMED and event_key(event) == "examples"})
    trainers = [e for e in (store.get_executions_by_id(trainer_ids) if trainer_ids else [])
                if short_type(e) == "Trainer"]
    if not trainers:
        return []
    events = store.get_events_by_execution_ids([t.id for t in trainers])
    model_of = {event.execution_id: event.artifact_id for event in events
                if event.type in PRODUCED and event_key(event) == "model"}
    spans_of: Dict[int, List[int]] = {}
    window_ids = {event.artifact_id for event in events
                  if event.type in CONSUMED and event_key(event) == "examples"}
    windows = {a.id: a for a in store.get_artifacts_by_id(sorted(window_ids))}
    for event in events:
        if event.type in CONSUMED and event_key(event) == "examples":
            props = windows[event.artifact_id].custom_properties
            if "span" in props:
                spans_of.setdefault(event.execution_id, []).append(props["span"].int_value)
    pushes = pushes_of(store, model_of.values())
    rows = []
    for trainer in sorted(trainers, key=lambda e: e.id):
        model_id = model_of.get(trainer.id)
        rows.append({"model_artifact_id": model_id, "trainer": _execution_ref(trainer),
                     "spans": sorted(spans_of.get(trainer.id, [])),
                     "pushed_as": pushes.get(model_id)})
    return rows
