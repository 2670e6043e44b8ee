"""Regression: one number per item, scored by R², MAE and RMSE in the target's own units.

The network learns the standardised target (training mean 0, standard deviation 1: the step sizes that
suit one target suit all), with the Huber loss (delta 1 standard deviation: squared error for ordinary
misses, absolute error for outliers, so a few wild targets do not steer the fit). Its outputs are turned
back into the target's units before any figure is computed. The best epoch has the lowest validation loss.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from core.tasks import TASKS, Metric

if TYPE_CHECKING:
    import torch
    from torch import nn

    from core.config import TrainConfig


class Regression:
    name = "regression"
    title = "Regression"
    metrics_shown = (Metric("r2", "R²"), Metric("mae", "MAE", higher_is_better=False),
                     Metric("rmse", "RMSE", higher_is_better=False), Metric("loss", "loss", higher_is_better=False))
    answers_key = "predictions"
    trivial_baseline = "mean"

    def state(self, info: dict[str, Any], train_targets: np.ndarray,
              inputs: dict[str, Any] | None = None) -> dict[str, Any]:
        values = np.asarray(train_targets, dtype=float)
        spread = float(values.std()) if len(values) > 1 else 0.0
        return {"target": info.get("target"), "mean": float(values.mean()), "std": spread if spread > 0 else 1.0}

    def outputs(self, state: dict[str, Any]) -> int:
        return 1

    def loss(self, config: TrainConfig, state: dict[str, Any], train_targets: np.ndarray,
             device: torch.device) -> nn.Module:
        from torch import nn

        return Huber(nn.HuberLoss(delta=1.0))

    def model_targets(self, targets: torch.Tensor, state: dict[str, Any]) -> torch.Tensor:
        return (targets.float() - state["mean"]) / state["std"]

    def answers(self, logits: torch.Tensor, state: dict[str, Any]) -> np.ndarray:
        return logits.float().reshape(len(logits)).cpu().numpy() * state["std"] + state["mean"]

    def metrics(self, targets: np.ndarray, answers: np.ndarray, state: dict[str, Any]) -> dict[str, float]:
        from core import evaluation  # scikit-learn, loaded when a run is scored

        return evaluation.regression_summary(targets, answers)

    def score(self, metrics: dict[str, float]) -> tuple[float, ...]:
        return (-metrics["val_loss"],)

    def calibration(self, targets: np.ndarray, answers: np.ndarray, state: dict[str, Any],
                    logits: np.ndarray | None = None) -> dict[str, Any]:
        return {}

    def calibration_metrics(self, targets: np.ndarray, logits: np.ndarray, state: dict[str, Any]) -> dict[str, float]:
        return {}

    def step_score(self, logits: torch.Tensor, targets: torch.Tensor) -> float | None:
        return None


class Huber:
    """Huber loss on outputs against standardised targets: one value per item (outputs [B, 1], targets [B]),
    an ensemble's members ([B, k, 1]), or a forecast's horizon (outputs and targets [B, H])."""

    def __init__(self, loss: nn.Module) -> None:
        self.inner = loss

    def __call__(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if targets.ndim == 2:  # a forecast: one output per horizon step
            return self.inner(outputs.reshape(targets.shape), targets)
        outputs = outputs.squeeze(-1)
        if outputs.ndim == 2:
            targets = targets[:, None].expand_as(outputs)
        return self.inner(outputs, targets)


TASKS.register("regression")(Regression())
