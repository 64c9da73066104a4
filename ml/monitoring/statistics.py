"""Two-sample statistics for drift: KS, PSI, chi-square and Jensen-Shannon, vectorised across features.

Reference columns are sorted once (when a model is registered) so every later check only sorts
the current window; p-values and divergences are computed for all features in single array
operations.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np
from scipy import stats

try:
    # The compiled lattice-path routine behind scipy's ks_2samp(method='exact'): about 200 times
    # faster than the array DP below, which remains the reference and the fallback.
    from scipy.stats._stats_pythran import _compute_outer_prob_inside_method as _compiled_outer
except ImportError:
    _compiled_outer = None

# Exact KS p-values walk a lattice of (n + m) * (min(n, m) + 1) cells per feature; above this the
# asymptotic distribution is both accurate and far cheaper.
EXACT_KS_MAX_CELLS = 3_000_000
# From this effective sample size n*m/(n+m) on, 'auto' uses the limiting Kolmogorov
# distribution: scipy's finite-n kstwo there can take a second per feature in the tail, and the
# two differ by under 2% relative (far less near usual thresholds) at these sizes.
LIMIT_KS_MIN_EFFECTIVE_N = 100_000
# Half a count per bin keeps PSI finite when a bin is empty in one sample, and the correction
# shrinks as samples grow instead of depending on an arbitrary floor such as 1e-4.
PSI_PSEUDO_COUNT = 0.5


def ks_statistic_and_bin_counts(reference_sorted: np.ndarray, current: np.ndarray,
                                bin_edges: np.ndarray) -> Tuple[float, np.ndarray]:
    """Two-sample KS statistic of one column, plus the current window's counts per PSI bin.

    With the reference already sorted, D needs one sort of the current window and one
    searchsorted pass (plus a second only for values present in both samples); ties (within
    or across samples) are handled by evaluating the empirical CDFs after all tied values
    (D+) and just before them (D-).
    """
    placed = PlacedWindow(reference_sorted, current)
    return placed.ks_statistic(), bin_counts_sorted(placed.ordered, bin_edges)


class PlacedWindow:
    """A current window sorted once and placed in a sorted reference: for each sorted current
    value the count of reference values at or below it and strictly below it.

    The sort and the search are the whole cost of KS, Mann-Whitney and Brown-Forsythe on a
    column (everything else is O(m) arithmetic on these arrays), so the three tests share
    one PlacedWindow instead of each sorting and searching again.
    """

    def __init__(self, reference_sorted: np.ndarray, current: np.ndarray,
                 grid: Optional[ValueGrid] = None):
        self.n = reference_sorted.size
        self.ordered = np.sort(current) if grid is None else grid.sort(current)
        self.at_or_below = np.searchsorted(reference_sorted, self.ordered, side="right")
        self.below = _reference_below(reference_sorted, self.ordered, self.at_or_below)
        # _reference_below returns at_or_below itself when no current value is in the reference.
        self.shares_values = self.below is not self.at_or_below

    def ks_statistic(self) -> float:
        n, m = self.n, self.ordered.size
        rank = np.arange(m, dtype=np.float64)
        d_plus = np.max((rank + 1.0) / m - self.at_or_below / n)
        d_minus = np.max(self.below / n - rank / m)
        return float(max(d_plus, d_minus, 0.0))


class ValueGrid:
    """An exactly monotone map from values to fine buckets, fitted to one reference column.

    Buckets let KS on large data skip sorting whole columns: bucket counts bound the ECDF
    difference inside each bucket, and only the few buckets whose bound could beat the best
    difference already attained are sorted and examined value by value. The map is quantile
    segments (found by comparisons) split into equal-width buckets (found by subtraction and
    multiplication), so rounding can never put two values in the wrong order.
    """

    SEGMENTS = 8
    BUCKETS_PER_SEGMENT = 8192
    _KNOT_SAMPLE = 20_000

    def __init__(self, reference: np.ndarray):
        self.reference = reference
        # Knots only shape the buckets (any increasing knots keep the map monotone), so the
        # quantiles of an evenly spaced sample are good enough and far cheaper than exact ones.
        sample = reference[::max(1, reference.size // self._KNOT_SAMPLE)]
        probabilities = np.arange(1, self.SEGMENTS) / self.SEGMENTS
        self.knots = np.unique(np.quantile(sample, probabilities))
        lower = np.concatenate(([reference.min()], self.knots))
        upper = np.concatenate((self.knots, [reference.max()]))
        width = np.where(upper > lower, upper - lower, 1.0)
        self.starts = lower
        self.scales = np.where(upper > lower, self.BUCKETS_PER_SEGMENT / width, 0.0)
        self.size = len(lower) * self.BUCKETS_PER_SEGMENT
        self.reference_buckets = self.buckets(reference).astype(np.int32)
        self.reference_counts = np.bincount(self.reference_buckets, minlength=self.size)
        self.reference_cumulative = np.cumsum(self.reference_counts)

    def sorted_reference(self) -> np.ndarray:
        return self.sort(self.reference, self.reference_buckets)

    def sort(self, values: np.ndarray, buckets: Optional[np.ndarray] = None) -> np.ndarray:
        """np.sort(values), by ordering them by bucket (a stable argsort of 16-bit keys is a
        radix sort) and then sorting the nearly ordered result (timsort merges its runs almost
        for free): the same array, about 2x faster than np.sort at 200,000 rows. Values far
        outside the reference share its end buckets; when one bucket holds an eighth of the
        values, timsort would face long unordered runs, so np.sort does it."""
        if self.size > 1 << 16:
            return np.sort(values)
        buckets = self.buckets(values) if buckets is None else buckets
        if np.bincount(buckets, minlength=self.size).max() > values.size // 8:
            return np.sort(values)
        order = np.argsort(buckets.astype(np.uint16), kind="stable")
        return np.sort(values[order], kind="stable")

    def order_statistics(self, ranks: np.ndarray) -> np.ndarray:
        """The reference values at 0-based sorted positions ranks, without a full sort."""
        ranks = np.asarray(ranks, dtype=np.int64)
        wanted = np.searchsorted(self.reference_cumulative, ranks, side="right")
        selected = np.zeros(self.size, dtype=bool)
        selected[wanted] = True
        values = np.sort(self.reference[selected[self.reference_buckets]])
        first = np.searchsorted(self.buckets(values), wanted, side="left")
        before = self.reference_cumulative[wanted] - self.reference_counts[wanted]
        return values[first + ranks - before]

    def bin_counts(self, values: np.ndarray, buckets: np.ndarray, cumulative: np.ndarray,
                   bin_edges: np.ndarray) -> np.ndarray:
        """Counts per right-closed bin of values whose buckets are known, in one pass.

        Values in buckets below an edge's bucket are below the edge; only the values sharing a
        bucket with some edge need comparing.
        """
        edge_buckets = self.buckets(bin_edges)
        selected = np.zeros(self.size, dtype=bool)
        selected[edge_buckets] = True
        shared = values[selected[buckets]]
        shared_buckets = self.buckets(shared)
        before = np.concatenate(([0], cumulative[:-1]))[edge_buckets]
        within = [np.count_nonzero((shared_buckets == bucket) & (shared <= edge))
                  for bucket, edge in zip(edge_buckets, bin_edges)]
        at_or_below = before + np.asarray(within, dtype=np.int64)
        return np.diff(at_or_below, prepend=0, append=values.size)

    def buckets(self, values: np.ndarray) -> np.ndarray:
        segment = np.zeros(values.size, dtype=np.uint8)
        for knot in self.knots:
            segment += (values > knot).view(np.uint8)
        segment = segment.astype(np.intp)
        offset = values - self.starts.take(segment)
        offset *= self.scales.take(segment)
        np.maximum(offset, 0.0, out=offset)
        np.minimum(offset, self.BUCKETS_PER_SEGMENT - 1, out=offset)
        buckets = offset.astype(np.intp)
        buckets += segment * self.BUCKETS_PER_SEGMENT
        return buckets


def ks_statistic_and_bin_counts_on_grid(grid: ValueGrid, current: np.ndarray,
                                        bin_edges: np.ndarray) -> Optional[Tuple[float, np.ndarray]]:
    """Exact KS statistic and PSI bin counts without sorting either sample, or None.

    The difference at the last value of every bucket is attained, so its maximum is a lower
    bound; inside a bucket the difference cannot exceed what the bucket's end counts allow.
    Only values in buckets whose bound beats the lower bound are sorted and checked exactly.
    When that is a large share (heavily tied data), None tells the caller to sort instead.
    """
    n, m = grid.reference.size, current.size
    buckets = grid.buckets(current)
    counts = np.bincount(buckets, minlength=grid.size)
    current_cumulative = np.cumsum(counts)
    reference_cumulative = grid.reference_cumulative
    attained = np.max(np.abs(current_cumulative / m - reference_cumulative / n))
    current_before = current_cumulative - counts
    reference_before = np.concatenate(([0], reference_cumulative[:-1]))
    bound = np.maximum(current_cumulative / m - reference_before / n,
                       reference_cumulative / n - current_before / m)
    candidate = (bound > attained) & (counts > 0)
    reference_in_candidates = (reference_cumulative - reference_before)[candidate].sum()
    if counts[candidate].sum() > m // 4 or reference_in_candidates > n // 4:
        return None
    counts_per_bin = grid.bin_counts(current, buckets, current_cumulative, bin_edges)
    points = np.sort(current[candidate[buckets]])
    if points.size == 0:
        return float(attained), counts_per_bin
    point_buckets = grid.buckets(points)
    references = np.sort(grid.reference[candidate[grid.reference_buckets]])
    reference_buckets = grid.buckets(references)
    first_reference = np.searchsorted(reference_buckets, point_buckets, side="left")
    offset = reference_before[point_buckets] - first_reference
    at_or_below = offset + np.searchsorted(references, points, side="right")
    below = offset + np.searchsorted(references, points, side="left")
    first_point = np.searchsorted(point_buckets, point_buckets, side="left")
    rank = (current_before[point_buckets] + np.arange(points.size) - first_point).astype(np.float64)
    d_plus = np.max((rank + 1.0) / m - at_or_below / n)
    d_minus = np.max(below / n - rank / m)
    return float(max(attained, d_plus, d_minus)), counts_per_bin


def _reference_below(reference_sorted: np.ndarray, current_sorted: np.ndarray,
                     at_or_below: np.ndarray) -> np.ndarray:
    """Count of reference values strictly below each current value.

    Equal to at_or_below except where a current value also occurs in the reference, which is
    rare for continuous data, so only those values get a second (left) search.
    """
    below = at_or_below
    previous = reference_sorted[np.maximum(at_or_below - 1, 0)]
    tied = (at_or_below > 0) & (previous == current_sorted)
    if tied.any():
        below = at_or_below.copy()
        below[tied] = np.searchsorted(reference_sorted, current_sorted[tied], side="left")
    return below


def bin_counts_sorted(sorted_values: np.ndarray, bin_edges: np.ndarray) -> np.ndarray:
    """Counts per right-closed bin (-inf, e0], (e0, e1], ..., (e_last, inf) of sorted values."""
    cumulative = np.searchsorted(sorted_values, bin_edges, side="right")
    return np.diff(cumulative, prepend=0, append=sorted_values.size)


def quantile_bin_edges(reference: np.ndarray, n_bins: int,
                       grid: Optional[ValueGrid] = None) -> np.ndarray:
    """Bin edges at the reference's quantiles, plus one bin below and one above its range.

    The k-th quantile edge is the reference value at sorted position ceil(k n / n_bins) - 1
    (the inverted-CDF quantile, in integer arithmetic). Ties (discrete or rounded data)
    collapse equal edges into one. The outer bins, empty in the reference, are where values
    outside the reference range land, so PSI sees a constant column moving or a feature
    leaving its old range. reference must be sorted unless its grid is given.
    """
    if n_bins < 2:
        raise ValueError(f"n_bins must be at least 2, got {n_bins}")
    n = reference.size
    positions = (np.arange(1, n_bins, dtype=np.int64) * n + n_bins - 1) // n_bins - 1
    positions = np.concatenate(([0], positions, [n - 1]))
    values = reference[positions] if grid is None else grid.order_statistics(positions)
    below_minimum = np.nextafter(values[0], -np.inf)
    return np.unique(np.concatenate(([below_minimum], values[1:])))


def ks_p_values(statistics: np.ndarray, n: int, m: int, method: str = "auto") -> np.ndarray:
    """Two-sided p-values of two-sample KS statistics with sample sizes n and m.

    'exact' counts lattice paths (as scipy's method='exact'); 'asymp' uses the Kolmogorov
    distribution with n_eff = n*m/(n+m) rounded (as scipy's method='asymp'); 'auto' picks
    exact for small samples, 'asymp' in between and the limiting distribution
    (kstwobign at d*sqrt(n_eff)) from LIMIT_KS_MIN_EFFECTIVE_N on.
    """
    statistics = np.asarray(statistics, dtype=np.float64)
    if method not in ("auto", "exact", "asymp"):
        raise ValueError(f"method must be 'auto', 'exact' or 'asymp', got {method!r}")
    if n < 1 or m < 1:
        raise ValueError(f"both samples need at least one value, got n={n}, m={m}")
    auto = method == "auto"
    if auto:
        method = "exact" if (n + m) * (min(n, m) + 1) <= EXACT_KS_MAX_CELLS else "asymp"
    if method == "exact":
        return _ks_exact_p_values(statistics, n, m)
    effective_n = np.round(n * m / (n + m))
    if auto and effective_n >= LIMIT_KS_MIN_EFFECTIVE_N:
        return np.clip(stats.kstwobign.sf(statistics * np.sqrt(effective_n)), 0.0, 1.0)
    return np.clip(stats.kstwo.sf(statistics, effective_n), 0.0, 1.0)


def _ks_exact_p_values(statistics: np.ndarray, n: int, m: int) -> np.ndarray:
    """Exact P(D >= d): scipy's compiled routine when present, else the lattice DP."""
    if _compiled_outer is None or statistics.size == 0:
        return lattice_p_values(statistics, n, m)
    gcd = math.gcd(n, m)
    bounds = np.round(statistics * (n // gcd * m)).astype(np.int64)
    result = np.ones(statistics.size)
    with np.errstate(all="ignore"):
        for index, bound in enumerate(bounds):
            if bound > 0:
                result[index] = float(_compiled_outer(n, m, gcd, int(bound)))
    failed = ~((result >= 0.0) & (result <= 1.0))
    if failed.any():
        result[failed] = lattice_p_values(statistics[failed], n, m)
    return result


def lattice_p_values(statistics: np.ndarray, n: int, m: int) -> np.ndarray:
    """P(D >= d) by dynamic programming over anti-diagonals of the (n, m) lattice.

    g holds, for each cell on the current anti-diagonal, the fraction of monotone paths from the
    origin that reach it without touching the band |i/n - j/m| >= d; values stay in [0, 1], so
    no binomial coefficients overflow. Distances are compared as integers on the lcm grid, and
    every per-diagonal constant is precomputed so each step is a handful of array operations.
    """
    if statistics.size == 0:
        return statistics.copy()
    lcm = n * m // math.gcd(n, m)
    small, large = (n, m) if n <= m else (m, n)
    i = np.arange(small + 1, dtype=np.int64)
    k = np.arange(small + large + 1, dtype=np.int64)[:, None]
    j = k - i
    distance = np.abs(i * (lcm // small) - j * (lcm // large))
    distance[(j < 0) | (j > large)] = np.iinfo(np.int64).max
    with np.errstate(divide="ignore", invalid="ignore"):
        from_smaller_i = np.where(k > 0, i / k, 0.0)
    from_same_i = np.where(k > 0, 1.0 - from_smaller_i, 0.0)
    bound = np.round(statistics * lcm).astype(np.int64)[:, None]
    g = np.zeros((statistics.size, small + 2))
    g[:, 1] = 1.0
    for step in range(1, small + large + 1):
        updated = from_smaller_i[step] * g[:, :-1]
        updated += from_same_i[step] * g[:, 1:]
        updated *= distance[step] < bound
        g[:, 1:] = updated
    return np.clip(1.0 - g[:, small + 1], 0.0, 1.0)


def population_stability_index(reference_counts: np.ndarray, current_counts: np.ndarray,
                               valid_bins: np.ndarray | None = None) -> np.ndarray:
    """PSI = sum (q - p) ln(q / p) per row, with a half-count added to every valid bin.

    Rows are features; valid_bins masks padding when features have different bin counts.
    """
    reference_counts = np.asarray(reference_counts, dtype=np.float64)
    current_counts = np.asarray(current_counts, dtype=np.float64)
    if valid_bins is None:
        valid_bins = np.ones(reference_counts.shape, dtype=bool)
    p = _smoothed_proportions(reference_counts, valid_bins)
    q = _smoothed_proportions(current_counts, valid_bins)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(valid_bins, (q - p) * np.log(q / p), 0.0)
    return terms.sum(axis=-1)


def psi_sampling_allowance(bins, n: int, m: int):
    """The PSI two samples of n and m rows from one distribution show on average,
    (bins - 1) * (1/n + 1/m): PSI is then about a chi-square statistic scaled by 1/n + 1/m.

    A fixed PSI floor ignores this, so a 200-row window clears a 0.1 floor by chance alone;
    subtracting the allowance makes the floor mean the same at every window size.
    """
    return (np.asarray(bins, dtype=np.float64) - 1.0) * (1.0 / n + 1.0 / m)


def _smoothed_proportions(counts: np.ndarray, valid_bins: np.ndarray) -> np.ndarray:
    smoothed = np.where(valid_bins, counts + PSI_PSEUDO_COUNT, 0.0)
    return smoothed / smoothed.sum(axis=-1, keepdims=True)


def jensen_shannon_distance(reference_counts: np.ndarray, current_counts: np.ndarray) -> np.ndarray:
    """Square root of the base-2 Jensen-Shannon divergence per row, in [0, 1].

    Same value as scipy.spatial.distance.jensenshannon(p, q, base=2); empty bins need no
    smoothing because 0 * log 0 = 0.
    """
    p = _proportions(reference_counts)
    q = _proportions(current_counts)
    mixture = 0.5 * (p + q)
    divergence = 0.5 * (_kl_bits(p, mixture) + _kl_bits(q, mixture))
    return np.sqrt(np.clip(divergence, 0.0, 1.0))


def _proportions(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    totals = counts.sum(axis=-1, keepdims=True)
    if np.any(totals <= 0):
        raise ValueError("every distribution needs at least one count")
    return counts / totals


def _kl_bits(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log2(p / q), 0.0)
    return terms.sum(axis=-1)


def chi_square_homogeneity(reference_counts: np.ndarray, current_counts: np.ndarray,
                           valid_bins: np.ndarray | None = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pearson chi-square test that two samples share one categorical distribution, per row.

    Equal to scipy.stats.chi2_contingency on the 2 x K table without Yates' correction. Bins
    empty in both samples carry no information and are dropped from the degrees of freedom.
    Returns (statistic, p_value, degrees_of_freedom).
    """
    observed = np.stack([np.asarray(reference_counts, dtype=np.float64),
                         np.asarray(current_counts, dtype=np.float64)], axis=-2)
    if valid_bins is None:
        valid_bins = np.ones(observed.shape[:-2] + observed.shape[-1:], dtype=bool)
    column_totals = observed.sum(axis=-2)
    used = valid_bins & (column_totals > 0)
    row_totals = observed.sum(axis=-1, keepdims=True)
    grand_total = row_totals.sum(axis=-2, keepdims=True)
    expected = row_totals * column_totals[..., None, :] / grand_total
    with np.errstate(divide="ignore", invalid="ignore"):
        cells = np.where(used[..., None, :], (observed - expected) ** 2 / expected, 0.0)
    statistic = cells.sum(axis=(-2, -1))
    dof = np.maximum(used.sum(axis=-1) - 1, 0)
    p_value = np.where(dof > 0, stats.chi2.sf(statistic, np.maximum(dof, 1)), 1.0)
    return statistic, p_value, dof


class SpreadSummary:
    """What the location and scale tests need from a sorted reference column, computed once:
    its median, the mean and variance of absolute deviations from it, and the tie term
    sum(t^3 - t) of the Mann-Whitney variance."""

    def __init__(self, reference_sorted: np.ndarray):
        self.n = reference_sorted.size
        self.median = float(np.median(reference_sorted))
        deviations = np.abs(reference_sorted - self.median)
        self.deviation_mean = float(deviations.mean())
        self.deviation_var = float(deviations.var(ddof=1)) if self.n > 1 else 0.0
        ties = tie_counts(reference_sorted)
        self.tie_term = float(np.sum(ties ** 3 - ties))


def tie_counts(sorted_values: np.ndarray) -> np.ndarray:
    """How often each distinct value occurs in a sorted array (np.unique would sort again)."""
    starts = np.flatnonzero(np.concatenate(([True], sorted_values[1:] != sorted_values[:-1])))
    return np.diff(np.append(starts, sorted_values.size)).astype(np.float64)


def location_scale_tests(reference_sorted: np.ndarray, summary: SpreadSummary,
                         current: np.ndarray) -> Tuple[float, float, float, float]:
    """(location p, location effect, scale p, scale effect) of current against the reference.

    Location: Mann-Whitney U (normal approximation with tie and continuity correction, as
    scipy.stats.mannwhitneyu's 'asymptotic'), counted by searching the sorted reference; its
    effect is the normal-equivalent shift sqrt(2) * Phi^-1(AUC) in reference SDs, robust to
    heavy tails. Scale: Brown-Forsythe (Levene about the medians; for two groups a pooled
    t-test on absolute deviations); its effect is log(current / reference mean deviation).
    """
    return placed_location_scale_tests(summary, PlacedWindow(reference_sorted, current))


def placed_location_scale_tests(summary: SpreadSummary, placed: PlacedWindow
                                ) -> Tuple[float, float, float, float]:
    """location_scale_tests on a window already sorted and placed in the reference.

    The rank sum is counted from the placement (sum of #reference below + half the ties);
    the tie correction needs the tie counts only when the window has a repeated value or
    one present in the reference, which continuous data rarely has (without any, every
    distinct value adds 1^3 - 1 = 0, so the term is the reference's own).
    """
    n, m = summary.n, placed.ordered.size
    ordered, at_or_below, below = placed.ordered, placed.at_or_below, placed.below
    below_sum = np.sum(below)
    u = float(below_sum + 0.5 * (np.sum(at_or_below) - below_sum))
    tie_term = summary.tie_term
    if placed.shares_values or np.any(ordered[1:] == ordered[:-1]):
        counts = tie_counts(ordered)
        starts = np.cumsum(counts).astype(np.int64) - counts.astype(np.int64)
        reference_ties = (at_or_below - below)[starts].astype(np.float64)
        combined = reference_ties + counts
        tie_term += float(np.sum(combined ** 3 - combined - (reference_ties ** 3 - reference_ties)))
    total = n + m
    variance = n * m / 12.0 * ((total + 1) - tie_term / (total * (total - 1)))
    if variance > 0:
        z = max(abs(u - n * m / 2.0) - 0.5, 0.0) / math.sqrt(variance)
        location_p = float(min(1.0, 2.0 * stats.norm.sf(z)))
    else:
        location_p = 1.0
    auc = np.clip(u / (n * m), 1e-6, 1 - 1e-6)
    location_effect = float(math.sqrt(2.0) * stats.norm.ppf(auc))
    median = (ordered[(m - 1) // 2] + ordered[m // 2]) / 2.0
    deviations = np.abs(ordered - median)
    current_mean = float(deviations.mean())
    current_var = float(deviations.var(ddof=1)) if m > 1 else 0.0
    pooled = ((n - 1) * summary.deviation_var + (m - 1) * current_var) / max(total - 2, 1)
    if pooled > 0:
        t = (current_mean - summary.deviation_mean) / math.sqrt(pooled * (1.0 / n + 1.0 / m))
        scale_p = float(min(1.0, 2.0 * stats.t.sf(abs(t), total - 2)))
    else:
        scale_p = 1.0
    if summary.deviation_mean > 0 and current_mean > 0:
        scale_effect = math.log(current_mean / summary.deviation_mean)
    else:
        scale_effect = 0.0 if current_mean == summary.deviation_mean else math.inf
    return location_p, location_effect, scale_p, float(scale_effect)
