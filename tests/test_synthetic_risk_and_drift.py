"""Risk ground truth (labels, Bayes-optimal AUC) and the documented drift scenarios."""
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from ml.synthetic.risk_label import (RiskFeatures, baseline_log_odds, high_risk_probability,
                                     risk_features_from_trades)
from ml.synthetic_data_generator import (DriftScenario, ETRMDataConfig,
                                         SyntheticETRMDataGenerator, roc_auc)

WINDOW = dict(num_trades=6000, start_date=datetime(2023, 7, 1), end_date=datetime(2024, 6, 30))
DRIFT_START = datetime(2024, 1, 1)


@pytest.fixture(scope="module")
def trades_20k():
    return SyntheticETRMDataGenerator(ETRMDataConfig(num_trades=20_000)).generate_trades()


def test_base_rate_and_bayes_optimal_auc_are_in_the_documented_range(trades_20k):
    assert 0.15 <= trades_20k["high_risk"].mean() <= 0.25
    auc = roc_auc(labels=trades_20k["high_risk"], scores=trades_20k["high_risk_probability"])
    assert 0.85 <= auc <= 0.92


def test_probability_is_the_documented_function_of_trade_columns(trades_20k):
    recomputed = high_risk_probability(risk_features_from_trades(trades_20k))
    np.testing.assert_allclose(trades_20k["high_risk_probability"], recomputed, rtol=1e-12)


def test_labels_are_calibrated_draws_from_the_probability(trades_20k):
    deciles = pd.qcut(trades_20k["high_risk_probability"], 10, labels=False)
    by_decile = trades_20k.groupby(deciles).agg(
        observed=("high_risk", "mean"), expected=("high_risk_probability", "mean"))
    assert np.all(np.abs(by_decile["observed"] - by_decile["expected"]) < 0.04)
    assert by_decile["observed"].iloc[-1] > 0.6 > 0.02 > by_decile["observed"].iloc[0]


def _features(n=2, **overrides):
    values = dict(notional_usd=np.full(n, 1e6), volatility=np.full(n, 0.4),
                  tenor_months=np.full(n, 3.0), rating_score=np.full(n, 3.0),
                  is_option=np.zeros(n), is_power=np.zeros(n), is_emissions=np.zeros(n),
                  is_sell=np.zeros(n), counterparty_share=np.full(n, 0.02))
    values.update({k: np.asarray(v, dtype=float) for k, v in overrides.items()})
    return RiskFeatures(**values)


def _effect(**pairs):
    return np.diff(baseline_log_odds(_features(**pairs)))[0]


def test_risk_function_has_the_documented_interactions():
    calm_to_stressed = dict(volatility=[0.3, 1.0])
    assert (_effect(is_option=[1, 1], **calm_to_stressed)
            > _effect(is_option=[0, 0], **calm_to_stressed) + 1.5)
    short_to_long = dict(tenor_months=[0, 36])
    assert (_effect(rating_score=[6, 6], **short_to_long)
            > _effect(rating_score=[2, 2], **short_to_long) + 2.0)
    assert _effect(is_option=[1, 1], is_sell=[0, 1]) > _effect(is_sell=[0, 1]) + 0.5
    assert _effect(counterparty_share=[0.02, 0.15]) > 1.0
    assert _effect(counterparty_share=[0.005, 0.03]) == 0.0
    assert _effect(notional_usd=[1e7, 1e8]) > _effect(notional_usd=[1e5, 1e6]) + 0.5
    assert _effect(is_power=[0, 1]) > 0 and _effect(rating_score=[0, 6]) > 2


def test_shuffled_labels_carry_no_signal(trades_20k):
    shuffled = SyntheticETRMDataGenerator(
        ETRMDataConfig(num_trades=20_000, shuffle_labels=True)).generate_trades()
    assert shuffled.drop(columns="high_risk").equals(trades_20k.drop(columns="high_risk"))
    assert shuffled["high_risk"].sum() == trades_20k["high_risk"].sum()
    assert abs(roc_auc(labels=shuffled["high_risk"], scores=shuffled["high_risk_probability"]) - 0.5) < 0.03


@pytest.fixture(scope="module")
def baseline_window():
    return SyntheticETRMDataGenerator(ETRMDataConfig(**WINDOW)).generate_trades()


def _drifted(scenario):
    return SyntheticETRMDataGenerator(
        ETRMDataConfig(**WINDOW, drift_scenarios=[scenario])).generate_trades()


def _split(trades):
    after = trades["trade_date"] >= str(DRIFT_START.date())
    return trades[~after], trades[after]


