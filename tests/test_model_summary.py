"""The Bayes-optimal AUC reference uses a correct AUC."""
import numpy as np
import pytest
from scipy import stats

from pipeline.model_summary import roc_auc


def test_roc_auc_matches_the_mann_whitney_statistic():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 500)
    scores = np.round(rng.normal(labels * 0.7, 1.0), 1)
    u = stats.mannwhitneyu(scores[labels == 1], scores[labels == 0]).statistic
    assert roc_auc(labels, scores) == pytest.approx(u / ((labels == 1).sum() * (labels == 0).sum()))
    assert roc_auc(labels, labels) == 1.0


def test_roc_auc_needs_both_classes():
    with pytest.raises(ValueError, match="both classes"):
        roc_auc(np.ones(4), np.arange(4))
