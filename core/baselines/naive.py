"""The naive forecast: every step ahead is the last value seen before the origin (a random walk's best
forecast; Hyndman and Athanasopoulos, "Forecasting: Principles and Practice", 3rd ed., sec. 5.2). The
forecasting task's trivial baseline: a model that cannot beat it has learned nothing about the series."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from core.baselines import series

if TYPE_CHECKING:
    from core.baselines import Context

NAME = "naive"
TITLE = "the last value repeated"


def forecast(target: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """Forecasts [n, horizon]: row i is target[origins[i] - 1] repeated. `target` float [T], `origins` int
    [n], each at least 1. Raises ValueError for an origin with no value before it."""
    steps = np.asarray(origins, dtype=int)
    if len(steps) and steps.min() < 1:
        raise ValueError("an origin has no value before it to repeat")
    return np.repeat(np.asarray(target, dtype=np.float64)[steps - 1][:, None], horizon, axis=1)


def predict(context: Context) -> np.ndarray:
    """The validation origins' forecasts [n_val, H]. Raises ValueError when the run is not a forecast."""
    found = series.history(context)
    return forecast(found.target, found.origins, found.horizon)
