"""Model monitoring: register a reference, then check new windows for drift and raise alerts.

The implementation behind the spec's facade ml.drift_detection_service (ModelMonitoringService,
register_model, detect_drift, DriftType, the drift_thresholds). A check judges every feature
with ml.monitoring.drift_rule, the rule the pipeline's drift gate uses (KS or chi-square plus
location and scale tests in one correction; PSI and shift floors as effect size), the joint distribution (MMD,
and a common-shift test for many features moving a little together),
the model's outputs and, with labels, its accuracy, precision, recall and F1; without labels,
the AUC expected from the model's own probabilities (CBPE), when a drop threshold is set. Alerts are stored
in SQLite before they are sent, and references are kept on disk, so a restart loses neither.
"""
from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from ml.core.home import Home
from ml.monitoring.alert_rules import AlertRule, load_alert_rules, matching_rules
from ml.monitoring.alert_store import AlertStore
from ml.monitoring.alerts import (DEFAULT_DRIFT_THRESHOLDS, DEFAULT_SEVERITY, DriftAlert,
                                  DriftType, more_severe, resolve_thresholds, utc_now)
from ml.monitoring.drift_rule import DriftThresholds, distribution_reasons
from ml.monitoring.feature_drift import DEFAULT_BINS, ReferenceProfile, compare_to_profile
from ml.monitoring.multiple_testing import normalise_correction
from ml.monitoring.multivariate import DEFAULT_PERMUTATIONS, JointDriftResult, joint_drift_test
from ml.monitoring.notifications import Dispatcher, RetryPolicy
from ml.monitoring.performance import (confusion_matrix, performance_drop_tests,
                                       positive_class, relation_change_tests)
from ml.monitoring.performance_estimation import (PerformanceEstimate, estimate_performance,
                                                  estimated_drop_test, expected_roc_auc)
from ml.monitoring.reference_store import ReferenceStore, StoredReference, check_model_name
from ml.monitoring.drift_page import render_drift_page
from ml.monitoring.tables import FeatureTable, as_feature_table

__all__ = ["ModelMonitoringService", "DriftType", "DriftAlert", "MonitoringResult",
           "DEFAULT_DRIFT_THRESHOLDS", "default_state_dir"]


def default_state_dir(home=None) -> Path:
    """Where the service keeps references and alerts: <project home>/monitoring."""
    return Home.resolve(home).monitoring_dir


@dataclass(frozen=True)
class MonitoringResult:
    """Everything one check found; alerts is what detect_drift returns."""

    model_name: str
    timestamp: datetime
    current: FeatureTable
    features: pd.DataFrame
    joint: Optional[JointDriftResult]
    predictions: Optional[pd.DataFrame]
    performance: Optional[pd.DataFrame]
    relations: Optional[pd.DataFrame]
    alerts: List[DriftAlert] = field(default_factory=list)
    estimated_performance: Optional[Dict] = None


@dataclass(frozen=True)
class _Model:
    """A registered reference with everything precomputed that checks reuse."""

    stored: StoredReference
    profile: ReferenceProfile
    prediction_profile: Optional[ReferenceProfile]
    classes: Optional[np.ndarray]
    positive_index: Optional[int]
    reference_confusion: Optional[np.ndarray]
    reference_expected_auc: Optional[float] = None

    @classmethod
    def build(cls, stored: StoredReference, n_bins: int) -> "_Model":
        prediction_profile = None
        if stored.predictions is not None:
            prediction_profile = ReferenceProfile.build(
                as_feature_table(_prediction_frame(stored.predictions), "reference_predictions"),
                n_bins)
        classes = positive_index = confusion = None
        if stored.labels is not None:
            classes = np.unique(stored.labels)
            if len(classes) == 2:
                positive_index = int(np.flatnonzero(classes == positive_class(classes))[0])
            if stored.predictions is not None:
                predicted = _predicted_classes(stored.predictions, classes, positive_index,
                                               "reference_predictions")
                confusion = confusion_matrix(stored.labels, predicted, classes)
        return cls(stored, ReferenceProfile.build(stored.table, n_bins), prediction_profile,
                   classes, positive_index, confusion, _expected_auc(stored.predictions))


