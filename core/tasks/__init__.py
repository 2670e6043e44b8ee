"""Tasks: what a run predicts and how it is scored, one registered module each.

A task (classification, regression; forecasting next) owns everything that depends on the kind of target
rather than on the kind of input: the head's output size, the loss, the metrics logged every epoch and the
score that picks the best epoch, the state a run keeps to read its outputs back (the class names, or the
target's mean and spread), the predictions file's schema and what the pages call its headline figure. The
training loop, evaluation, prediction and the pages go through `task(name)` and never branch on its name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from core.errors import GlassboxError
from core.registry import Registry

if TYPE_CHECKING:  # torch stays out of light imports (pages listing runs, the CLI's parser)
    import torch
    from torch import nn

    from core.config import TrainConfig

__all__ = ["TASKS", "Metric", "Task", "names", "task"]


@dataclass(frozen=True)
class Metric:
    """A figure a task reports: its key in a run's metrics (without the `val_`/`test_` part), its title for
    people, whether higher is better and whether it reads as a percentage."""

    key: str
    title: str
    higher_is_better: bool = True
    percent: bool = False


class Task(Protocol):
    name: str  # registry key and the CLI's --task value: "classification"
    title: str
    # the figures a run on this task reports, the headline first (what Runs lists and compare overlays)
    metrics_shown: tuple[Metric, ...]
    # the trivial baseline every run of this task is scored against (`core.baselines`): "majority", "mean", "naive"
    trivial_baseline: str
    # the predictions file's key for its answers: "probs" (class probabilities) or "predictions" (values)
    answers_key: str

    def state(self, info: dict[str, Any], train_targets: np.ndarray,
              inputs: dict[str, Any] | None) -> dict[str, Any]:
        """What a run keeps to turn its model's outputs into answers (JSON): the class names, or the
        training targets' mean and standard deviation (from the modality's fitted `inputs` when it fitted
        them, e.g. a series' training part). Written to the run's `target.json`."""

    def calibration(self, targets: np.ndarray, answers: np.ndarray, state: dict[str, Any],
                    logits: np.ndarray) -> dict[str, Any]:
        """What the validation answers say about trusting new ones, fitted once after training on the best
        model's validation answers and raw outputs `logits` (a classifier's temperature, a forecast's prediction
        interval and its coverage); {} when the task has none. Added to the run's metrics and to its
        `target.json` state, which `answers` and prediction read."""

    def calibration_metrics(self, targets: np.ndarray, logits: np.ndarray, state: dict[str, Any]) -> dict[str, float]:
        """How well the answers' confidence matches their accuracy on one part (validation, test), from the raw
        outputs `logits` and the calibrated `state`: a classifier's `ece` and `ece_uncalibrated`; {} for tasks
        whose answers carry no probability."""

    def outputs(self, state: dict[str, Any]) -> int:
        """The head's output size: the number of classes, or 1."""

    def loss(self, config: TrainConfig, state: dict[str, Any], train_targets: np.ndarray,
             device: torch.device) -> nn.Module:
        """The training loss, called as loss(logits, targets) with logits [B, outputs] or, for a model
        that trains an ensemble of k members, [B, k, outputs] (each member gets its own loss, averaged)."""

    def model_targets(self, targets: torch.Tensor, state: dict[str, Any]) -> torch.Tensor:
        """Targets as the loss takes them (class indices; standardised values for regression)."""

    def answers(self, logits: torch.Tensor, state: dict[str, Any]) -> np.ndarray:
        """Model outputs as answers: class probabilities [n, classes], or predictions in the target's
        own units [n]."""

    def metrics(self, targets: np.ndarray, answers: np.ndarray, state: dict[str, Any]) -> dict[str, float]:
        """The figures logged every epoch (`metrics_shown`'s keys and more)."""

    def score(self, metrics: dict[str, float]) -> tuple[float, ...]:
        """Larger is better: compares epochs to keep the best one (validation metrics, `val_` keys)."""

    def step_score(self, logits: torch.Tensor, targets: torch.Tensor) -> float | None:
        """The per-step training figure beside the loss (accuracy), or None when there is none."""


TASKS: Registry[Task] = Registry("task")


def task(name: str) -> Task:
    _load_tasks()
    return TASKS.get(name)


def names() -> list[str]:
    _load_tasks()
    return TASKS.names()


def predictions(task: Task, indices: Sequence[int], targets: np.ndarray, answers: np.ndarray,
                logits: np.ndarray | None = None) -> dict[str, Any]:
    """The predictions file's schema, the same for every task: `items` (indices into the dataset's items),
    `labels` (true targets: class indices, values or a forecast's next values) and the answers under the task's
    `answers_key` (`probs`: class probabilities, calibrated once the run has fitted its temperature;
    `predictions`: values), rounded to 6 digits, and `task`; a classifier's raw outputs as `logits` [n, C]."""
    found = {"task": task.name, "items": list(indices), "labels": np.asarray(targets).tolist(),
             task.answers_key: np.round(answers, 6).tolist()}
    if logits is not None and task.answers_key == "probs":
        found["logits"] = np.round(np.asarray(logits, dtype=np.float64), 6).tolist()
    return found


def answers_of(predictions_file: dict[str, Any]) -> np.ndarray:
    """The answers a predictions file holds (`predictions`): probabilities [n, classes] or values [n]."""
    key = "probs" if "probs" in predictions_file else "predictions"
    return np.asarray(predictions_file[key], dtype=float)  # [n, classes], [n] or a forecast's [n, horizon]


def of_run(config: dict[str, Any] | TrainConfig) -> Task:
    """The task of a run's config (runs made before tasks existed are classification)."""
    name = config.get("task", "classification") if isinstance(config, dict) else config.task
    if name not in names():
        raise GlassboxError(f"unknown task {name!r} (known: {', '.join(names())})")
    return task(name)


def _load_tasks() -> None:
    from core.tasks import classification, regression, forecast  # noqa: F401, I001  (the order they are offered in)


def summary_line(task: Task, metrics: dict[str, Any], part: str = "val") -> str:
    """The headline figures of `metrics` in words: "val accuracy 0.912, val macro F1 0.874"."""
    shown = [f"{part} {m.title} {metrics[f'{part}_{m.key}']:.3f}" for m in task.metrics_shown[:2]
             if isinstance(metrics.get(f"{part}_{m.key}"), (int, float))]
    return ", ".join(shown)
