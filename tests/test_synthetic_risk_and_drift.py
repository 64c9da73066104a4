"""Risk ground truth (labels, Bayes-optimal AUC) and the documented drift scenarios."""
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from ml.synthetic.risk_label import high_risk_probability, risk_features_from_trades
from ml.synthetic_data_generator import (DriftScenario, ETRMDataConfig,
                                         SyntheticETRMDataGenerator, roc_auc)

WINDOW = dict(num_trades=6000, start_date=datetime(2023, 7, 1), end_date=datetime(2024, 6, 30))
DRIFT_START = datetime(2024, 1, 1)


@pytest.fixture(scope="module")
def trades_20k():
    return SyntheticETRMDataGenerator(ETRMDataConfig(num_trades=20_000)).generate_trades()


def test_base_rate_and_bayes_optimal_auc_are_in_the_documented_range(trades_20k):
    assert 0.09 <= trades_20k["high_risk"].mean() <= 0.20
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
    assert by_decile["observed"].iloc[-1] > 0.4 > 0.02 > by_decile["observed"].iloc[0]


def test_label_is_the_probability_of_a_loss_the_price_model_can_produce(trades_20k):
    """Bigger positions, higher volatility and weaker counterparties are riskier: the
    probability follows the loss distribution, not a fixed score."""
    p = trades_20k["high_risk_probability"]
    by_size = trades_20k.groupby(pd.qcut(trades_20k["notional_usd"], 4))["high_risk"].mean()
    assert by_size.is_monotonic_increasing and by_size.iloc[-1] > 4 * by_size.iloc[0]
    calmer = trades_20k.assign(volatility=trades_20k["volatility"] * 0.7)
    linear = (trades_20k["instrument"] != "option").to_numpy()
    lower = high_risk_probability(risk_features_from_trades(calmer))[linear]
    assert np.mean(lower <= p.to_numpy()[linear] + 1e-12) > 0.95
    assert lower.mean() < 0.8 * p[linear].mean()
    weak, strong = (high_risk_probability(risk_features_from_trades(
        trades_20k.assign(counterparty_rating=rating))) for rating in ("CCC", "AA"))
    assert np.all(weak >= strong - 1e-12) and weak.mean() > strong.mean() + 0.02
    assert p.min() >= 0 and p.max() <= 1


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
    assert after["high_risk"].mean() > reference["high_risk"].mean() + 0.03


def test_price_shift_shows_in_trade_prices(baseline_window):
    _, after = _split(_drifted(DriftScenario("price_shift", DRIFT_START, 0.3)))
    _, reference = _split(baseline_window)
    linear = (after["instrument"] != "option").to_numpy()
    ratio = after["forward_price"].to_numpy() / reference["forward_price"].to_numpy()
    assert np.median(ratio[linear]) == pytest.approx(1.3, abs=0.005)
    assert np.median(after["price"].to_numpy()[linear] / reference["price"].to_numpy()[linear]
                     ) == pytest.approx(1.3, abs=0.005)
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
    linear = hydrogen[hydrogen["instrument"] != "option"]
    assert set(hydrogen["unit"]) == {"kg"} and linear["forward_price"].between(1, 20).all()


def test_new_region_appears_only_after_its_start():
    scenario = DriftScenario("new_category", DRIFT_START, 0.1, category_field="region")
    before, after = _split(_drifted(scenario))
    assert "latin_america" not in set(before["region"])
    latin = after[after["region"] == "latin_america"]
    assert len(latin) / len(after) == pytest.approx(0.1, abs=0.03)
    # Power is quoted in reais; oil, coal, gas and LNG in dollars, as Latin America trades them.
    assert set(latin.loc[latin["commodity"] == "power", "currency"]) == {"BRL"}
    assert set(latin.loc[latin["commodity"].isin(["crude_oil", "coal"]), "currency"]) == {"USD"}


def test_concept_change_changes_the_risk_function_not_the_features(baseline_window):
    before, after = _split(_drifted(DriftScenario("concept_change", DRIFT_START, 1.0)))
    reference_before, reference_after = _split(baseline_window)
    features = [c for c in after.columns if c not in ("high_risk", "high_risk_probability")]
    assert after[features].equals(reference_after[features])
    assert before.equals(reference_before)
    old_function = high_risk_probability(risk_features_from_trades(after))
    new_auc = roc_auc(labels=after["high_risk"], scores=after["high_risk_probability"])
    assert roc_auc(labels=after["high_risk"], scores=old_function) < new_auc - 0.03
    assert new_auc > 0.8
    assert 0.08 < after["high_risk"].mean() < 0.32


def test_drift_scenarios_are_recorded_in_the_metadata():
    scenario = DriftScenario("concept_change", DRIFT_START, 0.5)
    config = ETRMDataConfig(num_trades=200, num_risk_reports=6, drift_scenarios=[scenario])
    metadata = SyntheticETRMDataGenerator(config).generate_complete_dataset()["metadata"]
    assert metadata["drift_scenarios"] == [scenario.to_dict()]
    assert DriftScenario.from_dict(metadata["drift_scenarios"][0]) == scenario


