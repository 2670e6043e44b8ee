"""The exponential-smoothing baseline: Holt-Winters additive models (statsmodels' `ExponentialSmoothing`)
fitted once on the training part of the series, then forecasting every validation origin from the data up to
it with those parameters (Hyndman and Athanasopoulos, "Forecasting: Principles and Practice", 3rd ed.,
sec. 8.3, damped additive Holt-Winters).

Two models are weighed: additive damped trend with additive season, and additive season alone (level only);
the season is dropped when it is 1 or the fitted part holds under two seasons. The choice is made on the end of
the training part: both are fitted on the steps before its last fifth (at least one horizon) and the one whose
H-step forecasts from origins spaced H apart over that fifth have the lower MAE is refitted on the whole
training part (a tie keeps the damped trend). Information criteria cannot make this choice: they score one-step
errors, and on half-hourly electricity demand (sample_data/electricity_demand.csv, season 48) AICc prefers the
damped trend, whose smoothing weights near 1 extrapolate the last half-hour's slope, although its day-ahead
MAE is 63% above seasonal naive's (3,234 MW against 1,981 MW) while the level-only model's is 3% below
(1,929 MW).

Parameters are never refitted per origin: statsmodels' Holt-Winters results cannot be extended with new data,
so the model's recursion is run once, with the fitted smoothing weights and initial states, over the series up
to the last origin (`initialization_method="known"`, `optimized=False`), and each origin's forecast is made
from the states at the step before it by the model's forecast equation (Hyndman and Athanasopoulos, sec. 8.3).
It equals statsmodels' own `forecast` except at whole seasons ahead, where statsmodels 0.15.0 reads the
seasonal state of one season too early (statsmodels issue #9538, fixed upstream by pull request #10230). The
recursion reads each step only after the states before it are set, so the forecast from an origin never sees a
value at or after it. Fitting reads at most the last `FIT_STEPS` training steps (older ones change little in a
model that discounts them), which keeps a run's ETS within seconds: about 1.5 s on 4,032 half-hourly points.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.baselines import seasonal_naive, series

if TYPE_CHECKING:
    from core.baselines import Context

NAME = "ets"
TITLE = "exponential smoothing (ETS)"

FIT_STEPS = 5000
# the share of the training part that the trend choice is checked on
CHOICE_SHARE = 0.2
# fewer steps than this before the choice's cut and the damped trend is kept unchecked
MIN_CHOICE_STEPS = 20


@dataclass(frozen=True)
class Smoothing:
    """A fitted model: `trend` (damped additive trend or none), `season` (steps; 1 for none), the smoothing
    weights `alpha` (level), `beta` (trend), `gamma` (season), the damping `phi`, and the initial states
    `level`, `slope` and `seasons` [season] (0 and empty when the model has no trend or season), all as
    statsmodels fitted them on the steps from `start`."""

    trend: bool
    season: int
    alpha: float
    beta: float
    gamma: float
    phi: float
    level: float
    slope: float
    seasons: np.ndarray
    start: int = 0


def predict(context: Context) -> np.ndarray:
    """The validation origins' forecasts [n_val, H], with the season the seasonal-naive baseline picks (a week
    beside a day when the series repeats weekly: `seasonal_naive.best_season`). Raises ValueError when the run is
    not a forecast or its training part is too short to fit."""
    found = series.history(context)
    season = seasonal_naive.best_season(found, context.info)
    return forecast(found.target, found.origins, found.train_end, season, found.horizon)


def forecast(target: np.ndarray, origins: np.ndarray, train_end: int, season: int, horizon: int) -> np.ndarray:
    """Forecasts [n, horizon] from each of `origins` (int [n], steps after the fitted part's start, normally
    the validation origins, at or after `train_end`) by the model chosen and fitted on target[:train_end]
    (`choose`). `target` float [T]. Raises ValueError when the training part is too short to fit."""
    values = np.asarray(target, dtype=np.float64)
    model = choose(values[:train_end], season, horizon)
    return forecasts(model, values, origins, horizon)


def choose(train: np.ndarray, season: int, horizon: int) -> Smoothing:
    """The model of the two (damped trend and season, season alone) whose H-step forecasts are better on the
    last `CHOICE_SHARE` of `train` when fitted on the steps before it, refitted on the whole of `train` (its last
    `FIT_STEPS` steps). Raises ValueError when `train` is too short to fit (under 10 steps)."""
    values = np.asarray(train, dtype=np.float64)
    start = max(0, len(values) - FIT_STEPS)
    held = max(horizon, int(round(CHOICE_SHARE * (len(values) - start))) // horizon * horizon)
    cut = len(values) - held
    trends = (True, False)
    # the check is only fair when the shorter fit keeps the season the whole one has
    if cut - start >= MIN_CHOICE_STEPS and _seasonal(season, cut - start) == _seasonal(season, len(values) - start):
        checked = [fit(values[start:cut], season, trend) for trend in trends]
        points = np.arange(cut, len(values) - horizon + 1, horizon)
        truth = values[points[:, None] + np.arange(horizon)]
        errors = [np.abs(forecasts(_from(model, start), values, points, horizon) - truth).mean()
                  for model in checked]
        trends = (trends[int(np.argmin(errors))],)
    return _from(fit(values[start:], season, trends[0]), start)


def fit(train: np.ndarray, season: int, trend: bool) -> Smoothing:
    """statsmodels' Holt-Winters `ExponentialSmoothing` (additive; damped additive trend when `trend`; additive
    season of `season` steps when it is above 1 and `train` holds two seasons) fitted on `train` (float [n]) by
    least squares, initial states estimated with the weights. Raises ValueError when `train` has under 10 values
    or statsmodels cannot fit it."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    values = np.asarray(train, dtype=np.float64)
    if len(values) < 10 or not np.isfinite(values).all():
        raise ValueError("exponential smoothing needs at least 10 finite training values")
    period = _seasonal(season, len(values))
    with warnings.catch_warnings():
        # convergence notes and statsmodels' own warnings say nothing a user can act on: the fit is scored anyway
        warnings.simplefilter("ignore")
        try:
            fitted = ExponentialSmoothing(values, trend="add" if trend else None, damped_trend=trend,
                                          seasonal="add" if period > 1 else None,
                                          seasonal_periods=period if period > 1 else None,
                                          initialization_method="estimated").fit()
        except (np.linalg.LinAlgError, ArithmeticError) as exc:
            raise ValueError(f"exponential smoothing could not fit: {exc}") from None
    params = fitted.params
    return Smoothing(trend, period, _number(params["smoothing_level"]), _number(params["smoothing_trend"]),
                     _number(params["smoothing_seasonal"]), _number(params["damping_trend"], 1.0),
                     _number(params["initial_level"]), _number(params["initial_trend"]),
                     np.asarray(params["initial_seasons"], dtype=np.float64) if period > 1 else np.zeros(0))


