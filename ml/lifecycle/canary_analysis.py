"""Canary analysis: is the `canary` version as good as `stable` on the same live traffic?

Pure functions over VersionObservations (what each version did in one period: requests,
errors, latency, logged predictions, realised labels where known), so the rules are tested
without a server. Per interval the canary must not fail more often than stable (beyond
`max_error_rate_increase`, once both had `min_requests` requests or logged rows: metrics
count batched calls, the log counts rows) nor be much slower (p95 ratio above
`max_latency_ratio` and at least `min_latency_increase_ms` slower, so a few milliseconds
never fails it; the limits are wide because a canary with a small traffic share waits
longer to fill its batches, and the server's latency buckets double in width). The
verdict, after `required_intervals` intervals with enough traffic, pools the intervals'
predictions and labels:

- with enough realised labels for both (`min_labelled`, both classes), the canary fails when
  its AUC is below stable's by more than `performance_threshold`, significantly at `alpha`
  (Hanley-McNeil standard errors: a few hundred outcomes move an AUC by several hundredths,
  and the job's validation already held the candidate to the threshold); a drop beyond the
  threshold that is not significant waits for more outcomes, for up to
  `max_outcome_wait_intervals` intervals with traffic past the required ones, and passes if
  it is still not significant then (withdrawing on a point estimate would withdraw good
  canaries on noise; the guard keeps judging after the promotion); precision and recall at
  the HIGH cut-off are reported;
- before labels arrive, a canary whose prediction distribution departs from stable's (KS
  p-value below `ks_alpha` and PSI above `psi_threshold`, both, as the monitoring rule) waits
  for outcomes, for up to `max_outcome_wait_intervals` intervals with traffic past the
  required ones (an empty evening or weekend does not count), and
  fails only if none arrive by then: without outcomes nothing says whether the shift is an
  improvement, and a model retrained on drifted data is expected to score differently (the
  job's Evaluator already held it to stable on labelled recent data). With labels the shift
  is only reported. A canary that scores like stable passes before outcomes;
- with `decide_on_estimate`, a departing canary passes before outcomes when its CBPE
  estimated AUC on its traffic is at least stable's on the same period (both calibrated:
  the canary by the Evaluator on labelled recent data). Under covariate shift (the drift a
  retrain answers) the estimates hold; under concept change stable's estimate is too high,
  so the canary waits for outcomes as before. The guard keeps watching after the promotion,
  on realised outcomes once they arrive.

Every figure is JSON-safe (None where not measured, never NaN).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

PASS, FAIL, WAIT = "pass", "fail", "wait"
INSUFFICIENT = "insufficient"
PSI_BINS = 10
CBPE_SIMULATIONS = 100


@dataclasses.dataclass(frozen=True)
class VersionObservation:
    """What one served version did in one period.

    `labels` align with `predictions` (NaN where the outcome is not known yet). Latency is
    given as percentiles (a metrics scrape) or raw samples (the traffic sender's own timings);
    `VersionObservation.from_samples` turns samples into percentiles.
    """

    version: int
    requests: int = 0
    errors: int = 0
    latency_ms_p50: Optional[float] = None
    latency_ms_p95: Optional[float] = None
    predictions: Sequence[float] = ()
    labels: Optional[Sequence[float]] = None

    def __post_init__(self):
        for name in ("requests", "errors"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"VersionObservation.{name} must be a whole number >= 0, "
                                 f"got {value!r}")
        if self.errors > self.requests:
            raise ValueError(f"VersionObservation.errors ({self.errors}) exceeds requests "
                             f"({self.requests})")
        if self.labels is not None and len(self.labels) != len(self.predictions):
            raise ValueError(f"VersionObservation.labels: {len(self.labels)} labels for "
                             f"{len(self.predictions)} predictions")

    @classmethod
    def from_samples(cls, version: int, requests: int, errors: int,
                     latencies_ms: Sequence[float], predictions: Sequence[float] = (),
                     labels: Optional[Sequence[float]] = None) -> "VersionObservation":
        latencies = np.asarray(latencies_ms, dtype=float)
        p50, p95 = ((float(np.percentile(latencies, 50)), float(np.percentile(latencies, 95)))
                    if latencies.size else (None, None))
        return cls(version, int(requests), int(errors), p50, p95, predictions, labels)

    def with_counts(self, requests: int, errors: int, latency_ms_p50: Optional[float],
                    latency_ms_p95: Optional[float]) -> "VersionObservation":
        """The same predictions with counts and latency from another source (metrics)."""
        return dataclasses.replace(self, requests=int(requests), errors=int(errors),
                                   latency_ms_p50=latency_ms_p50, latency_ms_p95=latency_ms_p95)

    def scores(self) -> np.ndarray:
        return np.asarray(self.predictions, dtype=float).reshape(-1)

    def labelled(self):
        """(scores, labels) of the rows whose outcome is known."""
        scores = self.scores()
        if self.labels is None:
            return scores[:0], scores[:0]
        labels = np.asarray(self.labels, dtype=float).reshape(-1)
        known = np.isfinite(labels)
        return scores[known], labels[known]


@dataclasses.dataclass(frozen=True)
class AnalysisThresholds:
    """The rules' limits; `performance_threshold` comes from the model's RetrainingConfig and
    `high_threshold` from the risk model's `high_risk_cutoff`."""

    performance_threshold: float = 0.05
    high_threshold: float = 0.5
    min_requests: int = 50
    max_error_rate_increase: float = 0.01
    max_latency_ratio: float = 2.0
    min_latency_increase_ms: float = 20.0
    min_predictions: int = 50
    ks_alpha: float = 0.01
    psi_threshold: float = 0.25
    min_labelled: int = 100
    min_class_count: int = 5
    alpha: float = 0.05
    max_outcome_wait_intervals: int = 3
    decide_on_estimate: bool = True

    def __post_init__(self):
        if not 0 <= self.performance_threshold < 1:
            raise ValueError(f"performance_threshold must lie in [0, 1), got "
                             f"{self.performance_threshold}")
        if not 0 < self.high_threshold < 1:
            raise ValueError(f"high_threshold must lie in (0, 1), got {self.high_threshold}")
        if self.max_outcome_wait_intervals < 0:
            raise ValueError(f"max_outcome_wait_intervals must be >= 0, got "
                             f"{self.max_outcome_wait_intervals}")
        for name in ("min_requests", "min_predictions", "min_labelled", "min_class_count"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_latency_ratio < 1:
            raise ValueError(f"max_latency_ratio must be >= 1, got {self.max_latency_ratio}")
        for name in ("ks_alpha", "alpha"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} must lie in (0, 1), got {getattr(self, name)}")


def finite(value: Any) -> Optional[float]:
    """A float for JSON, None for what is missing or not finite."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def error_rate(observation: VersionObservation) -> Optional[float]:
    return observation.errors / observation.requests if observation.requests else None


def volume(observation: VersionObservation) -> int:
    """How much traffic a version saw: its requests, or its logged rows when a batched call
    carries many (metrics count calls, the log counts rows)."""
    return max(int(observation.requests), int(observation.scores().size))


def summary(observation: VersionObservation) -> Dict[str, Any]:
    """The observation's own figures."""
    scores = observation.scores()
    known_scores, _ = observation.labelled()
    return {"version": int(observation.version), "requests": int(observation.requests),
            "errors": int(observation.errors), "error_rate": finite(error_rate(observation)),
            "latency_ms_p50": finite(observation.latency_ms_p50),
            "latency_ms_p95": finite(observation.latency_ms_p95),
            "predictions": int(scores.size), "labelled": int(known_scores.size),
            "mean_prediction": finite(scores.mean()) if scores.size else None}


def auc_standard_error(auc: float, positives: int, negatives: int) -> float:
    """Hanley & McNeil (1982): the AUC's sampling spread from the class counts alone."""
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc)
                + (negatives - 1) * (q2 - auc * auc)) / (positives * negatives)
    return math.sqrt(max(variance, 0.0))


