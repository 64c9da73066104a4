"""The drift gate's rule on data: family-wise calibrated, PSI floors that allow for window size,
label-relation tests for concept change, per-feature floors, and the generator's scenarios."""
import numpy as np
import pandas as pd
import pytest

from ml.monitoring.drift_rule import DriftThresholds, judge
from components.drift_gate.label_relation import label_relation_table
from components.drift_gate.verdict import window_verdict
from ml.synthetic.spans import SpanRequest, generate_table
from ml.monitoring.statistics import psi_sampling_allowance
from models.risk.features import LABEL_KEY, RAW_FEATURES
from pipeline.config import DriftSettings

FEATURES = RAW_FEATURES + [LABEL_KEY]


def _window(rng, rows, slope=1.0, shift=0.0):
    x = rng.normal(shift, 1.0, rows)
    commodity = rng.choice(["power", "gas", "oil"], rows, p=[0.5, 0.3, 0.2])
    label = (rng.random(rows) < 1 / (1 + np.exp(-slope * 2 * x))).astype(int)
    return pd.DataFrame({"x": x, "size": rng.lognormal(3, 1, rows), "commodity": commodity,
                         "label": label})


@pytest.fixture(scope="module")
def spans():
    span = lambda drift="": generate_table(SpanRequest(  # noqa: E731
        "trades", 1, 20000, seed=42, drift_scenarios=drift))[FEATURES]
    return {"base": span(), "volatility_shock": span("volatility_shock@2024-01-08:1.0"),
            "concept_change": span("concept_change@2024-01-08:1.0")}


def test_sampling_allowance_is_the_average_psi_of_unchanged_windows():
    rng = np.random.default_rng(0)
    for rows in (200, 2000):
        observed = [window_verdict(_window(rng, rows), _window(rng, rows), DriftThresholds())
                    .distribution.set_index("feature").loc["x", ["psi", "sampling_allowance"]]
                    for _ in range(60)]
        psi, allowance = np.mean([o["psi"] for o in observed]), observed[0]["sampling_allowance"]
        assert allowance == pytest.approx(psi_sampling_allowance(12, rows, rows))
        assert psi == pytest.approx(allowance, rel=0.25)


def test_unchanged_windows_raise_no_flag_where_tfdv_thresholds_alone_would():
    rng = np.random.default_rng(1)
    flags = [window_verdict(_window(rng, 200), _window(rng, 200), DriftThresholds(), "label").flagged
             for _ in range(100)]
    assert sum(bool(f) for f in flags) == 0


def test_one_holm_correction_covers_distribution_and_relation_tests():
    distribution = pd.DataFrame({"feature": [f"f{i}" for i in range(10)], "test": ["ks"] * 10,
                                 "p_value": [0.004] + [0.5] * 9, "psi": [2.0] * 10,
                                 "bins": [12] * 10})
    relations = pd.DataFrame({"feature": ["f1"] * 4, "term": [f"t{i}" for i in range(4)],
                              "change": [0.5] * 4, "threshold": [0.2] * 4,
                              "p_value": [0.0005] + [0.9] * 3})
    judged, related = judge(distribution, relations, DriftThresholds(), 2000, 2000)
    assert judged.loc[0, "adjusted_p_value"] == pytest.approx(0.004 * 13)
    assert not judged["drifted"].any()
    assert related.loc[0, "adjusted_p_value"] == pytest.approx(0.0005 * 14)
    assert related["drifted"].tolist() == [True, False, False, False]


def test_psi_floor_allows_for_window_size_and_can_be_set_per_feature():
    table = pd.DataFrame({"feature": ["price", "volatility"], "test": ["ks", "ks"],
                          "p_value": [1e-6, 1e-6], "psi": [0.3, 0.5], "bins": [12, 12]})
    small, _ = judge(table, None, DriftThresholds(), 200, 200)
    large, _ = judge(table, None, DriftThresholds(), 2000, 2000)
    assert small["drifted"].tolist() == [False, True]
    assert large["drifted"].tolist() == [True, True]
    market, _ = judge(table, None, DriftThresholds(feature_psi={"volatility": 1.0}), 2000, 2000)
    assert market["drifted"].tolist() == [True, False]


def test_label_relation_change_with_unchanged_marginals_is_flagged():
    rng = np.random.default_rng(2)
    reference, current = _window(rng, 2000, slope=1.0), _window(rng, 2000, slope=-1.0)
    verdict = window_verdict(reference, current, DriftThresholds(), "label")
    assert not verdict.distribution["drifted"].any()
    assert list(verdict.flagged) == ["x"]
    assert "correlation of x with label label moved" in verdict.flagged["x"][0]
    assert window_verdict(reference, current, DriftThresholds()).flagged == {}
    relations = label_relation_table(reference, current, "label", 0.2)
    assert relations["term"].tolist() == ["x", "size", "commodity=gas", "commodity=oil",
                                          "commodity=power"]


def test_relation_table_is_empty_for_a_label_that_is_not_binary():
    rng = np.random.default_rng(3)
    reference = _window(rng, 300)
    reference["label"] = rng.integers(0, 3, 300)
    assert label_relation_table(reference, reference, "label", 0.2).empty


def test_generator_volatility_shock_is_flagged_on_volatility(spans):
    reference = spans["base"].sample(2000, random_state=0)
    shocked = spans["volatility_shock"].sample(2000, random_state=1)
    flagged = window_verdict(reference, shocked, DriftThresholds(), LABEL_KEY).flagged
    assert list(flagged) == ["volatility"]
    pipeline = window_verdict(reference, shocked, DriftSettings().gate_thresholds(), LABEL_KEY)
    assert pipeline.flagged == {}


def test_generator_concept_change_is_flagged_through_the_label_relation(spans):
    reference = spans["base"].sample(2000, random_state=0)
    changed = spans["concept_change"].sample(2000, random_state=1)
    verdict = window_verdict(reference, changed, DriftThresholds(), LABEL_KEY)
    # The changed outcome is credit-driven: the rating's relation with the label moves.
    assert "counterparty_rating" in verdict.flagged
    assert any("with label high_risk" in reason
               for reason in verdict.flagged["counterparty_rating"])
    inputs = [name for name in FEATURES if name != LABEL_KEY]
    assert window_verdict(reference[inputs], changed[inputs], DriftThresholds()).flagged == {}