class ModelMonitoringService:
    """Drift monitoring for registered models, with alert rules, notifications and history.

    state_dir defaults to <home>/monitoring, home resolving as --home, $ETRM_HOME, then .etrm.
    drift_thresholds has the spec's shape ({DriftType.DATA_DRIFT: {'psi': 0.25, ...}}) and
    overrides the defaults key by key. correction is 'holm' (default) or 'bh'. alert_rules has
    the spec's shape; notifiers maps channel names ('email', 'slack', 'pager') to notifier
    objects from ml.monitoring.notifications. Alerts are delivered by background threads, one
    per channel: check() waits at most delivery_wait_seconds for them, so an unresponsive
    channel never stalls a check; close() (or leaving a with block) flushes with a bound.
    feature_psi gives features their own data-drift PSI floor (as the pipeline's drift gate
    does for market features that move that much in ordinary weeks).
    """

    def __init__(self, state_dir=None, *, home=None, drift_thresholds: Optional[Mapping] = None,
                 correction: str = "holm", alert_rules: Optional[Mapping] = None,
                 notifiers: Optional[Mapping[str, object]] = None,
                 default_channels: Sequence[str] = ("log",), cooldown_seconds: float = 3600.0,
                 retry_policy: RetryPolicy = RetryPolicy(), n_bins: int = DEFAULT_BINS,
                 n_permutations: int = DEFAULT_PERMUTATIONS, seed: int = 0,
                 delivery_wait_seconds: float = 2.0,
                 feature_psi: Optional[Mapping[str, float]] = None):
        self.state_dir = Path(state_dir) if state_dir is not None else default_state_dir(home)
        self.drift_thresholds = resolve_thresholds(drift_thresholds)
        self.feature_psi = {str(name): float(floor) for name, floor in (feature_psi or {}).items()}
        bad = {name: floor for name, floor in self.feature_psi.items() if not floor > 0}
        if bad:
            raise ValueError(f"feature_psi floors must be > 0, got {bad}")
        self.correction = normalise_correction(correction)
        self.alert_rules: List[AlertRule] = load_alert_rules(alert_rules)
        if cooldown_seconds < 0:
            raise ValueError(f"cooldown_seconds must be non-negative, got {cooldown_seconds}")
        self.cooldown_seconds = float(cooldown_seconds)
        self.n_bins, self.n_permutations, self.seed = n_bins, n_permutations, seed
        self.references = ReferenceStore(self.state_dir / "references")
        self.alert_store = AlertStore(self.state_dir / "alerts.sqlite")
        if delivery_wait_seconds < 0:
            raise ValueError(f"delivery_wait_seconds must be non-negative, got "
                             f"{delivery_wait_seconds}")
        self.delivery_wait_seconds = float(delivery_wait_seconds)
        self.dispatcher = Dispatcher(self.alert_store, notifiers or {}, retry_policy)
        self.default_channels = tuple(default_channels)
        self._check_channels_configured()
        weakref.finalize(self, self.dispatcher.stop)
        self._models: Dict[str, _Model] = {
            name: _Model.build(stored, n_bins) for name, stored in self.references.load_all().items()}
        self._last_results: Dict[str, MonitoringResult] = {}
        self.dispatch_pending()

    def _check_channels_configured(self) -> None:
        users: Dict[str, List[str]] = {}
        for channel in self.default_channels:
            users.setdefault(channel, []).append("default_channels")
        for rule in self.alert_rules:
            for channel in rule.channels:
                users.setdefault(channel, []).append(f"alert rule {rule.name!r}")
        missing = {c: u for c, u in users.items() if c not in self.dispatcher.notifiers}
        if missing:
            raise ValueError("no notifier configured for channels " + "; ".join(
                f"{c!r} (used by {', '.join(u)})" for c, u in sorted(missing.items())))

    # Registration -----------------------------------------------------------------------

    def register_model(self, model_name: str, reference_data, reference_predictions=None,
                       reference_labels=None) -> None:
        """Store the reference window (and optionally the model's outputs and true labels).

        Registering a name again replaces its reference. The reference is written to disk
        before it is used, so it survives a restart.
        """
        check_model_name(model_name)
        table = as_feature_table(reference_data, "reference_data")
        predictions = _prediction_array(reference_predictions, "reference_predictions",
                                        table.n_rows)
        labels = _label_array(reference_labels, "reference_labels", table.n_rows)
        if labels is not None and len(np.unique(labels)) < 2:
            raise ValueError("reference_labels need at least two classes")
        stored = StoredReference(table, predictions, labels)
        model = _Model.build(stored, self.n_bins)
        self.references.save(model_name, stored)
        self._models[model_name] = model

    def registered_models(self) -> List[str]:
        return sorted(self._models)

    def _model(self, model_name: str) -> _Model:
        if model_name not in self._models:
            raise KeyError(f"model {model_name!r} is not registered; registered models: "
                           f"{self.registered_models()}")
        return self._models[model_name]

    # Checks -----------------------------------------------------------------------------

    def detect_drift(self, model_name: str, new_data, predictions=None,
                     labels=None) -> List[DriftAlert]:
        """Alerts for new_data (and optional predictions/labels) against the reference."""
        return self.check(model_name, new_data, predictions, labels).alerts

    def check(self, model_name: str, new_data, predictions=None, labels=None, *,
              estimate: Optional[PerformanceEstimate] = None,
              alert_on_inputs: bool = True) -> MonitoringResult:
        """Run every applicable test, store and send the alerts, and return all results.

        estimate: this window's CBPE estimate (computed from the predictions when not given
        and the estimated-performance rule is on). alert_on_inputs=False keeps data- and
        prediction-drift alerts out: for a window whose outcomes arrived late, its inputs were
        already judged when it was served.
        """
        model = self._model(model_name)
        current = as_feature_table(new_data, "new_data", like=model.stored.table)
        predictions = _prediction_array(predictions, "predictions", current.n_rows)
        labels = _label_array(labels, "labels", current.n_rows)
        data_limits = self.drift_thresholds[DriftType.DATA_DRIFT]
        features = compare_to_profile(model.profile, current, _feature_limits(data_limits),
                                      self.correction, self.feature_psi)
        joint = self._joint_test(model, current, features)
        prediction_table = self._prediction_drift(model, predictions)
        performance = self._performance(model, predictions, labels)
        relations = self._relations(model, current, labels)
        estimated = self._estimated_drop(model, predictions, estimate)
        alerts = self._built_in_alerts(model_name, features, joint, prediction_table,
                                       performance, relations)
        alerts = self._apply_rules(model_name, alerts, features, joint, prediction_table,
                                   performance, current.n_rows)
        if not alert_on_inputs:
            alerts = [alert for alert in alerts if alert.drift_type not in _COLUMN_TYPES]
        if estimated is not None and estimated["dropped"]:
            alerts.append(self._estimated_alert(model_name, estimated))
        self.alert_store.record_all(alerts, self.cooldown_seconds)
        self.dispatch_pending()
        result = MonitoringResult(model_name, utc_now(), current, features, joint,
                                  prediction_table, performance, relations, alerts, estimated)
        self._last_results[model_name] = result
        return result

    def _joint_test(self, model: _Model, current: FeatureTable,
                    features: pd.DataFrame) -> Optional[JointDriftResult]:
        """The joint test only matters when no single feature already explains the change."""
        reference = model.stored.table.numeric
        varying = reference.std(axis=0) > 0
        if varying.sum() < 2 or bool(features["drifted"].any()):
            return None
        alpha = self.drift_thresholds[DriftType.DATA_DRIFT]["multivariate_p_value"]
        return joint_drift_test(reference, current.numeric, alpha=alpha,
                                n_permutations=self.n_permutations, seed=self.seed)

    def _prediction_drift(self, model: _Model, predictions) -> Optional[pd.DataFrame]:
        if predictions is None:
            return None
        if model.prediction_profile is None:
            raise ValueError("predictions were given but the model was registered without "
                             "reference_predictions to compare them with")
        table = as_feature_table(_prediction_frame(predictions), "predictions",
                                 like=model.prediction_profile.table)
        limits = self.drift_thresholds[DriftType.PREDICTION_DRIFT]
        return compare_to_profile(model.prediction_profile, table, _feature_limits(limits),
                                  self.correction)

    def _performance(self, model: _Model, predictions, labels) -> Optional[pd.DataFrame]:
        if labels is None or predictions is None:
            return None
        if model.reference_confusion is None:
            raise ValueError("labels were given but the model was registered without both "
                             "reference_predictions and reference_labels")
        predicted = _predicted_classes(predictions, model.classes, model.positive_index,
                                       "predictions")
        current_confusion = confusion_matrix(labels, predicted, model.classes)
        limits = self.drift_thresholds[DriftType.PERFORMANCE_DRIFT]
        return performance_drop_tests(model.reference_confusion, current_confusion, limits,
                                      alpha=limits["p_value"], positive_index=model.positive_index,
                                      correction=self.correction, seed=self.seed)

    def _estimated_drop(self, model: _Model, predictions,
                        estimate: Optional[PerformanceEstimate]) -> Optional[Dict]:
        """CBPE's expected AUC of the window against the reference's, when the rule is on.

        Both sides are expectations from the model's own probabilities, so the training data's
        optimism (its realised AUC is higher than any live window's) does not count as a drop.
        """
        limits = self.drift_thresholds[DriftType.ESTIMATED_PERFORMANCE]
        if not math.isfinite(limits["roc_auc_drop"]):
            return None
        if model.reference_expected_auc is None:
            raise ValueError("the estimated-performance rule needs the model registered with "
                             "reference_predictions that are probabilities in [0, 1]")
        if estimate is None:
            if predictions is None or predictions.ndim != 1 or predictions.dtype.kind != "f":
                return None
            estimate = estimate_performance(predictions, seed=self.seed)
        return estimated_drop_test({"roc_auc": model.reference_expected_auc}, estimate,
                                   limits["roc_auc_drop"], alpha=limits["p_value"])

    def _relations(self, model: _Model, current: FeatureTable, labels) -> Optional[pd.DataFrame]:
        if labels is None:
            return None
        if model.classes is None:
            raise ValueError("labels were given but the model was registered without "
                             "reference_labels")
        if model.positive_index is None or not current.numeric_names:
            return None
        positive = model.classes[model.positive_index]
        limits = self.drift_thresholds[DriftType.CONCEPT_DRIFT]
        return relation_change_tests(
            model.stored.table.numeric, (model.stored.labels == positive).astype(float),
            current.numeric, (labels == positive).astype(float), current.numeric_names,
            limits["correlation_change"], limits["p_value"], self.correction)

    # Alerts -----------------------------------------------------------------------------

    def _built_in_alerts(self, model_name, features, joint, prediction_table, performance,
                         relations) -> List[DriftAlert]:
        data_limits = self.drift_thresholds[DriftType.DATA_DRIFT]
        alerts = [self._distribution_alert(model_name, DriftType.DATA_DRIFT, row, data_limits)
                  for row in features[features["drifted"]].itertuples()]
        if joint is not None and joint.drifted(data_limits["multivariate_p_value"]):
            alpha = data_limits["multivariate_p_value"]
            alerts.append(self._alert(
                DriftType.DATA_DRIFT, model_name, None, "multivariate_p_value", joint.p_value,
                alpha, f"Joint data drift on {model_name}: the features' joint distribution "
                f"changed although no single feature did (joint p = {joint.p_value:.3g} <= "
                f"{alpha}: MMD permutation p = {joint.kernel_p_values['mmd']:.3g}, common "
                f"shift p = {joint.kernel_p_values['common_shift']:.3g})",
                {"kernel_p_values": joint.kernel_p_values, "statistics": joint.statistics}))
        if prediction_table is not None:
            limits = self.drift_thresholds[DriftType.PREDICTION_DRIFT]
            alerts += [self._distribution_alert(model_name, DriftType.PREDICTION_DRIFT, row, limits)
                       for row in prediction_table[prediction_table["drifted"]].itertuples()]
        performance_fell = performance is not None and bool(performance["drifted"].any())
        if performance_fell:
            for row in performance[performance["drifted"]].itertuples():
                alerts.append(self._alert(
                    DriftType.PERFORMANCE_DRIFT, model_name, None, row.metric, row.current,
                    row.reference - row.threshold,
                    f"Performance drift on {model_name}: {row.metric} fell from "
                    f"{row.reference:.3f} to {row.current:.3f} (drop {row.drop:.3f} > "
                    f"{row.threshold:g}, adjusted p = {row.adjusted_p_value:.2g})",
                    {"baseline": row.reference, "drop": row.drop,
                     "adjusted_p_value": row.adjusted_p_value}))
        inputs_drifted = any(a.drift_type == DriftType.DATA_DRIFT for a in alerts)
        if performance_fell and not inputs_drifted:
            alerts.append(self._alert(
                DriftType.CONCEPT_DRIFT, model_name, None, "performance_without_input_drift",
                1.0, 0.0, f"Concept drift on {model_name}: performance fell while the inputs "
                "did not drift, so the relation between inputs and outcome has changed", {}))
        if relations is not None:
            for row in relations[relations["drifted"]].itertuples():
                alerts.append(self._alert(
                    DriftType.CONCEPT_DRIFT, model_name, row.feature, "label_correlation_change",
                    row.change, row.threshold,
                    f"Concept drift on {model_name}/{row.feature}: correlation with the label "
                    f"moved from {row.reference_correlation:.2f} to {row.current_correlation:.2f} "
                    f"(change > {row.threshold:g}, adjusted p = {row.adjusted_p_value:.2g})",
                    {"adjusted_p_value": row.adjusted_p_value}))
        return alerts

    def _estimated_alert(self, model_name: str, estimated: Mapping) -> DriftAlert:
        return self._alert(
            DriftType.ESTIMATED_PERFORMANCE, model_name, None, "estimated_roc_auc",
            estimated["estimated"], estimated["reference"] - estimated["threshold"],
            f"Estimated performance drop on {model_name}: the AUC expected from the model's own "
            f"probabilities fell from {estimated['reference']:.3f} to {estimated['estimated']:.3f} "
            f"(drop {estimated['drop']:.3f} > {estimated['threshold']:g}, "
            f"p = {estimated['p_value']:.2g})",
            {"reference": estimated["reference"], "drop": estimated["drop"],
             "p_value": estimated["p_value"]})

    def _distribution_alert(self, model_name, drift_type, row, limits) -> DriftAlert:
        what = "Data drift" if drift_type == DriftType.DATA_DRIFT else "Prediction drift"
        reasons = distribution_reasons(row, DriftThresholds.from_limits(limits))
        return self._alert(
            drift_type, model_name, row.feature, "psi", row.psi, limits["psi"],
            f"{what} on {model_name}/{row.feature}: " + "; ".join(reasons),
            {"test": row.test, "statistic": row.statistic, "p_value": row.p_value,
             "adjusted_p_value": row.adjusted_p_value, "js_distance": row.js_distance,
             "location_effect": row.location_effect, "scale_effect": row.scale_effect})

    def _alert(self, drift_type, model_name, feature, metric, value, threshold, message,
               details) -> DriftAlert:
        return DriftAlert(drift_type=drift_type, severity=DEFAULT_SEVERITY[drift_type],
                          model_name=model_name, feature=feature, metric=metric,
                          value=float(value), threshold=float(threshold), message=message,
                          channels=self.default_channels, details=_plain(details))

    def _apply_rules(self, model_name, alerts, features, joint, prediction_table, performance,
                     n_rows) -> List[DriftAlert]:
        """Route built-in alerts through matching rules and add alerts for rules alone."""
        if not self.alert_rules:
            return alerts
        alerts = list(alerts)
        for drift_type, feature, context in _rule_contexts(features, joint, prediction_table,
                                                           performance, n_rows):
            for rule in matching_rules(self.alert_rules, context):
                if feature is not None and rule.drift_type in _COLUMN_TYPES - {drift_type}:
                    continue
                kind = rule.drift_type_for(drift_type)
                metric, value, threshold = rule.observed(context)
                index = _matching_alert(alerts, kind, feature, metric)
                if index is None:
                    where = f"{model_name}/{feature}" if feature else model_name
                    alerts.append(DriftAlert(
                        drift_type=kind, severity=rule.severity, model_name=model_name,
                        feature=feature, metric=metric, value=value, threshold=threshold,
                        message=f"Rule {rule.name!r} fired on {where}: "
                                f"{rule.condition.source} ({metric} = {value:.4g})",
                        channels=rule.channels, rules=(rule.name,)))
                    continue
                alert = alerts[index]
                routed = alert.rules + (rule.name,)
                channels = rule.channels if not alert.rules else alert.channels + rule.channels
                alerts[index] = alert.with_routing(more_severe(alert.severity, rule.severity),
                                                   tuple(dict.fromkeys(channels)), routed)
        return alerts

    # History, delivery, reports ---------------------------------------------------------

    def dispatch_pending(self, timeout: Optional[float] = None) -> int:
        """Send alerts due for a channel (e.g. after an outage); returns how many were sent.

        Waits at most timeout seconds (default delivery_wait_seconds); what is not sent by
        then keeps going in the background and stays in the store.
        """
        wait = self.delivery_wait_seconds if timeout is None else timeout
        return self.dispatcher.flush(wait)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is due for at most timeout seconds, then stop the delivery threads."""
        self.dispatcher.close(timeout)
        self.alert_store.close()

    def __enter__(self) -> "ModelMonitoringService":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def alert_history(self, model_name: Optional[str] = None, limit: int = 100) -> List[DriftAlert]:
        return self.alert_store.history(model_name, limit)

    def last_result(self, model_name: str) -> MonitoringResult:
        self._model(model_name)
        if model_name not in self._last_results:
            raise KeyError(f"model {model_name!r} has not been checked since the service started")
        return self._last_results[model_name]

    def write_report(self, model_name: str, path=None, title: Optional[str] = None) -> str:
        """HTML report of the model's last check (plots, tables, alert history)."""
        result = self.last_result(model_name)
        return render_drift_page(
            self._model(model_name).stored.table, result.current, result.features,
            joint=result.joint, alerts=self.alert_history(model_name),
            title=title or f"Drift report: {model_name}", path=path)


