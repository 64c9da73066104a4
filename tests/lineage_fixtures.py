"""A hand-built ML Metadata store shaped like the one TFX and the retraining jobs leave (type,
property and event key names copied from a real continuous-learning home), without
TensorFlow: spans 1-4 ingested one run each (ExampleGen, StatisticsGen, ExampleValidator,
ValidationGate, DriftCheck, DriftGate), then two training runs: v1 on spans 1-3 from nothing,
v2 on spans 2-4 warm-started from and judged against v1. A third training run on 2-4 fails
its evaluation and pushes nothing."""
from __future__ import annotations

import importlib.util
import json
import os
import pathlib
from typing import Dict, List, Optional

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2 as pb

from ml.core.request_log import encode_record

PIPELINE = "etrm-risk-pipeline"
MODEL = "etrm_risk_model"
TYPES = {
    "ETRMExampleGen": "components.etrm_example_gen.component.ETRMExampleGen",
    "ImportSchemaGen": "tfx.components.schema_gen.import_schema_gen.component.ImportSchemaGen",
    "StatisticsGen": "tfx.components.statistics_gen.component.StatisticsGen",
    "ExampleValidator": "tfx.components.example_validator.component.ExampleValidator",
    "ValidationGate": "components.validation_gate.component.ValidationGate",
    "DriftCheck": "components.drift_gate.component.DriftCheck",
    "DriftGate": "components.drift_gate.component.DriftGate",
    "Resolver": "tfx.dsl.components.common.resolver.Resolver",
    "Transform": "tfx.components.transform.component.Transform",
    "Trainer": "tfx.components.trainer.component.Trainer",
    "Evaluator": "tfx.components.evaluator.component.Evaluator",
    "CanaryValidator": "components.canary_validator.component.CanaryValidator",
    "ServingPusher": "components.serving_pusher.component.ServingPusher",
}
AUC = {1: 0.70, 2: 0.82}


def _value(value) -> pb.Value:
    result = pb.Value()
    if isinstance(value, bool) or isinstance(value, int):
        result.int_value = int(value)
    elif isinstance(value, float):
        result.double_value = value
    else:
        result.string_value = str(value)
    return result


def write_tfma_metrics(folder: pathlib.Path, candidate: Dict[str, float],
                       baseline: Optional[Dict[str, float]] = None) -> None:
    """A metrics-00000-of-00001.tfrecord as TFMA writes it (overall slice, plus one slice)."""
    spec = importlib.util.find_spec("tensorflow_model_analysis")
    path = os.path.join(os.path.dirname(spec.origin), "proto", "metrics_for_slice_pb2.py")
    module_spec = importlib.util.spec_from_file_location("test_tfma_metrics_for_slice_pb2", path)
    proto = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(proto)
    records = []
    for sliced in (False, True):
        metrics = proto.MetricsForSlice()
        if sliced:
            key = metrics.slice_key.single_slice_keys.add()
            key.column, key.bytes_value = "commodity", b"POWER"
        for role, values in (("candidate", candidate), ("baseline", baseline or {})):
            for name, value in values.items():
                entry = metrics.metric_keys_and_values.add()
                entry.key.name = name
                entry.key.model_name = role if baseline else ""
                entry.value.double_value.value = value + (0.5 if sliced else 0.0)
        diff = metrics.metric_keys_and_values.add()
        diff.key.name, diff.key.is_diff = "auc", True
        diff.value.double_value.value = 9.0
        records.append(encode_record(metrics.SerializeToString()))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics-00000-of-00001.tfrecord").write_bytes(b"".join(records))


