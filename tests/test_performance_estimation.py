"""Confidence-based performance estimation: estimates realised metrics without labels under
covariate shift, cannot see concept change, and refuses bad input by name."""
import numpy as np
import pytest

from ml.core.metrics import roc_auc
from ml.monitoring.performance_estimation import (ProbabilityCalibrator, estimate_performance,
                                                  estimated_drop_test, expected_roc_auc,
                                                  realised_performance)
from ml.synthetic.spans import SpanRequest, generate_table


def _calibrated_window(rng, rows, a=1.2, b=6.0):
    probabilities = rng.beta(a, b, rows)
    labels = (rng.random(rows) < probabilities).astype(int)
    return probabilities, labels


def test_expected_auc_is_the_mean_realised_auc_over_label_draws():
    rng = np.random.default_rng(0)
    probabilities = rng.beta(1.2, 6.0, 3000)
    realised = [roc_auc(labels=(rng.random(3000) < probabilities), scores=probabilities)
                for _ in range(300)]
    assert expected_roc_auc(probabilities) == pytest.approx(np.mean(realised), abs=0.002)


def test_tied_scores_count_half_as_the_rank_sum_auc_does():
    scores = np.array([0.2, 0.2, 0.6, 0.6, 0.9])
    labels = np.array([0, 1, 0, 1, 1])
    # With 0/1 probabilities the expected ROC curve is the realised one.
    assert expected_roc_auc(scores, labels.astype(float)) == pytest.approx(
        roc_auc(labels=labels, scores=scores))


@pytest.mark.parametrize("shape", [(1.2, 6.0), (3.0, 3.0), (0.6, 9.0)])
def test_estimate_follows_covariate_shift_within_two_hundredths(shape):
    rng = np.random.default_rng(1)
    probabilities, labels = _calibrated_window(rng, 20000, *shape)
    estimate = estimate_performance(probabilities, simulations=20)
    realised = realised_performance(labels, probabilities)
    for metric in ("roc_auc", "accuracy"):
        assert abs(estimate.metrics[metric] - realised[metric]) <= 0.02, metric
        assert abs(estimate.metrics[metric] - realised[metric]) <= 3 * estimate.standard_errors[metric]


def test_generator_drift_scenarios_estimated_within_two_hundredths():
    """The generator's own probabilities are calibrated by construction (labels ~ Bernoulli);
    a volatility shock and a mix change move them, and the estimate moves with them."""
    for drift in ("", "volatility_shock@2024-01-08:1.5", "mix_change@2024-01-08:0.8"):
        table = generate_table(SpanRequest("trades", 1, 20000, seed=7, drift_scenarios=drift))
        probabilities = table["high_risk_probability"].to_numpy()
        estimate = estimate_performance(probabilities, simulations=30)
        realised = realised_performance(table["high_risk"].to_numpy(), probabilities)
        assert abs(estimate.metrics["roc_auc"] - realised["roc_auc"]) <= 0.02, drift


def test_concept_change_is_invisible_to_the_estimate_but_not_to_realised_labels():
    table = generate_table(SpanRequest("trades", 1, 6000, seed=7,
                                       drift_scenarios="concept_change@2024-01-01:1.0"))
    base = generate_table(SpanRequest("trades", 1, 6000, seed=7))
    # The model still scores with the old concept: the base probabilities of the same trades.
    old_scores = base["high_risk_probability"].to_numpy()
    estimate = estimate_performance(old_scores, simulations=30)
    realised = realised_performance(table["high_risk"].to_numpy(), old_scores)
    assert realised["roc_auc"] < estimate.metrics["roc_auc"] - 3 * estimate.standard_errors["roc_auc"]


