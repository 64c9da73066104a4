"""Per-feature drift table: the measurements of every feature and the verdict of the drift rule.

measure_to_profile computes per feature the distribution test (KS for numeric, chi-square for
categorical columns), PSI and JS, and for numeric features a location (Mann-Whitney) and a
scale (Brown-Forsythe) test; compare_to_profile adds ml.monitoring.drift_rule's verdict, the
same rule the pipeline's drift gate applies, at the service's thresholds.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Dict, List, Mapping, Optional

import numpy as np
import pandas as pd

from ml.monitoring import drift_rule
from ml.monitoring.multiple_testing import normalise_correction
from ml.monitoring.statistics import (PlacedWindow, SpreadSummary, ValueGrid,
                                      bin_counts_sorted, chi_square_homogeneity,
                                      jensen_shannon_distance, ks_p_values,
                                      placed_location_scale_tests, population_stability_index,
                                      quantile_bin_edges)
from ml.monitoring.tables import CATEGORICAL, NUMERIC, FeatureTable, as_feature_table

DEFAULT_FEATURE_THRESHOLDS = {"psi": 0.25, "ks_p_value": 0.05, "shift": 0.3}
DEFAULT_BINS = 10
MEASURED_COLUMNS = ["feature", "kind", "test", "statistic", "p_value", "psi", "js_distance",
                    "bins", "location_p_value", "location_effect", "scale_p_value",
                    "scale_effect"]
RESULT_COLUMNS = ["feature", "kind", "test", "statistic", "p_value", "adjusted_p_value",
                  "psi", "js_distance", "bins", "significant", "material", "drifted",
                  "location_p_value", "adjusted_location_p_value", "location_effect",
                  "scale_p_value", "adjusted_scale_p_value", "scale_effect", "psi_floor",
                  "sampling_allowance", "shift_floor", "location_drifted", "scale_drifted"]
# Below this many values per check, threads cost more than they save.
_PARALLEL_MIN_VALUES = 2_000_000
# From this many reference rows on, registration finds PSI bins with a ValueGrid and sorts the
# reference through its buckets.
GRID_MIN_ROWS = 50_000


@dataclass(frozen=True)
class ReferenceProfile:
    """What later checks need from a reference: columns, PSI bins and counts, categories, and
    per numeric column a sorted copy and its SpreadSummary.

    Everything that depends on the reference alone is made here, at registration, so a check
    only sorts its window once and places it in the sorted reference (PlacedWindow), which
    serves KS, Mann-Whitney and Brown-Forsythe alike. Small references are sorted in place.
    Large ones (GRID_MIN_ROWS rows or more) keep their columns unsorted beside a ValueGrid,
    which gives the PSI bins without sorting and the sorted copy faster than np.sort
    (ValueGrid.sorted_reference).
    """

    table: FeatureTable
    columns: np.ndarray
    bin_edges: List[np.ndarray]
    numeric_bin_counts: List[np.ndarray]
    categories: List[np.ndarray]
    category_counts: List[np.ndarray]
    grids: List[Optional[ValueGrid]]
    _sorted: Dict[int, np.ndarray] = field(default_factory=dict, repr=False, compare=False)
    _spread: Dict[int, SpreadSummary] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def build(cls, table: FeatureTable, n_bins: int = DEFAULT_BINS) -> "ReferenceProfile":
        large = table.n_rows >= GRID_MIN_ROWS
        if large:
            columns = np.ascontiguousarray(table.numeric.T)
            grids = _in_parallel(ValueGrid, list(columns), columns.size)
        else:
            columns = np.array(table.numeric.T, order="C", copy=True)  # sorted below, so a copy
            grids = [None] * len(columns)
            _in_parallel(lambda column: column.sort(), list(columns), columns.size)
        edges = [quantile_bin_edges(column, n_bins, grid) for column, grid in zip(columns, grids)]
        if large:
            counts = [g.bin_counts(column, g.reference_buckets, g.reference_cumulative, e)
                      for column, g, e in zip(columns, grids, edges)]
        else:
            counts = [bin_counts_sorted(column, e) for column, e in zip(columns, edges)]
        categories, category_counts = [], []
        for column in table.categorical.T:
            values, value_counts = np.unique(column, return_counts=True)
            categories.append(values)
            category_counts.append(value_counts)
        ordered = (_in_parallel(ValueGrid.sorted_reference, grids, columns.size) if large
                   else list(columns))
        spreads = _in_parallel(SpreadSummary, ordered, columns.size)
        return cls(table, columns, edges, counts, categories, category_counts, grids,
                   dict(enumerate(ordered)), dict(enumerate(spreads)))

    def sorted_column(self, index: int) -> np.ndarray:
        if self.grids[index] is None:
            return self.columns[index]
        if index not in self._sorted:
            self._sorted[index] = np.sort(self.columns[index])
        return self._sorted[index]

    def spread(self, index: int) -> SpreadSummary:
        """The location/scale tests' summary of a column (made at registration by build)."""
        if index not in self._spread:
            self._spread[index] = SpreadSummary(self.sorted_column(index))
        return self._spread[index]


