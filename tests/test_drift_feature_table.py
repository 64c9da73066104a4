"""The reusable per-feature table for the pipeline's drift gate, and input validation."""
import numpy as np
import pandas as pd
import pytest

from ml.monitoring.feature_drift import RESULT_COLUMNS, compare_tables


def _frames(seed=0, rows=(1000, 200)):
    rng = np.random.default_rng(seed)
    make = lambda n: pd.DataFrame({  # noqa: E731
        "price": rng.normal(75, 5, n), "volume": rng.lognormal(7, 0.5, n),
        "commodity": rng.choice(["power", "gas", "oil"], n, p=[0.5, 0.3, 0.2]),
        "region": rng.choice(["EU", "US"], n)})
    return make(rows[0]), make(rows[1])


def test_table_has_one_row_per_feature_with_the_agreed_columns():
    reference, current = _frames()
    table = compare_tables(reference, current)
    assert list(table.columns) == RESULT_COLUMNS
    assert table["feature"].tolist() == ["price", "volume", "commodity", "region"]
    assert table["test"].tolist() == ["ks", "ks", "chi2", "chi2"]
    assert not table["drifted"].any()
    assert (table["adjusted_p_value"] >= table["p_value"]).all()


def test_shifted_numeric_and_categorical_features_are_flagged():
    reference, current = _frames(1)
    current["price"] += 10
    current["commodity"] = np.where(np.arange(len(current)) % 4 == 0, "power", "coal")
    table = compare_tables(reference, current).set_index("feature")
    assert table.loc["price", "drifted"] and table.loc["commodity", "drifted"]
    assert not table.loc["volume", "drifted"] and not table.loc["region", "drifted"]


def test_column_order_of_current_may_differ():
    reference, current = _frames(2)
    table = compare_tables(reference, current[["region", "commodity", "volume", "price"]])
    assert table["feature"].tolist() == ["price", "volume", "commodity", "region"]


def test_thresholds_and_correction_are_honoured():
    reference, current = _frames(3)
    current["price"] += 2.0  # 0.4 SD: PSI about 0.15, not material at the default PSI floor
    default = compare_tables(reference, current).set_index("feature").loc["price"]
    assert default["drifted"] and default["location_drifted"] and not default["scale_drifted"]
    psi_only = {"shift": 10.0}
    assert not compare_tables(reference, current, thresholds=psi_only).set_index(
        "feature").loc["price", "drifted"]
    relaxed = compare_tables(reference, current, thresholds={**psi_only, "psi": 0.05})
    assert relaxed.set_index("feature").loc["price", "drifted"]
    bh = compare_tables(reference, current, correction="bh")
    assert (bh["adjusted_p_value"] <= compare_tables(reference, current)["adjusted_p_value"] + 1e-15).all()


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c.drop(columns=["price"]), "missing \\['price'\\]"),
    (lambda c: c.assign(extra=1.0), "unexpected \\['extra'\\]"),
    (lambda c: c.assign(price=c["price"].where(c.index != 3)), "'price' has 1 NaN"),
    (lambda c: c.assign(region=c["region"].where(c.index != 5)), "'region' has 1 missing"),
    (lambda c: c.assign(price=c["price"].astype(str)), "changed kind"),
    (lambda c: c.iloc[:1], "at least 2 rows"),
])
def test_bad_current_data_raises_a_clear_error(mutate, message):
    reference, current = _frames(4)
    with pytest.raises(ValueError, match=message):
        compare_tables(reference, mutate(current))


def test_arrays_must_be_two_dimensional_and_match_in_width():
    with pytest.raises(ValueError, match="2-D"):
        compare_tables(np.zeros(10), np.zeros(10))
    with pytest.raises(ValueError, match="3 feature columns, the reference has 2"):
        compare_tables(np.random.default_rng(0).normal(size=(10, 2)), np.zeros((10, 3)))
    with pytest.raises(ValueError, match="unknown feature threshold"):
        compare_tables(np.ones((5, 1)), np.ones((5, 1)), thresholds={"psi_score": 0.2})


def test_building_a_profile_leaves_the_reference_rows_untouched():
    from ml.monitoring.feature_drift import ReferenceProfile
    from ml.monitoring.tables import as_feature_table
    rng = np.random.default_rng(5)
    table = as_feature_table(pd.DataFrame(rng.normal(size=(50, 3))), "reference")
    before = table.numeric.copy()
    ReferenceProfile.build(table)
    np.testing.assert_array_equal(table.numeric, before)
