"""Model-quality metrics shared by the synthetic data's ground truth and the run summary."""
from __future__ import annotations

import numpy as np


def roc_auc(*, labels, scores) -> float:
    """Area under the ROC curve by the rank-sum (Mann-Whitney) formula, ties count half.

    Keyword-only: labels and scores are both numeric arrays, so a swapped positional call
    would compute a wrong number silently. Raises ValueError when a class is missing.
    """
    from scipy.stats import rankdata

    labels = np.asarray(labels).astype(bool)
    positives, negatives = labels.sum(), (~labels).sum()
    if positives == 0 or negatives == 0:
        raise ValueError("AUC needs both classes in the labels")
    ranks = rankdata(np.asarray(scores, dtype=float))
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))
