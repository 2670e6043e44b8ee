"""The seasonal naive forecast: each step ahead is the value one season before it, the last season seen
repeated (Hyndman and Athanasopoulos, "Forecasting: Principles and Practice", 3rd ed., sec. 5.2). On a series
with a strong daily or weekly cycle it is hard to beat, and it is the yardstick of MASE (below 1: better than it
was in sample)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from core.baselines import naive, series

if TYPE_CHECKING:
    from core.baselines import Context

NAME = "seasonal_naive"
TITLE = "the last season repeated"


def forecast(target: np.ndarray, origins: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Forecasts [n, horizon]: the forecast from origin o for step o + h (h = 0 .. horizon - 1) is
    target[o - season + (h mod season)], the value one season before, or whole seasons before when the horizon
    is longer than a season. With `season` 1 (no season), or for an origin with less than one season before it,
    the naive forecast (the last value repeated). `target` float [T], `origins` int [n]."""
    values = np.asarray(target, dtype=np.float64)
    steps = np.asarray(origins, dtype=int)
    answers = naive.forecast(values, steps, horizon)
    if season <= 1:
        return answers
    whole = steps >= season
    lags = np.arange(horizon) % season - season
    answers[whole] = values[steps[whole][:, None] + lags[None, :]]
    return answers


def predict(context: Context) -> np.ndarray:
    """The validation origins' forecasts [n_val, H], with the run's season, or, when the dataset found a second
    one (`info["seasons"]`: a week beside a day), whichever made the smaller error one step ahead on the
    training part (the steps before the first validation origin): what a careful forecaster would pick. Raises
    ValueError when the run is not a forecast."""
    found = series.history(context)
    return forecast(found.target, found.origins, found.horizon, best_season(found, context.info))


def best_season(found: series.History, info: dict) -> int:
    """The season (of the run's and `info["seasons"]`) whose value one season back is closest to the value, on
    average over the training part; the run's own on a tie or when no other fits twice in that part."""
    past = found.target[: found.train_end]
    candidates = [found.season] + [int(m) for m in info.get("seasons", []) if int(m) > 1 and 2 * int(m) <= len(past)]
    errors = {m: float(np.mean(np.abs(past[m:] - past[:-m]))) if 1 < m < len(past) else np.inf for m in candidates}
    return min(candidates, key=lambda m: (errors[m], candidates.index(m)))
