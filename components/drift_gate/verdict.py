"""The gate's rule applied to two tables of examples: the same code decides in the pipeline's
checks and in the benchmark, so the benchmark measures what the pipeline does."""
from __future__ import annotations

import dataclasses
from typing import Dict, Iterable, List, Mapping

import pandas as pd

from components.drift_gate.findings import flagged_features
from components.drift_gate.label_relation import label_relation_table
from ml.monitoring import drift_rule
from ml.monitoring.drift_rule import DriftThresholds
from ml.monitoring.feature_drift import measure_tables


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The per-feature table, the label-relation table (empty without a label) and the
    flagged features with their reasons."""

    distribution: pd.DataFrame
    relations: pd.DataFrame
    flagged: Dict[str, List[str]]


def window_verdict(reference: pd.DataFrame, current: pd.DataFrame, thresholds: DriftThresholds,
                   label: str = "", tfdv_rows: Iterable[Mapping] = ()) -> Verdict:
    """Distribution, location and scale tests on every column, label-relation tests when label
    names a column, judged together by ml.monitoring.drift_rule."""
    distribution = measure_tables(reference, current)
    relations = (label_relation_table(reference, current, label, thresholds.label_change)
                 if label and label in reference.columns else None)
    distribution, relations = drift_rule.judge(distribution, relations, thresholds,
                                               len(reference), len(current))
    flagged = flagged_features(tfdv_rows, distribution, relations, thresholds, label)
    return Verdict(distribution, relations, flagged)