TABLE_DATES = {"trades": "trade_date", "risk_reports": "report_date",
               "compliance": "event_date"}
IDENTITY_WINDOW = dict(num_trades=3000, num_positions=300, num_risk_reports=6 * 12,
                       start_date=datetime(2023, 10, 1), end_date=datetime(2024, 3, 31))


@pytest.fixture(scope="module")
def unchanged_generator():
    return SyntheticETRMDataGenerator(ETRMDataConfig(**IDENTITY_WINDOW))


@pytest.fixture(scope="module")
def unchanged_dataset(unchanged_generator):
    return unchanged_generator.generate_complete_dataset()


@pytest.fixture(scope="module")
def unchanged_records(unchanged_generator):
    return unchanged_generator.generate_text_records()


def _before(frame, column, start):
    return frame[frame[column] < start].reset_index(drop=True)


@pytest.mark.parametrize("scenario", [
    DriftScenario("volatility_shock", DRIFT_START, 1.0),
    DriftScenario("price_shift", DRIFT_START, 0.3),
    DriftScenario("price_shift", DRIFT_START, 0.3, ramp_days=20),
    DriftScenario("mix_change", DRIFT_START, 1.0),
    DriftScenario("new_category", DRIFT_START, 0.2),
    DriftScenario("new_category", DRIFT_START, 0.2, category_field="region"),
    DriftScenario("concept_change", DRIFT_START, 1.0),
], ids=lambda s: f"{s.kind}-{s.category_field}-{s.ramp_days}")
def test_every_table_before_a_drift_start_is_identical(unchanged_dataset, unchanged_records,
                                                      scenario):
    """Prices, trades, risk reports, limits, compliance and texts dated before the start do
    not change: the reference period drift detection compares with stays clean."""
    changed_generator = SyntheticETRMDataGenerator(ETRMDataConfig(
        **IDENTITY_WINDOW, drift_scenarios=[scenario]))
    changed = changed_generator.generate_complete_dataset()
    start = str(DRIFT_START.date())
    for table, column in TABLE_DATES.items():
        reference = _before(unchanged_dataset[table], column, start)
        assert len(reference) > 10, table
        pd.testing.assert_frame_equal(_before(changed[table], column, start), reference,
                                      check_exact=True, obj=table)
        assert not changed[table].equals(unchanged_dataset[table]) or table != "trades"
    old_prices, new_prices = unchanged_dataset["price_series"], changed["price_series"]
    rows = old_prices.dates < np.datetime64(DRIFT_START.date())
    shared = [new_prices.names.index(name) for name in old_prices.names]
    np.testing.assert_array_equal(new_prices.forwards[rows][:, shared], old_prices.forwards[rows])
    np.testing.assert_array_equal(new_prices.prices[rows][:, shared], old_prices.prices[rows])
    records = [changed_generator.generate_text_records(), unchanged_records]
    before = [_before(r, "date", start) for r in records]
    pd.testing.assert_frame_equal(before[0], before[1], check_exact=True)
    assert len(before[0]) > 100


def test_realised_ten_day_losses_agree_with_the_probability(trades_20k):
    """The label's outcome happens in the generator's own prices: the linear trades' realised
    10-trading-day loss beyond USD 150k is ranked by high_risk_probability and occurs about as
    often as it says (the old fixed score ranked the realised move at AUC 0.53)."""
    prices = SyntheticETRMDataGenerator(ETRMDataConfig(num_trades=1)).generate_price_series()
    linear = trades_20k[trades_20k["instrument"] != "option"]
    rows = prices.day_index(linear["trade_date"])
    later = rows + 10 < len(prices.dates)
    linear, rows = linear[later], rows[later]
    columns = prices.columns_of(linear["commodity"], linear["region"])
    roll = (prices.months[rows + 10] - prices.months[rows]).astype(int)
    tenor, months = linear["tenor_months"].to_numpy(), linear["delivery_months"].to_numpy()
    before = np.array([prices.forwards[r, j, t:t + n].mean()
                       for r, j, t, n in zip(rows, columns, tenor, months)])
    after = np.array([prices.forwards[r + 10, j, max(t - k, 0):max(t - k, 0) + n].mean()
                      for r, j, t, n, k in zip(rows, columns, tenor, months, roll)])
    usd_per_unit = linear["volume"] * linear["notional_usd"] / linear["notional"]
    sign = np.where(linear["direction"] == "buy", 1.0, -1.0)
    lost = (-sign * usd_per_unit.to_numpy() * (after - before) > 150_000).astype(int)
    probability = linear["high_risk_probability"].to_numpy()
    assert roc_auc(labels=lost, scores=probability) > 0.8
    assert abs(lost.mean() - probability.mean()) < 0.03