def realised_figures(observation: VersionObservation, high_threshold: float,
                     min_labelled: int, min_class_count: int) -> Optional[Dict[str, Any]]:
    """AUC (with its standard error), precision and recall at the HIGH cut-off on the rows
    with known outcomes; None until enough are labelled, with both classes."""
    from ml.monitoring.performance_estimation import realised_performance

    scores, labels = observation.labelled()
    positives = int(labels.sum())
    negatives = int(labels.size - positives)
    if labels.size < min_labelled or min(positives, negatives) < min_class_count:
        return None
    figures = realised_performance(labels.astype(int), np.clip(scores, 0.0, 1.0), high_threshold)
    auc = figures["roc_auc"]
    return {"labelled": int(labels.size), "positives": positives, "roc_auc": finite(auc),
            "roc_auc_standard_error": finite(auc_standard_error(auc, positives, negatives)),
            "precision": finite(figures["precision"]), "recall": finite(figures["recall"])}


def estimated_figures(observation: VersionObservation, thresholds: AnalysisThresholds
                      ) -> Optional[Dict[str, Any]]:
    """CBPE's expected AUC (and its spread) of the observation's predictions; None with fewer
    than `min_predictions` or when AUC is undefined (every score 0 or 1)."""
    from ml.monitoring.performance_estimation import estimate_performance

    scores = observation.scores()
    if scores.size < thresholds.min_predictions:
        return None
    try:
        estimate = estimate_performance(scores.clip(0.0, 1.0), thresholds.high_threshold,
                                        simulations=CBPE_SIMULATIONS)
    except ValueError:
        return None
    return {"rows": int(estimate.rows), "roc_auc": finite(estimate.metrics["roc_auc"]),
            "roc_auc_standard_error": finite(estimate.standard_errors["roc_auc"]),
            "precision": finite(estimate.metrics["precision"]),
            "recall": finite(estimate.metrics["recall"])}


