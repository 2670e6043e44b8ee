"""Calibration: the expected calibration error and temperature scaling (core.calibration), and a run's
calibrated probabilities (core.tasks.classification)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core import tasks
from core.calibration import expected_calibration_error, fit_temperature, reliability_bins, softmax


def test_ece_is_the_count_weighted_gap_of_the_confidence_bins() -> None:
    # four items at confidence 0.9 of which 2 right (gap 0.4), two at 0.6 both right (gap 0.4)... weighted: 0.4
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.1, 0.9], [0.1, 0.9], [0.6, 0.4], [0.4, 0.6]])
    labels = np.array([0, 1, 1, 0, 0, 1])
    # bin (0.8667, 0.9333]: 4 items, confidence 0.9, accuracy 0.5 -> gap 0.4; bin (0.5333, 0.6]: 2 items,
    # confidence 0.6, accuracy 1.0 -> gap 0.4
    assert expected_calibration_error(probs, labels) == pytest.approx(0.4)
    bins = reliability_bins(probs, labels)
    used = [b for b in bins if b["count"]]
    assert [(b["count"], round(b["confidence"], 6), b["accuracy"]) for b in used] == [(2, 0.6, 1.0), (4, 0.9, 0.5)]
    assert sum(b["count"] for b in bins) == 6 and len(bins) == 15
    assert all(b["confidence"] is None and b["accuracy"] is None for b in bins if not b["count"])


def test_a_perfectly_calibrated_model_has_no_calibration_error() -> None:
    probs = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.5, 0.5]])
    labels = np.array([0, 1, 0, 1])  # confidence 0.5 twice, one right: accuracy 0.5
    assert expected_calibration_error(probs, labels) == pytest.approx(0.0)


def test_confidence_one_falls_in_the_last_bin() -> None:
    bins = reliability_bins(np.array([[1.0, 0.0]]), np.array([0]), bins=10)
    assert bins[-1]["count"] == 1 and bins[-1]["upper"] == 1.0


def _overconfident(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits of a model that is right 75% of the time but says so with logit gaps of 6 (probability ~1)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    predicted = np.where(rng.random(n) < 0.75, labels, (labels + rng.integers(1, 3, n)) % 3)
    logits = rng.normal(0, 0.3, (n, 3))
    logits[np.arange(n), predicted] += 6.0
    return logits, labels


def test_temperature_scaling_lowers_the_ece_of_an_overconfident_model_and_keeps_its_predictions() -> None:
    logits, labels = _overconfident()
    before = expected_calibration_error(softmax(logits), labels)
    temperature = fit_temperature(logits, labels)
    after = expected_calibration_error(softmax(logits, temperature), labels)
    assert before > 0.2  # says ~0.99, is right 0.75 of the time
    assert temperature > 2.0  # softening is what over-confidence needs
    assert after < 0.05
    assert (softmax(logits, temperature).argmax(1) == logits.argmax(1)).all()
    # the fitted T is the NLL minimum: a nearby temperature is worse on the same data
    def nll(t: float) -> float:
        return float(-np.log(softmax(logits, t)[np.arange(len(labels)), labels]).mean())
    assert nll(temperature) <= min(nll(temperature * 0.9), nll(temperature * 1.1))


def test_an_underconfident_model_gets_a_temperature_below_one() -> None:
    logits, labels = _overconfident()
    assert fit_temperature(logits / 20, labels) < 1.0


def test_nothing_to_fit_gives_temperature_one_and_bad_shapes_are_refused() -> None:
    assert fit_temperature(np.array([[2.0, 0.0]]), np.array([0])) == 1.0
    assert fit_temperature(np.array([[2.0, 0.0], [3.0, 1.0]]), np.array([0, 0])) == 1.0
    with pytest.raises(ValueError):
        fit_temperature(np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(ValueError):
        softmax(np.zeros((1, 2)), 0.0)
    with pytest.raises(ValueError):
        expected_calibration_error(np.zeros((0, 2)), np.zeros(0))


def test_classification_answers_use_the_runs_temperature() -> None:
    task = tasks.task("classification")
    logits = torch.tensor([[4.0, 0.0]])
    raw = task.answers(logits, {"classes": ["a", "b"]})
    softened = task.answers(logits, {"classes": ["a", "b"], "temperature": 4.0})
    assert raw[0, 0] == pytest.approx(1 / (1 + np.exp(-4.0)))
    assert softened[0, 0] == pytest.approx(1 / (1 + np.exp(-1.0)))
    logits_np, labels = _overconfident(500)
    found = task.calibration(labels, softmax(logits_np), {"classes": list("abc")}, logits_np)
    assert found["temperature"] == pytest.approx(fit_temperature(logits_np, labels), rel=1e-5)
    shown = task.calibration_metrics(labels, logits_np, {"classes": list("abc"), **found})
    assert shown["ece"] < shown["ece_uncalibrated"]
    assert tasks.task("regression").calibration_metrics(np.zeros(2), np.zeros((2, 1)), {}) == {}


def test_a_validation_set_without_mistakes_keeps_the_probabilities_as_trained() -> None:
    # every answer right: a smaller T always lowers the NLL, so a fit would make every probability 1
    logits = np.array([[2.0, 0.5, 0.0], [0.1, 1.5, 0.2], [0.0, 0.3, 0.9], [1.2, 0.0, 0.4]])
    labels = np.array([0, 1, 2, 0])
    assert fit_temperature(logits, labels) == 1.0
    assert fit_temperature(logits, np.array([0, 1, 2, 2])) != 1.0  # one mistake: something to fit