_COLUMN_TYPES = {DriftType.DATA_DRIFT, DriftType.PREDICTION_DRIFT}


def _feature_limits(limits: Mapping[str, float]) -> dict:
    return {"psi": limits["psi"], "ks_p_value": limits["ks_p_value"]}


def _rule_contexts(features, joint, prediction_table, performance, n_rows):
    """(context kind, feature, variables) for every place a rule can look at."""
    for kind, table in ((DriftType.DATA_DRIFT, features),
                        (DriftType.PREDICTION_DRIFT, prediction_table)):
        if table is None:
            continue
        for row in table.itertuples():
            yield kind, row.feature, {
                "psi_score": row.psi, "psi": row.psi, "ks_statistic": row.statistic,
                "ks_p_value": row.p_value, "adjusted_p_value": row.adjusted_p_value,
                "js_distance": row.js_distance, "drifted": float(row.drifted)}
    model_context = {"n_rows": float(n_rows), "drifted_features": float(features["drifted"].sum()),
                     "max_psi": float(features["psi"].max())}
    if joint is not None:
        model_context["multivariate_p_value"] = joint.p_value
    if performance is not None:
        for row in performance.itertuples():
            model_context[row.metric] = row.current
            model_context[f"baseline_{row.metric}"] = row.reference
            model_context[f"{row.metric}_drop"] = row.drop
    yield DriftType.DATA_DRIFT, None, model_context


