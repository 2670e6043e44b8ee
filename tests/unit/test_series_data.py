"""The "series" modality's data: every case in ../shared/cases/series as its README says (faults counted and
resolved by a stated rule, lengths, padding, refusals naming the minimum, frequency and season, opening hours),
both forms of the same series read to the same arrays, padding masks, no look-ahead in what a run fits, and the
rolling-origin split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from core.config import TrainConfig
from core.data import modality, split_for
from core.data.series import SeriesModality, forecast_inputs, normalise, read_series, rolling_origins
from core.errors import GlassboxError

CASES = Path(__file__).resolve().parents[2].parent / "shared" / "cases" / "series"
needs_cases = pytest.mark.skipif(not CASES.is_dir(), reason="../shared/cases is not beside this checkout")

SERIES = SeriesModality()
CONFIG = TrainConfig(dataset_id="series", val_fraction=0.2)


def _ingest(source: Path, dest: Path, **options: Any) -> dict[str, Any]:
    return SERIES.ingest(source, dest, options=options)


def _messages(info: dict[str, Any]) -> str:
    return " | ".join(p["message"] for p in info["problems"])


def _arrays(dataset_dir: Path) -> dict[str, np.ndarray]:
    with np.load(dataset_dir / "series.npz", allow_pickle=False) as stored:
        return {key: stored[key] for key in stored.files}


def _day(arrays: dict[str, np.ndarray], day: str) -> int:
    return int(np.flatnonzero(arrays["time"] == pd.Timestamp(day).value)[0])


# ---- forecasting cases ---------------------------------------------------------------------------------------


@needs_cases
def test_duplicate_missing_and_stray_stamps_are_counted_and_resolved_by_rule(tmp_path: Path) -> None:
    info = _ingest(CASES / "duplicate-missing-timestamps" / "daily_sales.csv", tmp_path / "ds", task="forecast",
                   time="date", target="units", horizon=14)
    assert info["faults"] == {"out_of_order": 1, "closed": 0, "duplicates": 2, "off_grid": 1, "missing_stamps": 6,
                              "missing_values": 0}
    assert (info["frequency"], info["season"], info["horizon"], info["num_steps"]) == ("D", 7, 14, 120)
    assert info["covariates"] == ["promo"] and info["filled"] == 6
    said = _messages(info)
    for rule in ("sorted by time", "merged into their mean", "at or before", "linear interpolation"):
        assert rule in said
    assert "2023-04-12 12:00 (line 98)" in said and "2023-02-01 (line 31)" in said
    arrays = _arrays(tmp_path / "ds")
    assert np.all(np.diff(arrays["time"]) == 86_400 * 10**9)  # sorted, one day apart, nothing at noon
    assert arrays["target"][_day(arrays, "2023-02-01")] == pytest.approx((126 + 88) / 2)
    assert arrays["target"][_day(arrays, "2023-03-31")] == pytest.approx((153 + 107) / 2)
    assert arrays["target"][_day(arrays, "2023-04-12")] == pytest.approx(147)  # the noon stamp, moved to its day
    jan19, jan20 = _day(arrays, "2023-01-19"), _day(arrays, "2023-01-20")  # 111 on the 18th, 197 on the 21st
    assert arrays["target"][[jan19, jan20]] == pytest.approx([111 + 86 / 3, 111 + 2 * 86 / 3])
    missing = ["2023-01-19", "2023-01-20", "2023-02-16", "2023-03-13", "2023-03-14", "2023-03-15"]
    assert np.flatnonzero(arrays["filled"]).tolist() == [_day(arrays, d) for d in missing]
    assert arrays["covariates"].shape == (120, 1) and not np.isnan(arrays["target"]).any()


@needs_cases
def test_fourteen_daily_forecasts_fall_on_the_dates_of_the_future_file(tmp_path: Path) -> None:
    folder = CASES / "duplicate-missing-timestamps"
    info = _ingest(folder / "daily_sales.csv", tmp_path / "ds", task="forecast", time="date", target="units",
                   horizon=14)
    fitted = SERIES.fit_inputs(tmp_path / "ds", info, CONFIG, split_for(SERIES, tmp_path / "ds", info, CONFIG))
    inputs, times, notes = forecast_inputs(tmp_path / "ds", info, fitted, future=folder / "future_promo.csv")
    future = pd.read_csv(folder / "future_promo.csv")
    assert times == [f"{d} 00:00" for d in future["date"]]
    promo = inputs["future"][:, 0] * fitted["covariates"]["std"][0] + fitted["covariates"]["mean"][0]
    assert promo == pytest.approx(future["promo"].to_numpy(dtype=float), abs=1e-5)
    assert inputs["values"].shape == (info["context"], 2) and inputs["mask"].all() and notes == []


@needs_cases
def test_half_hourly_calls_have_a_48_step_season_and_na_cells_are_missing(tmp_path: Path) -> None:
    info = _ingest(CASES / "halfhourly-48-season" / "calls_halfhourly.csv", tmp_path / "ds", task="forecast",
                   time="timestamp", target="calls", horizon=96)
    assert (info["frequency"], info["season"], info["horizon"], info["num_steps"]) == ("30min", 48, 96, 1344)
    assert info["faults"]["missing_values"] == 6 and info["faults"]["missing_stamps"] == 0
    assert "frequency 30min, season 48 steps" in info["notes"]
    arrays = _arrays(tmp_path / "ds")
    # the #N/A cells are file rows 101, 102, 700, 901, 1200, 1333 (0-based), one step each
    assert np.flatnonzero(arrays["filled"]).tolist() == [101, 102, 700, 901, 1200, 1333]
    assert arrays["target"][[101, 102, 700]] == pytest.approx([4.0, 2.0, 45.5])  # 6 -> 0 and 40 -> 51, linearly
    assert np.isfinite(arrays["target"]).all() and np.isfinite(arrays["covariates"]).all()


@needs_cases
def test_business_hours_are_read_as_opening_hours_never_forecast_through_the_night(tmp_path: Path) -> None:
    folder = CASES / "halfhourly-48-season"
    info = _ingest(folder / "calls_business_hours.csv", tmp_path / "ds", task="forecast", time="timestamp",
                   target="calls", horizon=14)
    assert info["grid"]["weekdays"] == [0, 1, 2, 3, 4, 5] and len(info["grid"]["times"]) == 14
    assert (info["season"], info["num_steps"], info["filled"]) == (14, 24 * 14, 1)  # 24 open days, one gap
    assert any("opening hours (Mon to Sat, 09:00 to 15:30)" in note for note in info["notes"])
    hours = pd.to_datetime(_arrays(tmp_path / "ds")["time"]).hour
    assert hours.min() == 9 and hours.max() == 15
    fitted = SERIES.fit_inputs(tmp_path / "ds", info, CONFIG, split_for(SERIES, tmp_path / "ds", info, CONFIG))
    _, times, _ = forecast_inputs(tmp_path / "ds", info, fitted, future=folder / "future_temp.csv")
    # the data ends on Saturday 2023-09-30 15:30: the next open steps are Monday's, Sunday is closed
    assert times == [f"2023-10-02 {h:02d}:{m:02d}" for h in range(9, 16) for m in (0, 30)]


@needs_cases
@pytest.mark.parametrize(("name", "options", "minimum", "advice"), [
    ("monthly_9.csv", {"time": "month", "target": "units", "horizon": 12}, 36, "lower --horizon to 3 or less"),
    ("tiny_3.csv", {"time": "day", "target": "units"}, 21, "give a longer series (one step ahead needs 4)"),
])
def test_series_shorter_than_context_horizon_and_validation_are_refused_naming_the_minimum(
        tmp_path: Path, name: str, options: dict[str, Any], minimum: int, advice: str) -> None:
    with pytest.raises(GlassboxError, match=f"at least {minimum} are needed") as refused:
        _ingest(CASES / "short-series-horizon" / name, tmp_path / "ds", task="forecast", **options)
    assert advice in str(refused.value) and "\n" not in str(refused.value)


@needs_cases
def test_a_short_weekly_series_is_forecast_with_a_warning(tmp_path: Path) -> None:
    info = _ingest(CASES / "short-series-horizon" / "weekly_39.csv", tmp_path / "ds", task="forecast")
    assert (info["frequency"], info["season"], info["horizon"], info["context"]) == ("W-MON", 52, 13, 13)
    assert "only 1 training window(s)" in _messages(info)
    targets = SERIES.targets(tmp_path / "ds", info)
    assert targets.shape == (39 - 13 - 13 + 1, 13) and np.isfinite(targets).all()


# ---- classification cases ------------------------------------------------------------------------------------


@needs_cases
def test_long_form_unequal_lengths_are_24_series_padded_and_masked(tmp_path: Path) -> None:
    source = CASES / "long-unequal-lengths" / "gait_long.csv"
    info = _ingest(source, tmp_path / "ds", target="label")
    rows = pd.read_csv(source)
    per_series = rows.groupby("series_id", sort=False).size()
    assert info["num_items"] == 24 and info["counts"] == {"run": 12, "walk": 12}  # series, not 1221 rows
    assert info["form"] == "long" and info["channels"] == ["value"]
    assert info["lengths"] == {"min": 26, "median": float(per_series.median()), "max": 79}
    arrays = _arrays(tmp_path / "ds")
    assert arrays["lengths"].tolist() == per_series.tolist()  # series in the order the file names them
    assert arrays["mask"].sum(axis=1).tolist() == per_series.tolist()
    assert not np.isnan(arrays["values"]).any() and (arrays["values"][~arrays["mask"]] == 0).all()
    g13 = rows[rows.series_id == "g13"].sort_values("time")["value"].to_numpy()
    assert arrays["values"][0, :79, 0] == pytest.approx(g13)
    assert SERIES.items(tmp_path / "ds", info)[:2] == ["series g13 (walk, 79 steps)", "series g22 (run, 46 steps)"]


@needs_cases
def test_a_channel_missing_its_tail_is_filled_with_its_nearest_value(tmp_path: Path) -> None:
    info = _ingest(CASES / "long-unequal-lengths" / "gait_long_channels.csv", tmp_path / "ds", target="label")
    assert info["channels"] == ["x", "y"] and info["num_items"] == 24
    assert info["faults"]["gaps_filled"] == 10 and "g07 (10)" in _messages(info)
    arrays = _arrays(tmp_path / "ds")
    g07 = [sid for sid, _ in (line.split(",") for line in (tmp_path / "ds" / "items.csv").read_text().split()[1:])]
    row = g07.index("g07")
    assert arrays["lengths"][row] == 43
    y = arrays["values"][row, :43, 1]
    assert (y[33:] == y[32]).all() and not np.isnan(arrays["values"]).any()


@needs_cases
def test_new_long_series_of_any_length_are_read_for_prediction(tmp_path: Path) -> None:
    info = _ingest(CASES / "long-unequal-lengths" / "gait_long.csv", tmp_path / "ds", target="label")
    new = read_series(CASES / "long-unequal-lengths" / "new_gait_long.csv", info)
    assert new.ids == ["n1", "n2", "n3"] and new.lengths.tolist() == [15, 50, 120]  # 120 > training's 79
    assert new.values.shape == (3, 120, 1) and new.mask.sum(axis=1).tolist() == [15, 50, 120]
    assert np.isfinite(normalise(new.values, new.mask, {"mean": [0.0], "std": [1.0]})).all()


@needs_cases
def test_wide_gaps_are_interpolated_and_blank_tails_make_shorter_series(tmp_path: Path) -> None:
    source = CASES / "wide-nan-gaps" / "wide_gaps.csv"
    info = _ingest(source, tmp_path / "ds", target="label")
    table = pd.read_csv(source)
    steps = table.drop(columns="label").to_numpy()
    last = [int(np.flatnonzero(~np.isnan(row)).max()) + 1 for row in steps]
    assert info["form"] == "wide" and info["num_items"] == 40 and info["counts"] == {"sine": 20, "square": 20}
    assert info["faults"] == {"gaps_filled": 26, "series_with_gaps": 8, "padded": 8}
    assert "linear interpolation" in _messages(info)
    arrays = _arrays(tmp_path / "ds")
    assert arrays["lengths"].tolist() == last and min(last) == 35
    assert arrays["mask"].sum(axis=1).tolist() == last and (arrays["values"][~arrays["mask"]] == 0).all()
    # line 3 misses t24..t27 between t23 = -2.049 and t28 = 1.847
    assert arrays["values"][1, 23:29, 0] == pytest.approx(np.linspace(-2.049, 1.847, 6), abs=1e-5)
    assert not np.isnan(arrays["values"]).any()
    assert SERIES.items(tmp_path / "ds", info)[3] == "line 5 (square, 50 steps)"


@needs_cases
def test_new_wide_rows_fill_a_leading_blank_with_the_nearest_value(tmp_path: Path) -> None:
    info = _ingest(CASES / "wide-nan-gaps" / "wide_gaps.csv", tmp_path / "ds", target="label")
    new = read_series(CASES / "wide-nan-gaps" / "new_wide_gaps.csv", info)
    assert new.lengths.tolist() == [60, 30, 60] and new.labels == [None, None, None]
    assert new.values[2, 0, 0] == pytest.approx(2.074)


# ---- forms, masks, look-ahead and the split ------------------------------------------------------------------


def test_wide_and_long_forms_of_the_same_series_read_to_the_same_arrays(tmp_path: Path) -> None:
    wide = tmp_path / "wide.csv"
    wide.write_text("label,s0,s1,s2,s3,s4\nup,1,2,3,4,5\ndown,5,,3,2,\nup,0,1,,,\ndown,9,8,7,6,5\n")
    readings = [("a", 0, 1, "up"), ("a", 1, 2, "up"), ("a", 2, 3, "up"), ("a", 3, 4, "up"), ("a", 4, 5, "up"),
                ("b", 0, 5, "down"), ("b", 2, 3, "down"), ("b", 3, 2, "down"),  # b lacks step 1 and ends at 3
                ("c", 0, 0, "up"), ("c", 1, 1, "up"),
                ("d", 0, 9, "down"), ("d", 1, 8, "down"), ("d", 2, 7, "down"), ("d", 3, 6, "down"), ("d", 4, 5, "down")]
    order = [0, 5, 8, 10, 3, 1, 6, 9, 11, 2, 7, 12, 4, 13, 14]  # interleaved, and a's steps out of order
    long = tmp_path / "long.csv"
    long.write_text("series_id,time,value,label\n" + "".join(
        f"{readings[i][0]},{readings[i][1]},{readings[i][2]},{readings[i][3]}\n" for i in order))
    wide_info = _ingest(wide, tmp_path / "w", target="label")
    long_info = _ingest(long, tmp_path / "l", target="label", series_id="series_id")
    assert (wide_info["form"], long_info["form"]) == ("wide", "long")
    a, b = _arrays(tmp_path / "w"), _arrays(tmp_path / "l")
    for key in ("values", "mask", "lengths"):
        np.testing.assert_array_equal(a[key], b[key])
    assert a["lengths"].tolist() == [5, 4, 2, 5]
    assert a["values"][1, :4, 0].tolist() == [5, 4, 3, 2]  # the gap at step 1 is the mean of its neighbours
    assert long_info["faults"]["out_of_order"] == 1 and long_info["faults"]["missing_steps"] == 1
    assert wide_info["counts"] == long_info["counts"] == {"down": 2, "up": 2}


def test_padded_steps_are_masked_and_channels_are_standardised_with_the_training_series(tmp_path: Path) -> None:
    source = tmp_path / "wide.csv"
    source.write_text("label,s0,s1,s2,s3\n" + "".join(
        f"{'ab'[i % 2]},{i},{i + 2},{i + 4},{'' if i % 2 else i + 6}\n" for i in range(8)))
    info = _ingest(source, tmp_path / "ds", target="label")
    split = split_for(SERIES, tmp_path / "ds", info, CONFIG)
    fitted = SERIES.fit_inputs(tmp_path / "ds", info, CONFIG, split)
    # the statistics are the training series' real steps only: padding and validation series never count
    real = np.concatenate([[i, i + 2, i + 4] + ([] if i % 2 else [i + 6]) for i in split.train]).astype(float)
    assert fitted["mean"] == pytest.approx([real.mean()]) and fitted["std"] == pytest.approx([real.std()])
    train, val = SERIES.datasets(tmp_path / "ds", info, CONFIG, split, None)
    assert len(train) + len(val) == 8
    for part, rows in ((train, split.train), (val, split.val)):
        for i, row in enumerate(rows):
            inputs, label = part[i]
            values, mask = inputs["values"].numpy()[:, 0], inputs["mask"].numpy()
            assert inputs["values"].shape == (4, 1) and label.dtype.is_floating_point is False
            raw = np.array([row, row + 2, row + 4, row + 6], dtype=float)[mask]
            assert mask.sum() in (3, 4) and (values[~mask] == 0).all()
            assert values[mask] == pytest.approx((raw - real.mean()) / real.std(), abs=1e-5)
    z = normalise(np.array([[[1.0], [3.0], [100.0]]]), np.array([[True, True, False]]), {"mean": [2.0], "std": [1.0]})
    assert z[0, :, 0].tolist() == [-1.0, 1.0, 0.0]  # the padded 100 is 0, whatever the statistics


def _daily(path: Path, values: np.ndarray, covariate: np.ndarray) -> Path:
    days = pd.date_range("2024-01-01", periods=len(values), freq="D")
    pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "sales": values.round(3), "price": covariate.round(3)}).to_csv(
        path, index=False)
    return path


def test_what_a_run_fits_comes_from_the_steps_before_the_first_validation_origin(tmp_path: Path) -> None:
    steps = np.arange(200)
    sales = 50 + 10 * np.sin(2 * np.pi * steps / 7) + steps * 0.1
    price = 3 + (steps % 5)
    info = _ingest(_daily(tmp_path / "a.csv", sales, price), tmp_path / "a", task="forecast", horizon=7)
    split = split_for(SERIES, tmp_path / "a", info, CONFIG)
    first = info["context"] + min(split.val)
    fitted = SERIES.fit_inputs(tmp_path / "a", info, CONFIG, split)
    past = np.round(sales, 3)[:first]
    assert fitted["fitted_steps"] == first == 200 - 6 * 7  # 6 windows of 7 are 20% of 200 steps
    assert fitted["mean"] == pytest.approx(past.mean()) and fitted["std"] == pytest.approx(past.std())
    assert fitted["covariates"]["mean"] == pytest.approx([price[:first].mean()])
    assert fitted["mase_scale"] == pytest.approx(np.mean(np.abs(past[7:] - past[:-7])))
    assert (fitted["season"], fitted["horizon"], fitted["channels"], fitted["future_covariates"]) == (
        7, 7, ["sales", "price"], 1)
    later = sales.copy()
    later[first:] += 1000  # the validation part changes: nothing fitted may move
    info_later = _ingest(_daily(tmp_path / "b.csv", later, price), tmp_path / "b", task="forecast", horizon=7)
    assert SERIES.fit_inputs(tmp_path / "b", info_later, CONFIG, split) == fitted
    earlier = sales.copy()
    earlier[first - 1] += 1000
    info_earlier = _ingest(_daily(tmp_path / "c.csv", earlier, price), tmp_path / "c", task="forecast", horizon=7)
    assert SERIES.fit_inputs(tmp_path / "c", info_earlier, CONFIG, split)["mean"] != pytest.approx(fitted["mean"])
    train, _ = SERIES.datasets(tmp_path / "a", info, CONFIG, split, None)
    inputs, target = train[len(train) - 1]  # the last training window: its target ends at the first origin
    assert target.numpy() == pytest.approx(np.round(sales, 3)[first - 7:first], abs=1e-4)
    assert inputs["future"].shape == (7, 1) and inputs["values"].shape == (info["context"], 2)


def test_rolling_origin_split_validates_on_the_last_windows_spaced_a_horizon_apart(tmp_path: Path) -> None:
    steps = np.arange(150)
    info = _ingest(_daily(tmp_path / "s.csv", 20 + np.sin(steps) + steps % 7, steps % 3), tmp_path / "ds",
                   task="forecast", horizon=10, context=30)
    assert (info["num_items"], info["context"]) == (150 - 10 - 30 + 1, 30)
    split = split_for(SERIES, tmp_path / "ds", info, CONFIG)
    origins = [30 + i for i in split.val]
    assert split.source == "rolling origin" and origins == [120, 130, 140]  # 20% of 150 steps: 3 windows of 10
    assert [30 + i for i in split.train] == list(range(30, 111))  # every origin whose 10 targets end by step 120
    targets = SERIES.targets(tmp_path / "ds", info)
    assert targets.shape == (111, 10)
    np.testing.assert_allclose(targets[split.val[-1]], _arrays(tmp_path / "ds")["target"][140:150])
    assert SERIES.items(tmp_path / "ds", info)[split.val[0]] == "forecast from 2024-04-30 00:00"  # step 120
    assert rolling_origins(100, 5, 10, 0.05) == (list(range(10, 91)), [95])  # at least one validation origin
    assert len(rolling_origins(50_000, 1, 10, 0.2)[0]) == 20_000  # training origins thinned evenly


def test_classification_keeps_the_stratified_split_and_series_are_never_guessed_from_a_csv(tmp_path: Path) -> None:
    source = tmp_path / "wide.csv"
    source.write_text("label,s0,s1,s2\n" + "".join(f"{'ab'[i % 2]},{i},{i + 1},{i + 2}\n" for i in range(10)))
    info = _ingest(source, tmp_path / "ds", target="label")
    assert SERIES.split(tmp_path / "ds", info, CONFIG) is None
    split = split_for(SERIES, tmp_path / "ds", info, CONFIG)
    assert split.source == "stratified" and sorted(split.train + split.val) == list(range(10))
    assert modality("series") is not None and not SERIES.accepts(source)
    assert SERIES.targets(tmp_path / "ds", info).tolist() == [0, 1] * 5


def test_unusable_uploads_are_refused_in_one_line(tmp_path: Path) -> None:
    one_class = tmp_path / "one.csv"
    one_class.write_text("label,s0,s1,s2\nup,1,2,3\nup,2,3,4\n")
    with pytest.raises(GlassboxError, match="at least two classes"):
        _ingest(one_class, tmp_path / "a", target="label")
    with pytest.raises(GlassboxError, match="unknown series options: colour"):
        _ingest(one_class, tmp_path / "b", colour="red")
    with pytest.raises(GlassboxError, match="horizon must be a whole number"):
        _ingest(one_class, tmp_path / "c", task="forecast", horizon="soon")
    with pytest.raises(GlassboxError, match="forecasting needs a column of dates or times: name it with --time"):
        _ingest(one_class, tmp_path / "d", task="forecast", horizon=2)
    gappy = tmp_path / "gappy.csv"
    days = pd.date_range("2024-01-01", periods=60, freq="D")
    gappy.write_text("date,sales\n" + "".join(f"{d:%Y-%m-%d},{i}\n" for i, d in enumerate(days) if i % 5 < 2))
    with pytest.raises(GlassboxError, match="a regular grid is needed"):  # 3 days of 5 missing, every weekday alike
        _ingest(gappy, tmp_path / "e", task="forecast")
