"""The guard after a promotion: does the new `stable` fall behind the version it replaced?

What it compares (and why): once promoted, the previous version receives no traffic, so it
cannot be measured on the same period any more. Its reference is what it did on the latest
period it served: the canary analysis window when there was one (the same trades the new
version was judged on, the previous one then still `stable`), and at least the
`guard_intervals` intervals before the promotion (a forced or early hand promotion). The
reference keeps being re-measured until that window's outcomes are known (labels lag).

The new stable is measured on the cumulative window since its promotion, up to
`guard_intervals` intervals:
- realised AUC once `min_labelled` outcomes (both classes) are known, against the reference's
  realised AUC;
- before that, its CBPE estimated AUC (ml.monitoring.performance_estimation) against the
  reference's estimated AUC, like with like (the risk model is calibrated).
A version nobody validated (promoted with force, or by hand before a canary analysis passed)
is judged before outcomes by the version it replaced instead: that version, calibrated and
validated, scores the new one's logged requests in the loop's process (ml.lifecycle.shadow),
and the new version's expected AUC with outcomes drawn from those probabilities is set against
the old one's own (`judged_by_reference`, paired draws). Its own probabilities cannot vouch for
it: an inverted model is as confident as a good one. Realised outcomes, once known, decide.
It rolls back only on evidence: the drop beyond `performance_threshold` must be significant
at `alpha` (one-sided, with both AUCs' standard errors), because a false rollback costs a
good model while a real failure shows plainly within a window. The guard concludes `pass` once
the window is complete and judged on realised outcomes, or, when outcomes never come, after
`max_outcome_wait_intervals` more intervals on the estimate. A check is made at each interval
boundary and again at any step that finds outcomes arrived since the last check, until one is
judged on realised outcomes: a bad version goes as soon as the evidence exists, not one
interval later.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

import numpy as np

from ml.lifecycle.canary_analysis import (CBPE_SIMULATIONS, AnalysisThresholds,
                                          VersionObservation, auc_drop_test, estimated_figures,
                                          finite, realised_figures, summary)

OK, ROLLBACK, WAIT = "ok", "rollback", "wait"


def performance_figures(observation: VersionObservation, thresholds: AnalysisThresholds
                        ) -> Dict[str, Any]:
    """A version's realised and estimated figures over one window (either may be None)."""
    return {"version": int(observation.version), "summary": summary(observation),
            "realised": realised_figures(observation, thresholds.high_threshold,
                                         thresholds.min_labelled, thresholds.min_class_count),
            "estimated": estimated_figures(observation, thresholds)}


def shadow_figures(current_scores, reference_scores, thresholds: AnalysisThresholds
                   ) -> Optional[Dict[str, Any]]:
    """The new version's expected AUC judged by the replaced version's scores of the same
    requests, and the replaced version's own (ml.monitoring.performance_estimation
    .judged_by_reference); None with fewer than `min_predictions` rows or an undefined AUC."""
    from ml.monitoring.performance_estimation import judged_by_reference

    if len(current_scores) < thresholds.min_predictions:
        return None
    try:
        judged = judged_by_reference(np.clip(current_scores, 0.0, 1.0),
                                     np.clip(reference_scores, 0.0, 1.0),
                                     simulations=CBPE_SIMULATIONS)
    except ValueError:
        return None
    return {key: finite(value) if isinstance(value, float) else value
            for key, value in judged.items()}


def _shadow_test(shadow: Mapping[str, Any], thresholds: AnalysisThresholds) -> Dict[str, Any]:
    """auc_drop_test's result for the paired shadow figures."""
    from scipy import stats

    drop, spread = shadow["drop"], shadow.get("drop_standard_error") or 0.0
    threshold = thresholds.performance_threshold
    if spread > 0:
        p_value = float(stats.norm.sf((drop - threshold) / spread))
    else:
        p_value = 0.0 if drop > threshold else 1.0
    return {"reference_auc": shadow["reference_roc_auc"], "auc": shadow["roc_auc"],
            "drop": finite(drop), "standard_error": finite(spread), "p_value": finite(p_value),
            "threshold": threshold, "beyond": bool(p_value < thresholds.alpha)}


def guard_check(current: VersionObservation, reference: Mapping[str, Any],
                thresholds: AnalysisThresholds,
                shadow: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """ok / rollback / wait for the new stable's window against the previous version's
    reference figures (`performance_figures` of it), with the basis and the figures.

    shadow: `shadow_figures` of the window for a version nobody validated; it replaces the
    new version's own estimate as the basis before outcomes."""
    figures = performance_figures(current, thresholds)
    if shadow is not None:
        figures["shadow"] = dict(shadow)
    result: Dict[str, Any] = {"current": figures, "reference_version": reference.get("version")}
    for basis in ("realised", "shadow", "estimated"):
        mine = figures.get(basis)
        if basis == "shadow":
            if mine is None:
                continue
            test = _shadow_test(mine, thresholds)
        else:
            theirs = reference.get(basis) or (reference.get("realised") if basis == "estimated"
                                              else None)
            if mine is None or theirs is None or (basis == "estimated" and shadow is not None):
                continue
            test = auc_drop_test(theirs, mine, thresholds.performance_threshold,
                                 thresholds.alpha)
        result.update({"basis": basis, "test": test})
        if test["beyond"]:
            result.update({"status": ROLLBACK, "reasons": [
                f"{_basis_text(basis, reference.get('version'))} AUC of version "
                f"{current.version} is {test['auc']:.4f}, {test['drop']:.4f} below version "
                f"{reference.get('version')}'s {test['reference_auc']:.4f} (allowed "
                f"{thresholds.performance_threshold}, p-value {test['p_value']:.3g} < {thresholds.alpha})"]})
        else:
            result.update({"status": OK, "reasons": [
                f"{_basis_text(basis, reference.get('version'))} AUC {test['auc']:.4f} vs "
                f"reference {test['reference_auc']:.4f}: "
                f"no drop beyond {thresholds.performance_threshold} shown"]})
        return result
    result.update({"status": WAIT, "basis": None, "reasons": [
        "not enough predictions or outcomes yet to compare with the previous version"]})
    return result


def _basis_text(basis: str, reference_version) -> str:
    return (f"expected (judged by version {reference_version}'s scores of the same requests)"
            if basis == "shadow" else basis)


def concluded(check: Mapping[str, Any], checks_done: int, guard_intervals: int,
              outcome_wait_intervals: int) -> bool:
    """Whether the guard may end with `pass` after this check (checks_done: intervals
    elapsed, 1-based): on realised outcomes once its window is complete, else only after
    `outcome_wait_intervals` more intervals (outcomes that lag more than an interval must
    still be waited for)."""
    if checks_done < guard_intervals or check.get("status") == ROLLBACK:
        return False
    return (check.get("basis") == "realised"
            or checks_done >= guard_intervals + outcome_wait_intervals)
