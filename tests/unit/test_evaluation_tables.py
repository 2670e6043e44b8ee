"""Table metrics and the verdict (`core.evaluation`): regression figures, ROC-AUC and PR-AUC for two
classes, the blend of two models, and the sentence comparing the network with its baseline; every
expected value is worked out by hand in the comments."""

from __future__ import annotations

import numpy as np
import pytest

from core import evaluation

LGBM = "gradient boosting (LightGBM)"


def test_regression_summary_by_hand() -> None:
    # errors 0, 0, 0, 2: MAE 2/4, MSE 4/4 so RMSE 1; mean 2.5, total sum of squares 2.25+0.25+0.25+2.25 = 5,
    # residual sum of squares 4, so R² = 1 - 4/5
    found = evaluation.regression_summary([1, 2, 3, 4], [1, 2, 3, 6])
    assert found == pytest.approx({"mae": 0.5, "rmse": 1.0, "r2": 0.2})


def test_always_answering_the_mean_scores_r2_zero_and_one_target_has_none() -> None:
    assert evaluation.regression_summary([1, 2, 3, 6], [3, 3, 3, 3])["r2"] == pytest.approx(0.0)
    assert evaluation.regression_summary([5.0], [4.0]) == {"mae": 1.0, "rmse": 1.0, "r2": None}


def test_binary_scores_by_hand_from_two_columns_or_the_positive_one() -> None:
    labels = [0, 0, 1, 1]
    positive = np.array([0.1, 0.4, 0.35, 0.8])
    # ROC-AUC: of the 4 (positive, negative) pairs, the positive ranks higher in 3 (0.35 < 0.4 is the miss);
    # PR-AUC (average precision): ranked 0.8+, 0.4-, 0.35+, 0.1-: precision 1/1 and 2/3 at the positives
    expected = {"roc_auc": 0.75, "pr_auc": (1 + 2 / 3) / 2}
    assert evaluation.binary_scores(labels, np.column_stack([1 - positive, positive])) == pytest.approx(expected)
    assert evaluation.binary_scores(labels, positive) == pytest.approx(expected)


def test_binary_scores_are_none_with_one_class() -> None:
    assert evaluation.binary_scores([1, 1, 1], np.array([0.2, 0.9, 0.6])) == {"roc_auc": None, "pr_auc": None}


def test_blend_averages_probabilities_and_predictions() -> None:
    probs = evaluation.blend(np.array([[0.2, 0.8], [0.6, 0.4]]), np.array([[0.4, 0.6], [0.0, 1.0]]))
    np.testing.assert_allclose(probs, [[0.3, 0.7], [0.3, 0.7]])
    np.testing.assert_allclose(evaluation.blend(np.array([1.0, 4.0]), np.array([3.0, 0.0])), [2.0, 2.0])
    with pytest.raises(ValueError):
        evaluation.blend(np.zeros((2, 2)), np.zeros((2, 3)))


def test_verdict_gives_the_gap_in_points_of_accuracy() -> None:
    below = evaluation.verdict({"val_accuracy": 0.853}, {"accuracy": 0.865}, "classification", LGBM)
    assert below == ("The network is 1.2 points of accuracy below gradient boosting (LightGBM) on this table "
                     "(85.3% against 86.5%).")
    above = evaluation.verdict({"accuracy": 0.9}, {"accuracy": 0.87}, "classification", LGBM)
    assert above.startswith("The network is 3.0 points of accuracy above gradient boosting (LightGBM)")


def test_verdict_calls_a_gap_within_half_a_point_level() -> None:
    said = evaluation.verdict({"val_accuracy": 0.860}, {"accuracy": 0.864}, "classification", LGBM)
    assert said == ("The network is about level with gradient boosting (LightGBM) on this table "
                    "(within 0.5 points of accuracy: 86.0% against 86.4%).")


def test_verdict_for_regression_compares_r2() -> None:
    above = evaluation.verdict({"val_r2": 0.81}, {"r2": 0.78}, "regression", LGBM)
    assert above == ("The network is 0.03 of R² above gradient boosting (LightGBM) on this table "
                     "(R² 0.81 against 0.78).")
    level = evaluation.verdict({"val_r2": 0.805}, {"r2": 0.80}, "regression", LGBM)
    assert level.startswith("The network is about level with gradient boosting (LightGBM)")
    assert "cannot be compared" in evaluation.verdict({"val_r2": None}, {"r2": 0.5}, "regression", LGBM)


def test_verdict_refuses_an_unknown_task_or_a_missing_metric() -> None:
    with pytest.raises(ValueError):
        evaluation.verdict({"accuracy": 0.5}, {"accuracy": 0.5}, "forecast", LGBM)
    with pytest.raises(ValueError):
        evaluation.verdict({"val_r2": 0.5}, {"accuracy": 0.5}, "regression", LGBM)