def prediction_shift(stable: VersionObservation, canary: VersionObservation,
                     thresholds: AnalysisThresholds) -> Optional[Dict[str, Any]]:
    """KS p-value and PSI (stable's quantile bins) of canary's predictions against stable's;
    None when either has fewer than `min_predictions`."""
    from scipy import stats

    from ml.monitoring.statistics import (bin_counts_sorted, population_stability_index,
                                          quantile_bin_edges)

    reference, current = np.sort(stable.scores()), np.sort(canary.scores())
    if min(reference.size, current.size) < thresholds.min_predictions:
        return None
    ks = stats.ks_2samp(reference, current)
    edges = quantile_bin_edges(reference, PSI_BINS)
    psi = float(population_stability_index(bin_counts_sorted(reference, edges),
                                           bin_counts_sorted(current, edges)))
    p_value = float(ks.pvalue)
    shifted = p_value < thresholds.ks_alpha and psi > thresholds.psi_threshold
    return {"ks_statistic": finite(ks.statistic), "ks_p_value": finite(p_value),
            "psi": finite(psi), "shifted": bool(shifted)}


def analyse_interval(stable: VersionObservation, canary: VersionObservation,
                     thresholds: AnalysisThresholds) -> Dict[str, Any]:
    """One interval: status pass, fail (errors or latency) or insufficient (too few requests),
    with reasons and both versions' figures."""
    figures = {"stable": summary(stable), "canary": summary(canary)}
    if min(volume(stable), volume(canary)) < thresholds.min_requests:
        return {"status": INSUFFICIENT, **figures,
                "reasons": [f"too few requests: stable {volume(stable)}, canary "
                            f"{volume(canary)} (need {thresholds.min_requests} each)"]}
    reasons: List[str] = []
    increase = None
    if stable.requests and canary.requests:
        increase = error_rate(canary) - error_rate(stable)
        if increase > thresholds.max_error_rate_increase:
            reasons.append(f"canary error rate {error_rate(canary):.4f} exceeds stable's "
                           f"{error_rate(stable):.4f} by {increase:.4f} (allowed "
                           f"{thresholds.max_error_rate_increase})")
    latency: Dict[str, Any] = {"ratio_p95": None}
    if stable.latency_ms_p95 and canary.latency_ms_p95 is not None:
        ratio = canary.latency_ms_p95 / stable.latency_ms_p95
        slower = canary.latency_ms_p95 - stable.latency_ms_p95
        latency = {"ratio_p95": finite(ratio), "increase_ms_p95": finite(slower)}
        if ratio > thresholds.max_latency_ratio and slower > thresholds.min_latency_increase_ms:
            reasons.append(f"canary p95 latency {canary.latency_ms_p95:.1f} ms is {ratio:.2f}x "
                           f"stable's {stable.latency_ms_p95:.1f} ms (allowed "
                           f"{thresholds.max_latency_ratio}x)")
    return {"status": FAIL if reasons else PASS, **figures, "reasons": reasons,
            "error_rate_increase": finite(increase), "latency": latency}


