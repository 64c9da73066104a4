"""Platt scaling recovers a known miscalibration."""
import numpy as np
import pytest

from models.risk.calibration import PlattScaling, fit_platt, logit


def test_platt_scaling_recovers_slope_and_intercept():
    rng = np.random.default_rng(0)
    true_logit = rng.normal(0, 2, 50_000)
    labels = rng.random(true_logit.size) < 1 / (1 + np.exp(-true_logit))
    overconfident = 1 / (1 + np.exp(-(2.0 * true_logit + 0.5)))
    platt = fit_platt(overconfident, labels)
    assert platt.slope == pytest.approx(0.5, abs=0.03)
    assert platt.intercept == pytest.approx(-0.25, abs=0.05)
    calibrated = platt.apply(overconfident)
    assert abs(calibrated.mean() - labels.mean()) < 0.01


def test_single_class_keeps_identity():
    assert fit_platt(np.array([0.2, 0.7]), np.array([1, 1])) == PlattScaling()
    assert np.allclose(logit(np.array([0.5])), 0.0)
