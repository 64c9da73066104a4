"""`etrm monitor`: check the served model's logged requests against its training reference.

Reads the serving logs written since the last check (ml.monitoring.log_positions), resolves the
reference from ML Metadata (ml.core.metadata.training_reference: the latest pushed model, the
Trainer run that produced it, and that run's training Examples), registers it with
ModelMonitoringService, and checks data drift, prediction drift (the model's risk_score on the
reference against the logged risk_score) and, once the outcomes of the logged trades exist
(ml.synthetic.outcomes), performance. Alerts go through the service's rules and notifiers.
"""
from __future__ import annotations

import argparse
import datetime as dt
import pathlib
import sys

from ml.core import registry
from ml.core.request_log import prediction_column

SCORE_COLUMN = prediction_column("risk_score")


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--model", default=registry.RISK_MODEL.serving_name,
                        help=f"served model (default: {registry.RISK_MODEL.serving_name})")
    parser.add_argument("--home", help="project home (default: $ETRM_HOME or .etrm)")
    parser.add_argument("--reference-rows", type=int, default=5000,
                        help="training rows sampled as the reference (default: 5000)")
    parser.add_argument("--report", default=None,
                        help="HTML report path (default: <home>/monitoring/reports/<model>-<time>.html)")
    return parser


def run(args: argparse.Namespace) -> int:
    """Checks the new logs, prints a short summary; 0 when checked or nothing new, 2 on errors."""
    from ml.core.request_log import log_files, read_log_frame
    from ml.core import metadata
    from ml.core.example_tables import read_records, records_to_frame, sample_records, split_files
    from ml.core.home import Home
    from ml.drift_detection_service import ModelMonitoringService
    from ml.monitoring.log_positions import LogPositions
    from ml.synthetic.outcomes import TRADE_DATE, TRADE_ID, realised_labels
    from models.risk.features import LABEL_KEY, RAW_FEATURES
    from models.risk.scoring import risk_scores

    if args.reference_rows <= 0:
        print(f"error: --reference-rows must be > 0, got {args.reference_rows}", file=sys.stderr)
        return 2
    try:
        model_name = registry.get_model(args.model).serving_name
    except ValueError as exc:
        print(f"error: --model: {exc}", file=sys.stderr)
        return 2
    if model_name != registry.RISK_MODEL.serving_name:
        print(f"error: --model: monitoring checks tabular trade features; {model_name} has none",
              file=sys.stderr)
        return 2
    home = Home.resolve(args.home)
    with ModelMonitoringService(home=home.root) as service:  # leaving flushes the alerts
        positions = LogPositions(home.monitoring_positions(model_name))
        files = positions.new_files(log_files(home.serving_log_dir(model_name)))
        if not files:
            print(f"{model_name}: no new serving logs since the last check")
            return 0
        try:
            reference = metadata.training_reference(metadata.store_for(home), model_name)
        except LookupError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        records = sample_records(read_records(split_files(reference.examples_uri, "train")),
                                 args.reference_rows)
        reference_frame = records_to_frame(records, RAW_FEATURES + [LABEL_KEY])
        service.register_model(model_name, reference_frame[RAW_FEATURES],
                               reference_predictions=risk_scores(reference.model_dir, records),
                               reference_labels=reference_frame[LABEL_KEY])
        current = read_log_frame(files, RAW_FEATURES + [TRADE_ID, TRADE_DATE, SCORE_COLUMN])
        labels = realised_labels(current, reference.generator_settings)
        labelled = bool(labels.notna().all())
        result = service.check(model_name, current[RAW_FEATURES], predictions=current[SCORE_COLUMN],
                               labels=labels.astype(int) if labelled else None)
        stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
        report = pathlib.Path(args.report) if args.report else (
            home.monitoring_reports_dir / f"{model_name}-{stamp}.html")
        report.parent.mkdir(parents=True, exist_ok=True)
        service.write_report(model_name, report, title=f"Monitoring: {model_name} "
                             f"v{reference.serving_version} against span {reference.span}")
        positions.mark_read(files)
        drifted = list(result.features.loc[result.features["drifted"], "feature"])
        print(f"{model_name} v{reference.serving_version}: {len(current)} logged requests from "
              f"{len(files)} files against training span {reference.span}")
        print(f"  drifted features: {', '.join(drifted) or 'none'}")
        if result.predictions is not None:
            print(f"  prediction drift: {'yes' if result.predictions['drifted'].any() else 'no'}")
        known = f"{int(labels.notna().sum())} of {len(labels)} known"
        print("  performance: " + ("checked on realised outcomes" if labelled else
                                    f"waiting for outcomes ({known})"))
        for alert in result.alerts:
            print(f"  ALERT [{alert.severity}] {alert.message}")
        print(f"  report: {report}")
        return 0
