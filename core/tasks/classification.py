"""Classification: one class per item, scored by accuracy, balanced accuracy and macro F1 (and for two
classes ROC-AUC and PR-AUC, which imbalance does not flatter).

The best epoch is the one with the highest validation accuracy, the lowest validation loss breaking ties:
an under-trained epoch that ties on accuracy is not kept with wilder probabilities.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from core.tasks import TASKS, Metric

if TYPE_CHECKING:
    import torch
    from torch import nn

    from core.config import TrainConfig


class Classification:
    name = "classification"
    title = "Classification"
    metrics_shown = (Metric("accuracy", "accuracy", percent=True), Metric("macro_f1", "macro F1", percent=True),
                     Metric("loss", "loss", higher_is_better=False))
    answers_key = "probs"
    trivial_baseline = "majority"

    def state(self, info: dict[str, Any], train_targets: np.ndarray,
              inputs: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"classes": list(info["classes"])}

    def outputs(self, state: dict[str, Any]) -> int:
        return len(state["classes"])

    def loss(self, config: TrainConfig, state: dict[str, Any], train_targets: np.ndarray,
             device: torch.device) -> nn.Module:
        from torch import nn

        from core.training.class_weights import class_weights

        weight = class_weights(config.class_weights, train_targets, len(state["classes"]), device)
        return _MemberMean(nn.CrossEntropyLoss(weight=weight, label_smoothing=config.label_smoothing))

    def model_targets(self, targets: torch.Tensor, state: dict[str, Any]) -> torch.Tensor:
        return targets.long()

    def answers(self, logits: torch.Tensor, state: dict[str, Any]) -> np.ndarray:
        """Probabilities softmax(logits / T), T the run's fitted temperature (`calibration`; 1 before it is fitted
        and for runs made before calibration existed)."""
        return (logits.float() / float(state.get("temperature", 1.0))).softmax(-1).cpu().numpy()

    def metrics(self, targets: np.ndarray, answers: np.ndarray, state: dict[str, Any]) -> dict[str, float]:
        from core import evaluation  # scikit-learn, loaded when a run is scored

        found = evaluation.summary(targets.tolist(), answers.argmax(1).tolist(), len(state["classes"]))
        if len(state["classes"]) == 2:
            found.update({k: v for k, v in evaluation.binary_scores(targets, answers).items() if v is not None})
        return found

    def score(self, metrics: dict[str, float]) -> tuple[float, ...]:
        return (metrics["val_accuracy"], -metrics["val_loss"])

    def calibration(self, targets: np.ndarray, answers: np.ndarray, state: dict[str, Any],
                    logits: np.ndarray) -> dict[str, Any]:
        """{"temperature": T}: temperature scaling fitted on the validation logits (`core.calibration`, Guo et al.,
        2017), which every shown probability then uses; predictions are unchanged (argmax is)."""
        from core.calibration import fit_temperature

        return {"temperature": round(fit_temperature(logits, targets), 6)}

    def calibration_metrics(self, targets: np.ndarray, logits: np.ndarray, state: dict[str, Any]) -> dict[str, float]:
        """{"ece": of softmax(logits / T), "ece_uncalibrated": of softmax(logits)} (`core.calibration`)."""
        from core.calibration import expected_calibration_error, softmax

        labels = np.asarray(targets, dtype=int)
        return {"ece": expected_calibration_error(softmax(logits, float(state.get("temperature", 1.0))), labels),
                "ece_uncalibrated": expected_calibration_error(softmax(logits), labels)}

    def step_score(self, logits: torch.Tensor, targets: torch.Tensor) -> float | None:
        predicted = logits.argmax(-1)
        if predicted.ndim == 2:  # ensemble members [B, k]: each member's answer counts
            targets = targets[:, None].expand_as(predicted)
        return (predicted == targets).float().mean().item()


class _MemberMean:
    """A loss over logits [B, C] or an ensemble's [B, k, C]: each member is scored against the same
    targets and the losses averaged, as TabM trains its members (Gorishniy et al., 2024)."""

    def __init__(self, loss: nn.Module) -> None:
        self.inner = loss

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if logits.ndim == 3:
            k = logits.shape[1]
            return self.inner(logits.reshape(-1, logits.shape[-1]), targets.repeat_interleave(k))
        return self.inner(logits, targets)


TASKS.register("classification")(Classification())
