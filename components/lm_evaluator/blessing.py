"""The blessing rule of the report LM, applied to the metrics of evaluation.evaluate().

A candidate is blessed only if both hold on the eval split:
- it beats the n-gram baseline: perplexity / n-gram perplexity < max_ngram_perplexity_ratio;
- it is not worse than the serving model beyond the tolerance:
  relative perplexity to the serving model <= 1 + perplexity_tolerance (skipped when
  nothing has been blessed yet).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Dict, List


@dataclasses.dataclass(frozen=True)
class BlessingThresholds:
    """How good a candidate language model must be to be blessed."""

    max_ngram_perplexity_ratio: float = 1.0
    perplexity_tolerance: float = 0.05

    def __post_init__(self):
        if not (math.isfinite(self.max_ngram_perplexity_ratio)
                and self.max_ngram_perplexity_ratio > 0.0):
            raise ValueError(f"max_ngram_perplexity_ratio must be > 0, "
                             f"got {self.max_ngram_perplexity_ratio}")
        if not (math.isfinite(self.perplexity_tolerance) and self.perplexity_tolerance >= 0.0):
            raise ValueError(f"perplexity_tolerance must be >= 0, got {self.perplexity_tolerance}")


@dataclasses.dataclass(frozen=True)
class Check:
    """One blessing condition and its outcome."""

    name: str
    passed: bool
    value: float
    threshold: float
    message: str


def blessing_checks(metrics: Dict, thresholds: BlessingThresholds) -> List[Check]:
    """Every condition the candidate was held to, passed or not."""
    ratio = metrics["perplexity_ratio_to_ngram"]
    checks = [Check(
        name="beats_ngram_baseline", passed=bool(ratio < thresholds.max_ngram_perplexity_ratio),
        value=ratio, threshold=thresholds.max_ngram_perplexity_ratio,
        message=(f"perplexity {metrics['candidate']['perplexity']:.3f} is {ratio:.3f}x the "
                 f"{metrics['ngram']['order']}-gram baseline's "
                 f"{metrics['ngram']['perplexity']:.3f} (must be < "
                 f"{thresholds.max_ngram_perplexity_ratio:.3f}x)"))]
    if metrics.get("baseline") is not None:
        relative = metrics["perplexity_ratio_to_baseline"]
        limit = 1.0 + thresholds.perplexity_tolerance
        checks.append(Check(
            name="not_worse_than_serving_model", passed=bool(relative <= limit),
            value=relative, threshold=limit,
            message=(f"perplexity is {relative:.3f}x the serving model's "
                     f"{metrics['baseline']['perplexity']:.3f} (allowed up to {limit:.3f}x)")))
    return checks


def is_blessed(checks: List[Check]) -> bool:
    return all(check.passed for check in checks)
