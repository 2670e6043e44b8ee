"""Error analysis in `core.evaluation`: the calibration figures before and after temperature scaling, ROC and
precision-recall curves per class, a binary decision threshold, and a run's test split read apart from validation.
Every expected value is worked out by hand from the inputs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from core.artifacts import RunFiles
from core.evaluation import at_threshold, calibration_report, calibration_sentence, class_curves, run_report

# five items of two classes; the positive (index 1) probabilities decide every figure below
LABELS = [0, 0, 1, 1, 1]
POSITIVE = [0.1, 0.6, 0.4, 0.7, 0.9]
PROBS = np.column_stack([1 - np.asarray(POSITIVE), POSITIVE])


def test_at_the_default_threshold_the_answers_are_the_argmax() -> None:
    found = at_threshold(LABELS, PROBS, 0.5)
    # predicted [0, 1, 0, 1, 1]: one true negative, one false positive, one false negative, two true positives
    assert found["predictions"].tolist() == [0, 1, 0, 1, 1] == PROBS.argmax(axis=1).tolist()
    assert found["confusion"] == [[1, 1], [1, 2]]
    assert found["accuracy"] == pytest.approx(3 / 5)
    assert (found["precision"], found["recall"], found["f1"]) == pytest.approx((2 / 3, 2 / 3, 2 / 3))


def test_a_higher_threshold_trades_recall_for_precision() -> None:
    found = at_threshold(LABELS, POSITIVE, 0.65)  # [n] positive probabilities work as well as [n, 2]
    assert found["predictions"].tolist() == [0, 0, 0, 1, 1]
    assert found["confusion"] == [[2, 0], [1, 2]]
    assert found["accuracy"] == pytest.approx(4 / 5)
    assert (found["precision"], found["recall"], found["f1"]) == pytest.approx((1.0, 2 / 3, 0.8))
    nothing = at_threshold(LABELS, POSITIVE, 1.0)
    assert nothing["confusion"] == [[2, 0], [3, 0]]
    assert (nothing["precision"], nothing["recall"], nothing["f1"]) == (0.0, 0.0, 0.0)


def test_a_tie_at_the_threshold_goes_to_the_first_class_as_the_argmax_does() -> None:
    assert at_threshold([0, 1], [[0.5, 0.5], [0.2, 0.8]], 0.5)["predictions"].tolist() == [0, 1]


def test_a_threshold_needs_two_classes_and_a_probability() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        at_threshold(LABELS, PROBS, 1.5)
    with pytest.raises(ValueError, match="two classes"):
        at_threshold([0, 1, 2], np.eye(3), 0.5)


def test_curves_per_class_are_one_vs_rest() -> None:
    # scikit-learn's own worked example: scores 0.1, 0.4, 0.35, 0.8 for labels 0, 0, 1, 1 give ROC-AUC 0.75
    # (three of the four positive-negative pairs ordered right) and average precision (1 + 2/3) / 2
    labels = [0, 0, 1, 1]
    positive = np.asarray([0.1, 0.4, 0.35, 0.8])
    first, second = class_curves(labels, np.column_stack([1 - positive, positive]), ["no", "yes"])
    assert (second["class"], second["positives"]) == ("yes", 2)
    assert second["roc_auc"] == pytest.approx(0.75)
    assert second["average_precision"] == pytest.approx(5 / 6)
    assert (second["fpr"][0], second["tpr"][0], second["fpr"][-1], second["tpr"][-1]) == (0, 0, 1, 1)
    assert second["recall"][-1] == 0 and second["precision"][-1] == 1
    # the negative class scored by its own probability ranks the pairs the same way
    assert first["roc_auc"] == pytest.approx(0.75)


def test_a_class_missing_from_the_labels_has_no_curve() -> None:
    probs = np.asarray([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.7, 0.2, 0.1]])
    curves = class_curves([0, 1, 0], probs, ["a", "b", "c"])
    assert [c["roc_auc"] for c in curves] == [1.0, 1.0, None]
    assert curves[2]["positives"] == 0 and curves[2]["fpr"] is None and curves[2]["average_precision"] is None


def test_calibration_before_and_after_temperature_scaling() -> None:
    # raw logits whose softmax says 0.9 for class 0 on four items, two of which are class 0: over-confident
    raw = np.log(np.asarray([[0.9, 0.1]] * 4))
    labels = [0, 0, 1, 1]
    temperature = math.log(9) / math.log(3)  # softmax(raw / T) says 0.75: log(0.9/0.1) / T = log(0.75/0.25)
    calibrated = np.exp(raw / temperature) / np.exp(raw / temperature).sum(axis=1, keepdims=True)
    found = calibration_report(labels, calibrated, raw, temperature)
    assert calibrated[0, 0] == pytest.approx(0.75)
    assert found["ece_raw"] == pytest.approx(0.9 - 0.5)
    assert found["ece"] == pytest.approx(0.75 - 0.5)
    assert found["temperature"] == pytest.approx(2.0)
    [raw_bin] = [b for b in found["raw_bins"] if b["count"]]
    assert (raw_bin["count"], raw_bin["confidence"], raw_bin["accuracy"]) == (4, pytest.approx(0.9), 0.5)
    [shown_bin] = [b for b in found["bins"] if b["count"]]
    assert shown_bin["lower"] < 0.75 <= shown_bin["upper"] and shown_bin["confidence"] == pytest.approx(0.75)
    assert calibration_sentence(found) == (
        "Temperature scaling (T = 2) lowered the validation ECE from 40.0% to 25.0%; shown probabilities are "
        "calibrated; the raw logits are in predictions.json.")


def test_a_run_without_logits_shows_its_own_probabilities() -> None:
    found = calibration_report([0, 1], [[0.8, 0.2], [0.8, 0.2]])
    assert (found["raw_bins"], found["ece_raw"], found["temperature"]) == (None, None, None)
    assert found["ece"] == pytest.approx(0.8 - 0.5)
    assert calibration_sentence(found).startswith("The validation ECE is 30.0%. This run predates temperature scaling")


def test_a_scaling_that_did_not_help_is_said_so() -> None:
    found = {"ece": 0.05, "ece_raw": 0.04, "temperature": 0.9}
    assert calibration_sentence(found, "test") == (
        "Temperature scaling (T = 0.9) raised the test ECE from 4.0% to 5.0%; shown probabilities are calibrated; "
        "the raw logits are in test_predictions.json.")


def test_the_test_split_is_read_apart_from_validation(tmp_path: Path) -> None:
    files = RunFiles(tmp_path)
    files.write_json(files.labels, ["no", "yes"])
    files.write_json(files.target, {"classes": ["no", "yes"], "temperature": 1.5})
    files.write_json(files.predictions, {"items": [0, 1], "labels": [0, 1], "probs": [[0.9, 0.1], [0.2, 0.8]],
                                         "logits": [[1.0, -1.0], [-0.5, 0.5]]})
    files.write_json(files.test_predictions, {"items": [2, 3, 4], "labels": [1, 1, 0],
                                              "probs": [[0.6, 0.4], [0.3, 0.7], [0.4, 0.6]]})
    val, test = run_report(files), run_report(files, "test")
    assert (val["items"], val["accuracy"], val["temperature"]) == ([0, 1], 1.0, 1.5)
    assert val["logits"].tolist() == [[1.0, -1.0], [-0.5, 0.5]]
    assert (test["items"], test["confusion"], test["logits"]) == ([2, 3, 4], [[0, 1], [1, 1]], None)
    assert test["accuracy"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="part"):
        run_report(files, "train")
