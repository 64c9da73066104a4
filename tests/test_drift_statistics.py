"""Each drift statistic against scipy on the same data."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from ml.monitoring import statistics as S


def _ks(reference, current, method):
    statistic, _ = S.ks_statistic_and_bin_counts(np.sort(reference), current, np.array([0.0]))
    p_value = S.ks_p_values(np.array([statistic]), len(reference), len(current), method)[0]
    return statistic, p_value


@pytest.mark.parametrize("n, m", [(1000, 200), (30, 17), (50, 50), (7, 300), (200, 1000)])
@pytest.mark.parametrize("shift", [0.0, 0.3, 1.0])
def test_ks_exact_matches_scipy(n, m, shift):
    rng = np.random.default_rng(n * 7 + m)
    reference, current = rng.normal(size=n), rng.normal(shift, 1.0, size=m)
    expected = stats.ks_2samp(reference, current, method="exact")
    statistic, p_value = _ks(reference, current, "exact")
    assert statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-14)


@pytest.mark.parametrize("n, m", [(20000, 5000), (3000, 3000), (100, 40)])
def test_ks_asymptotic_matches_scipy(n, m):
    rng = np.random.default_rng(n + m)
    reference, current = rng.normal(size=n), rng.normal(0.05, 1.0, size=m)
    expected = stats.ks_2samp(reference, current, method="asymp")
    statistic, p_value = _ks(reference, current, "asymp")
    assert statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-15)


def test_ks_statistic_with_ties_within_and_across_samples_matches_scipy():
    rng = np.random.default_rng(3)
    for _ in range(50):
        reference = rng.integers(0, 6, size=rng.integers(5, 80)).astype(float)
        current = rng.integers(0, 7, size=rng.integers(5, 80)).astype(float)
        statistic, p_value = _ks(reference, current, "exact")
        expected = stats.ks_2samp(reference, current, method="exact")
        assert statistic == pytest.approx(expected.statistic, abs=1e-12)
        assert p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-14)


def test_lattice_fallback_matches_scipy_exact():
    rng = np.random.default_rng(11)
    for n, m in [(40, 25), (60, 60), (9, 120)]:
        reference, current = rng.normal(size=n), rng.normal(0.4, 1.0, size=m)
        expected = stats.ks_2samp(reference, current, method="exact")
        p_value = S.lattice_p_values(np.array([expected.statistic]), n, m)[0]
        assert p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-14)


def test_auto_method_uses_exact_for_small_and_asymptotic_for_large_samples():
    d = np.array([0.1])
    assert S.ks_p_values(d, 1000, 200)[0] == S.ks_p_values(d, 1000, 200, "exact")[0]
    assert S.ks_p_values(d, 100000, 100000)[0] == S.ks_p_values(d, 100000, 100000, "asymp")[0]


def test_auto_method_uses_the_limiting_distribution_for_huge_samples_within_2_percent_of_scipy():
    n = 400_000  # effective n 200,000
    d = np.array([0.8, 1.0, 1.2]) / np.sqrt(n / 2)
    limit = S.ks_p_values(d, n, n)
    np.testing.assert_allclose(limit, stats.kstwobign.sf(d * np.sqrt(n / 2)))
    np.testing.assert_allclose(limit, S.ks_p_values(d, n, n, "asymp"), rtol=0.02)


def test_ks_p_values_reject_bad_arguments():
    with pytest.raises(ValueError, match="method"):
        S.ks_p_values(np.array([0.1]), 10, 10, "approx")
    with pytest.raises(ValueError, match="at least one"):
        S.ks_p_values(np.array([0.1]), 0, 10)


def test_quantile_bins_follow_reference_deciles_and_collapse_ties():
    reference = np.sort(np.arange(1000.0))
    edges = S.quantile_bin_edges(reference, 10)
    assert edges[1:].tolist() == [99.0 + 100 * k for k in range(10)]
    counts = S.bin_counts_sorted(reference, edges)
    assert counts.tolist() == [0] + [100] * 10 + [0]  # outer bins: below and above the range
    discrete = np.sort(np.repeat([0.0, 1.0, 2.0], [500, 300, 200]))
    edges = S.quantile_bin_edges(discrete, 10)
    assert edges[1:].tolist() == [0.0, 1.0, 2.0] and edges[0] < 0.0  # no duplicate edges
    assert S.bin_counts_sorted(discrete, edges).tolist() == [0, 500, 300, 200, 0]


def test_psi_sees_a_constant_feature_move_and_values_leave_the_range():
    from ml.monitoring.feature_drift import compare_tables
    reference = np.c_[np.full(500, 3.0), np.random.default_rng(0).uniform(size=500)]
    current = np.c_[np.full(100, 4.0), np.random.default_rng(1).uniform(-1, 0, size=100)]
    table = compare_tables(reference, current)
    assert table["drifted"].tolist() == [True, True]
    assert (table["psi"] > 1).all()


def test_psi_matches_the_formula_and_stays_finite_with_empty_bins():
    reference = np.array([[100.0, 300.0, 600.0]])
    current = np.array([[50.0, 50.0, 100.0]])
    p = (reference + 0.5) / (reference + 0.5).sum()
    q = (current + 0.5) / (current + 0.5).sum()
    expected = np.sum((q - p) * np.log(q / p))
    assert S.population_stability_index(reference, current)[0] == pytest.approx(expected)
    empty = S.population_stability_index(np.array([[100.0, 0.0]]), np.array([[0.0, 100.0]]))
    assert np.isfinite(empty).all() and empty[0] > 5
    assert S.population_stability_index(reference, reference)[0] == pytest.approx(0.0)


def test_psi_ignores_padding_bins():
    reference = np.array([[10.0, 20.0, 0.0], [5.0, 5.0, 5.0]])
    current = np.array([[12.0, 18.0, 0.0], [1.0, 9.0, 5.0]])
    valid = np.array([[True, True, False], [True, True, True]])
    padded = S.population_stability_index(reference, current, valid)
    assert padded[0] == pytest.approx(S.population_stability_index(reference[:1, :2],
                                                                   current[:1, :2])[0])


def test_chi_square_matches_scipy_contingency_and_goodness_of_fit():
    rng = np.random.default_rng(5)
    reference = rng.integers(1, 50, size=(4, 6)).astype(float)
    current = rng.integers(1, 50, size=(4, 6)).astype(float)
    reference[0, 2] = current[0, 2] = 0  # a category absent from both is not a degree of freedom
    statistic, p_value, dof = S.chi_square_homogeneity(reference, current)
    for row in range(4):
        table = np.array([reference[row], current[row]])
        table = table[:, table.sum(axis=0) > 0]
        chi2, p, expected_dof, _ = stats.chi2_contingency(table, correction=False)
        assert statistic[row] == pytest.approx(chi2)
        assert p_value[row] == pytest.approx(p)
        assert dof[row] == expected_dof
    # The contingency statistic equals scipy.chisquare of both rows against pooled expectations.
    table = np.array([reference[1], current[1]])
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
    assert statistic[1] == pytest.approx(stats.chisquare(table.ravel(), expected.ravel()).statistic)


def test_jensen_shannon_matches_scipy():
    rng = np.random.default_rng(9)
    reference = rng.integers(0, 30, size=(5, 8)).astype(float)
    current = rng.integers(0, 30, size=(5, 8)).astype(float)
    reference[1, 3] = 0
    result = S.jensen_shannon_distance(reference, current)
    expected = [jensenshannon(reference[i], current[i], base=2) for i in range(5)]
    np.testing.assert_allclose(result, expected, atol=1e-12)
    assert S.jensen_shannon_distance(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]))[0] == pytest.approx(1.0)


def test_vectorised_results_equal_one_feature_at_a_time():
    from ml.monitoring.feature_drift import compare_tables
    rng = np.random.default_rng(2)
    reference = rng.normal(size=(500, 6))
    current = rng.normal(size=(120, 6)) + np.linspace(0, 0.6, 6)
    table = compare_tables(reference, current, correction="none")
    for i in range(6):
        single = compare_tables(reference[:, [i]], current[:, [i]], correction="none").iloc[0]
        row = table.iloc[i]
        assert row["statistic"] == pytest.approx(single["statistic"])
        assert row["p_value"] == pytest.approx(single["p_value"])
        assert row["psi"] == pytest.approx(single["psi"])
        expected = stats.ks_2samp(reference[:, i], current[:, i])
        assert row["statistic"] == pytest.approx(expected.statistic)
        assert row["p_value"] == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-14)


@pytest.mark.parametrize("make", [
    lambda rng, size: rng.normal(size=size),
    lambda rng, size: rng.lognormal(0, 2, size=size),
    lambda rng, size: np.round(rng.normal(size=size), 4),
    lambda rng, size: rng.standard_t(1, size=size),
])
def test_grid_ks_statistic_equals_scipy_without_sorting(make):
    rng = np.random.default_rng(21)
    reference, current = make(rng, 60_000), make(rng, 30_000)
    current[:5] = reference[:5]  # values present in both samples
    grid = S.ValueGrid(reference)
    edges = S.quantile_bin_edges(np.sort(reference), 10)
    shifted = current + 0.02
    outside = np.concatenate([current, [reference.min() - 5, reference.max() + 5]])
    for sample in (current, shifted, outside):
        statistic, counts = S.ks_statistic_and_bin_counts_on_grid(grid, sample, edges)
        assert statistic == pytest.approx(stats.ks_2samp(reference, sample).statistic, abs=1e-12)
        np.testing.assert_array_equal(counts, S.bin_counts_sorted(np.sort(sample), edges))


def test_grid_declines_heavily_tied_data_and_the_table_still_matches_scipy():
    from ml.monitoring.feature_drift import compare_tables
    rng = np.random.default_rng(22)
    reference = rng.integers(0, 5, size=(60_000, 1)).astype(float)
    current = rng.integers(0, 5, size=(60_000, 1)).astype(float)
    grid = S.ValueGrid(reference[:, 0])
    assert S.ks_statistic_and_bin_counts_on_grid(grid, current[:, 0], np.array([1.0])) is None
    row = compare_tables(reference, current).iloc[0]
    expected = stats.ks_2samp(reference[:, 0], current[:, 0])
    assert row["statistic"] == pytest.approx(expected.statistic, abs=1e-12)
    assert row["p_value"] == pytest.approx(expected.pvalue, rel=1e-9)


def test_grid_order_statistics_and_bin_edges_equal_sorting():
    rng = np.random.default_rng(23)
    reference = np.round(rng.lognormal(size=70_001), 3)
    grid = S.ValueGrid(reference)
    ranks = np.array([0, 1, 7000, 35000, 70000])
    np.testing.assert_array_equal(grid.order_statistics(ranks), np.sort(reference)[ranks])
    np.testing.assert_array_equal(S.quantile_bin_edges(reference, 10, grid),
                                  S.quantile_bin_edges(np.sort(reference), 10))
    edges = S.quantile_bin_edges(np.sort(reference), 10)
    counts = grid.bin_counts(reference, grid.reference_buckets, grid.reference_cumulative, edges)
    np.testing.assert_array_equal(counts, S.bin_counts_sorted(np.sort(reference), edges))


def test_grid_and_sorting_give_the_same_table(monkeypatch):
    import ml.monitoring.feature_drift as feature_drift
    rng = np.random.default_rng(25)
    reference = np.c_[rng.normal(size=60_000), rng.lognormal(size=60_000),
                      np.round(rng.normal(size=60_000), 1)]
    current = np.c_[rng.normal(0.1, 1, size=3_000), rng.lognormal(size=3_000),
                    np.round(rng.normal(size=3_000), 1)]
    with_grid = feature_drift.compare_tables(reference, current)
    monkeypatch.setattr(feature_drift, "GRID_MIN_ROWS", 10 ** 9)
    pd.testing.assert_frame_equal(with_grid, feature_drift.compare_tables(reference, current))


def test_large_tables_use_the_grid_and_match_scipy_per_feature():
    from ml.monitoring.feature_drift import ReferenceProfile, compare_tables
    from ml.monitoring.tables import as_feature_table
    rng = np.random.default_rng(24)
    reference = rng.normal(size=(60_000, 3))
    current = rng.normal(size=(1_000, 3)) + [0.0, 0.05, 0.3]
    assert all(g is not None for g in ReferenceProfile.build(as_feature_table(reference, "r")).grids)
    table = compare_tables(reference, current)
    for i in range(3):
        expected = stats.ks_2samp(reference[:, i], current[:, i])
        assert table["statistic"][i] == pytest.approx(expected.statistic, abs=1e-12)
        assert table["p_value"][i] == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-15)
