"""Performance drops from labels need rows to stand on: a ratio of a handful of rows is shown,
not tested (a degenerate bootstrap would make any such drop look certain)."""
import numpy as np

from ml.monitoring.performance import metric_support, performance_drop_tests

LIMITS = {"accuracy_drop": 0.05, "precision_drop": 0.1, "recall_drop": 0.1, "f1_drop": 0.1}


def _table(reference, current, **kwargs):
    return performance_drop_tests(np.array(reference), np.array(current), LIMITS, alpha=0.05,
                                  positive_index=1, **kwargs).set_index("metric")


def test_precision_of_three_predicted_positives_is_reported_not_tested():
    # [true, predicted]: 3 predicted positives, all right before and all wrong now.
    table = _table([[500, 0], [60, 3]], [[497, 3], [63, 0]])
    assert table.loc["precision", "reference"] == 1.0 and table.loc["precision", "current"] == 0.0
    assert table.loc["precision", "support"] == 3
    assert table.loc["precision", "p_value"] == 1.0 and not table.loc["precision", "drifted"]
    # Without the floor the same windows alert with confidence: what the floor is for.
    unguarded = _table([[500, 0], [60, 3]], [[497, 3], [63, 0]], min_support=0)
    assert unguarded.loc["precision", "drifted"]


def test_a_real_drop_with_enough_rows_is_still_found():
    table = _table([[400, 20], [40, 140]], [[340, 80], [100, 80]])
    assert table.loc["precision", "support"] >= 20 and table.loc["precision", "drifted"]
    assert table.loc["recall", "drifted"] and table.loc["accuracy", "drifted"]


def test_support_counts_the_rows_each_metric_is_a_ratio_of():
    confusion = np.array([[50, 5], [7, 30]])
    assert metric_support(confusion, 1) == {"accuracy": 92, "precision": 35, "recall": 37,
                                            "f1": 35}
    assert metric_support(confusion, None)["precision"] == 35
