"""The served model's check: its logged requests since the last check against its training data.

What `etrm monitor` prints and the continuous-learning simulation runs daily, as one library
function. It reads the serving logs written since the last check (ml.monitoring.log_positions),
resolves the reference from ML Metadata (the pushed model, the Trainer run that produced it and
that run's training Examples), registers it with ModelMonitoringService, and checks data drift,
prediction drift (the model's risk_score on the reference against the logged risk_score), the
AUC expected from the logged scores (CBPE, ml.monitoring.performance_estimation) and, once the
outcomes of the logged trades exist (ml.synthetic.outcomes), realised performance. Alerts go
through the service's rules and notifiers.

Outcomes lag predictions. Without `labels_available_before` they are regenerated at once (the
command's behaviour). With it, only trades dated before it have outcomes: the others wait in
`<home>/monitoring/pending_outcomes/`, and a later check scores them, with the service's
performance and concept rules, once their date has passed.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import pathlib
from typing import Dict, List, Mapping, Optional, Union

import pandas as pd

from ml.core.request_log import MODEL_VERSION_FEATURE, prediction_column
from ml.monitoring.alerts import DriftAlert, DriftType

SCORE_COLUMN = prediction_column("risk_score")
MIN_LABELLED_ROWS = 50
DateLike = Union[str, dt.date, dt.datetime]


@dataclasses.dataclass(frozen=True)
class ServedCheck:
    """What one check of the served model found (checked=False: no new serving logs)."""

    model_name: str
    checked: bool
    serving_version: Optional[int] = None
    reference_span: Optional[int] = None
    requests: int = 0
    files: int = 0
    requests_by_version: Dict[int, int] = dataclasses.field(default_factory=dict)
    drifted_features: List[str] = dataclasses.field(default_factory=list)
    drift_scores: Dict[str, float] = dataclasses.field(default_factory=dict)
    prediction_drift: Optional[bool] = None
    prediction_psi: Optional[float] = None
    labelled: int = 0
    known: int = 0
    waiting: int = 0
    performance_checked: bool = False
    realised: Optional[Dict[str, float]] = None
    realised_by_version: Dict[int, float] = dataclasses.field(default_factory=dict)
    estimated: Optional[Dict[str, float]] = None
    estimated_by_version: Dict[int, float] = dataclasses.field(default_factory=dict)
    estimated_drop: Optional[Dict] = None
    alerts: List[DriftAlert] = dataclasses.field(default_factory=list)
    report_path: Optional[pathlib.Path] = None

    @property
    def realised_auc(self) -> Optional[float]:
        return None if self.realised is None else self.realised["roc_auc"]

    @property
    def estimated_auc(self) -> Optional[float]:
        return None if self.estimated is None else self.estimated["estimated_roc_auc"]

    def summary_lines(self) -> List[str]:
        """The lines `etrm monitor` prints."""
        if not self.checked:
            return [f"{self.model_name}: no new serving logs since the last check"]
        lines = [f"{self.model_name} v{self.serving_version}: {self.requests} logged requests "
                 f"from {self.files} files against training span {self.reference_span}",
                 f"  drifted features: {', '.join(self.drifted_features) or 'none'}"]
        if self.prediction_drift is not None:
            lines.append(f"  prediction drift: {'yes' if self.prediction_drift else 'no'}")
        estimated = ("" if self.estimated_auc is None
                     else f"estimated AUC {self.estimated_auc:.3f}")
        if self.performance_checked:
            figures = "; ".join(part for part in (
                f"realised AUC {self.realised_auc:.3f} on {self.labelled} trades"
                if self.realised_auc is not None else "", estimated) if part)
            lines.append("  performance: checked on realised outcomes"
                         + (f" ({figures})" if figures else ""))
        else:
            lines.append(f"  performance: waiting for outcomes ({self.known} of "
                         f"{self.requests} known)" + (f"; {estimated}" if estimated else ""))
        lines += [f"  ALERT [{alert.severity}] {alert.message}" for alert in self.alerts]
        lines.append(f"  report: {self.report_path}")
        return lines


def check_served_model(home, model_name: str, reference_rows: int = 5000,
                       report_path=None, now: Optional[float] = None, *,
                       labels_available_before: Optional[DateLike] = None,
                       reference_version: Optional[int] = None,
                       estimated_drop_threshold: Optional[float] = None,
                       outcome_settings: Optional[Mapping] = None,
                       only_identified: bool = False,
                       feature_psi: Optional[Mapping[str, float]] = None,
                       service=None) -> ServedCheck:
    """Checks the logs written since the last check; marks them read. home: a Home or a path.

    now: epoch seconds of the check (the report's time stamp; default the wall clock).
    labels_available_before: outcomes are known only for trades dated before it (see the
    module docstring). reference_version: the pushed version whose training data is the
    reference (default the latest pushed). estimated_drop_threshold: turns on the service's
    estimated-performance rule with this allowed AUC drop (when `service` is not given).
    outcome_settings: the generator settings the logged trades were made with (SpanRequest
    fields; default: those recorded on the reference's training Examples). only_identified:
    check only requests carrying a trade id and date (the simulation's trades; its probe
    requests, which repeat a few trades, would look like drift). feature_psi: per-feature PSI
    floors for data drift (when `service` is not given).
    service: a ModelMonitoringService to use (its rules and notifiers); default one on the home.
    LookupError when ML Metadata has no pushed model; ValueError on a bad argument.
    """
    from ml.core import metadata
    from ml.core.home import Home
    from ml.core.request_log import log_files, read_log_frame
    from ml.monitoring.log_positions import LogPositions
    from ml.monitoring.service import ModelMonitoringService
    from ml.synthetic.outcomes import TRADE_DATE, TRADE_ID, realised_labels
    from models.risk.features import RAW_FEATURES

    if isinstance(reference_rows, bool) or not isinstance(reference_rows, int) or reference_rows <= 0:
        raise ValueError(f"reference_rows must be a whole number > 0, got {reference_rows!r}")
    cutoff = None if labels_available_before is None else _date_text(labels_available_before)
    from ml.monitoring.channel_config import load_channels

    home = home if isinstance(home, Home) else Home.resolve(home)
    own_service = service is None
    if own_service:
        thresholds = (None if estimated_drop_threshold is None else
                      {DriftType.ESTIMATED_PERFORMANCE: {"roc_auc_drop": estimated_drop_threshold}})
        service = ModelMonitoringService(home=home.root, drift_thresholds=thresholds,
                                         feature_psi=feature_psi,
                                         notifiers=load_channels(home))
    try:
        positions = LogPositions(home.monitoring_positions(model_name))
        files = positions.new_files(log_files(home.serving_log_dir(model_name)))
        if not files:
            return ServedCheck(model_name, checked=False)
        store = metadata.store_for(home)
        reference = (metadata.training_reference(store, model_name) if reference_version is None
                     else metadata.training_reference(store, model_name, version=reference_version))
        _register_reference(service, home, model_name, reference, reference_rows)
        settings = dict(outcome_settings or reference.generator_settings)
        columns = RAW_FEATURES + [TRADE_ID, TRADE_DATE, SCORE_COLUMN, MODEL_VERSION_FEATURE]
        current = read_log_frame(files, columns)
        if only_identified:
            current = current.dropna(subset=[TRADE_ID, TRADE_DATE]).reset_index(drop=True)
            if len(current) < 2:
                positions.mark_read(files)
                return ServedCheck(model_name, checked=False)
        scores = current[SCORE_COLUMN].astype(float)
        estimate = _estimate(scores)
        if cutoff is None:
            labels = realised_labels(current, settings)
            known = int(labels.notna().sum())
            waiting = len(current) - known
            labelled_frame = current.assign(_label=labels) if waiting == 0 else None
            result = service.check(model_name, current[RAW_FEATURES], predictions=scores,
                                   labels=None if labelled_frame is None else labels.astype(int),
                                   estimate=estimate)
            alerts = list(result.alerts)
            performance_checked = labelled_frame is not None
        else:
            result = service.check(model_name, current[RAW_FEATURES], predictions=scores,
                                   estimate=estimate)
            alerts = list(result.alerts)
            labelled_frame, waiting = _matured(home, model_name, current, cutoff, settings)
            known = 0 if labelled_frame is None else len(labelled_frame)
            performance_checked = known >= MIN_LABELLED_ROWS
            if performance_checked:
                outcome_check = service.check(
                    model_name, labelled_frame[RAW_FEATURES],
                    predictions=labelled_frame[SCORE_COLUMN].astype(float),
                    labels=labelled_frame["_label"].astype(int), alert_on_inputs=False)
                alerts += outcome_check.alerts
        stamp = dt.datetime.fromtimestamp(now, dt.timezone.utc) if now is not None else dt.datetime.now()
        report = pathlib.Path(report_path) if report_path else (
            home.monitoring_reports_dir / f"{model_name}-{stamp:%Y%m%dT%H%M%S}.html")
        report.parent.mkdir(parents=True, exist_ok=True)
        service.write_report(model_name, report, title=f"Monitoring: {model_name} "
                             f"v{reference.serving_version} against span {reference.span}")
        positions.mark_read(files)
        features = result.features
        predictions = result.predictions
        realised, realised_by_version = _realised(labelled_frame)
        found = ServedCheck(
            model_name=model_name, checked=True, serving_version=reference.serving_version,
            reference_span=reference.span, requests=len(current), files=len(files),
            requests_by_version=_counts(current),
            drifted_features=list(features.loc[features["drifted"], "feature"]),
            drift_scores={row.feature: float(row.psi) for row in features.itertuples()},
            prediction_drift=None if predictions is None else bool(predictions["drifted"].any()),
            prediction_psi=None if predictions is None else float(predictions["psi"].max()),
            labelled=0 if labelled_frame is None else len(labelled_frame),
            known=known, waiting=waiting, performance_checked=performance_checked,
            realised=realised, realised_by_version=realised_by_version,
            estimated=None if estimate is None else estimate.as_dict(),
            estimated_by_version=_estimated_by_version(current),
            estimated_drop=result.estimated_performance, alerts=alerts, report_path=report)
        _record_window(home, found, features, scores, stamp.timestamp())
        return found
    finally:
        if own_service:
            service.close()


def _date_text(value: DateLike) -> str:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.strftime("%Y-%m-%d")
    try:
        return dt.datetime.strptime(str(value)[:10], "%Y-%m-%d").strftime("%Y-%m-%d")
    except ValueError:
        raise ValueError(f"labels_available_before must be a date YYYY-MM-DD, got {value!r}") from None


def _register_reference(service, home, model_name: str, reference, reference_rows: int) -> None:
    """Registers the reference unless the service already holds this very one.

    Scoring the reference loads the SavedModel; a daily check of the same version must not pay
    for that every day. The source (model folder, Examples, row count) is recorded beside it.
    """
    from ml.core.atomic_files import atomic_write_text
    from ml.core.example_tables import read_records, records_to_frame, sample_records, split_files
    from models.risk.features import LABEL_KEY, RAW_FEATURES
    from models.risk.scoring import risk_scores

    source = {"model_dir": reference.model_dir, "examples_uri": reference.examples_uri,
              "reference_rows": reference_rows}
    marker = home.monitoring_reference_source(model_name)
    if (model_name in service.registered_models() and marker.exists()
            and json.loads(marker.read_text()) == source):
        return
    records = sample_records(read_records(split_files(reference.examples_uri, "train")),
                             reference_rows)
    frame = records_to_frame(records, RAW_FEATURES + [LABEL_KEY])
    service.register_model(model_name, frame[RAW_FEATURES],
                           reference_predictions=risk_scores(reference.model_dir, records),
                           reference_labels=frame[LABEL_KEY])
    atomic_write_text(marker, json.dumps(source, sort_keys=True))


def _matured(home, model_name: str, current: pd.DataFrame, cutoff: str, settings):
    """(rows whose outcomes arrived, with `_label`; rows still waiting), keeping the waiting.

    Rows without a trade id or date (probes, hand-made requests) can never get an outcome and
    are not kept."""
    from ml.core.atomic_files import atomic_write
    from ml.synthetic.outcomes import TRADE_DATE, TRADE_ID, realised_labels

    path = home.monitoring_pending_outcomes(model_name)
    pending = pd.read_parquet(path) if path.exists() else current.iloc[:0]
    rows = pd.concat([pending, current.dropna(subset=[TRADE_ID, TRADE_DATE])], ignore_index=True)
    due = rows[TRADE_DATE].astype(str).str[:10] < cutoff
    matured, waiting = rows[due].copy(), rows[~due]
    atomic_write(path, lambda handle: waiting.to_parquet(handle, index=False), binary=True)
    if matured.empty:
        return None, len(waiting)
    labels = realised_labels(matured, settings)
    matured = matured[labels.notna()].assign(_label=labels[labels.notna()].astype(int))
    return (matured if len(matured) else None), len(waiting)


def _record_window(home, found: ServedCheck, features: pd.DataFrame, scores: pd.Series,
                   checked_at: float) -> None:
    """Keeps the window's figures for trends (the dashboard's drift and performance plots)."""
    from ml.monitoring.check_history import CheckHistory, feature_rows, score_summary

    CheckHistory(home.monitoring_checks_db).record(found.model_name, checked_at, {
        "serving_version": found.serving_version, "reference_span": found.reference_span,
        "requests": found.requests, "requests_by_version": found.requests_by_version,
        "features": feature_rows(features), "scores": score_summary(scores),
        "prediction_psi": found.prediction_psi, "prediction_drift": found.prediction_drift,
        "labelled": found.labelled, "realised": found.realised,
        "realised_by_version": found.realised_by_version, "estimated": found.estimated,
        "estimated_by_version": found.estimated_by_version,
        "estimated_drop": found.estimated_drop, "alerts": len(found.alerts)})


def _estimate(scores: pd.Series):
    from ml.monitoring.performance_estimation import estimate_performance

    if len(scores) < 2:
        return None
    try:
        return estimate_performance(scores.to_numpy())
    except ValueError:
        return None


def _counts(frame: pd.DataFrame) -> Dict[int, int]:
    versions = frame[MODEL_VERSION_FEATURE].dropna().astype(int)
    return {int(version): int(count) for version, count in versions.value_counts().sort_index().items()}


def _estimated_by_version(frame: pd.DataFrame) -> Dict[int, float]:
    from ml.monitoring.performance_estimation import expected_roc_auc

    found = {}
    for version, rows in frame.dropna(subset=[MODEL_VERSION_FEATURE]).groupby(MODEL_VERSION_FEATURE):
        try:
            found[int(version)] = expected_roc_auc(rows[SCORE_COLUMN].astype(float).to_numpy())
        except ValueError:
            continue
    return found


def _realised(frame: Optional[pd.DataFrame]):
    """Realised AUC, precision, recall and accuracy overall and AUC per version."""
    from ml.monitoring.performance_estimation import realised_performance

    if frame is None or frame["_label"].nunique() < 2:
        return None, {}
    overall = realised_performance(frame["_label"].to_numpy(), frame[SCORE_COLUMN].astype(float))
    by_version = {}
    for version, rows in frame.dropna(subset=[MODEL_VERSION_FEATURE]).groupby(MODEL_VERSION_FEATURE):
        if rows["_label"].nunique() == 2:
            by_version[int(version)] = realised_performance(
                rows["_label"].to_numpy(), rows[SCORE_COLUMN].astype(float))["roc_auc"]
    return {name: float(value) for name, value in overall.items()}, by_version
