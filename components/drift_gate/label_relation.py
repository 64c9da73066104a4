"""Did the label's relation to the features change between two windows (concept change)?

A concept change can leave every input's distribution as it was and move only how the label
depends on them, so the drift check also tests, per numeric feature and per category of each
categorical feature, whether its correlation with the label moved by more than a floor
(ml.monitoring.performance.relation_change_tests: a one-sided test of 'change <= floor', so
the floor is judged with the window's sampling error, not on the raw estimate).
"""
from __future__ import annotations

from typing import List, Tuple

import numpy as np
import pandas as pd

from ml.monitoring.performance import relation_change_tests

COLUMNS = ["feature", "term", "reference_correlation", "current_correlation", "change",
           "threshold", "p_value"]


def label_indicator(values: pd.Series, positive) -> np.ndarray:
    """1.0 where the label equals the positive class (compared as text, so 1 and '1' agree)."""
    return (values.astype(str) == str(positive)).to_numpy(dtype=np.float64)


def positive_label(reference: pd.Series):
    """The larger of two label values (1 for 0/1 labels); None if the label is not binary."""
    values = sorted(reference.dropna().unique().tolist(), key=str)
    return values[-1] if len(values) == 2 else None


def relation_columns(reference: pd.DataFrame, current: pd.DataFrame, features: List[str]
                     ) -> Tuple[List[str], List[str], np.ndarray, np.ndarray]:
    """What the label is correlated with: numeric features as they are, categorical ones as one
    indicator per category seen in the reference (term 'commodity=power' of feature
    'commodity'). Returns features, terms and the two matrices (one column per term)."""
    owners, terms, reference_columns, current_columns = [], [], [], []
    for name in features:
        if pd.api.types.is_numeric_dtype(reference[name]) and not pd.api.types.is_bool_dtype(
                reference[name]):
            owners.append(name)
            terms.append(name)
            reference_columns.append(reference[name].to_numpy(dtype=np.float64))
            current_columns.append(current[name].to_numpy(dtype=np.float64))
            continue
        reference_text, current_text = reference[name].astype(str), current[name].astype(str)
        for category in sorted(reference_text.unique()):
            owners.append(name)
            terms.append(f"{name}={category}")
            reference_columns.append((reference_text == category).to_numpy(dtype=np.float64))
            current_columns.append((current_text == category).to_numpy(dtype=np.float64))
    return (owners, terms, np.column_stack(reference_columns),
            np.column_stack(current_columns))


def label_relation_table(reference: pd.DataFrame, current: pd.DataFrame, label: str,
                         change_threshold: float) -> pd.DataFrame:
    """One row per numeric feature or category (term): both correlations with the label, their
    change, the floor and the (unadjusted) p-value of 'change <= floor'. Empty when the label is not
    binary or no other feature is present."""
    positive = positive_label(reference[label])
    features = [name for name in reference.columns if name != label]
    if positive is None or not features:
        return pd.DataFrame(columns=COLUMNS)
    owners, terms, reference_matrix, current_matrix = relation_columns(reference, current,
                                                                       features)
    table = relation_change_tests(
        reference_matrix, label_indicator(reference[label], positive), current_matrix,
        label_indicator(current[label], positive), terms, change_threshold, alpha=0.5,
        correction="none")
    table = table.rename(columns={"feature": "term"})
    table.insert(0, "feature", owners)
    return table[COLUMNS].reset_index(drop=True)
