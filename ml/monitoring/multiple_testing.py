"""Adjusted p-values, so that testing many features at once does not multiply false alarms.

Holm controls the chance of any false alarm in the family (family-wise error rate) and is the
default for alerting; Benjamini-Hochberg controls the expected share of false alarms among the
alarms (false discovery rate) and suits wide tables where some drift is expected anyway.
"""
from __future__ import annotations

import numpy as np

CORRECTIONS = ("holm", "bh", "bonferroni", "none")
_ALIASES = {"benjamini-hochberg": "bh", "fdr_bh": "bh", "fdr": "bh"}


def normalise_correction(method: str) -> str:
    """The canonical name of a correction method, or a ValueError listing the valid ones."""
    name = _ALIASES.get(str(method).lower(), str(method).lower())
    if name not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {method!r}")
    return name


def adjust_p_values(p_values, method: str = "holm") -> np.ndarray:
    """Adjusted p-values in the input order; compare them with the unadjusted threshold."""
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p_values must be one-dimensional, got shape {p.shape}")
    if np.any(np.isnan(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("p_values must lie in [0, 1] without NaN")
    method = normalise_correction(method)
    if p.size == 0 or method == "none":
        return p.copy()
    if method == "bonferroni":
        return np.minimum(p * p.size, 1.0)
    if method == "holm":
        return _holm(p)
    return _benjamini_hochberg(p)


def _holm(p: np.ndarray) -> np.ndarray:
    order = np.argsort(p, kind="stable")
    multipliers = p.size - np.arange(p.size)
    adjusted_sorted = np.minimum(np.maximum.accumulate(p[order] * multipliers), 1.0)
    adjusted = np.empty_like(p)
    adjusted[order] = adjusted_sorted
    return adjusted


def _benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    order = np.argsort(p, kind="stable")
    ranks = np.arange(1, p.size + 1)
    scaled = p[order] * p.size / ranks
    adjusted_sorted = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    adjusted = np.empty_like(p)
    adjusted[order] = adjusted_sorted
    return adjusted
