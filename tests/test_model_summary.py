"""The Bayes-optimal AUC reference uses a correct AUC."""
import numpy as np
import pytest
from scipy import stats

from ml.core.metrics import roc_auc


def test_roc_auc_matches_the_mann_whitney_statistic():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 500)
    scores = np.round(rng.normal(labels * 0.7, 1.0), 1)
    u = stats.mannwhitneyu(scores[labels == 1], scores[labels == 0]).statistic
    expected = u / ((labels == 1).sum() * (labels == 0).sum())
    assert roc_auc(labels=labels, scores=scores) == pytest.approx(expected)
    assert roc_auc(labels=labels, scores=labels) == 1.0


def test_roc_auc_refuses_positional_arguments_that_could_be_swapped():
    with pytest.raises(TypeError):
        roc_auc(np.array([0, 1]), np.array([0.2, 0.8]))


def test_roc_auc_needs_both_classes():
    with pytest.raises(ValueError, match="both classes"):
        roc_auc(labels=np.ones(4), scores=np.arange(4))


def test_validation_failures_read_like_sentences():
    from tensorflow_model_analysis.proto import validation_result_pb2

    from pipeline.run_summary.model_results import describe_failure

    failure = validation_result_pb2.ValidationFailure()
    failure.metric_key.name = "auc"
    failure.metric_value.double_value.value = 0.5298
    failure.metric_threshold.value_threshold.lower_bound.value = 0.65
    assert describe_failure(failure) == "auc 0.5298 is below the lower bound 0.65"
    failure.metric_key.is_diff = True
    failure.metric_value.double_value.value = -0.0486
    failure.metric_threshold.ClearField("value_threshold")
    failure.metric_threshold.change_threshold.absolute.value = -0.01
    assert describe_failure(failure) == (
        "auc is -0.0486 against the serving model; allowed change is -0.0100 or better")