def forecasts(model: Smoothing, target: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """Forecasts [n, horizon] of `model` from each origin o (int [n], model.start < o <= len(target)): the states
    after step o - 1, from one run of statsmodels' recursion with the model's fixed weights over
    target[model.start : max(origins)], put into the forecast equation
    y(o - 1 + h) = level + (phi + ... + phi^h) slope + season(o - 1 + h - m (k + 1)), k = (h - 1) // m, h >= 1."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    steps = np.asarray(origins, dtype=int)
    if not len(steps):
        return np.zeros((0, horizon))
    if steps.min() <= model.start:
        raise ValueError("an origin lies before the fitted part of the series")
    seen = np.asarray(target, dtype=np.float64)[model.start:steps.max()]
    known = {"initial_level": model.level}
    weights = {"smoothing_level": model.alpha}
    if model.trend:
        known["initial_trend"] = model.slope
        weights |= {"smoothing_trend": model.beta, "damping_trend": model.phi}
    if model.season > 1:
        known["initial_seasonal"] = model.seasons
        weights["smoothing_seasonal"] = model.gamma
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = ExponentialSmoothing(seen, trend="add" if model.trend else None, damped_trend=model.trend,
                                   seasonal="add" if model.season > 1 else None,
                                   seasonal_periods=model.season if model.season > 1 else None,
                                   initialization_method="known", **known).fit(**weights, optimized=False)
    last = steps - 1 - model.start  # the step before each origin, counted within `seen`
    ahead = np.arange(1, horizon + 1)
    answers = np.asarray(run.level, dtype=np.float64)[last][:, None] + np.zeros(horizon)
    if model.trend:
        damped = np.cumsum(model.phi ** ahead)
        answers += damped[None, :] * np.asarray(run.trend, dtype=np.float64)[last][:, None]
    if model.season > 1:
        m = model.season
        # the seasonal states from the initial ones (steps -m .. -1) on, so index j + m holds step j's
        states = np.concatenate([model.seasons, np.asarray(run.season, dtype=np.float64)])
        answers += states[last[:, None] + ahead[None, :] - m * ((ahead[None, :] - 1) // m + 1) + m]
    return answers


def _seasonal(season: int, steps: int) -> int:
    """The season used: `season` when above 1 and `steps` hold two of them, else 1 (none)."""
    return season if season > 1 and steps >= 2 * season else 1


def _from(model: Smoothing, start: int) -> Smoothing:
    return Smoothing(model.trend, model.season, model.alpha, model.beta, model.gamma, model.phi, model.level,
                     model.slope, model.seasons, start)


def _number(value: float | None, missing: float = 0.0) -> float:
    """A fitted parameter as a float; statsmodels gives NaN or None for one the model lacks."""
    if value is None:
        return missing
    number = float(value)
    return missing if np.isnan(number) else number
