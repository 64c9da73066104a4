"""Holm and Benjamini-Hochberg adjusted p-values."""
import numpy as np
import pytest

from ml.monitoring.multiple_testing import adjust_p_values, normalise_correction

P = np.array([0.01, 0.04, 0.03, 0.005, 0.20])


def test_holm_matches_step_down_definition():
    # sorted: 0.005*5, 0.01*4, 0.03*3, 0.04*2, 0.20*1, made monotone
    expected = [0.04, 0.09, 0.09, 0.025, 0.20]
    np.testing.assert_allclose(adjust_p_values(P, "holm"), expected)


def test_benjamini_hochberg_matches_step_up_definition():
    # sorted p*m/rank: 0.025, 0.025, 0.05, 0.05, 0.20, made monotone from the top
    expected = [0.025, 0.05, 0.05, 0.025, 0.20]
    np.testing.assert_allclose(adjust_p_values(P, "bh"), expected)


def test_bonferroni_none_and_aliases():
    np.testing.assert_allclose(adjust_p_values(P, "bonferroni"), np.minimum(P * 5, 1))
    np.testing.assert_allclose(adjust_p_values(P, "none"), P)
    assert normalise_correction("Benjamini-Hochberg") == "bh"


def test_adjusted_values_are_capped_and_never_below_raw():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=50)
    for method in ("holm", "bh"):
        adjusted = adjust_p_values(p, method)
        assert np.all(adjusted >= p - 1e-15) and np.all(adjusted <= 1)


def test_holm_controls_family_wise_error_under_the_null():
    rng = np.random.default_rng(1)
    false_alarms = sum(bool((adjust_p_values(rng.uniform(size=20), "holm") < 0.05).any())
                       for _ in range(2000))
    assert false_alarms / 2000 <= 0.06


@pytest.mark.parametrize("bad", [[0.1, np.nan], [1.2], [-0.1], [[0.1, 0.2]]])
def test_invalid_p_values_are_rejected(bad):
    with pytest.raises(ValueError):
        adjust_p_values(bad)


def test_unknown_method_is_rejected():
    with pytest.raises(ValueError, match="holm"):
        adjust_p_values(P, "sidak")