def compare_tables(reference, current, thresholds: Optional[Mapping[str, float]] = None,
                   correction: str = "holm", n_bins: int = DEFAULT_BINS) -> pd.DataFrame:
    """Per-feature drift table of current against reference (DataFrames or 2-D arrays).

    thresholds: {'psi': 0.25, 'ks_p_value': 0.05, 'shift': 0.3} by default (drift_rule's
    DriftThresholds.from_limits). One row per feature with RESULT_COLUMNS: the measurements,
    adjusted p-values, significant (any test), material (any effect above its floor) and
    drifted (some test both significant and material).
    """
    reference_table = as_feature_table(reference, "reference")
    current_table = as_feature_table(current, "current", like=reference_table)
    profile = ReferenceProfile.build(reference_table, n_bins)
    return compare_to_profile(profile, current_table, thresholds, correction)


def measure_tables(reference, current, n_bins: int = DEFAULT_BINS) -> pd.DataFrame:
    """The measurements alone (MEASURED_COLUMNS), for callers that judge them with more tests
    in one family (the drift gate adds label-relation tests)."""
    reference_table = as_feature_table(reference, "reference")
    current_table = as_feature_table(current, "current", like=reference_table)
    return measure_to_profile(ReferenceProfile.build(reference_table, n_bins), current_table)


def compare_to_profile(profile: ReferenceProfile, current: FeatureTable,
                       thresholds: Optional[Mapping[str, float]] = None,
                       correction: str = "holm",
                       feature_psi: Optional[Mapping[str, float]] = None) -> pd.DataFrame:
    """The per-feature drift table for a validated current table against a built profile.

    feature_psi: features with their own PSI floor (drift_rule.DriftThresholds.feature_psi)."""
    limits = drift_rule.DriftThresholds.from_limits(feature_thresholds(thresholds))
    if feature_psi:
        limits = replace(limits, feature_psi=dict(feature_psi))
    correction = normalise_correction(correction)
    table, _ = drift_rule.judge(measure_to_profile(profile, current), None, limits,
                                profile.table.n_rows, current.n_rows, correction)
    return table[RESULT_COLUMNS]


def measure_to_profile(profile: ReferenceProfile, current: FeatureTable) -> pd.DataFrame:
    """MEASURED_COLUMNS per feature, in the reference's column order."""
    numeric = _numeric_rows(profile, current)
    categorical = _categorical_rows(profile, current)
    table = pd.DataFrame(numeric + categorical, columns=MEASURED_COLUMNS)
    order = {name: i for i, name in enumerate(profile.table.names)}
    return table.sort_values("feature", key=lambda s: s.map(order)).reset_index(drop=True)


