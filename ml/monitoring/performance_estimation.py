"""Performance before labels arrive: confidence-based performance estimation (CBPE).

Outcomes (`high_risk`) are known only days after a prediction. A calibrated classifier's
probability p is the chance its trade turns out positive, so over a window of predictions the
expected confusion matrix at any threshold is known without a single label: a row scored above
the threshold is a true positive with probability p and a false positive with 1 - p. Sweeping
the threshold over the window's own scores gives the expected ROC curve, hence the expected
AUC; precision, recall and accuracy follow at the decision threshold. This is NannyML's CBPE
(`nannyml.CBPE`), written here because NannyML needs pyarrow >= 13 and TFX 1.16 pins pyarrow 10.

What it sees and what it cannot: covariate shift (a different mix of trades, a volatility
shock) changes the scores, so the estimate follows it. A concept change (the same features now
mean a different risk) leaves the scores, hence the estimate, unchanged; only realised labels
reveal it, which is why monitoring keeps the realised path beside this one.

Probabilities must be calibrated on the window's population. A model that is not calibrated
gets a `ProbabilityCalibrator` fitted on labelled reference data (isotonic, as NannyML does);
the ranking still uses the model's own scores so calibration never creates ties.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Optional

import numpy as np
from scipy import stats

ESTIMATED_METRICS = ("roc_auc", "precision", "recall", "accuracy")
DEFAULT_THRESHOLD = 0.5
DEFAULT_SIMULATIONS = 200


@dataclasses.dataclass(frozen=True)
class PerformanceEstimate:
    """Expected metrics of one window, and how far realised ones may fall from them.

    `standard_errors` is the spread of each metric's realised value around the estimate when
    labels follow the probabilities (simulated), so a realised figure outside estimate ± 2 se
    says the probabilities no longer describe the outcomes (a concept change or calibration
    loss).
    """
    rows: int
    threshold: float
    expected_positive_rate: float
    metrics: Dict[str, float]
    standard_errors: Dict[str, float]

    def as_dict(self) -> dict:
        return {"rows": self.rows, "threshold": self.threshold,
                "expected_positive_rate": self.expected_positive_rate,
                **{f"estimated_{name}": value for name, value in self.metrics.items()},
                **{f"{name}_standard_error": value for name, value in self.standard_errors.items()}}


class ProbabilityCalibrator:
    """Maps a model's scores to calibrated probabilities (isotonic fit on labelled reference)."""

    def __init__(self, reference_scores, reference_labels):
        from sklearn.isotonic import IsotonicRegression

        scores = _probabilities(reference_scores, "reference scores")
        labels = _binary_labels(reference_labels, "reference labels", len(scores))
        if labels.min() == labels.max():
            raise ValueError("reference labels: calibration needs both classes, got only "
                             f"{int(labels[0])}")
        self._isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        self._isotonic.fit(scores, labels)

    def __call__(self, scores) -> np.ndarray:
        return np.asarray(self._isotonic.predict(_probabilities(scores, "scores")), dtype=float)


def estimate_performance(scores, threshold: float = DEFAULT_THRESHOLD, *,
                         calibrator: Optional[ProbabilityCalibrator] = None,
                         simulations: int = DEFAULT_SIMULATIONS, seed: int = 0
                         ) -> PerformanceEstimate:
    """Expected AUC, precision, recall and accuracy of a window of scores, without labels."""
    scores = _probabilities(scores, "scores")
    if len(scores) < 2:
        raise ValueError(f"scores: performance estimation needs at least 2 rows, got {len(scores)}")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be strictly between 0 and 1, got {threshold}")
    if simulations < 2:
        raise ValueError(f"simulations must be at least 2, got {simulations}")
    probabilities = calibrator(scores) if calibrator is not None else scores
    metrics = {"roc_auc": expected_roc_auc(scores, probabilities),
               **_expected_threshold_metrics(scores, probabilities, threshold)}
    spread = _simulated_spread(scores, probabilities, threshold, simulations, seed)
    return PerformanceEstimate(rows=len(scores), threshold=threshold,
                               expected_positive_rate=float(probabilities.mean()),
                               metrics=metrics, standard_errors=spread)


