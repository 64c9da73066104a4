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
It rolls back only on evidence: the drop beyond `performance_threshold` must be significant
at `alpha` (one-sided, with both AUCs' standard errors), because a false rollback costs a
good model while a real failure shows plainly within a window. The guard concludes `pass` once
the window is complete and judged on realised outcomes, or, when outcomes never come, after
another `guard_intervals` intervals on the estimate.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from ml.lifecycle.canary_analysis import (AnalysisThresholds, VersionObservation,
                                          auc_drop_test, finite, realised_figures, summary)

OK, ROLLBACK, WAIT = "ok", "rollback", "wait"
CBPE_SIMULATIONS = 100


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


def performance_figures(observation: VersionObservation, thresholds: AnalysisThresholds
                        ) -> Dict[str, Any]:
    """A version's realised and estimated figures over one window (either may be None)."""
    return {"version": int(observation.version), "summary": summary(observation),
            "realised": realised_figures(observation, thresholds.high_threshold,
                                         thresholds.min_labelled, thresholds.min_class_count),
            "estimated": estimated_figures(observation, thresholds)}


def guard_check(current: VersionObservation, reference: Mapping[str, Any],
                thresholds: AnalysisThresholds) -> Dict[str, Any]:
    """ok / rollback / wait for the new stable's window against the previous version's
    reference figures (`performance_figures` of it), with the basis and the figures."""
    figures = performance_figures(current, thresholds)
    result: Dict[str, Any] = {"current": figures, "reference_version": reference.get("version")}
    for basis in ("realised", "estimated"):
        mine = figures[basis]
        theirs = reference.get(basis) or (reference.get("realised") if basis == "estimated"
                                          else None)
        if mine is None or theirs is None:
            continue
        test = auc_drop_test(theirs, mine, thresholds.performance_threshold, thresholds.alpha)
        result.update({"basis": basis, "test": test})
        if test["beyond"]:
            result.update({"status": ROLLBACK, "reasons": [
                f"{basis} AUC of version {current.version} is {test['auc']:.4f}, "
                f"{test['drop']:.4f} below version {reference.get('version')}'s "
                f"{test['reference_auc']:.4f} (allowed {thresholds.performance_threshold}, "
                f"p-value {test['p_value']:.3g} < {thresholds.alpha})"]})
        else:
            result.update({"status": OK, "reasons": [
                f"{basis} AUC {test['auc']:.4f} vs reference {test['reference_auc']:.4f}: "
                f"no drop beyond {thresholds.performance_threshold} shown"]})
        return result
    result.update({"status": WAIT, "basis": None, "reasons": [
        "not enough predictions or outcomes yet to compare with the previous version"]})
    return result


def concluded(check: Mapping[str, Any], checks_done: int, guard_intervals: int) -> bool:
    """Whether the guard may end with `pass` after this check (number checks_done, 1-based)."""
    if checks_done < guard_intervals or check.get("status") == ROLLBACK:
        return False
    return check.get("basis") == "realised" or checks_done >= 2 * guard_intervals
