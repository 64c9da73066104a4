"""The joint test (MMD and common shift) catches what per-feature tests cannot, within its
false-alarm level."""
import numpy as np
import pytest

from ml.monitoring.feature_drift import compare_tables
from ml.monitoring.multivariate import COMMON_SHIFT_SHARE, common_shift_test, joint_drift_test


def _correlated(rng, rows, rho=0.6, features=5):
    covariance = np.eye(features)
    covariance[0, 1] = covariance[1, 0] = rho
    return rng.multivariate_normal(np.zeros(features), covariance, size=rows)


def test_correlation_appearing_is_caught_by_the_joint_test_but_not_per_feature():
    rng = np.random.default_rng(0)
    reference, current = rng.normal(size=(1000, 5)), _correlated(rng, 300)
    assert not compare_tables(reference, current)["drifted"].any()
    result = joint_drift_test(reference, current, alpha=0.005)
    assert result.drifted(0.005)
    assert result.kernel_p_values["second_moment"] <= result.kernel_p_values["gaussian"]


def test_same_distribution_rarely_alarms_and_stops_early():
    rng = np.random.default_rng(1)
    alarms, early = 0, 0
    for seed in range(30):
        result = joint_drift_test(rng.normal(size=(400, 4)), rng.normal(size=(100, 4)),
                                  alpha=0.01, seed=seed)
        alarms += result.drifted(0.01)
        early += result.stopped_early
    assert alarms <= 1
    assert early >= 25


def test_result_is_reproducible_for_a_seed():
    rng = np.random.default_rng(2)
    reference, current = rng.normal(size=(300, 3)), _correlated(rng, 80, features=3)
    first = joint_drift_test(reference, current, alpha=0.01, seed=7)
    assert first == joint_drift_test(reference, current, alpha=0.01, seed=7)


def test_p_value_is_a_valid_permutation_p_value():
    rng = np.random.default_rng(3)
    result = joint_drift_test(rng.normal(size=(200, 3)), rng.normal(3, 1, size=(50, 3)),
                              alpha=0.02, n_permutations=99)
    assert result.kernel_p_values["mmd"] == pytest.approx(1 / 100)
    assert result.p_value == pytest.approx(min(result.kernel_p_values["mmd"] / (1 - COMMON_SHIFT_SHARE),
                                               result.kernel_p_values["common_shift"] / COMMON_SHIFT_SHARE))
    assert result.n_permutations == 99 and not result.stopped_early


def test_many_features_moving_a_little_together_are_caught_by_the_common_shift_test():
    rng = np.random.default_rng(5)
    reference, current = rng.normal(size=(5000, 8)), rng.normal(0.12, 1.0, size=(300, 8))
    assert not compare_tables(reference, current)["drifted"].any()
    result = joint_drift_test(reference, current, alpha=0.005)
    assert result.drifted(0.005)
    assert result.kernel_p_values["common_shift"] < 0.005 * COMMON_SHIFT_SHARE
    assert result.statistics["common_shift"] > 0


def test_common_shift_p_values_are_uniform_without_drift_even_for_correlated_features():
    rng = np.random.default_rng(6)
    p_values = np.array([common_shift_test(_correlated(rng, 1000, rho=0.8),
                                           _correlated(rng, 200, rho=0.8))[1]
                         for _ in range(400)])
    assert 0.02 <= np.mean(p_values < 0.05) <= 0.09
    assert 0.4 <= np.median(p_values) <= 0.6


def test_large_inputs_are_subsampled():
    rng = np.random.default_rng(4)
    result = joint_drift_test(rng.normal(size=(5000, 3)), rng.normal(size=(3000, 3)),
                              alpha=0.01, max_rows=300)
    assert (result.n_reference, result.n_current) == (300, 300)


@pytest.mark.parametrize("reference, current, alpha, message", [
    (np.zeros((10, 3)), np.zeros((10, 2)), 0.01, "same columns"),
    (np.ones((10, 2)), np.ones((10, 2)), 0.01, "constant"),
    (np.random.default_rng(0).normal(size=(10, 2)), np.zeros((5, 2)), 1.5, "alpha"),
])
def test_bad_inputs_are_rejected(reference, current, alpha, message):
    with pytest.raises(ValueError, match=message):
        joint_drift_test(reference, current, alpha=alpha)