def expected_roc_auc(scores, probabilities=None) -> float:
    """Area under the expected ROC curve: rows ranked by score, each positive with its probability.

    Tied scores form one step of the curve (the trapezoid counts their pairs half), matching
    the rank-sum AUC of `ml.core.metrics.roc_auc` on realised labels.
    """
    scores = np.asarray(scores, dtype=float)
    probabilities = scores if probabilities is None else np.asarray(probabilities, dtype=float)
    order = np.argsort(-scores, kind="stable")
    ranked_scores, ranked = scores[order], probabilities[order]
    positives, negatives = ranked.sum(), (1.0 - ranked).sum()
    if positives <= 0 or negatives <= 0:
        raise ValueError("scores: every probability is 0 or every one is 1; AUC is undefined")
    group_ends = np.flatnonzero(np.diff(ranked_scores) != 0)
    group_ends = np.append(group_ends, len(ranked) - 1)
    true_positive_rate = np.concatenate([[0.0], np.cumsum(ranked)[group_ends] / positives])
    false_positive_rate = np.concatenate([[0.0], np.cumsum(1.0 - ranked)[group_ends] / negatives])
    return float(np.trapz(true_positive_rate, false_positive_rate))


def judged_by_reference(scores, reference_scores, simulations: int = DEFAULT_SIMULATIONS,
                        seed: int = 0) -> Dict[str, float]:
    """Expected AUC of `scores` and of `reference_scores` on the same rows when outcomes follow
    the reference's probabilities, with the standard error of their difference over paired
    label draws (the two AUCs move together, so their difference is much tighter than either).

    Why: a version nobody validated says nothing trustworthy about itself through its own
    probabilities (an inverted model looks as confident as a good one); the calibrated,
    validated version it replaced can judge it on the same trades until outcomes arrive.
    """
    scores = _probabilities(scores, "scores")
    reference = _probabilities(reference_scores, "reference scores")
    if len(scores) != len(reference):
        raise ValueError(f"scores and reference scores must align: {len(scores)} against "
                         f"{len(reference)} rows")
    if len(scores) < 2:
        raise ValueError(f"scores: performance estimation needs at least 2 rows, got {len(scores)}")
    if simulations < 2:
        raise ValueError(f"simulations must be at least 2, got {simulations}")
    from ml.core.metrics import roc_auc

    auc, reference_auc = expected_roc_auc(scores, reference), expected_roc_auc(reference)
    rng = np.random.default_rng(seed)
    differences = []
    for _ in range(simulations):
        labels = (rng.random(len(reference)) < reference).astype(np.int64)
        if labels.min() == labels.max():
            continue
        differences.append(roc_auc(labels=labels, scores=reference)
                           - roc_auc(labels=labels, scores=scores))
    spread = float(np.std(differences, ddof=1)) if len(differences) > 1 else float("nan")
    return {"rows": int(len(scores)), "roc_auc": auc, "reference_roc_auc": reference_auc,
            "drop": reference_auc - auc, "drop_standard_error": spread}


def realised_performance(labels, scores, threshold: float = DEFAULT_THRESHOLD) -> Dict[str, float]:
    """The same metrics from realised labels, to set beside the estimate once outcomes arrive."""
    from ml.core.metrics import roc_auc

    scores = _probabilities(scores, "scores")
    labels = _binary_labels(labels, "labels", len(scores))
    predicted = scores >= threshold
    true_positive = float(np.sum(predicted & (labels == 1)))
    false_positive = float(np.sum(predicted & (labels == 0)))
    false_negative = float(np.sum(~predicted & (labels == 1)))
    return {"roc_auc": roc_auc(labels=labels, scores=scores),
            "precision": _ratio(true_positive, true_positive + false_positive),
            "recall": _ratio(true_positive, true_positive + false_negative),
            "accuracy": float(np.mean(predicted == (labels == 1)))}


