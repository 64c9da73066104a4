"""Every question the platform asks ML Metadata (never answered by listing folders).

Spans ingested, a run's executions, an execution's inputs and outputs, the version a Model was
pushed as, the latest pushed model and the training Examples behind it. Lineage, continuous
learning and the dashboard ask the same functions."""
from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import threading
from typing import Dict, List, Optional

from ml_metadata import errors as metadata_errors
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from ml.core.metadata_target import (PASSWORD_ENV_VAR, PASSWORD_FILE_ENV_VAR, REDACTED,
                                      MetadataTarget)

EXAMPLE_GEN_NODE = "ETRMExampleGen"
# What reading a store can raise besides LookupError: a locked, corrupt or unreadable database.
STORE_ERRORS = (metadata_errors.StatusError, OSError)
_STDERR_LOCK = threading.Lock()


def sqlite_config(path: str) -> metadata_store_pb2.ConnectionConfig:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    return config


def mysql_config(target: MetadataTarget, create: bool = True) -> metadata_store_pb2.ConnectionConfig:
    """A MySQL/MariaDB connection; create=False never creates the database (for reads).
    ML Metadata's client logs in with mysql_native_password: MariaDB's default, not MySQL 8's."""
    config = metadata_store_pb2.ConnectionConfig()
    mysql = config.mysql
    mysql.database, mysql.user = target.database, target.user
    if target.socket:
        mysql.socket = target.socket
    else:
        mysql.host, mysql.port = target.host, target.port
    if target.password:
        mysql.password = target.password
    mysql.skip_db_creation = not create
    return config


def target_config(target: MetadataTarget, read_only: bool = False) -> metadata_store_pb2.ConnectionConfig:
    """The connection to a metadata target; read_only opens neither create nor write."""
    if not target.is_sqlite:
        return mysql_config(target, create=not read_only)
    config = sqlite_config(str(target.sqlite_path))
    if read_only:
        config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return config


def open_store(connection_config: metadata_store_pb2.ConnectionConfig) -> metadata_store.MetadataStore:
    return metadata_store.MetadataStore(connection_config)


def connection_for(home) -> metadata_store_pb2.ConnectionConfig:
    """The ML Metadata connection of a project home (`ml.core.home.Home`): its --metadata
    target, else $ETRM_METADATA, else <home>/ml_metadata.json, else its SQLite file."""
    return target_config(home.metadata)


class StoreUnavailable(ConnectionError):
    """The home's ML Metadata cannot be opened (server down, wrong password, unusable file)."""


def store_for(home) -> metadata_store.MetadataStore:
    """An open store on a project home's ML Metadata; StoreUnavailable (one line naming the
    target, never the password) when it cannot be opened."""
    target = home.metadata
    try:
        return open_store(target_config(target))
    except (RuntimeError, metadata_errors.StatusError) as exc:
        raise StoreUnavailable(f"cannot open ML Metadata at {target.describe()}: "
                               f"{store_error_reason(exc, target)}") from None


def has_store(home) -> bool:
    """Whether the home's ML Metadata may hold anything: its SQLite file exists (a server
    database is asked when opened)."""
    target = home.metadata
    return not target.is_sqlite or target.sqlite_path.is_file()


def existing_store(home) -> metadata_store.MetadataStore:
    """A read-only store on a home's ML Metadata, for questions about what ran: opening must
    neither create an empty database in a mistyped home nor write into a kept one. A
    LookupError naming the home (or the server) when it has none or cannot be reached."""
    target = home.metadata
    if target.is_sqlite and not target.sqlite_path.is_file():
        raise LookupError(f"home {home.root} has no ML Metadata ({target.sqlite_path} does not exist)")
    try:
        with _native_stderr_muted(not target.is_sqlite):
            return open_store(target_config(target, read_only=True))
    except (RuntimeError, metadata_errors.StatusError) as exc:  # what the constructor raises
        raise LookupError(f"cannot read ML Metadata at {target.describe()}: "
                          f"{store_error_reason(exc, target)}") from None


@contextlib.contextmanager
def _native_stderr_muted(mute: bool):
    """ML Metadata's C++ MySQL client logs a failed login to fd 2 in several lines; the
    LookupError of a read-only command says it in one. (fd 2 is process-wide: the lock keeps
    two threads from restoring each other's copy.)"""
    if not mute:
        yield
        return
    with _STDERR_LOCK:
        sys.stderr.flush()
        saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)


