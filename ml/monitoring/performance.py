"""Performance and concept drift from labels: metric drops and feature-label relation changes.

Both ask for evidence that the change exceeds its threshold (one-sided test of 'drop <=
threshold'), not merely that it is non-zero: a 200-row window's accuracy wobbles by a few
points by chance, so 'observed drop > 0.05' alone would fire on many healthy windows.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ml.monitoring.multiple_testing import adjust_p_values

METRICS = ("accuracy", "precision", "recall", "f1")
DEFAULT_BOOTSTRAP = 2000
# Rows a metric is a ratio of (all rows, predicted or actual positives): below this in either
# window it is reported, not tested. With 3 predicted positives, all right in the reference and
# wrong now, every bootstrap draw keeps the same ratio, the spread is 0 and "precision fell
# from 1.000 to 0.000" would alert with confidence.
MIN_SUPPORT = 20


def positive_class(classes: np.ndarray):
    """The class that precision/recall/F1 are about for binary labels (1/True, else the last)."""
    for candidate in (1, True, "1", "True", "true"):
        if any(c == candidate and type(c) is type(candidate) for c in classes.tolist()):
            return candidate
    return classes.tolist()[-1]


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Counts[true, predicted] over the given classes; unknown values raise ValueError."""
    true_index = _class_index(labels, classes, "labels")
    predicted_index = _class_index(predicted, classes, "predicted classes")
    k = len(classes)
    return np.bincount(true_index * k + predicted_index, minlength=k * k).reshape(k, k)


def _class_index(values: np.ndarray, classes: np.ndarray, what: str) -> np.ndarray:
    index = np.searchsorted(classes, values)
    index = np.clip(index, 0, len(classes) - 1)
    unknown = classes[index] != values
    if unknown.any():
        raise ValueError(f"{what} contain classes not seen in the reference labels: "
                         f"{sorted(set(np.asarray(values)[unknown].tolist()))[:10]}")
    return index