def estimated_drop_test(reference: Dict[str, float], estimate: PerformanceEstimate,
                        performance_threshold: float, metric: str = "roc_auc",
                        alpha: float = 0.05) -> dict:
    """Is the estimated drop of `metric` from the reference beyond `performance_threshold`?

    One-sided test of 'drop <= threshold' with the estimate's standard error, as the realised
    drop tests in ml/monitoring/performance.py do: a small window's estimate wobbles, and a
    retrain should follow evidence, not noise.
    """
    if metric not in ESTIMATED_METRICS:
        raise ValueError(f"metric must be one of {list(ESTIMATED_METRICS)}, got {metric!r}")
    if performance_threshold < 0:
        raise ValueError(f"performance_threshold must be >= 0, got {performance_threshold}")
    if metric not in reference:
        raise ValueError(f"reference figures have no {metric!r} (they have {sorted(reference)})")
    drop = float(reference[metric]) - estimate.metrics[metric]
    spread = estimate.standard_errors[metric]
    if spread > 0:
        p_value = float(stats.norm.sf((drop - performance_threshold) / spread))
    else:
        p_value = 0.0 if drop > performance_threshold else 1.0
    return {"metric": metric, "reference": float(reference[metric]),
            "estimated": estimate.metrics[metric], "drop": drop,
            "threshold": performance_threshold, "p_value": p_value,
            "dropped": p_value < alpha}


def _expected_threshold_metrics(scores: np.ndarray, probabilities: np.ndarray,
                                threshold: float) -> Dict[str, float]:
    predicted = scores >= threshold
    true_positive = float(probabilities[predicted].sum())
    false_positive = float((1.0 - probabilities[predicted]).sum())
    false_negative = float(probabilities[~predicted].sum())
    true_negative = float((1.0 - probabilities[~predicted]).sum())
    return {"precision": _ratio(true_positive, true_positive + false_positive),
            "recall": _ratio(true_positive, true_positive + false_negative),
            "accuracy": (true_positive + true_negative) / len(scores)}


def _simulated_spread(scores: np.ndarray, probabilities: np.ndarray, threshold: float,
                      simulations: int, seed: int) -> Dict[str, float]:
    """Standard deviation of each realised metric over label draws that follow the probabilities."""
    rng = np.random.default_rng(seed)
    draws = {name: [] for name in ESTIMATED_METRICS}
    for _ in range(simulations):
        labels = (rng.random(len(probabilities)) < probabilities).astype(np.int64)
        if labels.min() == labels.max():
            continue
        for name, value in realised_performance(labels, scores, threshold).items():
            draws[name].append(value)
    return {name: float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
            for name, values in draws.items()}


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else 0.0


def _probabilities(values, what: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be numbers between 0 and 1") from None
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what}: {int(np.sum(~np.isfinite(array)))} values are NaN or infinite")
    if array.size and (array.min() < 0 or array.max() > 1):
        raise ValueError(f"{what} must lie in [0, 1], got values from {array.min():g} to "
                         f"{array.max():g}")
    return array


def _binary_labels(values, what: str, rows: int) -> np.ndarray:
    array = np.asarray(values).reshape(-1)
    if len(array) != rows:
        raise ValueError(f"{what}: {len(array)} labels for {rows} scores")
    try:
        numeric = array.astype(float)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be 0/1") from None
    if not np.all(np.isin(numeric, (0.0, 1.0))):
        raise ValueError(f"{what} must be 0/1, got {sorted(set(numeric[~np.isin(numeric, (0.0, 1.0))].tolist()))[:5]}")
    return numeric.astype(np.int64)
