"""Tasks (`core.tasks`): what a run predicts decides its head, loss, metrics, best epoch and answers; and the
blend of the network with the strongest classical baseline is offered only when it beats both."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from core import baselines, tasks
from core.config import TrainConfig
from core.data import Split
from core.errors import GlassboxError

CLASSIFICATION = tasks.task("classification")
REGRESSION = tasks.task("regression")


def test_an_epoch_that_ties_on_accuracy_wins_only_with_a_lower_loss() -> None:
    best = {"val_accuracy": 0.8, "val_loss": 0.50}
    assert CLASSIFICATION.score({"val_accuracy": 0.8, "val_loss": 0.40}) > CLASSIFICATION.score(best)
    assert not CLASSIFICATION.score({"val_accuracy": 0.8, "val_loss": 0.90}) > CLASSIFICATION.score(best)
    assert CLASSIFICATION.score({"val_accuracy": 0.81, "val_loss": 2.0}) > CLASSIFICATION.score(best)
    assert REGRESSION.score({"val_loss": 0.2}) > REGRESSION.score({"val_loss": 0.3})


def test_regression_learns_standardised_targets_and_answers_in_their_units() -> None:
    state = REGRESSION.state({"target": "price"}, np.array([100.0, 200.0, 300.0]))
    assert state == {"target": "price", "mean": 200.0, "std": pytest.approx(np.std([100, 200, 300]))}
    assert REGRESSION.outputs(state) == 1
    scaled = REGRESSION.model_targets(torch.tensor([100.0, 200.0]), state)
    assert scaled.tolist() == pytest.approx([-1.224745, 0.0], abs=1e-5)
    answers = REGRESSION.answers(torch.tensor([[-1.224745], [1.0]]), state)
    assert answers.tolist() == pytest.approx([100.0, 200.0 + state["std"]], abs=1e-3)
    metrics = REGRESSION.metrics(np.array([100.0, 300.0]), np.array([110.0, 290.0]), state)
    assert (metrics["mae"], metrics["rmse"]) == pytest.approx((10.0, 10.0))
    assert metrics["r2"] == pytest.approx(1 - 200 / 20000)


def test_an_ensembles_loss_is_the_mean_of_its_members_losses() -> None:
    config = TrainConfig(dataset_id="d", label_smoothing=0.0)
    loss = CLASSIFICATION.loss(config, {"classes": ["a", "b"]}, np.array([0, 1]), torch.device("cpu"))
    members = torch.tensor([[[2.0, 0.0], [0.0, 1.0]], [[0.5, 0.5], [1.0, -1.0]]])  # [B=2, k=2, C=2]
    targets = torch.tensor([0, 1])
    each = [torch.nn.functional.cross_entropy(members[:, m], targets) for m in range(2)]
    assert loss(members, targets).item() == pytest.approx(float(sum(each) / 2))
    # each member's answer counts: item 0 (a) gets a, b; item 1 (b) gets a, a (a tie goes to the first class)
    assert CLASSIFICATION.step_score(members, targets) == 0.25


def test_binary_classification_reports_roc_and_pr_auc() -> None:
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]])
    metrics = CLASSIFICATION.metrics(np.array([0, 1, 0, 1]), probs, {"classes": ["no", "yes"]})
    assert metrics["roc_auc"] == 0.75  # 3 of the 4 (positive, negative) pairs ranked right
    assert metrics["accuracy"] == 0.5


def test_an_unknown_task_is_refused_in_one_line() -> None:
    with pytest.raises(GlassboxError, match="^task must be one of classification, regression, forecast$"):
        TrainConfig(dataset_id="d", task="ranking").validate()


def _found(val_targets: np.ndarray, baseline_answers: np.ndarray) -> baselines.Found:
    metrics = REGRESSION.metrics(val_targets, baseline_answers, {})
    return baselines.Found({"baselines": {"mean": {"r2": 0.0}, "lightgbm": metrics},
                            "baseline_metrics": {"baseline": "lightgbm", **metrics}},
                           {"mean": np.full(len(val_targets), val_targets.mean()), "lightgbm": baseline_answers})


def test_the_blend_is_offered_only_when_it_beats_both() -> None:
    truth = np.array([1.0, 2.0, 3.0, 4.0])
    network = truth + np.array([0.5, -0.5, 0.5, -0.5])  # errors that the baseline's cancel
    lightgbm = truth - np.array([0.5, -0.5, 0.5, -0.5])
    found = baselines.with_blend(REGRESSION, _found(truth, lightgbm), truth, network, {})
    assert found.metrics["baselines"]["blend"]["r2"] == 1.0
    assert found.metrics["baselines"]["blend"]["with"] == "lightgbm"
    assert baselines.title("blend", found.metrics["baselines"]["blend"]) == (
        "average of this model and gradient boosting (LightGBM)")

    same = baselines.with_blend(REGRESSION, _found(truth, network), truth, network, {})
    assert "blend" not in same.metrics["baselines"]


def test_mean_baseline_answers_the_training_mean(tmp_path: Path) -> None:
    modality = SimpleNamespace(baselines=())
    targets = np.array([1.0, 3.0, 100.0, 200.0])
    context = baselines.Context(modality, tmp_path, {}, Split(train=[0, 1], val=[2, 3]), targets, {})
    found = baselines.compute(modality, REGRESSION, context)
    assert found.answers["mean"].tolist() == [2.0, 2.0]
    assert found.metrics["baseline_metrics"]["baseline"] == "mean"
    assert found.metrics["baselines"]["mean"]["mae"] == pytest.approx(148.0)


def test_a_forecasts_interval_is_per_step_with_enough_windows_and_pooled_with_few() -> None:
    forecast = tasks.task("forecast")
    rng = np.random.default_rng(0)
    truth = rng.normal(0, 1, (20, 2))
    # step 1's residuals are ten times step 0's: 20 windows give each step its own half-width
    answers = truth - np.stack([np.arange(1, 21) / 10, np.arange(1, 21)], axis=1)
    found = forecast.calibration(truth, answers, {})
    assert found["interval_method"] == "per step ahead"
    assert found["interval_halfwidth"] == pytest.approx([1.9, 19.0])  # the ceil(21 * 0.9) = 19th of 20
    # cross-fitted: widths from windows 0-9 (at most 1.0, 10) miss every window of 10-19, and the reverse
    # widths (2.0, 20) cover all of 0-9: half the values inside
    assert found["interval_coverage"] == 0.5

    # 5 windows of 4 steps: too few for one half-width per step, enough (20 values) pooled
    residuals = np.arange(1, 21, dtype=float).reshape(5, 4)
    few = forecast.calibration(np.zeros((5, 4)), -residuals, {})
    assert few["interval_method"].startswith("pooled")
    assert few["interval_halfwidth"] == [19.0] * 4  # the ceil(21 * 0.9) = 19th of the 20 pooled
    # 2 windows of 2 steps: no finite interval at 90%, said rather than drawn
    none = forecast.calibration(np.zeros((2, 2)), np.ones((2, 2)), {})
    assert none["interval_halfwidth"] is None and none["interval_method"].startswith("none")