def metrics_from_confusion(confusion: np.ndarray, positive_index: int | None) -> dict:
    """Accuracy, precision, recall and F1 for one or a stack of confusion matrices.

    Binary problems report the positive class; multiclass ones macro-average over classes.
    An undefined ratio (no predicted or no actual positives) counts as 0.
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    total = confusion.sum(axis=(-2, -1))
    correct = np.trace(confusion, axis1=-2, axis2=-1)
    true_positive = np.diagonal(confusion, axis1=-2, axis2=-1)
    predicted = confusion.sum(axis=-2)
    actual = confusion.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, true_positive / predicted, 0.0)
        recall = np.where(actual > 0, true_positive / actual, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        accuracy = np.where(total > 0, correct / total, 0.0)
    if positive_index is not None:
        precision, recall, f1 = (v[..., positive_index] for v in (precision, recall, f1))
    else:
        precision, recall, f1 = (v.mean(axis=-1) for v in (precision, recall, f1))
    return {"accuracy": accuracy, "precision": precision, "recall": recall, "f1": f1}


def performance_drop_tests(reference_confusion: np.ndarray, current_confusion: np.ndarray,
                           drop_thresholds: Mapping[str, float], alpha: float,
                           positive_index: int | None, correction: str = "holm",
                           n_bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = 0,
                           min_support: int = MIN_SUPPORT) -> pd.DataFrame:
    """One row per metric: reference, current, drop, threshold, p-value of 'drop <= threshold'.

    The spread of the drop comes from a multinomial bootstrap of both confusion matrices
    (cheap: it resamples cell counts, not rows); drifted means the adjusted p-value is below
    alpha, i.e. the drop is beyond its threshold with confidence. A metric whose support (the
    rows it is a ratio of, `support` in the table) is below min_support in either window gets
    p = 1: too few rows to say anything.
    """
    rng = np.random.default_rng(seed)
    reference = metrics_from_confusion(reference_confusion, positive_index)
    current = metrics_from_confusion(current_confusion, positive_index)
    reference_draws = metrics_from_confusion(_resampled(reference_confusion, n_bootstrap, rng),
                                             positive_index)
    current_draws = metrics_from_confusion(_resampled(current_confusion, n_bootstrap, rng),
                                           positive_index)
    reference_support = metric_support(reference_confusion, positive_index)
    current_support = metric_support(current_confusion, positive_index)
    rows = []
    for metric in METRICS:
        drop = float(reference[metric] - current[metric])
        threshold = float(drop_thresholds[f"{metric}_drop"])
        support = min(reference_support[metric], current_support[metric])
        spread = float(np.std(reference_draws[metric] - current_draws[metric], ddof=1))
        if support < min_support:
            p_value = 1.0
        elif spread > 0:
            p_value = float(stats.norm.sf((drop - threshold) / spread))
        else:
            p_value = 0.0 if drop > threshold else 1.0
        rows.append((metric, float(reference[metric]), float(current[metric]), drop,
                     threshold, p_value, support))
    table = pd.DataFrame(rows, columns=["metric", "reference", "current", "drop", "threshold",
                                        "p_value", "support"])
    table["adjusted_p_value"] = adjust_p_values(table["p_value"].to_numpy(), correction)
    table["drifted"] = table["adjusted_p_value"] < alpha
    return table


def metric_support(confusion: np.ndarray, positive_index: int | None) -> dict:
    """The rows each metric is a ratio of: all rows (accuracy), predicted positives
    (precision), actual positives (recall), the fewer of both (F1); the smallest class's for
    a multiclass macro average."""
    confusion = np.asarray(confusion, dtype=np.int64)
    predicted, actual = confusion.sum(axis=0), confusion.sum(axis=1)
    if positive_index is not None:
        predicted, actual = int(predicted[positive_index]), int(actual[positive_index])
    else:
        predicted, actual = int(predicted.min()), int(actual.min())
    return {"accuracy": int(confusion.sum()), "precision": predicted, "recall": actual,
            "f1": min(predicted, actual)}


def _resampled(confusion: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    cells = np.asarray(confusion, dtype=np.int64).ravel()
    total = int(cells.sum())
    draws = rng.multinomial(total, cells / total, size=count)
    return draws.reshape((count,) + np.shape(confusion))


def relation_change_tests(reference_features: np.ndarray, reference_target: np.ndarray,
                          current_features: np.ndarray, current_target: np.ndarray,
                          names: Sequence[str], change_threshold: float, alpha: float,
                          correction: str = "holm") -> pd.DataFrame:
    """Per numeric feature: did its correlation with the (0/1) label move by more than the threshold?

    The standard error of each correlation is (1 - r^2)/sqrt(n - 1); the p-value is that of
    'change <= threshold', adjusted across features. Features or labels without variation in
    either window cannot be tested and get p = 1.
    """
    reference_r = _column_correlations(reference_features, reference_target)
    current_r = _column_correlations(current_features, current_target)
    change = np.abs(current_r - reference_r)
    spread = np.sqrt((1 - reference_r ** 2) ** 2 / max(len(reference_target) - 1, 1)
                     + (1 - current_r ** 2) ** 2 / max(len(current_target) - 1, 1))
    testable = np.isfinite(change) & (spread > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_values = np.where(testable, stats.norm.sf((change - change_threshold) / spread), 1.0)
    table = pd.DataFrame({"feature": list(names), "reference_correlation": reference_r,
                          "current_correlation": current_r, "change": change,
                          "threshold": change_threshold, "p_value": p_values})
    table["adjusted_p_value"] = adjust_p_values(p_values, correction)
    table["drifted"] = table["adjusted_p_value"] < alpha
    return table


def _column_correlations(features: np.ndarray, target: np.ndarray) -> np.ndarray:
    x = features - features.mean(axis=0)
    y = target - target.mean()
    denominator = np.sqrt((x ** 2).sum(axis=0) * (y ** 2).sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, (x * y[:, None]).sum(axis=0) / denominator, np.nan)
