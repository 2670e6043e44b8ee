"""Forecasting: the next H values of a series from its last L, scored by MAE, RMSE, MASE and sMAPE in the
series' own units, with a split-conformal prediction interval.

The network learns the series standardised by its training part's mean and standard deviation (the
modality's fitted `inputs`: never the validation part's), with the Huber loss (delta 1 standard deviation),
and answers all H steps at once (direct multi-step). Its outputs go back to the series' units before any
figure. The best epoch has the lowest validation loss.

The interval: the validation windows' absolute residuals per horizon step give each step's half-width at
the 90% level (split-conformal, Lei et al., "Distribution-free predictive inference for regression", JASA
2018), pooled over the steps when the windows are too few for one per step. Its coverage is measured
honestly by cross-fitting: half-widths from one half of the validation windows are checked on the other
half and the two coverages averaged, since on the windows that set them the coverage would be right by
construction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from core.tasks import TASKS, Metric
from core.tasks.regression import Huber

if TYPE_CHECKING:
    import torch
    from torch import nn

    from core.config import TrainConfig

LEVEL = 0.9  # the prediction interval's nominal coverage


class Forecast:
    name = "forecast"
    title = "Forecasting"
    metrics_shown = (Metric("mae", "MAE", higher_is_better=False), Metric("mase", "MASE", higher_is_better=False),
                     Metric("rmse", "RMSE", higher_is_better=False), Metric("smape", "sMAPE", higher_is_better=False),
                     Metric("loss", "loss", higher_is_better=False))
    trivial_baseline = "naive"
    answers_key = "predictions"

    def state(self, info: dict[str, Any], train_targets: np.ndarray,
              inputs: dict[str, Any] | None = None) -> dict[str, Any]:
        """The series' training-part mean and spread (`inputs`, fitted by the modality before the first
        validation window), the in-sample seasonal-naive MAE that scales MASE, the season and the horizon."""
        fitted = inputs or {}
        values = np.asarray(train_targets, dtype=float)
        mean = float(fitted.get("mean", values.mean()))
        spread = float(fitted.get("std", values.std()))
        return {"target": info.get("target"), "mean": mean, "std": spread if spread > 0 else 1.0,
                "mase_scale": float(fitted.get("mase_scale", 0.0)), "season": int(info.get("season", 1)),
                "horizon": int(info["horizon"])}

    def outputs(self, state: dict[str, Any]) -> int:
        return int(state["horizon"])

    def loss(self, config: TrainConfig, state: dict[str, Any], train_targets: np.ndarray,
             device: torch.device) -> nn.Module:
        from torch import nn

        return Huber(nn.HuberLoss(delta=1.0))

    def model_targets(self, targets: torch.Tensor, state: dict[str, Any]) -> torch.Tensor:
        return (targets.float() - state["mean"]) / state["std"]

    def answers(self, logits: torch.Tensor, state: dict[str, Any]) -> np.ndarray:
        return logits.float().reshape(len(logits), -1).cpu().numpy() * state["std"] + state["mean"]

    def metrics(self, targets: np.ndarray, answers: np.ndarray, state: dict[str, Any]) -> dict[str, float]:
        from core import evaluation  # scikit-learn, loaded when a run is scored

        return evaluation.forecast_summary(np.asarray(targets).reshape(len(answers), -1), answers,
                                           state.get("mase_scale", 0.0))

    def score(self, metrics: dict[str, float]) -> tuple[float, ...]:
        return (-metrics["val_loss"],)

    def calibration_metrics(self, targets: np.ndarray, logits: np.ndarray, state: dict[str, Any]) -> dict[str, float]:
        return {}

    def calibration(self, targets: np.ndarray, answers: np.ndarray, state: dict[str, Any],
                    logits: np.ndarray | None = None) -> dict[str, Any]:
        """{"interval_level", "interval_halfwidth": [H] in the series' units, "interval_method", and
        "interval_coverage": the cross-fitted share of validation values inside their interval (None when the
        windows are too few to hold any out)}.

        One half-width per step ahead needs at least 9 validation windows at 90% (`conformal_interval`); with
        fewer, the residuals of every step are pooled into one half-width for all steps (exchangeable across
        steps is a stronger assumption, said in `interval_method`), rather than an infinite interval."""
        from core import evaluation

        truth = np.asarray(targets, dtype=float).reshape(len(answers), -1)
        residuals = truth - answers

        def halfwidth(rows: np.ndarray) -> tuple[np.ndarray, str]:
            per_step = evaluation.conformal_interval(residuals[rows], LEVEL)
            if np.isfinite(per_step).all():
                return per_step, "per step ahead"
            pooled = evaluation.conformal_interval(residuals[rows].reshape(-1, 1), LEVEL)[0]
            return np.full(residuals.shape[1], pooled), "pooled over the steps ahead (too few validation windows " \
                                                        "for one per step)"

        widths, method = halfwidth(np.arange(len(residuals)))
        coverage = None
        if len(residuals) >= 2:
            half = len(residuals) // 2
            first, second = np.arange(half), np.arange(half, len(residuals))
            held_out = [(halfwidth(a)[0], b) for a, b in ((first, second), (second, first))]
            if all(np.isfinite(w).all() for w, _ in held_out):
                coverage = float(np.mean([evaluation.interval_coverage(truth[b], answers[b], w)
                                          for w, b in held_out]))
        finite = np.isfinite(widths).all()
        return {"interval_level": LEVEL, "interval_method": method if finite else "none (too few validation values)",
                "interval_halfwidth": np.round(widths, 6).tolist() if finite else None,
                "interval_coverage": coverage}

    def step_score(self, logits: torch.Tensor, targets: torch.Tensor) -> float | None:
        return None


TASKS.register("forecast")(Forecast())
