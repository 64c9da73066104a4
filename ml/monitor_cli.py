"""`etrm monitor`: check the served model's logged requests against its training reference.

Reads the serving logs written since the last check (the files already checked are remembered in
<home>/monitoring/positions/<model>.json), resolves the reference from ML Metadata (the latest
pushed model, the Trainer run that produced it, and that run's training Examples), registers it
with ModelMonitoringService, and checks data drift, prediction drift (the model's risk_score on
the reference against the logged risk_score) and, once the outcomes of the logged trades exist,
performance: the generator regenerates each trade's span from the recorded settings and the
realised labels are joined on trade_id. Alerts go through the service's rules and notifiers.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import pathlib
import sys
from typing import Dict, List

import numpy as np
import pandas as pd

DEFAULT_MODEL = "etrm_risk_model"
SCORE_COLUMN = "prediction/risk_score"
ID_COLUMN = "trade_id"
DATE_COLUMN = "trade_date"


@dataclasses.dataclass(frozen=True)
class TrainingReference:
    """The served model's training data, as ML Metadata records it."""

    model_dir: str
    serving_version: int
    examples_uri: str
    span: int
    generator_settings: Dict


def latest_pushed_model(store, model_name: str):
    """The newest PushedModel artifact that was really pushed for model_name (or None)."""
    pushed = []
    for artifact in store.get_artifacts_by_type("PushedModel"):
        props = artifact.custom_properties
        if not ("pushed" in props and props["pushed"].int_value):
            continue
        destination = pathlib.Path(props["pushed_destination"].string_value)
        if destination.parent.name == model_name:
            pushed.append(artifact)
    return max(pushed, key=lambda a: a.id) if pushed else None


def _producer_inputs(store, artifact_id: int, key: str):
    from ml_metadata.proto import metadata_store_pb2
    from pipeline.metadata_queries import input_artifacts

    for event in store.get_events_by_artifact_ids([artifact_id]):
        if event.type == metadata_store_pb2.Event.OUTPUT:
            found = input_artifacts(store, event.execution_id).get(key)
            if found:
                return found[0]
    return None


def resolve_reference(store, model_name: str) -> TrainingReference:
    """Latest pushed model -> the Model it pushed -> the Trainer's training Examples."""
    pushed = latest_pushed_model(store, model_name)
    if pushed is None:
        raise LookupError(f"no pushed version of {model_name!r} is recorded in ML Metadata; "
                          "run the pipeline with training first")
    model = _producer_inputs(store, pushed.id, "model")
    examples = _producer_inputs(store, model.id, "examples") if model is not None else None
    if examples is None:
        raise LookupError(f"ML Metadata has no training Examples for pushed model {pushed.id}")
    settings = {name[len("etrm_"):]: (value.string_value if value.HasField("string_value")
                                      else value.int_value)
                for name, value in examples.custom_properties.items() if name.startswith("etrm_")}
    return TrainingReference(
        model_dir=pushed.custom_properties["pushed_destination"].string_value,
        serving_version=int(pushed.custom_properties["pushed_version"].string_value),
        examples_uri=examples.uri, span=examples.custom_properties["span"].int_value,
        generator_settings=settings)


class LogPositions:
    """Which finished log files a model's checks have read, kept across runs."""

    def __init__(self, path: pathlib.Path):
        self.path = path
        self.read = set(json.loads(path.read_text())["files"]) if path.exists() else set()

    def new_files(self, files: List[pathlib.Path]) -> List[pathlib.Path]:
        return [path for path in files if path.name not in self.read]

    def mark_read(self, files: List[pathlib.Path]) -> None:
        from ml.atomic_files import atomic_write_text

        self.read.update(path.name for path in files)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps({"files": sorted(self.read)}, indent=1))


def realised_labels(current: pd.DataFrame, settings: Dict) -> pd.Series:
    """high_risk of each logged trade, from regenerating its span with the recorded generator
    settings and joining on trade_id; NaN where the trade is not found."""
    from components.etrm_example_gen.span_data import SpanRequest, generate_table, span_for_date
    from models.risk.features import LABEL_KEY

    fields = {f.name for f in dataclasses.fields(SpanRequest)} - {"span"}
    base = {name: settings[name] for name in fields if name in settings}
    base["shuffle_labels"] = bool(base.get("shuffle_labels", 0))
    spans = {span_for_date(dt.datetime.strptime(str(day)[:10], "%Y-%m-%d"),
                           base["history_start"], base["period_days"])
             for day in current[DATE_COLUMN].dropna().unique()}
    outcomes = pd.concat([generate_table(SpanRequest(span=span, **base))[[ID_COLUMN, LABEL_KEY]]
                          for span in sorted(spans)] or [pd.DataFrame(columns=[ID_COLUMN, LABEL_KEY])])
    return current[ID_COLUMN].map(outcomes.set_index(ID_COLUMN)[LABEL_KEY])