def store_error_reason(exc: BaseException, target: MetadataTarget) -> str:
    """The useful part of a store error, with any password blanked."""
    reason = str(exc).replace("Error when executing query: ", "", 1).split(" query:", 1)[0]
    if not target.is_sqlite and "mysql_real_connect failed" in reason:
        reason = (f"cannot log in as {target.user} (is the server up and the password right? "
                  "ML Metadata logs in with mysql_native_password, MariaDB's default but not "
                  "MySQL 8's)" + ("" if target.password else
                                  f"; no password was given (${PASSWORD_ENV_VAR} or "
                                  f"${PASSWORD_FILE_ENV_VAR})"))
    elif not target.is_sqlite and "Unknown database" in reason:
        reason = f"database {target.database} does not exist (a pipeline run creates it)"
    return reason.replace(target.password, REDACTED) if target.password else reason


def _node_context(store, pipeline_name: str, node_id: str):
    return store.get_context_by_type_and_name("node", f"{pipeline_name}.{node_id}")


def _node_executions(store, pipeline_name: str, node_id: str) -> List[metadata_store_pb2.Execution]:
    """A node's executions, as TFX's IR runners record them (a `node` context) and as its
    legacy launcher does (AirflowDagRunner: executions of the pipeline context whose
    `component_id` property is the node id)."""
    found = {}
    context = _node_context(store, pipeline_name, node_id)
    if context is not None:
        found.update((e.id, e) for e in store.get_executions_by_context(context.id))
    pipeline = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline is not None:
        found.update((e.id, e) for e in store.get_executions_by_context(pipeline.id)
                     if "component_id" in e.properties
                     and e.properties["component_id"].string_value == node_id)
    return [found[key] for key in sorted(found)]


def _node_outputs(store, pipeline_name: str, node_id: str) -> List[metadata_store_pb2.Artifact]:
    """The artifacts a node's executions produced (under either runner, see _node_executions)."""
    execution_ids = [e.id for e in _node_executions(store, pipeline_name, node_id)]
    if not execution_ids:
        return []
    ids = {event.artifact_id for event in store.get_events_by_execution_ids(execution_ids)
           if event.type == metadata_store_pb2.Event.OUTPUT}
    return store.get_artifacts_by_id(sorted(ids)) if ids else []


def ingested_spans(store, pipeline_name: str, node_id: str = EXAMPLE_GEN_NODE) -> List[int]:
    """Spans of the live Examples artifacts the pipeline's ExampleGen has produced."""
    spans = set()
    for artifact in _node_outputs(store, pipeline_name, node_id):
        if artifact.state == metadata_store_pb2.Artifact.LIVE and "span" in artifact.custom_properties:
            spans.add(artifact.custom_properties["span"].int_value)
    return sorted(spans)


def ingested_span_settings(store, pipeline_name: str,
                           node_id: str = EXAMPLE_GEN_NODE) -> Dict[int, Dict]:
    """Span -> the generator settings recorded on its newest live Examples artifact: what
    regenerates the span's records exactly (ml.synthetic.spans.SpanRequest.from_properties)."""
    found: Dict[int, Dict] = {}
    for artifact in sorted(_node_outputs(store, pipeline_name, node_id), key=lambda a: a.id):
        if artifact.state == metadata_store_pb2.Artifact.LIVE and "span" in artifact.custom_properties:
            found[artifact.custom_properties["span"].int_value] = generator_settings(artifact)
    return dict(sorted(found.items()))


def next_span(store, pipeline_name: str) -> int:
    """The span after the newest one ingested; 0 for a new pipeline."""
    spans = ingested_spans(store, pipeline_name)
    return spans[-1] + 1 if spans else 0


def executions_since(store, pipeline_name: str, since_ms: int) -> List[Dict]:
    """Each node execution of the pipeline started at or after since_ms, in start order."""
    pipeline_context = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline_context is None:
        return []
    node_type_id = store.get_context_type("node").id
    rows = []
    for execution in store.get_executions_by_context(pipeline_context.id):
        if execution.create_time_since_epoch < since_ms:
            continue
        node_ids = [c.name.split(".", 1)[-1] for c in store.get_contexts_by_execution(execution.id)
                    if c.type_id == node_type_id]
        rows.append({
            "component": node_ids[0] if node_ids else execution.type,
            "execution_id": execution.id,
            "state": metadata_store_pb2.Execution.State.Name(execution.last_known_state),
            "duration_s": round((execution.last_update_time_since_epoch
                                 - execution.create_time_since_epoch) / 1000.0, 2),
            "started_ms": execution.create_time_since_epoch,
        })
    return sorted(rows, key=lambda row: (row["started_ms"], row["execution_id"]))


