"""The mean baseline for regression: always answer the training split's mean target. Its R² on the
validation rows is about 0 (exactly 0 when the two splits share a mean), the figure a model that learned
nothing reaches; its RMSE is about the targets' standard deviation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from core.baselines import Context

NAME = "mean"
TITLE = "always the training mean"


def training_mean(train_targets: Sequence[float]) -> float:
    """The mean of the training split's targets; raises ValueError when there are none."""
    values = np.asarray(train_targets, dtype=np.float64)
    if not len(values):
        raise ValueError("no training targets to average")
    return float(values.mean())


def predict(context: Context) -> np.ndarray:
    """Predictions [n_val]: all the training split's mean target."""
    return np.full(len(context.split.val), training_mean(context.targets[context.split.train]))
