"""The time-series baselines: naive, seasonal naive and exponential smoothing for forecasts, summary features with
extra trees for classification. Datasets are built in tmp_path as the series modality writes them (series.npz and
items.csv, issue 11's contract); expected values are worked out by hand in the comments."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from core.baselines import Context, ets, naive, seasonal_naive, series, series_features
from core.data.base import Split

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_data"
HALF_HOUR = 30 * 60 * 10**9


def _forecast_dataset(folder: Path, target: np.ndarray, context: int, horizon: int, season: int) -> dict[str, Any]:
    """series.npz and items.csv of a half-hourly series from 2000-06-05 00:00; items are the origins
    context .. T - horizon, named by their time as the modality writes them ("2000-06-05 00:30")."""
    folder.mkdir(parents=True, exist_ok=True)
    steps = len(target)
    time = pd.Timestamp("2000-06-05").value + HALF_HOUR * np.arange(steps, dtype=np.int64)
    np.savez(folder / "series.npz", time=time, target=np.asarray(target, dtype=np.float64),
             filled=np.zeros(steps, dtype=bool), covariates=np.zeros((steps, 0)))
    with open(folder / "items.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["origin", "label"])
        writer.writerows((pd.Timestamp(int(time[o])).isoformat(sep=" ")[:16], "") for o in
                         range(context, steps - horizon + 1))
    return {"task": "forecast", "target": "y", "covariates": [], "frequency": "30min", "season": season,
            "horizon": horizon, "context": context, "num_steps": steps}


def _forecast_context(folder: Path, target: np.ndarray, context: int, horizon: int, season: int,
                      val_origins: list[int]) -> Context:
    info = _forecast_dataset(folder, target, context, horizon, season)
    windows = np.lib.stride_tricks.sliding_window_view(np.asarray(target, dtype=np.float64), horizon)
    targets = windows[context: len(target) - horizon + 1]
    first = min(val_origins)
    split = Split(train=list(range(0, first - horizon - context + 1)), val=[o - context for o in val_origins])
    return Context(None, folder, info, split, targets, {"season": season, "horizon": horizon})  # type: ignore[arg-type]


def _classification_context(folder: Path, values: np.ndarray, lengths: np.ndarray, labels: np.ndarray,
                            train: list[int], val: list[int], classes: int) -> Context:
    folder.mkdir(parents=True, exist_ok=True)
    mask = np.arange(values.shape[1])[None, :] < lengths[:, None]
    np.savez(folder / "series.npz", values=values.astype(np.float32), mask=mask, lengths=lengths.astype(np.int64))
    info = {"task": "classification", "classes": [f"c{k}" for k in range(classes)]}
    return Context(None, folder, info, Split(train=train, val=val), labels.astype(np.int64),  # type: ignore[arg-type]
                   {"classes": info["classes"]})


# ---- naive and seasonal naive ----

def test_naive_repeats_the_last_value_before_each_origin() -> None:
    target = np.array([3.0, 1.0, 4.0, 1.0, 5.0])
    np.testing.assert_array_equal(naive.forecast(target, np.array([2, 4]), 3), [[1, 1, 1], [1, 1, 1]])
    np.testing.assert_array_equal(naive.forecast(target, np.array([3]), 2), [[4, 4]])


def test_seasonal_naive_repeats_the_last_season_by_hand() -> None:
    target = np.arange(10, dtype=float) * 10  # 0, 10, ..., 90
    # origin 6, season 3: steps 6, 7, 8 take steps 3, 4, 5; steps 9, 10 take 3, 4 again (whole seasons back)
    np.testing.assert_array_equal(seasonal_naive.forecast(target, np.array([6]), 5, 3), [[30, 40, 50, 30, 40]])
    # an origin with less than a season before it is forecast naively; season 1 is the naive forecast
    np.testing.assert_array_equal(seasonal_naive.forecast(target, np.array([2]), 2, 3), [[10, 10]])
    np.testing.assert_array_equal(seasonal_naive.forecast(target, np.array([6]), 2, 1), [[50, 50]])


def test_forecast_baselines_answer_the_validation_origins_of_a_dataset(tmp_path: Path) -> None:
    target = np.array([5.0, 1, 2, 3, 1, 2, 3, 1, 2, 7, 8, 9])
    # context 3, horizon 3, season 3; validation origins 6 and 9, i.e. items 3 and 6
    context = _forecast_context(tmp_path, target, 3, 3, 3, [6, 9])
    found = series.history(context)
    np.testing.assert_array_equal(found.origins, [6, 9])
    assert (found.train_end, found.season, found.horizon) == (6, 3, 3)
    np.testing.assert_array_equal(naive.predict(context), [[2, 2, 2], [2, 2, 2]])
    # origin 6 repeats steps 3-5 (3, 1, 2); origin 9 repeats steps 6-8 (3, 1, 2)
    np.testing.assert_array_equal(seasonal_naive.predict(context), [[3, 1, 2], [3, 1, 2]])


def test_origins_come_from_items_csv_and_a_stranger_is_refused(tmp_path: Path) -> None:
    _forecast_dataset(tmp_path, np.arange(12.0), 3, 3, 1)
    time = np.load(tmp_path / "series.npz")["time"]
    np.testing.assert_array_equal(series.origins(tmp_path, time), np.arange(3, 10))
    with pytest.raises(RuntimeError, match="not a step"):
        series.origins(tmp_path, time + 1)


def test_each_baseline_refuses_the_other_task(tmp_path: Path) -> None:
    values = np.zeros((4, 5, 1))
    classify = _classification_context(tmp_path / "c", values, np.full(4, 5), np.array([0, 1, 0, 1]), [0, 1],
                                       [2, 3], 2)
    for method in (naive, seasonal_naive, ets):
        with pytest.raises(ValueError, match="forecast"):
            method.predict(classify)
    forecast = _forecast_context(tmp_path / "f", np.arange(20.0), 3, 2, 1, [16, 18])
    with pytest.raises(ValueError, match="classification"):
        series_features.predict(forecast)
    table = Context(None, tmp_path, {"task": "classification"}, Split([0], [1]), np.zeros(2), {"classes": ["a"]})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a series dataset"):
        series_features.predict(table)


# ---- exponential smoothing ----

def _seasonal_series(steps: int, season: int, seed: int = 0, slope: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(steps)
    return 100 + slope * t + 10 * np.sin(2 * np.pi * t / season) + rng.normal(0, 1, steps)


def test_ets_forecast_equation_matches_statsmodels_and_hyndman() -> None:
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    season, horizon = 6, 14
    target = _seasonal_series(120, season, slope=0.1)
    for trend in (True, False):
        model = ets.fit(target[:80], season, trend)
        origins = np.array([80, 93, 107])
        ours = ets.forecasts(model, target, origins, horizon)
        for row, origin in zip(ours, origins, strict=True):
            known: dict[str, Any] = {"initial_level": model.level, "initial_seasonal": model.seasons}
            weights = {"smoothing_level": model.alpha, "smoothing_seasonal": model.gamma}
            if trend:
                known["initial_trend"] = model.slope
                weights |= {"smoothing_trend": model.beta, "damping_trend": model.phi}
            run = ExponentialSmoothing(target[:origin], trend="add" if trend else None, damped_trend=trend,
                                       seasonal="add", seasonal_periods=season, initialization_method="known",
                                       **known).fit(**weights, optimized=False)
            library = run.forecast(horizon)
            # statsmodels 0.15.0 reads the season one cycle too early at whole seasons ahead (issue #9538):
            # elsewhere the two agree
            elsewhere = (np.arange(1, horizon + 1) % season) != 0
            np.testing.assert_allclose(row[elsewhere], library[elsewhere], rtol=1e-10)
            # at h = m (k = 0): level + (phi + ... + phi^m) slope + the seasonal state of the last step seen
            damped = np.sum(model.phi ** np.arange(1, season + 1)) * run.trend[-1] if trend else 0.0
            assert row[season - 1] == pytest.approx(run.level[-1] + damped + run.season[-1])


def test_ets_never_looks_at_or_after_an_origin() -> None:
    target = _seasonal_series(200, 8)
    model = ets.choose(target[:150], 8, 8)
    before = ets.forecasts(model, target, np.array([160]), 8)
    changed = target.copy()
    changed[160:] += 1000.0
    np.testing.assert_array_equal(ets.forecasts(model, changed, np.array([160]), 8), before)
    # the whole baseline, fit included, from the first validation origin: nothing at or after it is read
    first = ets.forecast(target, np.array([150, 158]), 150, 8, 8)[0]
    changed[150:] -= 500.0
    np.testing.assert_array_equal(ets.forecast(changed, np.array([150, 158]), 150, 8, 8)[0], first)


def test_ets_beats_naive_on_a_seasonal_series_and_chooses_the_trend_when_there_is_one(tmp_path: Path) -> None:
    target = _seasonal_series(400, 12, slope=0.5)
    context = _forecast_context(tmp_path, target, 24, 12, 12, [340, 352, 364, 376, 388])
    truth = context.targets[context.split.val]
    ets_error = np.abs(ets.predict(context) - truth).mean()
    assert ets_error < np.abs(naive.predict(context) - truth).mean() / 3
    assert ets_error < np.abs(seasonal_naive.predict(context) - truth).mean()
    assert ets.choose(target[:340], 12, 12).trend
    assert not ets.choose(_seasonal_series(400, 12)[:340], 12, 12).trend


def test_ets_drops_a_season_the_training_part_cannot_hold_twice_and_refuses_too_little() -> None:
    model = ets.fit(_seasonal_series(30, 20), 20, trend=False)
    assert model.season == 1 and not len(model.seasons)
    with pytest.raises(ValueError, match="at least 10"):
        ets.fit(np.arange(9.0), 1, trend=True)


def test_ets_on_the_half_hourly_sample_beats_seasonal_naive() -> None:
    path = SAMPLES / "electricity_demand.csv"
    target = pd.read_csv(path)["demand_mw"].to_numpy(np.float64)
    horizon, season = 48, 48
    origins = np.arange(len(target) - 17 * horizon, len(target) - horizon + 1, horizon)
    truth = target[origins[:, None] + np.arange(horizon)]
    ours = np.abs(ets.forecast(target, origins, int(origins[0]), season, horizon) - truth).mean()
    seasonal = np.abs(seasonal_naive.forecast(target, origins, horizon, season) - truth).mean()
    assert ours < seasonal < np.abs(naive.forecast(target, origins, horizon) - truth).mean()


# ---- classification: summary features + extra trees ----

def test_features_by_hand_and_padding_ignored() -> None:
    values = np.zeros((2, 4, 1))
    values[0, :, 0] = [1, 2, 3, 4]
    values[1, :2, 0] = [5, 7]
    values[1, 2:, 0] = [99, -99]  # after the series' end: must not count
    found = series_features.features(values, np.array([4, 2]))
    per = series_features.PER_CHANNEL
    assert found.shape == (2, per + 1)
    mean, spread, low = found[:, 0], found[:, 1], found[:, 2]
    np.testing.assert_allclose(mean, [2.5, 6.0])
    np.testing.assert_allclose(spread, [np.sqrt(1.25), 1.0])  # population std: (2.25+0.25+0.25+2.25)/4
    np.testing.assert_allclose(low, [1.0, 5.0])
    q = len(series_features.QUANTILES)
    slope, change, change_std, first, last = (found[:, 2 + q + k] for k in range(5))
    np.testing.assert_allclose(slope, [1.0, 2.0])
    np.testing.assert_allclose(change, [1.0, 2.0])
    np.testing.assert_allclose(change_std, [0.0, 0.0])
    np.testing.assert_allclose(first, [1.0, 5.0])
    np.testing.assert_allclose(last, [4.0, 7.0])
    np.testing.assert_allclose(found[:, -1], [4, 2])
    # raw segments of 4 steps in 8 parts: each part its nearest step, 1, 1, 2, 2, 3, 3, 4, 4
    raw = found[0, 2 + q + 5: 2 + q + 5 + series_features.RAW_SEGMENTS]
    np.testing.assert_allclose(raw, [1, 1, 2, 2, 3, 3, 4, 4])
    values[1, 2:, 0] = [0, 0]
    np.testing.assert_allclose(series_features.features(values, np.array([4, 2])), found)


def test_segments_average_equal_runs_of_a_long_series() -> None:
    values = np.arange(32, dtype=float).reshape(1, 32, 1)
    found = series_features.features(values, np.array([32]))
    q = len(series_features.QUANTILES)
    raw = found[0, 2 + q + 5: 2 + q + 5 + series_features.RAW_SEGMENTS]
    # 8 runs of 4 steps: means 1.5, 5.5, ..., 29.5
    np.testing.assert_allclose(raw, 1.5 + 4 * np.arange(8))


def test_series_features_learn_a_planted_bump_across_lengths(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n, steps = 120, 60
    lengths = rng.integers(30, steps + 1, n)
    labels = np.arange(n) % 3
    values = rng.normal(0, 1, (n, steps, 2))
    for i, (label, length) in enumerate(zip(labels, lengths, strict=True)):
        # class 0: no bump; class 1: a bump on channel 0 near the start; class 2: near the end
        if label:
            at = 3 if label == 1 else length - 8
            values[i, at: at + 5, 0] += 6.0
        values[i, length:] = 0.0
    train, val = list(range(90)), list(range(90, n))
    context = _classification_context(tmp_path, values, lengths, labels, train, val, classes=4)
    answers = series_features.predict(context)
    assert answers.shape == (30, 4)
    np.testing.assert_allclose(answers.sum(axis=1), 1.0)
    assert (answers[:, 3] == 0).all()  # a class no training series has
    assert (answers.argmax(axis=1) == labels[val]).mean() >= 0.9


def test_series_features_on_the_japanese_vowels_sample() -> None:
    table = pd.read_csv(SAMPLES / "japanese_vowels.csv")
    ids = table["series_id"].to_numpy() - 1
    channel = table["channel"].str[1:].astype(int).to_numpy() - 1
    lengths = table.groupby("series_id")["time"].max().to_numpy() + 1
    values = np.zeros((len(lengths), lengths.max(), 12))
    values[ids, table["time"].to_numpy(), channel] = table["value"].to_numpy()
    names = table.groupby("series_id")["label"].first().to_numpy()
    classes, labels = np.unique(names, return_inverse=True)
    assert (len(lengths), len(classes), lengths.min(), lengths.max()) == (640, 9, 7, 29)
    # the archive's own split: series 1-270 are its TRAIN part
    inputs = series_features.features(values, lengths)
    answers = series_features.fit_predict(inputs[:270], labels[:270], inputs[270:], len(classes))
    assert (answers.argmax(axis=1) == labels[270:]).mean() >= 0.95


def test_baselines_read_a_dataset_the_series_modality_wrote(tmp_path: Path) -> None:
    """The contract with `core.data.series`: item i's origin is the step its items.csv time names (the
    modality's own rule: context + i), and every forecast baseline answers each validation origin."""
    modality_module = pytest.importorskip("core.data.series")
    from core import data
    from core.config import TrainConfig

    modality = modality_module.SeriesModality()
    folder = tmp_path / "demand"
    info = modality.ingest(SAMPLES / "electricity_demand.csv", folder,
                           options={"target": "demand_mw", "time": "timestamp", "task": "forecast", "horizon": "48"})
    config = TrainConfig(dataset_id="-", modality="series", task="forecast")
    split = data.split_for(modality, folder, info, config)
    targets = modality.targets(folder, info)
    context = Context(modality, folder, info, split, targets, {"season": info["season"]}, 0,
                      modality.fit_inputs(folder, info, config, split))
    found = series.history(context)
    np.testing.assert_array_equal(found.origins, np.asarray(split.val) + info["context"])
    truth = targets[split.val]
    errors = {method.NAME: np.abs(method.predict(context) - truth).mean() for method in (naive, seasonal_naive, ets)}
    assert errors["ets"] < errors["seasonal_naive"] < errors["naive"]
    with pytest.raises(ValueError):
        series_features.predict(context)