@pytest.mark.parametrize("scenario", [
    DriftScenario("volatility_shock", DRIFT_START, 1.0),
    DriftScenario("price_shift", DRIFT_START, 0.3),
    DriftScenario("mix_change", DRIFT_START, 1.0),
    DriftScenario("new_category", DRIFT_START, 0.2),
    DriftScenario("new_category", DRIFT_START, 0.2, category_field="region"),
    DriftScenario("concept_change", DRIFT_START, 1.0),
], ids=lambda s: f"{s.kind}-{s.category_field}")
def test_trades_before_a_drift_start_are_untouched(baseline_window, scenario):
    drifted = _drifted(scenario)
    before, after = _split(drifted)
    reference_before, reference_after = _split(baseline_window)
    assert len(before) > 1000 and len(after) > 1000
    assert before.equals(reference_before)
    assert not after.equals(reference_after)


def test_volatility_shock_shows_in_trade_volatility(baseline_window):
    _, after = _split(_drifted(DriftScenario("volatility_shock", DRIFT_START, 1.0)))
    _, reference = _split(baseline_window)
    assert after["volatility"].median() > 1.6 * reference["volatility"].median()
    assert after["high_risk"].mean() > reference["high_risk"].mean() + 0.1


def test_price_shift_shows_in_trade_prices(baseline_window):
    _, after = _split(_drifted(DriftScenario("price_shift", DRIFT_START, 0.3)))
    _, reference = _split(baseline_window)
    ratio = after["price"].to_numpy() / reference["price"].to_numpy()
    assert np.median(ratio) == pytest.approx(1.3, abs=0.005)
    assert (after["commodity"].to_numpy() == reference["commodity"].to_numpy()).all()


def test_mix_change_reverses_the_commodity_and_region_mix(baseline_window):
    before, after = _split(_drifted(DriftScenario("mix_change", DRIFT_START, 1.0)))
    for column, top in (("commodity", "power"), ("region", "europe")):
        share_before = before[column].value_counts(normalize=True)
        share_after = after[column].value_counts(normalize=True)
        assert share_before.idxmax() == top
        assert share_after[top] < share_before[top] / 2
        distance = 0.5 * share_before.subtract(share_after, fill_value=0).abs().sum()
        assert distance > 0.2


def test_mix_change_to_a_target_mix():
    scenario = DriftScenario("mix_change", DRIFT_START, 0.5, target_mix={"coal": 1.0})
    _, after = _split(_drifted(scenario))
    assert after["commodity"].value_counts(normalize=True).idxmax() == "coal"
    assert 0.4 < (after["commodity"] == "coal").mean() < 0.65


def test_new_commodity_appears_only_after_its_start():
    before, after = _split(_drifted(DriftScenario("new_category", DRIFT_START, 0.2)))
    assert "hydrogen" not in set(before["commodity"])
    hydrogen = after[after["commodity"] == "hydrogen"]
    assert len(hydrogen) / len(after) == pytest.approx(0.2, abs=0.03)
    assert set(hydrogen["unit"]) == {"kg"} and hydrogen["price"].between(1, 20).all()


def test_new_region_appears_only_after_its_start():
    scenario = DriftScenario("new_category", DRIFT_START, 0.1, category_field="region")
    before, after = _split(_drifted(scenario))
    assert "latin_america" not in set(before["region"])
    latin = after[after["region"] == "latin_america"]
    assert len(latin) / len(after) == pytest.approx(0.1, abs=0.03)
    assert set(latin["currency"]) == {"BRL"}


def test_concept_change_changes_the_risk_function_not_the_features(baseline_window):
    before, after = _split(_drifted(DriftScenario("concept_change", DRIFT_START, 1.0)))
    reference_before, reference_after = _split(baseline_window)
    features = [c for c in after.columns if c not in ("high_risk", "high_risk_probability")]
    assert after[features].equals(reference_after[features])
    assert before.equals(reference_before)
    old_function = high_risk_probability(risk_features_from_trades(after))
    assert roc_auc(labels=after["high_risk"], scores=old_function) < 0.75
    assert roc_auc(labels=after["high_risk"], scores=after["high_risk_probability"]) > 0.8
    assert 0.12 < after["high_risk"].mean() < 0.32


def test_drift_scenarios_are_recorded_in_the_metadata():
    scenario = DriftScenario("concept_change", DRIFT_START, 0.5)
    config = ETRMDataConfig(num_trades=200, num_risk_reports=6, drift_scenarios=[scenario])
    metadata = SyntheticETRMDataGenerator(config).generate_complete_dataset()["metadata"]
    assert metadata["drift_scenarios"] == [scenario.to_dict()]
    assert DriftScenario.from_dict(metadata["drift_scenarios"][0]) == scenario
