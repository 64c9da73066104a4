"""Joint drift: a kernel two-sample test (MMD) with a permutation p-value, and a common-shift test.

Per-feature tests cannot see a change that leaves every marginal distribution alone, such as
two features becoming correlated. Two kernels are aggregated: a Gaussian kernel (median
bandwidth), which detects any change given enough data, and the second-moment kernel (x.y)^2,
whose MMD is the distance between second-moment matrices and so is sharp on correlation
changes. Their permutation p-values are combined by the min-p rule, calibrated on the same
permutations, so the combined p-value stays exact.

Nor can per-feature tests with a materiality floor see many features each moving a little in
the same direction, and the MMD, on subsampled rows, needs far more data for it. The
common-shift test (O'Brien's test for a consistent effect across endpoints) compares the mean
of the standardised features' sum on all rows. It gets COMMON_SHIFT_SHARE of the joint alpha
and the MMD the rest (weighted Bonferroni), so the joint false-alarm rate stays at alpha.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

import numpy as np
from scipy import stats

KERNELS = ("gaussian", "second_moment")
DEFAULT_PERMUTATIONS = 1000
COMMON_SHIFT_SHARE = 0.5
DEFAULT_MAX_ROWS = 1000
# Permutations run in growing chunks: the first is small because most no-drift checks can stop
# after it, and float32 kernels halve the matrix-product time without moving any decision.
_CHUNKS = (20, 80)
_CHUNK = 100
_BANDWIDTH_SAMPLE = 400


@dataclass(frozen=True)
class JointDriftResult:
    """Outcome of the joint test: p_value combines the MMD's permutation p-value and the
    common-shift p-value (weighted Bonferroni), so drifted(alpha) holds when either test fires
    at its share of alpha; stopped_early means the MMD's p-value is only known to be large."""

    p_value: float
    statistics: Dict[str, float]
    kernel_p_values: Dict[str, float]
    n_permutations: int
    n_reference: int
    n_current: int
    stopped_early: bool

    def drifted(self, alpha: float) -> bool:
        return self.p_value <= alpha


def joint_drift_test(reference: np.ndarray, current: np.ndarray, alpha: float,
                     n_permutations: int = DEFAULT_PERMUTATIONS,
                     max_rows: int = DEFAULT_MAX_ROWS, seed: int = 0) -> JointDriftResult:
    """Permutation test of 'same joint distribution' for two numeric matrices.

    Columns are standardised with the pooled mean and spread (constant columns dropped) and
    the bandwidth comes from a random subset of pooled rows: both are symmetric in the two
    samples, which keeps the rows exchangeable and the permutation p-value exact. Each side
    is subsampled to max_rows to bound the O(N^2) kernel cost. Permutations run in
    chunks and stop once the p-value can no longer reach its share of alpha, which makes the
    common no-drift case cheap without changing any decision. The common-shift test uses
    every row.
    """
    reference = np.asarray(reference, dtype=np.float64)
    current = np.asarray(current, dtype=np.float64)
    if reference.ndim != 2 or current.ndim != 2 or reference.shape[1] != current.shape[1]:
        raise ValueError(f"reference and current must be 2-D with the same columns, got "
                         f"{reference.shape} and {current.shape}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be positive, got {n_permutations}")
    rng = np.random.default_rng(seed)
    shift_statistic, shift_p = common_shift_test(reference, current)
    mmd_alpha = alpha * (1.0 - COMMON_SHIFT_SHARE)
    reference = _subsample(reference, max_rows, rng)
    current = _subsample(current, max_rows, rng)
    pooled = _standardised(np.vstack([reference, current]))
    kernels = _kernel_matrices(pooled, rng)
    n, m = len(reference), len(current)
    observed_weights = np.concatenate([np.full(n, -1.0 / n, dtype=np.float32),
                                       np.full(m, 1.0 / m, dtype=np.float32)])[:, None]
    observed = np.array([_mmd_squared(k, observed_weights)[0] for k in kernels])
    permuted = []
    exceed = np.zeros(len(kernels), dtype=np.int64)
    done = 0
    stopped_early = False
    while done < n_permutations:
        size = min(_CHUNKS[len(permuted)] if len(permuted) < len(_CHUNKS) else _CHUNK,
                   n_permutations - done)
        weights = _permuted_weights(n, m, size, rng)
        chunk = np.array([_mmd_squared(k, weights) for k in kernels])
        permuted.append(chunk)
        exceed += (chunk >= observed[:, None]).sum(axis=1)
        done += size
        if (1 + exceed.min()) / (1 + n_permutations) > mmd_alpha and done < n_permutations:
            stopped_early = True
            break
    all_statistics = np.concatenate([observed[:, None]] + permuted, axis=1)
    kernel_p, mmd_p = _min_p(all_statistics)
    combined_p = min(1.0, mmd_p / (1.0 - COMMON_SHIFT_SHARE), shift_p / COMMON_SHIFT_SHARE)
    return JointDriftResult(
        p_value=combined_p,
        statistics={**{name: float(v) for name, v in zip(KERNELS, observed)},
                    "common_shift": shift_statistic},
        kernel_p_values={**{name: float(v) for name, v in zip(KERNELS, kernel_p)},
                         "mmd": mmd_p, "common_shift": shift_p},
        n_permutations=done, n_reference=n, n_current=m, stopped_early=stopped_early)


