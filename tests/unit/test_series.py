"""The series modality end to end through the command line (`train --data FILE --modality series ...`, `predict`,
`explain --series`) on the real-world cases in ../shared/cases/series, as their README says, and forecasting
against the naive forecasts on a seasonal series."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import cli
from core.store import Store
from core.workspace import Workspace

CASES = Path(__file__).resolve().parents[2].parent / "shared" / "cases" / "series"
needs_cases = pytest.mark.skipif(not CASES.is_dir(), reason="../shared/cases is not beside this checkout")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict | list | None, str]:
    """(exit code, the JSON of the last stdout line or None, stderr) of one CLI call."""
    code = cli.main([*argv, "--json"])
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    return code, json.loads(lines[-1]) if code == 0 and lines else None, err


@needs_cases
def test_long_unequal_series_train_and_predict_three_new_ones(ws: Workspace, store: Store, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    folder = CASES / "long-unequal-lengths"
    code, value, err = _run(capsys, "train", "--data", str(folder / "gait_long.csv"), "--modality", "series",
                            "--target", "label", "--preset", "quick")
    assert code == 0, err
    assert "24 items, 2 classes" in err  # 24 series, not one per row
    assert value["task"] == "classification" and value["modality"] == "series"
    assert value["metrics"]["val_accuracy"] > value["baselines"]["majority"]["accuracy"]
    assert "series_features" in value["baselines"]

    out = tmp_path / "gait.csv"
    code, predicted, err = _run(capsys, "predict", value["run_id"], str(folder / "new_gait_long.csv"),
                                "--out", str(out))
    assert code == 0, err
    table = pd.read_csv(out)
    new = pd.read_csv(folder / "new_gait_long.csv")
    assert predicted["count"] == 3
    assert sorted(table["steps"]) == sorted(new.groupby("series_id").size())  # 15, 50 and 120 steps
    assert table["predicted"].isin(["run", "walk"]).all()

    code, explained, err = _run(capsys, "explain", value["run_id"], "--series", str(folder / "new_gait_long.csv"),
                                "--index", "0")
    assert code == 0, err
    assert len(explained["attributions"]) == explained["steps"] and explained["length"] == table["steps"][0]
    assert {"topk_change", "random_change"} <= set(explained["faithfulness"])


@needs_cases
def test_a_series_too_short_for_its_horizon_is_refused_with_the_minimum(ws: Workspace, store: Store,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "datasets", "add", str(CASES / "short-series-horizon" / "monthly_9.csv"),
                        "--modality", "series", "--task", "forecast", "--time", "month", "--target", "units",
                        "--horizon", "12")
    assert code == 1
    [line] = err.strip().splitlines()
    assert line.startswith("error:") and "at least" in line and "Traceback" not in err


def _seasonal(days: int, seed: int = 0) -> pd.DataFrame:
    """Hourly load with a daily cycle (peak at 14:00) and noise."""
    rng = np.random.default_rng(seed)
    stamps = pd.date_range("2024-01-01", periods=24 * days, freq="h")
    hour = stamps.hour.to_numpy()
    load = 100 + 40 * np.sin((hour - 8) / 24 * 2 * np.pi) + rng.normal(0, 4, len(stamps))
    return pd.DataFrame({"time": stamps.strftime("%Y-%m-%d %H:%M"), "load": load.round(1)})


@pytest.mark.slow
def test_a_forecast_beats_the_naive_ones_and_states_its_interval(ws: Workspace, store: Store, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "load.csv"
    frame = _seasonal(42)
    frame.to_csv(path, index=False)
    code, value, err = _run(capsys, "train", "--data", str(path), "--modality", "series", "--task", "forecast",
                            "--time", "time", "--target", "load", "--horizon", "24", "--preset", "quick")
    assert code == 0, err
    metrics, found = value["metrics"], value["baselines"]
    assert value["task"] == "forecast" and metrics["split"] == "rolling origin"
    assert {"val_mae", "val_rmse", "val_mase", "val_smape"} <= set(metrics)
    assert {"naive", "seasonal_naive", "ets"} <= set(found)
    assert metrics["val_mae"] < found["naive"]["mae"]
    assert metrics["val_mae"] < found["seasonal_naive"]["mae"] * 1.1
    assert len(metrics["interval_halfwidth"]) == 24 and metrics["interval_coverage"] is not None

    code, predicted, err = _run(capsys, "predict", value["run_id"])
    assert code == 0, err
    rows = predicted["predictions"]
    assert [r["time"][:16] for r in rows[:2]] == ["2024-02-12 00:00", "2024-02-12 01:00"]  # after the last stamp
    assert len(rows) == 24 and all(r["lower"] <= r["forecast"] <= r["upper"] for r in rows)
    by_hour = {r["time"][11:13]: r["forecast"] for r in rows}
    assert by_hour["14"] > by_hour["02"] + 40  # the daily cycle is forecast

    code, explained, err = _run(capsys, "explain", value["run_id"])
    assert code == 0, err
    assert len(explained["forecast"]) == 24 and len(explained["attributions"]) == explained["steps"]


@needs_cases
def test_series_with_other_channels_than_training_are_refused_by_name(ws: Workspace, store: Store, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    folder = CASES / "long-unequal-lengths"
    code, value, err = _run(capsys, "train", "--data", str(folder / "gait_long_channels.csv"), "--modality",
                            "series", "--target", "label", "--preset", "quick", "--epochs", "1")
    assert code == 0, err
    frame = pd.read_csv(folder / "gait_long_channels.csv")
    channel = next(c for c in frame.columns if c not in ("series_id", "time", "value", "label"))
    kept = frame[frame[channel] == sorted(frame[channel].unique())[0]]
    one = tmp_path / "one_channel.csv"
    kept.to_csv(one, index=False)
    code, _, err = _run(capsys, "predict", value["run_id"], str(one))
    assert code == 1
    [line] = err.strip().splitlines()
    assert line.startswith("error: the model reads the channels") and "missing" in line


def test_a_horizon_of_no_steps_is_refused(ws: Workspace, store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["train", "--data", "x.csv", "--modality", "series", "--horizon", "0"])
    assert exited.value.code == 2
    assert "0 is not a number of steps (at least 1)" in capsys.readouterr().err