def reference_scores(model_dir: str, records: List[bytes]) -> np.ndarray:
    """The served model's risk_score on the reference examples (serving_default signature)."""
    import tensorflow as tf

    predict = tf.saved_model.load(model_dir).signatures["serving_default"]
    scores = [predict(examples=tf.constant(records[start:start + 512]))["risk_score"].numpy()
              for start in range(0, len(records), 512)]
    return np.concatenate(scores).reshape(-1)


def add_monitor_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"served model (default: {DEFAULT_MODEL})")
    parser.add_argument("--home", help="project home (default: $ETRM_HOME or .etrm)")
    parser.add_argument("--reference-rows", type=int, default=5000,
                        help="training rows sampled as the reference (default: 5000)")
    parser.add_argument("--report", default=None,
                        help="HTML report path (default: <home>/monitoring/reports/<model>-<time>.html)")
    return parser


def run_monitor(args: argparse.Namespace) -> int:
    """Checks the new logs, prints a short summary; 0 when checked or nothing new, 2 on errors."""
    from components.drift_gate.example_tables import read_records, records_to_frame, sample_records, split_files
    from components.drift_gate.serving_logs import log_files, read_log_frame
    from ml.drift_detection_service import ModelMonitoringService
    from ml.home import resolve_home
    from models.risk.features import LABEL_KEY, RAW_FEATURES
    from pipeline.metadata_queries import open_store, sqlite_config

    if args.reference_rows <= 0:
        print(f"error: --reference-rows must be > 0, got {args.reference_rows}", file=sys.stderr)
        return 2
    home = resolve_home(args.home)
    service = ModelMonitoringService(home=home)
    positions = LogPositions(service.state_dir / "positions" / f"{args.model}.json")
    files = positions.new_files(log_files(home / "serving_logs" / args.model))
    if not files:
        print(f"{args.model}: no new serving logs since the last check")
        return 0
    try:
        reference = resolve_reference(open_store(sqlite_config(str(home / "metadata.sqlite"))),
                                      args.model)
    except LookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    records = sample_records(read_records(split_files(reference.examples_uri, "train")),
                             args.reference_rows)
    reference_frame = records_to_frame(records, RAW_FEATURES + [LABEL_KEY])
    service.register_model(args.model, reference_frame[RAW_FEATURES],
                           reference_predictions=reference_scores(reference.model_dir, records),
                           reference_labels=reference_frame[LABEL_KEY])
    current = read_log_frame(files, RAW_FEATURES + [ID_COLUMN, DATE_COLUMN, SCORE_COLUMN])
    labels = realised_labels(current, reference.generator_settings)
    labelled = bool(labels.notna().all())
    result = service.check(args.model, current[RAW_FEATURES], predictions=current[SCORE_COLUMN],
                           labels=labels.astype(int) if labelled else None)
    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    report = pathlib.Path(args.report) if args.report else (
        service.state_dir / "reports" / f"{args.model}-{stamp}.html")
    report.parent.mkdir(parents=True, exist_ok=True)
    service.write_report(args.model, report, title=f"Monitoring: {args.model} "
                         f"v{reference.serving_version} against span {reference.span}")
    positions.mark_read(files)
    drifted = list(result.features.loc[result.features["drifted"], "feature"])
    print(f"{args.model} v{reference.serving_version}: {len(current)} logged requests from "
          f"{len(files)} files against training span {reference.span}")
    print(f"  drifted features: {', '.join(drifted) or 'none'}")
    if result.predictions is not None:
        print(f"  prediction drift: {'yes' if result.predictions['drifted'].any() else 'no'}")
    print("  performance: " + ("checked on realised outcomes" if labelled else
                                f"waiting for outcomes ({int(labels.notna().sum())} of {len(labels)} known)"))
    for alert in result.alerts:
        print(f"  ALERT [{alert.severity}] {alert.message}")
    print(f"  report: {report}")
    return 0