def _matching_alert(alerts: List[DriftAlert], kind: DriftType, feature: Optional[str],
                    metric: str) -> Optional[int]:
    for index, alert in enumerate(alerts):
        if alert.drift_type != kind or alert.feature != feature:
            continue
        if feature is not None or alert.metric == metric:
            return index
    return None


def _plain(details: Mapping) -> dict:
    """JSON-friendly copy (numpy scalars to floats) so alerts can be stored and sent."""
    plain = {}
    for key, value in details.items():
        if isinstance(value, Mapping):
            plain[key] = _plain(value)
        elif isinstance(value, (np.generic, float, int)):
            number = float(value)
            plain[key] = number if math.isfinite(number) else None
        else:
            plain[key] = value
    return plain


def _expected_auc(predictions: Optional[np.ndarray]) -> Optional[float]:
    """The reference's CBPE AUC, when its predictions are probability scores."""
    if (predictions is None or predictions.ndim != 1 or predictions.dtype.kind != "f"
            or predictions.min() < 0 or predictions.max() > 1):
        return None
    try:
        return expected_roc_auc(predictions)
    except ValueError:
        return None


def _prediction_array(values, what: str, n_rows: int) -> Optional[np.ndarray]:
    """Model outputs: 1-D classes or scores, or 2-D class probabilities, one per row."""
    if values is None:
        return None
    array = np.asarray(values.to_numpy() if isinstance(values, (pd.Series, pd.DataFrame))
                       else values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim not in (1, 2):
        raise ValueError(f"{what} must be 1-D (classes or scores) or 2-D (class probabilities), "
                         f"got shape {array.shape}")
    if len(array) != n_rows:
        raise ValueError(f"{what} has {len(array)} rows but the data has {n_rows}")
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{what} contains NaN or infinite values")
        return array.astype(np.float64)
    if array.ndim == 2:
        raise ValueError(f"{what}: 2-D predictions must be numeric class probabilities")
    return _class_strings(array, what)


def _label_array(values, what: str, n_rows: int) -> Optional[np.ndarray]:
    if values is None:
        return None
    array = np.asarray(values.to_numpy() if isinstance(values, pd.Series) else values)
    if array.ndim != 1:
        raise ValueError(f"{what} must be 1-D, got shape {array.shape}")
    if len(array) != n_rows:
        raise ValueError(f"{what} has {len(array)} rows but the data has {n_rows}")
    return _class_strings(array, what)


def _class_strings(array: np.ndarray, what: str) -> np.ndarray:
    """Classes as text, with 1.0 and 1 both becoming '1', so labels and predictions compare."""
    if pd.isna(array).any():
        raise ValueError(f"{what} contains missing values")
    if array.dtype.kind == "f":
        if not np.all(array == np.round(array)):
            raise ValueError(f"{what} must be class labels; got non-integer numbers")
        array = array.astype(np.int64)
    return array.astype(str)


def _prediction_frame(predictions: np.ndarray) -> pd.DataFrame:
    if predictions.ndim == 2:
        return pd.DataFrame(predictions, columns=[f"prediction_{i}"
                                                  for i in range(predictions.shape[1])])
    return pd.DataFrame({"prediction": predictions})


def _predicted_classes(predictions: np.ndarray, classes: np.ndarray,
                       positive_index: Optional[int], what: str) -> np.ndarray:
    """Classes from outputs: as given, argmax of probabilities, or score >= 0.5 when binary."""
    if predictions.dtype.kind != "f":
        return predictions
    if predictions.ndim == 2:
        if predictions.shape[1] != len(classes):
            raise ValueError(f"{what} has {predictions.shape[1]} probability columns but the "
                             f"labels have {len(classes)} classes {classes.tolist()}")
        return classes[np.argmax(predictions, axis=1)]
    if positive_index is None:
        raise ValueError(f"{what} are scores, which only map to classes for binary labels")
    negative = classes[1 - positive_index]
    return np.where(predictions >= 0.5, classes[positive_index], negative)