def run_executions(store, pipeline_name: str, run_id: str) -> Dict[str, str]:
    """The execution state of each node of one run (node id -> COMPLETE, CACHED, RUNNING...).

    TFX's IR runners (LocalDagRunner) record a run as a `pipeline_run` context named run_id and
    a node as a `node` context; its legacy launcher (AirflowDagRunner) records a `run` context
    named pipeline.run_id and the node id as the execution's `component_id` property, and
    leaves an execution that raised RUNNING."""
    context = store.get_context_by_type_and_name("pipeline_run", run_id)
    node_type = store.get_context_type("node") if context is not None else None
    if context is None:
        context = store.get_context_by_type_and_name("run", f"{pipeline_name}.{run_id}")
    if context is None:
        return {}
    states = {}
    for execution in sorted(store.get_executions_by_context(context.id), key=lambda e: e.id):
        if node_type is not None:
            names = [c.name.split(".", 1)[-1] for c in store.get_contexts_by_execution(execution.id)
                     if c.type_id == node_type.id]
            node_id = names[0] if names else execution.type
        else:
            node_id = execution.properties["component_id"].string_value
        states[node_id] = metadata_store_pb2.Execution.State.Name(execution.last_known_state)
    return states


def output_artifacts(store, execution_id: int) -> Dict[str, List[metadata_store_pb2.Artifact]]:
    """Artifacts an execution produced, by output key."""
    return _artifacts_by_event(store, execution_id, metadata_store_pb2.Event.OUTPUT)


def input_artifacts(store, execution_id: int) -> Dict[str, List[metadata_store_pb2.Artifact]]:
    """Artifacts an execution read, by input key."""
    return _artifacts_by_event(store, execution_id, metadata_store_pb2.Event.INPUT)


def _artifacts_by_event(store, execution_id: int, event_type) -> Dict[str, List[metadata_store_pb2.Artifact]]:
    by_key: Dict[str, List[int]] = {}
    for event in store.get_events_by_execution_ids([execution_id]):
        if event.type != event_type:
            continue
        key = event.path.steps[0].key if event.path.steps else ""
        by_key.setdefault(key, []).append(event.artifact_id)
    return {key: store.get_artifacts_by_id(ids) for key, ids in by_key.items()}


def pushed_version_of_model(store, model_artifact_id: int) -> Optional[int]:
    """The serving version a Model artifact was pushed as, following lineage in ML Metadata."""
    events = store.get_events_by_artifact_ids([model_artifact_id])
    for event in events:
        if event.type != metadata_store_pb2.Event.INPUT:
            continue
        for pushed in output_artifacts(store, event.execution_id).get("pushed_model", []):
            if pushed.custom_properties.get("pushed") and pushed.custom_properties["pushed"].int_value:
                return int(pushed.custom_properties["pushed_version"].string_value)
    return None


def producer_inputs(store, artifact_id: int, key: str) -> Optional[metadata_store_pb2.Artifact]:
    """The first `key` input of the execution that produced an artifact (None if none)."""
    for event in store.get_events_by_artifact_ids([artifact_id]):
        if event.type == metadata_store_pb2.Event.OUTPUT:
            found = input_artifacts(store, event.execution_id).get(key)
            if found:
                return found[0]
    return None


def _newest_span(store, artifact_id: int, key: str) -> Optional[metadata_store_pb2.Artifact]:
    """The producer's `key` input with the highest span (a window's Trainer reads many)."""
    for event in store.get_events_by_artifact_ids([artifact_id]):
        if event.type == metadata_store_pb2.Event.OUTPUT:
            found = input_artifacts(store, event.execution_id).get(key)
            if found:
                return max(found, key=lambda a: (a.custom_properties["span"].int_value
                                                 if "span" in a.custom_properties else -1, a.id))
    return None