def common_shift_test(reference: np.ndarray, current: np.ndarray) -> Tuple[float, float]:
    """z statistic and two-sided p-value of 'the standardised features' sum has the same mean'.

    Columns are standardised with the pooled mean and spread, so each feature weighs the
    same; the sum's pooled variance makes the statistic valid whatever the features'
    correlation. A z-test on a scalar mean: accurate from a few dozen rows per side.
    """
    pooled = _standardised(np.vstack([reference, current]))
    total = pooled.sum(axis=1)
    n = len(reference)
    spread = total.std(ddof=1) * np.sqrt(1.0 / n + 1.0 / len(current))
    if not spread > 0:
        return 0.0, 1.0
    z = float((total[n:].mean() - total[:n].mean()) / spread)
    return z, float(2.0 * stats.norm.sf(abs(z)))


def _subsample(rows: np.ndarray, max_rows: int, rng: np.random.Generator) -> np.ndarray:
    if len(rows) <= max_rows:
        return rows
    return rows[rng.choice(len(rows), size=max_rows, replace=False)]


def _standardised(pooled: np.ndarray) -> np.ndarray:
    spread = pooled.std(axis=0)
    keep = spread > 0
    if not keep.any():
        raise ValueError("every column is constant in both samples; the joint test needs variation")
    return (pooled[:, keep] - pooled[:, keep].mean(axis=0)) / spread[keep]


def _kernel_matrices(pooled: np.ndarray, rng: np.random.Generator):
    pooled = pooled.astype(np.float32)
    gram = pooled @ pooled.T
    norms = np.diag(gram).copy()
    squared_distances = norms[:, None] + norms[None, :]
    squared_distances -= 2.0 * gram
    np.maximum(squared_distances, 0.0, out=squared_distances)
    rows = rng.choice(len(pooled), size=min(_BANDWIDTH_SAMPLE, len(pooled)), replace=False)
    sample = squared_distances[np.ix_(rows, rows)]
    bandwidth = float(np.median(sample[np.triu_indices(len(rows), 1)]))
    if not bandwidth > 0:
        bandwidth = 1.0
    squared_distances *= -1.0 / bandwidth
    gaussian = np.exp(squared_distances, out=squared_distances)
    gram *= gram
    gram *= 1.0 / pooled.shape[1] ** 2
    return gaussian, gram


def _mmd_squared(kernel: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Biased MMD^2 for each column of weights (-1/n on one sample, +1/m on the other)."""
    return np.einsum("ij,ij->j", kernel @ weights, weights).astype(np.float64)


def _permuted_weights(n: int, m: int, count: int, rng: np.random.Generator) -> np.ndarray:
    total = n + m
    order = rng.permuted(np.tile(np.arange(total), (count, 1)), axis=1)
    weights = np.full((total, count), -1.0 / n, dtype=np.float32)
    weights[order[:, :m].T, np.arange(count)] = 1.0 / m
    return weights


def _min_p(all_statistics: np.ndarray):
    """Per-kernel p-values of every column, then the min-p combination calibrated on them.

    Column 0 is the observed split; each p-value counts columns at least as extreme, the
    observed one included, so the result is a valid permutation p-value.
    """
    count = all_statistics.shape[1]
    sorted_stats = np.sort(all_statistics, axis=1)
    at_least = np.stack([count - np.searchsorted(row_sorted, row, side="left")
                         for row_sorted, row in zip(sorted_stats, all_statistics)])
    p_values = at_least / count
    min_p = p_values.min(axis=0)
    combined = float(np.mean(min_p <= min_p[0]))
    return p_values[:, 0], combined
