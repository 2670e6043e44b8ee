"""Forecast metrics and split-conformal intervals (`core.evaluation`): MAE, RMSE, MASE and sMAPE, the seasonal
naive scale, interval half-widths and their coverage; every expected value is worked out by hand in the
comments."""

from __future__ import annotations

import numpy as np
import pytest

from core import evaluation


def test_forecast_summary_by_hand() -> None:
    targets = np.array([[10.0, 20.0], [30.0, 40.0]])
    predictions = np.array([[12.0, 20.0], [27.0, 44.0]])
    # errors 2, 0, 3, 4: MAE 9/4; MSE (4 + 0 + 9 + 16)/4 = 29/4; MASE 2.25 / 1.5;
    # sMAPE terms 2*2/22, 0, 2*3/57, 2*4/84, averaged, times 100
    smape = 100 * (4 / 22 + 0 + 6 / 57 + 8 / 84) / 4
    found = evaluation.forecast_summary(targets, predictions, mase_scale=1.5)
    assert found == pytest.approx({"mae": 2.25, "rmse": np.sqrt(29 / 4), "mase": 1.5, "smape": smape})


def test_mase_is_none_without_a_usable_scale() -> None:
    targets, predictions = np.ones((1, 3)), np.zeros((1, 3))
    for scale in (0.0, None, float("nan")):
        assert evaluation.forecast_summary(targets, predictions, scale)["mase"] is None


def test_smape_counts_zero_against_zero_as_exact_and_opposite_signs_as_the_maximum() -> None:
    # terms: 0/0 -> 0; |1 - (-1)| * 2 / (1 + 1) = 2 (200%); 0 against 5: 2*5/5 = 2 (200%)
    found = evaluation.forecast_summary(np.array([[0.0, 1.0, 0.0]]), np.array([[0.0, -1.0, 5.0]]), 1.0)
    assert found["smape"] == pytest.approx(100 * (0 + 2 + 2) / 3)


def test_forecast_summary_refuses_shapes_that_differ_and_has_nothing_for_no_value() -> None:
    with pytest.raises(ValueError, match="shape"):
        evaluation.forecast_summary(np.zeros((2, 3)), np.zeros((2, 2)), 1.0)
    assert evaluation.forecast_summary(np.zeros((0, 3)), np.zeros((0, 3)), 1.0) == {
        "mae": None, "rmse": None, "mase": None, "smape": None}


def test_seasonal_naive_scale_by_hand() -> None:
    history = np.array([1.0, 5.0, 2.0, 7.0, 2.0, 4.0])
    # season 2: |2-1|, |7-5|, |2-2|, |4-7| = 1, 2, 0, 3 -> 6/4
    assert evaluation.seasonal_naive_scale(history, 2) == pytest.approx(1.5)
    # season 1: |4|, |-3|, |5|, |-5|, |2| -> 19/5
    assert evaluation.seasonal_naive_scale(history, 1) == pytest.approx(3.8)
    # a history no longer than its season falls back to lag 1
    assert evaluation.seasonal_naive_scale(history[:3], 3) == pytest.approx((4 + 3) / 2)
    with pytest.raises(ValueError):
        evaluation.seasonal_naive_scale(np.array([1.0]), 1)


def test_conformal_interval_takes_the_corrected_rank_per_step() -> None:
    # 9 residuals per step at 80%: rank ceil(10 * 0.8) = 8, the 8th smallest |residual|
    first = np.array([-1, 2, -3, 4, -5, 6, -7, 8, -9], dtype=float)  # |r| sorted 1..9 -> 8
    second = np.arange(9, dtype=float) * 10  # 0, 10, ..., 80 -> 70
    widths = evaluation.conformal_interval(np.column_stack([first, second]), level=0.8)
    np.testing.assert_allclose(widths, [8.0, 70.0])


def test_conformal_rank_is_not_pushed_up_by_rounding() -> None:
    # (9 + 1) * 0.9 is 9.000000000000002 in floating point: the rank is 9 (the largest of 9), not 10 (infinite)
    residuals = np.arange(1, 10, dtype=float)[:, None]
    assert evaluation.conformal_interval(residuals, level=0.9)[0] == 9.0


def test_conformal_interval_is_infinite_with_too_few_residuals() -> None:
    # 8 residuals at 90%: rank ceil(9 * 0.9) = 9 > 8
    assert np.isinf(evaluation.conformal_interval(np.ones((8, 2)), level=0.9)).all()
    with pytest.raises(ValueError):
        evaluation.conformal_interval(np.ones((8, 2)), level=1.0)
    with pytest.raises(ValueError):
        evaluation.conformal_interval(np.ones(8), level=0.9)


def test_interval_coverage_by_hand() -> None:
    targets = np.array([[1.0, 10.0], [2.0, 20.0]])
    predictions = np.array([[1.5, 13.0], [4.0, 20.0]])
    # |errors| 0.5, 3, 2, 0 against half-widths 1 (first step) and 3 (second): inside, inside (on the edge),
    # outside, inside -> 3/4
    assert evaluation.interval_coverage(targets, predictions, np.array([1.0, 3.0])) == pytest.approx(0.75)
    assert evaluation.interval_coverage(targets, predictions, np.array([np.inf, np.inf])) == 1.0
    with pytest.raises(ValueError):
        evaluation.interval_coverage(targets, predictions, np.array([1.0]))


def test_held_out_coverage_calibrates_on_the_earlier_half() -> None:
    # 20 origins, 1 step: the first 10 have errors 1..10, the last 10 have errors 2..20 step 2.
    # 90% on the first 10: rank ceil(11 * 0.9) = 10 -> half-width 10; the later errors 2, 4, ..., 10 are inside
    # (5 of 10)
    errors = np.concatenate([np.arange(1, 11), np.arange(2, 21, 2)]).astype(float)[:, None]
    targets = np.zeros_like(errors)
    assert evaluation.held_out_coverage(targets, errors, level=0.9) == pytest.approx(0.5)
    assert evaluation.held_out_coverage(targets[:1], errors[:1]) is None
    # 17 rows: the first 8 cannot give a finite 90% interval (rank ceil(9 * 0.9) = 9 > 8)
    assert evaluation.held_out_coverage(targets[:17], errors[:17], level=0.9) is None