def pooled(observations: Sequence[VersionObservation]) -> VersionObservation:
    """Several periods of one version as one: counts add, predictions and labels concatenate;
    latency keeps the worst p95 (percentiles do not add)."""
    if not observations:
        raise ValueError("observations: pooling needs at least one observation")
    predictions = np.concatenate([o.scores() for o in observations])
    labels = None
    if any(o.labels is not None for o in observations):
        labels = np.concatenate([np.asarray(o.labels, dtype=float) if o.labels is not None
                                 else np.full(len(o.predictions), np.nan) for o in observations])
    p95 = [o.latency_ms_p95 for o in observations if o.latency_ms_p95 is not None]
    p50 = [o.latency_ms_p50 for o in observations if o.latency_ms_p50 is not None]
    return VersionObservation(
        observations[0].version, sum(o.requests for o in observations),
        sum(o.errors for o in observations), max(p50) if p50 else None,
        max(p95) if p95 else None, predictions, labels)


def compare_performance(stable: VersionObservation, canary: VersionObservation,
                        thresholds: AnalysisThresholds) -> Optional[Dict[str, Any]]:
    """Both versions' realised figures and the canary's AUC drop; None until both have
    enough labelled rows."""
    args = (thresholds.high_threshold, thresholds.min_labelled, thresholds.min_class_count)
    stable_figures, canary_figures = realised_figures(stable, *args), realised_figures(canary, *args)
    if stable_figures is None or canary_figures is None:
        return None
    test = auc_drop_test(stable_figures, canary_figures, thresholds.performance_threshold,
                         thresholds.alpha)
    return {"stable": stable_figures, "canary": canary_figures, "auc_drop": test["drop"],
            "test": test, "worse": test["beyond"]}


def auc_drop_test(reference: Mapping[str, Any], current: Mapping[str, Any],
                  performance_threshold: float, alpha: float) -> Dict[str, Any]:
    """One-sided test of 'AUC drop <= threshold' with both AUCs' standard errors: the drop is
    `beyond` only when p < alpha. A few hundred outcomes move an AUC by several hundredths,
    so a point estimate would withdraw good canaries (and roll back good versions) on noise."""
    from scipy import stats

    drop = reference["roc_auc"] - current["roc_auc"]
    spread = math.hypot(reference.get("roc_auc_standard_error") or 0.0,
                        current.get("roc_auc_standard_error") or 0.0)
    if spread > 0:
        p_value = float(stats.norm.sf((drop - performance_threshold) / spread))
    else:
        p_value = 0.0 if drop > performance_threshold else 1.0
    return {"reference_auc": finite(reference["roc_auc"]), "auc": finite(current["roc_auc"]),
            "drop": finite(drop), "standard_error": finite(spread), "p_value": finite(p_value),
            "threshold": performance_threshold, "beyond": bool(p_value < alpha)}