def pushed_models(store, model_name: str) -> List[metadata_store_pb2.Artifact]:
    """PushedModel artifacts that really pushed a version of model_name, oldest first."""
    pushed = []
    for artifact in store.get_artifacts_by_type("PushedModel"):
        props = artifact.custom_properties
        if not ("pushed" in props and props["pushed"].int_value):
            continue
        if os.path.basename(os.path.dirname(props["pushed_destination"].string_value)) == model_name:
            pushed.append(artifact)
    return sorted(pushed, key=lambda a: a.id)


def latest_pushed_model(store, model_name: str) -> Optional[metadata_store_pb2.Artifact]:
    """The newest PushedModel artifact that was really pushed for model_name (or None)."""
    pushed = pushed_models(store, model_name)
    return pushed[-1] if pushed else None


def generator_settings(examples: metadata_store_pb2.Artifact) -> Dict:
    """The generator settings ETRMExampleGen recorded on an Examples artifact (etrm_* properties)."""
    return {name[len("etrm_"):]: (value.string_value if value.HasField("string_value")
                                  else value.int_value)
            for name, value in examples.custom_properties.items() if name.startswith("etrm_")}


@dataclasses.dataclass(frozen=True)
class TrainingReference:
    """A pushed model's training data, as ML Metadata records it."""

    model_dir: str
    serving_version: int
    examples_uri: str
    span: int
    generator_settings: Dict


def training_reference(store, model_name: str, version: Optional[int] = None) -> TrainingReference:
    """Latest pushed model (or the push of `version`) -> the Model it pushed -> the Trainer's
    training Examples (of a rolling window, its newest span: what the model learned last)."""
    if version is None:
        pushed = latest_pushed_model(store, model_name)
    else:
        pushed = next((artifact for artifact in reversed(pushed_models(store, model_name))
                       if artifact.custom_properties["pushed_version"].string_value
                       == str(version)), None)
    if pushed is None:
        which = "version" if version is None else f"version {version}"
        raise LookupError(f"no pushed {which} of {model_name!r} is recorded in ML Metadata; "
                          "run the pipeline with training first")
    model = producer_inputs(store, pushed.id, "model")
    examples = _newest_span(store, model.id, "examples") if model is not None else None
    if examples is None:
        raise LookupError(f"ML Metadata has no training Examples for pushed model {pushed.id}")
    return TrainingReference(
        model_dir=pushed.custom_properties["pushed_destination"].string_value,
        serving_version=int(pushed.custom_properties["pushed_version"].string_value),
        examples_uri=examples.uri, span=examples.custom_properties["span"].int_value,
        generator_settings=generator_settings(examples))


VALIDATION_GATE_NODE = "ValidationGate"


def passed_validation(store, artifact_id: int, pipeline_name: str,
                      gate_node: str = VALIDATION_GATE_NODE) -> bool:
    """Whether a COMPLETE run of the pipeline's validation gate read this Examples artifact
    (an ingestion killed before its gate, or stopped by it, leaves the span unvalidated)."""
    gate_runs = {e.id for e in _node_executions(store, pipeline_name, gate_node)
                 if e.last_known_state == metadata_store_pb2.Execution.COMPLETE}
    return any(event.type == metadata_store_pb2.Event.INPUT and event.execution_id in gate_runs
               for event in store.get_events_by_artifact_ids([artifact_id]))


def validated_spans(store, pipeline_name: str, period_days: int, history_start: str,
                    node_id: str = EXAMPLE_GEN_NODE) -> Dict[int, int]:
    """span -> id of its newest LIVE Examples artifact that passed the validation gate, among
    spans of one calendar grid (period_days from history_start: span 3 of a weekly grid and
    of a daily one are different weeks)."""
    newest: Dict[int, int] = {}
    for artifact in sorted(_node_outputs(store, pipeline_name, node_id), key=lambda a: a.id):
        grid = generator_settings(artifact)
        if (artifact.state == metadata_store_pb2.Artifact.LIVE and "span" in artifact.custom_properties
                and grid.get("period_days") == period_days
                and grid.get("history_start") == history_start
                and passed_validation(store, artifact.id, pipeline_name)):
            newest[artifact.custom_properties["span"].int_value] = artifact.id
    return newest


def model_pushed_as(store, model_name: str, version: int) -> Optional[metadata_store_pb2.Artifact]:
    """The Model artifact whose push became `version` of model_name (None if ML Metadata has none)."""
    for pushed in pushed_models(store, model_name):
        if int(pushed.custom_properties["pushed_version"].string_value) == int(version):
            return producer_inputs(store, pushed.id, "model")
    return None