def write_schema_diffs(folder: pathlib.Path, found: Dict[str, Dict[str, str]]) -> None:
    """Split-train and Split-eval SchemaDiff.pb as ExampleValidator writes them."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    for split in ("train", "eval"):
        anomalies = anomalies_pb2.Anomalies()
        for feature, text in found.get(split, {}).items():
            anomalies.anomaly_info[feature].short_description = text
        (folder / f"Split-{split}").mkdir(parents=True, exist_ok=True)
        (folder / f"Split-{split}" / "SchemaDiff.pb").write_bytes(anomalies.SerializeToString())


class StoreBuilder:
    def __init__(self, root: pathlib.Path, config: Optional[pb.ConnectionConfig] = None):
        """Writes into config (default: root/metadata.sqlite); artifact files under root."""
        if config is None:
            config = pb.ConnectionConfig()
            config.sqlite.filename_uri = str(root / "metadata.sqlite")
            config.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
        self.root, self.store = root, metadata_store.MetadataStore(config)
        self.context_types = {name: self._type(pb.ContextType, name) for name in
                              ("pipeline", "pipeline_run", "node")}
        self.pipeline = self._context("pipeline", PIPELINE)
        self.runs = 0

    def _type(self, kind, name: str) -> int:
        message = kind(name=name)
        put = {pb.ContextType: self.store.put_context_type,
               pb.ArtifactType: self.store.put_artifact_type,
               pb.ExecutionType: self.store.put_execution_type}[kind]
        return put(message, can_add_fields=True)

    def _context(self, type_name: str, name: str) -> pb.Context:
        existing = self.store.get_context_by_type_and_name(type_name, name)
        if existing is not None:
            return existing
        context = pb.Context(type_id=self.context_types[type_name], name=name)
        [context.id] = self.store.put_contexts([context])
        return context

    def artifact(self, type_name: str, **custom) -> pb.Artifact:
        artifact = pb.Artifact(type_id=self._type(pb.ArtifactType, type_name), state=pb.Artifact.LIVE)
        for name, value in custom.items():
            artifact.custom_properties[name].CopyFrom(_value(value))
        [artifact.id] = self.store.put_artifacts([artifact])
        artifact.uri = str(self.root / "pipelines" / type_name / str(artifact.id))
        self.store.put_artifacts([artifact])
        artifact.type = type_name
        return artifact

    def run(self) -> pb.Context:
        self.runs += 1
        run = self._context("pipeline_run", f"2024-01-05T00:00:{self.runs:02d}.000000")
        self.store.put_parent_contexts([pb.ParentContext(child_id=run.id, parent_id=self.pipeline.id)])
        return run

    def execute(self, run: pb.Context, node: str, inputs: Dict[str, List[pb.Artifact]] = (),
                outputs: Dict[str, List[pb.Artifact]] = (), state=pb.Execution.COMPLETE,
                output_type=pb.Event.OUTPUT, **props) -> pb.Execution:
        kind = TYPES[node] if node in TYPES else TYPES["Resolver"]
        execution = pb.Execution(type_id=self._type(pb.ExecutionType, kind), last_known_state=state)
        for name, value in props.items():
            execution.custom_properties[name].CopyFrom(_value(value))
        pairs = []
        for event_type, by_key in ((pb.Event.INPUT, dict(inputs)), (output_type, dict(outputs))):
            for key, artifacts in by_key.items():
                for index, artifact in enumerate(artifacts):
                    event = pb.Event(type=event_type)
                    event.path.steps.add().key = key
                    event.path.steps.add().index = index
                    pairs.append((artifact, event))
        node_context = self._context("node", f"{PIPELINE}.{node}")
        execution_id, _, _ = self.store.put_execution(execution, pairs, [self.pipeline, run, node_context])
        execution.id = execution_id
        execution.type = kind
        return execution

    def ingest(self, span: int, previous: Optional[Dict] = None) -> Dict:
        run = self.run()
        examples = self.artifact("Examples", span=span, etrm_span=span, etrm_seed=42,
                                 etrm_records_per_span=300, etrm_dataset="trades",
                                 etrm_history_start="2024-01-01", etrm_period_days=1,
                                 etrm_period_start=f"2024-01-{span + 1:02d}",
                                 etrm_period_end=f"2024-01-{span + 1:02d}",
                                 etrm_drift_scenarios="", etrm_shuffle_labels=0)
        self.execute(run, "ETRMExampleGen", outputs={"examples": [examples]}, span=span, seed=42)
        schema = self.artifact("Schema")
        self.execute(run, "ImportSchemaGen", outputs={"schema": [schema]},
                     schema_file="/data/schema/trades/schema.pbtxt")
        statistics = self.artifact("ExampleStatistics")
        self.execute(run, "StatisticsGen", inputs={"examples": [examples]},
                     outputs={"statistics": [statistics]})
        drift = self.artifact("ETRMDriftResult", span=span, blocked=0,
                              drift_status="passed" if previous else "no previous span",
                              skew_status="no serving logs",
                              drifted_features="volatility" if span == 4 else "", skewed_features="")
        drift_inputs = {"examples": [examples], "statistics": [statistics], "schema": [schema]}
        if previous:
            drift_inputs.update(previous_examples=[previous["examples"]],
                                previous_statistics=[previous["statistics"]])
        self.execute(run, "DriftCheck", inputs=drift_inputs, outputs={"drift_result": [drift]})
        anomalies = self.artifact("ExampleAnomalies")
        anomalies.custom_properties["blessed"].struct_value.update(
            {"train": 1.0, "eval": 0.0 if span == 3 else 1.0})
        self.store.put_artifacts([anomalies])
        write_schema_diffs(pathlib.Path(anomalies.uri), {"eval": {"price": "Out-of-range values"}}
                           if span == 3 else {})
        self.execute(run, "ExampleValidator", inputs={"statistics": [statistics], "schema": [schema]},
                     outputs={"anomalies": [anomalies]})
        self.execute(run, "ValidationGate", inputs={"examples": [examples],
                                                    "example_anomalies": [anomalies]})
        self.execute(run, "DriftGate", inputs={"drift_result": [drift]})
        return {"examples": examples, "statistics": statistics, "run": run}

    def train(self, window: List[pb.Artifact], stable: Optional[pb.Artifact],
              version: Optional[int], push_key: str) -> Dict:
        run = self.run()
        self.execute(run, "training_window_resolver", outputs={"examples": window},
                     output_type=pb.Event.INTERNAL_OUTPUT)
        if stable is not None:
            self.execute(run, "stable_model_resolver", outputs={"model": [stable]},
                         output_type=pb.Event.INTERNAL_OUTPUT)
        schema = self.artifact("Schema")
        self.execute(run, "ImportSchemaGen", outputs={"schema": [schema]},
                     schema_file="/data/schema/trades/schema.pbtxt")
        graph, cache = self.artifact("TransformGraph"), self.artifact("TransformCache")
        self.execute(run, "Transform", inputs={"examples": window, "schema": [schema]},
                     outputs={"transform_graph": [graph], "updated_analyzer_cache": [cache]},
                     preprocessing_fn="models.risk.preprocessing.preprocessing_fn")
        model, model_run = self.artifact("Model"), self.artifact("ModelRun")
        trainer_inputs = {"examples": window, "schema": [schema], "transform_graph": [graph]}
        if stable is not None:
            trainer_inputs["base_model"] = [stable]
        trainer = self.execute(run, "Trainer", inputs=trainer_inputs,
                               outputs={"model": [model], "model_run": [model_run]},
                               run_fn="models.risk.trainer.run_fn",
                               train_args=json.dumps({"num_steps": 40}), eval_args="{}",
                               custom_config=json.dumps({"hyperparameters": {"learning_rate": 0.001},
                                                         "seed": 42}))
        evaluation = self.artifact("ModelEvaluation")
        blessed = version is not None
        auc = AUC.get(version, 0.4)
        baseline = ({"auc": AUC[1], "binary_accuracy": 0.85, "example_count": 338.0}
                    if stable is not None else None)
        write_tfma_metrics(pathlib.Path(evaluation.uri),
                           {"auc": auc, "binary_accuracy": 0.86, "example_count": 338.0}, baseline)
        blessing = self.artifact("ModelBlessing", blessed=int(blessed), current_model_id=model.id)
        evaluator_inputs = {"model": [model], "examples": window}
        if stable is not None:
            evaluator_inputs["baseline_model"] = [stable]
        self.execute(run, "Evaluator", inputs=evaluator_inputs,
                     outputs={"evaluation": [evaluation], "blessing": [blessing]})
        infra = self.artifact("InfraBlessing", blessed=int(blessed), latency_p50_ms=12.5,
                              latency_p99_ms=30.25)
        self.execute(run, "CanaryValidator", inputs={"model": [model], "model_blessing": [blessing],
                                                     "examples": window[-1:]},
                     outputs={"blessing": [infra]}, model_name=MODEL)
        pushed_props = dict(pushed=int(blessed), push_key=push_key,
                            models_config=str(self.root / "serving_config" / "models.config"))
        if blessed:
            pushed_props.update(pushed_version=str(version), pushed_destination=str(
                self.root / "serving_models" / MODEL / str(version)))
        else:
            pushed_props.update(not_pushed_reason="not blessed by the Evaluator")
        pushed = self.artifact("PushedModel", **pushed_props)
        self.execute(run, "ServingPusher", inputs={"model": [model], "model_blessing": [blessing],
                                                   "infra_blessing": [infra]},
                     outputs={"pushed_model": [pushed]})
        return {"model": model, "pushed": pushed, "trainer": trainer, "run": run}


def build_home(root: pathlib.Path, config: Optional[pb.ConnectionConfig] = None) -> Dict:
    """The store described above, in root/metadata.sqlite (or config), with models.config
    labels stable=1, canary=2 and one run summary (the v2 training run's)."""
    builder = StoreBuilder(root, config)
    ingested, previous = {}, None
    for span in (1, 2, 3, 4):
        previous = ingested[span] = builder.ingest(span, previous)
    window = lambda spans: [ingested[s]["examples"] for s in spans]  # noqa: E731
    first = builder.train(window([1, 2, 3]), None, 1, f"{MODEL}@2024-01-04#job1")
    second = builder.train(window([2, 3, 4]), first["model"], 2, f"{MODEL}@2024-01-05#job2")
    rejected = builder.train(window([2, 3, 4]), first["model"], None, f"{MODEL}@2024-01-05#job3")
    config = root / "serving_config" / "models.config"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'model_config_list {{ config {{ name: "{MODEL}" base_path: '
                      f'"{root}/serving_models/{MODEL}" model_platform: "tensorflow" '
                      'version_labels { key: "stable" value: 1 } '
                      'version_labels { key: "canary" value: 2 } } }\n')
    second_ids = [e.id for e in builder.store.get_executions_by_context(second["run"].id)]
    runs_dir = root / "runs"
    runs_dir.mkdir(exist_ok=True)
    (runs_dir / "run-20240105T000000000000.json").write_text(json.dumps({
        "status": "succeeded", "wall_seconds": 321.5, "pipeline": PIPELINE,
        "components": [{"component": "x", "execution_id": i} for i in second_ids]}))
    return {"store": builder.store, "ingested": ingested, "first": first, "second": second,
            "rejected": rejected, "root": root}