def test_uncalibrated_scores_need_the_reference_calibrator():
    rng = np.random.default_rng(2)
    reference_p, reference_labels = _calibrated_window(rng, 30000)
    shifted_p, shifted_labels = _calibrated_window(rng, 20000, 2.0, 5.0)
    distort = np.sqrt  # monotone: same ranking, over-confident probabilities
    realised = realised_performance(shifted_labels, distort(shifted_p))["roc_auc"]
    naive = estimate_performance(distort(shifted_p), simulations=20).metrics["roc_auc"]
    calibrator = ProbabilityCalibrator(distort(reference_p), reference_labels)
    calibrated = estimate_performance(distort(shifted_p), calibrator=calibrator,
                                      simulations=20).metrics["roc_auc"]
    assert abs(calibrated - realised) <= 0.02
    assert abs(naive - realised) > 0.03


def test_drop_test_fires_on_a_real_drop_and_not_on_an_unchanged_window():
    rng = np.random.default_rng(3)
    reference_p, reference_labels = _calibrated_window(rng, 5000)
    reference = realised_performance(reference_labels, reference_p)
    unchanged = estimate_performance(_calibrated_window(rng, 2000)[0], simulations=60)
    # Scores squeezed towards the base rate: far less separable trades.
    squeezed = 0.15 + 0.2 * (_calibrated_window(rng, 2000)[0] - 0.15)
    dropped = estimate_performance(squeezed, simulations=60)
    assert not estimated_drop_test(reference, unchanged, 0.05)["dropped"]
    verdict = estimated_drop_test(reference, dropped, 0.05)
    assert verdict["dropped"] and verdict["drop"] > 0.05


@pytest.mark.parametrize("scores, message", [
    ([0.2, float("nan"), 0.4], "NaN"),
    ([0.2, 1.4], r"\[0, 1\]"),
    (["a", "b"], "numbers"),
    ([0.3], "at least 2"),
])
def test_bad_scores_are_refused_by_name(scores, message):
    with pytest.raises(ValueError, match=message):
        estimate_performance(scores)


def test_bad_labels_and_settings_are_refused_by_name():
    with pytest.raises(ValueError, match="3 labels for 2 scores"):
        realised_performance([0, 1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="0/1"):
        realised_performance([0, 2], [0.2, 0.3])
    with pytest.raises(ValueError, match="threshold"):
        estimate_performance([0.2, 0.3], threshold=1.0)
    with pytest.raises(ValueError, match="both classes"):
        ProbabilityCalibrator([0.2, 0.3], [1, 1])
    estimate = estimate_performance([0.2, 0.3, 0.6], simulations=5)
    with pytest.raises(ValueError, match="metric must be one of"):
        estimated_drop_test({"roc_auc": 0.9}, estimate, 0.05, metric="f2")
    with pytest.raises(ValueError, match="performance_threshold"):
        estimated_drop_test({"roc_auc": 0.9}, estimate, -0.1)


def test_judged_by_reference_sees_an_inverted_model_its_own_estimate_cannot():
    """An inverted model is as confident as the good one (CBPE on its own scores rates it as
    high); judged by the good model's probabilities of the same rows it falls by 2 AUC - 1."""
    from ml.monitoring.performance_estimation import judged_by_reference

    rng = np.random.default_rng(11)
    good, labels = _calibrated_window(rng, 2000)
    inverted = 1.0 - good
    own = estimate_performance(inverted, simulations=20).metrics["roc_auc"]
    judged = judged_by_reference(inverted, good, simulations=50)
    realised_good = roc_auc(labels=labels, scores=good)
    assert own > 0.6
    assert judged["reference_roc_auc"] == pytest.approx(realised_good, abs=0.03)
    assert judged["drop"] == pytest.approx(2 * judged["reference_roc_auc"] - 1, abs=1e-9)
    assert 0 < judged["drop_standard_error"] < 0.05
    same = judged_by_reference(good, good, simulations=20)
    assert same["drop"] == pytest.approx(0.0, abs=1e-12) and same["drop_standard_error"] == 0.0


def test_judged_by_reference_refuses_rows_that_do_not_align():
    from ml.monitoring.performance_estimation import judged_by_reference

    with pytest.raises(ValueError, match="must align: 3 against 2 rows"):
        judged_by_reference([0.1, 0.2, 0.3], [0.1, 0.2])
    with pytest.raises(ValueError, match="reference scores must lie in"):
        judged_by_reference([0.1, 0.2], [0.1, 1.5])
