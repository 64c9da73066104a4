"""Platt scaling: a two-parameter logistic fit on held-out scores, so risk_score is a probability.

A network trained with cross-entropy and early stopping is usually close to calibrated but not
exactly; one slope and one intercept on the logit fix most of the remaining bias cheaply.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from scipy.optimize import minimize

EPSILON = 1e-6


@dataclasses.dataclass(frozen=True)
class PlattScaling:
    slope: float = 1.0
    intercept: float = 0.0

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.slope * logit(probabilities) + self.intercept)))


def logit(probabilities: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(probabilities, dtype=np.float64), EPSILON, 1.0 - EPSILON)
    return np.log(p / (1.0 - p))


def fit_platt(probabilities: np.ndarray, labels: np.ndarray) -> PlattScaling:
    """Maximum-likelihood slope and intercept of labels ~ sigmoid(a * logit(p) + b)."""
    z = logit(probabilities)
    y = np.asarray(labels, dtype=np.float64)
    if y.min() == y.max():
        return PlattScaling()

    def negative_log_likelihood(params):
        slope, intercept = params
        s = slope * z + intercept
        loss = np.mean(np.logaddexp(0.0, s) - y * s)
        residual = 1.0 / (1.0 + np.exp(-s)) - y
        return loss, np.array([np.mean(residual * z), np.mean(residual)])

    result = minimize(negative_log_likelihood, x0=np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
    return PlattScaling(slope=float(result.x[0]), intercept=float(result.x[1]))