def feature_thresholds(thresholds: Optional[Mapping[str, float]]) -> dict:
    """Defaults overlaid with thresholds; unknown keys and out-of-range values are rejected."""
    merged = dict(DEFAULT_FEATURE_THRESHOLDS)
    for key, value in (thresholds or {}).items():
        if key not in merged:
            raise ValueError(f"unknown feature threshold {key!r}; known: {sorted(merged)}")
        merged[key] = float(value)
    if not 0.0 < merged["ks_p_value"] < 1.0:
        raise ValueError(f"ks_p_value must lie in (0, 1), got {merged['ks_p_value']}")
    for key in ("psi", "shift"):
        if merged[key] < 0.0:
            raise ValueError(f"{key} threshold must be non-negative, got {merged[key]}")
    return merged


def _numeric_rows(profile: ReferenceProfile, current: FeatureTable) -> list:
    names = current.numeric_names
    if not names:
        return []
    columns = np.ascontiguousarray(current.numeric.T)
    jobs = [(profile, index, column) for index, column in enumerate(columns)]
    results = _in_parallel(_column_statistic, jobs, columns.size)
    statistics = np.array([r[0] for r in results])
    p_values = ks_p_values(statistics, profile.table.n_rows, current.n_rows)
    reference_counts, current_counts, valid = _padded(profile.numeric_bin_counts,
                                                      [r[1] for r in results])
    psi = population_stability_index(reference_counts, current_counts, valid)
    js = jensen_shannon_distance(reference_counts, current_counts)
    bins = valid.sum(axis=1)
    return [(name, NUMERIC, "ks", statistics[i], p_values[i], psi[i], js[i], int(bins[i]),
             *results[i][2]) for i, name in enumerate(names)]


def _column_statistic(job) -> tuple:
    """KS statistic, PSI bin counts and location/scale tests of one column, all from one sort
    of the window (through the reference's grid when it has one) and one search of the
    sorted reference."""
    profile, index, current = job
    placed = PlacedWindow(profile.sorted_column(index), current, profile.grids[index])
    return (placed.ks_statistic(), bin_counts_sorted(placed.ordered, profile.bin_edges[index]),
            placed_location_scale_tests(profile.spread(index), placed))


def _in_parallel(function, jobs: list, total_values: int) -> list:
    """Map over columns, on threads when the data is large (numpy sorts release the GIL)."""
    workers = min(os.cpu_count() or 1, len(jobs))
    if workers < 2 or total_values < _PARALLEL_MIN_VALUES:
        return [function(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, jobs))


def _categorical_rows(profile: ReferenceProfile, current: FeatureTable) -> list:
    names = current.categorical_names
    if not names:
        return []
    reference_counts, current_counts = [], []
    for column, known, known_counts in zip(current.categorical.T, profile.categories,
                                           profile.category_counts):
        values, counts = np.unique(column, return_counts=True)
        every = np.union1d(known, values)
        reference_counts.append(_counts_over(every, known, known_counts))
        current_counts.append(_counts_over(every, values, counts))
    reference_matrix, current_matrix, valid = _padded(reference_counts, current_counts)
    statistic, p_values, _ = chi_square_homogeneity(reference_matrix, current_matrix, valid)
    psi = population_stability_index(reference_matrix, current_matrix, valid)
    js = jensen_shannon_distance(reference_matrix, current_matrix)
    bins = valid.sum(axis=1)
    return [(name, CATEGORICAL, "chi2", statistic[i], p_values[i], psi[i], js[i], int(bins[i]),
             np.nan, np.nan, np.nan, np.nan) for i, name in enumerate(names)]


def _counts_over(every: np.ndarray, values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    result = np.zeros(every.size, dtype=np.int64)
    result[np.searchsorted(every, values)] = counts
    return result


def _padded(reference_counts: List[np.ndarray], current_counts: List[np.ndarray]):
    """Stack per-feature count vectors of different lengths; padding bins are masked out."""
    width = max(len(c) for c in reference_counts)
    shape = (len(reference_counts), width)
    reference, current = np.zeros(shape), np.zeros(shape)
    valid = np.zeros(shape, dtype=bool)
    for row, (r, c) in enumerate(zip(reference_counts, current_counts)):
        reference[row, :len(r)] = r
        current[row, :len(c)] = c
        valid[row, :len(r)] = True
    return reference, current, valid