def verdict(intervals: Sequence[Mapping[str, Any]], stable: VersionObservation,
            canary: VersionObservation, thresholds: AnalysisThresholds,
            required_intervals: int) -> Dict[str, Any]:
    """pass / fail / wait from the analysed intervals and the pooled observations of the
    same period, with reasons and figures.

    Any failed interval fails the canary at once (a failing canary should not wait for the
    rest of the window); otherwise it waits until `required_intervals` intervals had enough
    requests, then decides on the pooled predictions and labels."""
    if required_intervals < 1:
        raise ValueError(f"required_intervals must be >= 1, got {required_intervals}")
    failed = [item for item in intervals if item.get("status") == FAIL]
    sufficient = [item for item in intervals if item.get("status") == PASS]
    figures: Dict[str, Any] = {"intervals": len(intervals), "sufficient_intervals": len(sufficient),
                               "required_intervals": int(required_intervals),
                               "stable": summary(stable), "canary": summary(canary)}
    if failed:
        reasons = [reason for item in failed for reason in item.get("reasons", [])]
        return {"verdict": FAIL, "reasons": reasons, "figures": figures}
    shift = prediction_shift(stable, canary, thresholds)
    performance = compare_performance(stable, canary, thresholds)
    figures.update({"prediction_shift": shift, "performance": performance,
                    "thresholds": dataclasses.asdict(thresholds)})
    if len(sufficient) < required_intervals:
        return {"verdict": WAIT, "figures": figures,
                "reasons": [f"{len(sufficient)} of {required_intervals} intervals analysed with "
                            f"enough requests ({thresholds.min_requests} per version)"]}
    # Intervals with traffic only: an empty evening or weekend brings no outcome closer.
    waited = len(sufficient) - int(required_intervals)
    if performance is not None:
        comparison = (f"canary AUC {performance['canary']['roc_auc']:.4f} is "
                      f"{performance['auc_drop']:.4f} below stable's "
                      f"{performance['stable']['roc_auc']:.4f} (allowed "
                      f"{thresholds.performance_threshold}, p-value "
                      f"{performance['test']['p_value']:.3g}")
        if performance["worse"]:
            return {"verdict": FAIL, "figures": figures,
                    "reasons": [f"{comparison} < {thresholds.alpha})"]}
        if performance["auc_drop"] > thresholds.performance_threshold:
            if waited < thresholds.max_outcome_wait_intervals:
                return {"verdict": WAIT, "figures": figures, "reasons": [
                    f"{comparison} >= {thresholds.alpha}: beyond the allowed drop but not "
                    f"significantly, on {performance['canary']['labelled']} canary outcomes); "
                    f"waiting for more outcomes ({waited} of "
                    f"{thresholds.max_outcome_wait_intervals} extra intervals)"]}
            return {"verdict": PASS, "figures": figures, "reasons": [
                f"{comparison} >= {thresholds.alpha}: not significantly beyond the allowed drop "
                f"after {waited} extra intervals); errors and latency within limits; the "
                "guard keeps judging it on outcomes"]}
        return {"verdict": PASS, "figures": figures, "reasons": [
            f"canary AUC {performance['canary']['roc_auc']:.4f} vs stable "
            f"{performance['stable']['roc_auc']:.4f}; errors and latency within limits"]}
    if shift is None and stable.scores().size == 0 and canary.scores().size == 0:
        return {"verdict": PASS, "figures": figures, "reasons": [
            "errors and latency within limits (the model logs no score to compare)"]}
    if shift is None:
        return {"verdict": WAIT, "figures": figures, "reasons": [
            f"too few logged predictions to compare ({thresholds.min_predictions} per version)"]}
    if shift["shifted"]:
        departure = (f"canary predictions depart from stable's before outcomes are known: KS "
                     f"p-value {shift['ks_p_value']:.2g} < {thresholds.ks_alpha} and PSI "
                     f"{shift['psi']:.3f} > {thresholds.psi_threshold}")
        estimates = {"stable": estimated_figures(stable, thresholds),
                     "canary": estimated_figures(canary, thresholds)}
        figures["estimated"] = estimates
        if thresholds.decide_on_estimate and None not in estimates.values() \
                and estimates["canary"]["roc_auc"] >= estimates["stable"]["roc_auc"]:
            return {"verdict": PASS, "figures": figures, "reasons": [
                f"{departure}; outcomes not known yet: estimated (CBPE) AUC of the canary "
                f"{estimates['canary']['roc_auc']:.4f} >= stable's "
                f"{estimates['stable']['roc_auc']:.4f} on the same period; errors and "
                f"latency within limits"]}
        if waited >= thresholds.max_outcome_wait_intervals:
            return {"verdict": FAIL, "figures": figures, "reasons": [
                f"{departure}, and no outcomes arrived to judge it within "
                f"{thresholds.max_outcome_wait_intervals} more intervals"]}
        return {"verdict": WAIT, "figures": figures, "reasons": [
            f"{departure}: waiting for outcomes to judge it ({waited} of "
            f"{thresholds.max_outcome_wait_intervals} extra intervals)"]}
    return {"verdict": PASS, "figures": figures, "reasons": [
        f"predictions match stable's (PSI {shift['psi']:.3f}, KS p-value "
        f"{shift['ks_p_value']:.2g}); errors and latency within limits; outcomes not known yet"]}
