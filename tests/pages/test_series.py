"""Every page with time series: series to classify (gestures in long form, two channels, 20 to 40 steps, the
class decided by a bump on channel x at steps 8-11) and a series to forecast (hourly load with a daily cycle, one
stamp missing and one repeated), each ingested and trained for real through core once per session, then copied
into each test's workspace. Each test asserts what the data decides: the series, steps and faults counted, the
figures in the run's predictions, the steps an explanation ranks first, the times a forecast starts at."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from core import prediction
from core.artifacts import RunFiles
from core.data.series import forecast_inputs, read_series
from core.explain import load_subject
from core.store import Store
from core.tasks import task
from core.workspace import Workspace
from tests.pages.conftest import (
    Planned,
    charts_by_title,
    copy_template,
    dataset_named,
    metrics_shown,
    open_page,
    predictions_of,
    run_on,
    train_template,
)
from ui import formatting
from ui.series_predict import pasted_series

BUMP = range(8, 12)  # the steps of channel x that hold the bump of class "bump"
GESTURES = {"target": "label", "series_id": "series_id", "time": "step", "channel": "channel", "value": "value"}
DAYS = 21
MISSING = "2024-01-03 05:00"  # a stamp without a row: inserted and filled
REPEATED = "2024-01-04 10:00"  # a stamp with two rows: merged into their mean
LOAD = {"task": "forecast", "time": "time", "target": "load", "horizon": "24"}


def gestures_csv(count: int = 30, seed: int = 0, first: int = 0) -> str:
    """Long form (series_id, step, channel, value, label): every other series is "bump" (channel x 3 higher at
    steps 8-11), the others "flat"; lengths 20 to 40 steps; noise everywhere."""
    rng = np.random.default_rng(seed)
    rows = ["series_id,step,channel,value,label"]
    for i in range(first, first + count):
        label = ("bump", "flat")[i % 2]
        for step in range(20 + (i * 7) % 21):
            for channel in ("x", "y"):
                value = rng.normal(0, 0.3) + (3.0 if label == "bump" and channel == "x" and step in BUMP else 0.0)
                rows.append(f"g{i:02d},{step},{channel},{value:.3f},{label}")
    return "\n".join(rows) + "\n"


def load_frame(days: int = DAYS, seed: int = 0) -> pd.DataFrame:
    """Hourly load: 100 + 40 sin over the day (peak at 14:00) + noise; the MISSING stamp left out and the REPEATED
    one given twice, at the end of the file (so out of order)."""
    rng = np.random.default_rng(seed)
    stamps = pd.date_range("2024-01-01", periods=24 * days, freq="h")
    load = 100 + 40 * np.sin((stamps.hour.to_numpy() - 8) / 24 * 2 * np.pi) + rng.normal(0, 3, len(stamps))
    frame = pd.DataFrame({"time": stamps.strftime("%Y-%m-%d %H:%M"), "load": load.round(1)})
    frame = frame[frame["time"] != MISSING]
    return pd.concat([frame, frame[frame["time"] == REPEATED].assign(load=lambda f: f["load"] + 2)])


def warm_frame(days: int = 14, seed: int = 1) -> pd.DataFrame:
    """Hourly load driven by a temperature covariate known ahead: load = 100 + 3 * temperature + noise, the
    temperature following its own daily cycle."""
    rng = np.random.default_rng(seed)
    stamps = pd.date_range("2024-03-01", periods=24 * days, freq="h")
    temperature = 10 + 6 * np.sin((stamps.hour.to_numpy() - 9) / 24 * 2 * np.pi) + rng.normal(0, 1, len(stamps))
    load = 100 + 3 * temperature + rng.normal(0, 1, len(stamps))
    return pd.DataFrame({"time": stamps.strftime("%Y-%m-%d %H:%M"), "load": load.round(2),
                         "temperature": temperature.round(2)})


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace holding both series and a completed quick run on each, trained by the worker in this process
    (no worker process is started): the template each test copies."""
    home = tmp_path_factory.mktemp("series-home")
    folder = tmp_path_factory.mktemp("series-files")
    (folder / "gestures.csv").write_text(gestures_csv())
    load_frame().to_csv(folder / "load.csv", index=False)
    warm_frame().to_csv(folder / "warm.csv", index=False)
    return train_template(home, [Planned(folder / f"{name}.csv", name, options, modality="series", backbone="cnn")
                                 for name, options in (("gestures", GESTURES), ("load", LOAD), ("warm", LOAD))])


@pytest.fixture
def series(ws: Workspace, trained: Path) -> Iterator[Store]:
    """This test's workspace, a copy of the trained template."""
    yield copy_template(trained, ws)


def _trace(figure: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in figure["data"] if t.get("name") == name)


def _said(at) -> list[str]:  # type: ignore[no-untyped-def]
    return [m.value for m in [*at.success, *at.warning, *at.info, *at.error]]


def _table(at, column: str) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """The last table shown with `column`."""
    return [d.value for d in at.dataframe if column in d.value.columns][-1]


def _heatmap(at) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    figure = charts_by_title(at)["Steps for and against the output"]
    return next(t for t in figure["data"] if t["type"] == "heatmap")


# ---- Data ------------------------------------------------------------------------------------------------------


def test_a_csv_is_added_as_series_to_classify_when_the_user_says_so(ws: Workspace, store: Store) -> None:
    at = open_page("pages/1_Data.py")
    at.radio(key="upload_holds").set_value("series").run()
    at.radio(key="series_form").set_value("long").run()
    for name, column in GESTURES.items():
        at.text_input(key=f"series_{name}").set_value(column).run()
    at.file_uploader(key="upload").set_value(("gestures.csv", gestures_csv(12).encode(), "text/csv")).run()
    assert not at.exception, at.exception
    [record] = store.list_datasets()
    assert (record.modality, record.info["task"], record.info["num_items"]) == ("series", "classification", 12)
    assert record.info["source"]["options"] == {"task": "classification", **GESTURES}
    assert metrics_shown(at)["Series"] == "12" and metrics_shown(at)["Channels"] == "2"


def test_wide_series_of_unequal_lengths_are_previewed_over_their_own_steps(ws: Workspace, store: Store) -> None:
    rows = ["label,t1,t2,t3,t4,t5,t6"]  # row i: 3 + i % 3 steps, then blanks (the padding of a shorter series)
    for i in range(8):
        steps = [str(v if i % 2 else -v) for v in range(1, 4 + i % 3)]
        rows.append(",".join(["up" if i % 2 else "down", *steps, *[""] * (6 - len(steps))]))
    at = open_page("pages/1_Data.py")
    at.radio(key="upload_holds").set_value("series").run()
    at.radio(key="series_form").set_value("wide").run()
    at.text_input(key="series_target").set_value("label").run()
    at.file_uploader(key="upload").set_value(("wide.csv", "\n".join(rows).encode(), "text/csv")).run()
    assert not at.exception, at.exception
    [record] = store.list_datasets()
    assert (record.info["form"], record.info["num_items"], record.info["channels"]) == ("wide", 8, ["value"])
    metrics = metrics_shown(at)
    assert (metrics["Form"], metrics["Channels"], metrics["Steps"]) == ("Wide", "1", "3 to 5")
    drawn = charts_by_title(at)["A few series per class (value)"]["data"]
    assert sorted(len(t["x"]) for t in drawn) == [3, 3, 4, 4, 5, 5]


def test_a_csv_of_numbers_is_a_table_unless_the_user_says_series(ws: Workspace, store: Store) -> None:
    data = load_frame(days=8).to_csv(index=False).encode()
    at = open_page("pages/1_Data.py")
    at.file_uploader(key="upload").set_value(("load.csv", data, "text/csv")).run()
    assert not at.exception, at.exception
    [table] = store.list_datasets()
    assert table.modality == "tables"
    at.radio(key="upload_holds").set_value("series").run()
    at.radio(key="series_form").set_value("forecast").run()
    at.number_input(key="series_horizon").set_value(12).run()
    at.button(key="upload_again").click().run()
    assert not at.exception, at.exception
    [added] = [d for d in store.list_datasets() if d.id != table.id]
    assert (added.modality, added.info["task"], added.info["horizon"]) == ("series", "forecast", 12)
    assert added.info["num_steps"] == 8 * 24  # the missing hour inserted, the repeated one merged
    assert at.selectbox(key="data_selected").value == added.id
    assert metrics_shown(at)["Horizon"] == "12 steps"


def test_data_previews_series_to_classify(ws: Workspace, series: Store) -> None:
    gestures = dataset_named(series, "gestures")
    at = open_page("pages/1_Data.py")
    at.selectbox(key="data_selected").set_value(gestures.id).run()
    assert not at.exception, at.exception
    metrics = metrics_shown(at)
    assert (metrics["Series"], metrics["Classes"], metrics["Channels"], metrics["Form"]) == ("30", "2", "2", "Long")
    lengths = [20 + (i * 7) % 21 for i in range(30)]
    assert metrics["Steps"] == f"{min(lengths)} to {max(lengths)}"
    assert any(f"padded to {max(lengths)} steps and masked" in said for said in _said(at))
    charts = charts_by_title(at)
    counts = charts["Items per class"]["data"][0]
    assert dict(zip(counts["x"], counts["y"], strict=True)) == {"bump": 15, "flat": 15}
    drawn = charts["A few series per class (x)"]["data"]
    # the first three series of each class, each over its own length: padded steps are not drawn
    expected = {f"bump: g{i:02d}": lengths[i] for i in (0, 2, 4)} | {f"flat: g{i:02d}": lengths[i] for i in (1, 3, 5)}
    assert {t["name"]: len(t["x"]) for t in drawn} == expected
    bump = next(t for t in drawn if t["name"] == "bump: g00")
    assert int(np.argmax(bump["y"])) in BUMP
    at.selectbox(key=f"series_channel-{gestures.id}").set_value(1).run()
    assert "A few series per class (y)" in charts_by_title(at)


def test_data_previews_a_series_to_forecast_with_its_faults(ws: Workspace, series: Store) -> None:
    load = dataset_named(series, "load")
    at = open_page("pages/1_Data.py")
    at.selectbox(key="data_selected").set_value(load.id).run()
    assert not at.exception, at.exception
    metrics = metrics_shown(at)
    assert (metrics["Steps"], metrics["Frequency"], metrics["Season"], metrics["Horizon"]) == (
        f"{DAYS * 24}", "h", "24 steps", "24 steps")
    assert metrics["Filled steps"] == "1" and metrics["Context"] == f"{load.info['context']} steps"
    faults = at.dataframe[-1].value.set_index("fault")["count"].to_dict()
    assert faults == {"out of order": 1, "duplicates": 1, "missing stamps": 1}  # the repeat comes last
    said = " ".join(_said(at))
    assert "mean" in said and "filled" in said  # the rule of each fault, in words
    drawn = charts_by_title(at)["load over time"]
    assert len(_trace(drawn, "load")["x"]) == DAYS * 24
    assert _trace(drawn, "filled (1 steps)")["x"] == [MISSING]
    assert any(s.get("type") == "rect" for s in drawn["layout"]["shapes"])  # the validation windows shaded


def test_the_series_samples_load_with_one_click(store: Store) -> None:
    at = open_page("pages/1_Data.py")
    at.button(key="load_sample_demand").click().run()
    assert not at.exception, at.exception
    [record] = store.list_datasets()
    assert (record.modality, record.info["task"], record.info["frequency"]) == ("series", "forecast", "30min")
    assert metrics_shown(at)["Season"] == "48 steps" and metrics_shown(at)["Horizon"] == "48 steps"
    at.button(key="load_sample_vowels").click().run()
    assert not at.exception, at.exception
    vowels = next(d for d in store.list_datasets() if d.id != record.id)
    assert (vowels.modality, vowels.info["task"], vowels.info["num_items"]) == ("series", "classification", 640)
    metrics = metrics_shown(at)
    assert (metrics["Classes"], metrics["Channels"], metrics["Steps"]) == ("9", "12", "7 to 29")
    assert "Added **sample-japanese-vowels**: 640 items in 9 classes." in [s.value for s in at.success]


# ---- Evaluate --------------------------------------------------------------------------------------------------


def test_evaluate_a_forecast_against_its_baselines_with_its_interval(ws: Workspace, series: Store) -> None:
    run = run_on(series, "load")
    found = predictions_of(ws, run)
    truth, predicted = np.asarray(found["labels"]), np.asarray(found["predictions"])
    at = open_page("pages/4_Evaluate.py")
    at.selectbox(key="eval_run").set_value(run.id).run()
    assert not at.exception, at.exception
    metrics = metrics_shown(at)
    mae = task("forecast").metrics_shown[0]
    assert metrics["Validation MAE"] == formatting.metric(mae, float(np.mean(np.abs(predicted - truth))))
    assert metrics["Validation windows"] == str(len(truth))
    assert metrics["Level"] == "90%" and metrics["Coverage"] == formatting.percent(run.metrics["interval_coverage"])
    ours, seasonal = run.metrics["val_mae"], run.metrics["baselines"]["seasonal_naive"]["mae"]
    change = (ours - seasonal) / seasonal
    where = f"{abs(change):.0%} {'below' if change < 0 else 'above'}"
    assert any(f"This model's MAE ({formatting.amount(ours)}) is {where} that of the last season repeated" in said
               for said in _said(at))
    [table] = [d.value for d in at.dataframe if "MASE" in d.value.columns]
    assert {"This model", "the last value repeated", "the last season repeated"} <= set(table[""])
    window = charts_by_title(at)[next(t for t in charts_by_title(at) if t.startswith("Forecast from"))]
    assert _trace(window, "forecast")["y"] == pytest.approx(predicted[-1].tolist())  # the last window by default
    assert _trace(window, "held out (true)")["y"] == pytest.approx(truth[-1].tolist())
    band = np.asarray(_trace(window, "prediction interval")["y"])
    assert band == pytest.approx(predicted[-1] - np.asarray(run.metrics["interval_halfwidth"]))
    steps = charts_by_title(at)["MAE per step ahead"]["data"][0]["y"]
    assert steps == pytest.approx(np.abs(predicted - truth).mean(axis=0).tolist())
    at.selectbox(key=f"eval_window-{run.id}").set_value(0).run()
    window = charts_by_title(at)[next(t for t in charts_by_title(at) if t.startswith("Forecast from"))]
    assert _trace(window, "forecast")["y"] == pytest.approx(predicted[0].tolist())


def test_a_forecast_is_judged_by_how_far_its_error_lies_below_each_baseline() -> None:
    from ui.baselines import verdict

    found = {"naive": {"mae": 3.5}, "seasonal_naive": {"mae": 4.0}, "ets": {"mae": 3.03}, "blend": {"mae": 2.5,
                                                                                                   "with": "ets"}}
    assert verdict({"val_mae": 3.0}, found, None, task=task("forecast")) == [
        ("warning", "This model's MAE (3) is only 14% below that of the last value repeated, whose MAE is 3.5 on the "
                    "same split."),
        ("success", "This model's MAE (3) is 25% below that of the last season repeated, whose MAE is 4 on the same "
                    "split."),
        ("info", "This model's MAE (3) is about that of exponential smoothing (ETS), whose MAE is 3.03 on the same "
                 "split."),
        ("warning", "This model's MAE (3) is 20% above that of average of this model and exponential smoothing "
                    "(ETS), whose MAE is 2.5 on the same split: the baseline does better. Averaging the two answers "
                    "beats each alone."),
    ]


def test_evaluate_a_series_classifier_beside_its_classical_baseline(ws: Workspace, series: Store) -> None:
    run = run_on(series, "gestures")
    found = predictions_of(ws, run)
    probs, labels = np.asarray(found["probs"]), np.asarray(found["labels"])
    at = open_page("pages/4_Evaluate.py")
    at.selectbox(key="eval_run").set_value(run.id).run()
    assert not at.exception, at.exception
    assert metrics_shown(at)["Validation accuracy"] == formatting.percent(float(np.mean(probs.argmax(1) == labels)))
    [table] = [d.value for d in at.dataframe if "balanced accuracy" in d.value.columns]
    assert "summary features + extra trees" in table[""].tolist()
    items = at.dataframe(key=f"eval_table-{run.id}").value["item"]
    assert items.str.match(r"series g\d\d \((bump|flat), \d+ steps\)").all()


# ---- Explain ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["ig", "ablation"])
def test_explain_a_series_finds_the_bump(ws: Workspace, series: Store, method: str) -> None:
    run = run_on(series, "gestures")
    found = predictions_of(ws, run)
    classes = RunFiles(ws.run_dir(run.id)).read_json(RunFiles(ws.run_dir(run.id)).labels)
    bumps = [p for p, (label, probs) in enumerate(zip(found["labels"], found["probs"], strict=True))
             if classes[label] == "bump" and int(np.argmax(probs)) == label]
    at = open_page("pages/5_Explain.py")
    at.selectbox(key="explain_run").set_value(run.id).run()
    at.selectbox(key=f"explain_series_item-{run.id}").set_value(bumps[0]).run()
    at.radio(key=f"explain_series_method-{run.id}").set_value(method).run()
    at.button(key="explain_series_go").click().run()
    assert not at.exception, at.exception
    heatmap = _heatmap(at)
    assert heatmap["y"] == ["x", "y"]
    values = np.asarray(heatmap["customdata"])
    item = found["items"][bumps[0]]
    length = 20 + (int(series_id(ws, series, item)[1:]) * 7) % 21
    assert values.shape == (2, length)  # real steps only
    channel, step = np.unravel_index(int(np.argmax(values)), values.shape)
    assert (channel, step in BUMP) == (0, True), values
    assert any(s.startswith(f"Flattening the top {max(1, -(-length // 10))} steps") for s in _said(at))


def series_id(ws: Workspace, store: Store, item: int) -> str:
    items = pd.read_csv(ws.dataset_dir(dataset_named(store, "gestures").id) / "items.csv", dtype=str)
    return str(items.iloc[item, 0])


def test_explain_a_forecast_window_and_the_training_end(ws: Workspace, series: Store) -> None:
    run = run_on(series, "load")
    found = predictions_of(ws, run)
    load = dataset_named(series, "load")
    at = open_page("pages/5_Explain.py")
    at.selectbox(key="explain_run").set_value(run.id).run()
    assert not at.exception, at.exception
    at.button(key="explain_series_go").click().run()
    assert not at.exception, at.exception
    figure = charts_by_title(at)["Steps for and against the output"]
    assert _trace(figure, "forecast")["y"] == pytest.approx(found["predictions"][-1], rel=1e-4, abs=1e-3)
    assert _trace(figure, "held out (true)")["y"] == pytest.approx(found["labels"][-1])
    assert len(_heatmap(at)["x"]) == load.info["context"] and _heatmap(at)["y"] == ["load"]
    at.radio(key=f"explain_forecast_source-{run.id}").set_value("The end of the training data").run()
    at.button(key="explain_series_go").click().run()
    assert not at.exception, at.exception
    figure = charts_by_title(at)["Steps for and against the output"]
    assert _trace(figure, "forecast")["x"][0] == "2024-01-22 00:00"  # the step after the last one
    assert _heatmap(at)["x"][-1] == "2024-01-21 23:00"


def test_a_window_opened_from_evaluate_is_explained_on_explain(ws: Workspace, series: Store) -> None:
    run = run_on(series, "load")
    found = predictions_of(ws, run)
    at = open_page("pages/4_Evaluate.py")
    at.selectbox(key="eval_run").set_value(run.id).run()
    at.selectbox(key=f"eval_window-{run.id}").set_value(1).run()
    at.button(key=f"eval_explain_window-{run.id}").click().run()
    assert not at.exception, at.exception
    assert at.radio(key=f"explain_forecast_source-{run.id}").value == "A validation window"
    assert at.selectbox(key=f"explain_forecast_window-{run.id}").value == 1
    at.switch_page("pages/5_Explain.py")  # AppTest stays on the page st.switch_page showed only so
    at.button(key="explain_series_go").click().run()
    assert not at.exception, at.exception
    figure = charts_by_title(at)["Steps for and against the output"]
    assert _trace(figure, "held out (true)")["y"] == pytest.approx(found["labels"][1])


def test_mistaken_series_are_explained_by_their_strongest_steps(ws: Workspace, series: Store) -> None:
    from ui.series_explain import mistakes, steps_html
    from ui.shell import Studio

    maps = np.zeros((2, 12))
    maps[0, 9], maps[1, 3], maps[0, 2] = 0.5, -0.25, 0.125
    said = steps_html(maps, ["x", "y"])
    assert said.index("x step 9 +0.5") < said.index("x step 2 +0.125") < said.index("against: ")
    assert said.endswith('y step 3 -0.25</span>')
    run = run_on(series, "gestures")
    subject = load_subject(RunFiles(ws.run_dir(run.id)), ws.cache_dir)
    bump = next(i for i in range(30) if i % 2 == 0)  # series g00, a bump at steps 8-11 of x
    title, shown = mistakes(Studio(ws, series), run, subject, [bump], ["g00"], [0])
    assert title == "Integrated Gradients" and shown[0] is not None
    assert re.search(r"for: <span[^>]*>x step (8|9|10|11) ", shown[0]), shown[0]


# ---- Predict ---------------------------------------------------------------------------------------------------


def test_predict_a_file_of_series_as_the_library_does(ws: Workspace, series: Store, tmp_path: Path) -> None:
    run = run_on(series, "gestures")
    new = gestures_csv(3, seed=5, first=40)  # 20 + 280 % 21 = 27, 34 and 20 steps
    at = open_page("pages/6_Predict.py")
    at.selectbox(key="predict_run").set_value(run.id).run()
    at.file_uploader(key="predict_series").set_value(("new.csv", new.encode(), "text/csv")).run()
    assert not at.exception, at.exception
    table = _table(at, "steps")
    path = tmp_path / "new.csv"
    path.write_text(new)
    subject = load_subject(RunFiles(ws.run_dir(run.id)), ws.cache_dir)
    expected = prediction.series(subject, read_series(path, dataset_named(series, "gestures").info))
    assert table["series"].tolist() == ["g40", "g41", "g42"] and table["steps"].tolist() == [27, 34, 20]
    assert table["predicted"].tolist() == expected["predicted"].tolist()
    assert table["predicted"].tolist() == ["bump", "flat", "bump"]
    assert _heatmap(at)["y"] == ["x", "y"] and len(_heatmap(at)["x"]) == 27
    assert at.get("download_button")


def test_predict_pasted_values(ws: Workspace, series: Store) -> None:
    run = run_on(series, "gestures")
    at = open_page("pages/6_Predict.py")
    at.selectbox(key="predict_run").set_value(run.id).run()
    at.text_area(key="predict_series_text").set_value("0 0 0 0").run()
    assert any("give one line of numbers for each, not 1" in e.value for e in at.error)
    bump = " ".join("3" if step in BUMP else "0.1" for step in range(25))
    at.text_area(key="predict_series_text").set_value(f"{bump}\n" + " ".join(["0"] * 25)).run()
    assert not at.exception, at.exception
    table = _table(at, "steps")
    assert table["predicted"].tolist() == ["bump"] and table["steps"].tolist() == [25]


def test_pasted_values_are_read_per_channel() -> None:
    found = pasted_series("1, 2; 3\n4 5 6", ["x", "y"])
    assert found.values.tolist() == [[[1, 4], [2, 5], [3, 6]]] and found.lengths.tolist() == [3]
    with pytest.raises(Exception, match="'two' is not a number"):
        pasted_series("1 two 3", ["x"])
    with pytest.raises(Exception, match=r"different numbers of steps \(3, 2\)"):
        pasted_series("1 2 3\n4 5", ["x", "y"])


def test_predict_a_forecast_from_the_training_end_and_from_a_history(ws: Workspace, series: Store,
                                                                    tmp_path: Path) -> None:
    run = run_on(series, "load")
    load = dataset_named(series, "load")
    at = open_page("pages/6_Predict.py")
    at.selectbox(key="predict_run").set_value(run.id).run()
    assert not at.exception, at.exception
    table = _table(at, "forecast")
    subject = load_subject(RunFiles(ws.run_dir(run.id)), ws.cache_dir)
    expected = prediction.forecast(subject, *forecast_inputs(ws.dataset_dir(load.id), load.info, subject.fitted)[:2])
    assert table["time"].tolist()[:2] == ["2024-01-22 00:00", "2024-01-22 01:00"] and len(table) == 24
    assert table["forecast"].to_numpy() == pytest.approx(expected["forecast"].to_numpy())
    assert (table["lower"] < table["forecast"]).all() and (table["forecast"] < table["upper"]).all()
    chart = charts_by_title(at)["The next 24 steps of load"]
    assert len(_trace(chart, "history")["x"]) == load.info["context"]
    assert _trace(chart, "history")["x"][-1] == "2024-01-21 23:00"
    at.button(key="predict_forecast_why").click().run()
    assert not at.exception, at.exception
    assert len(_heatmap(at)["x"]) == load.info["context"]

    history = load_frame(days=10).to_csv(index=False).encode()
    at.radio(key="predict_forecast_source").set_value("An uploaded history").run()
    at.file_uploader(key="predict_history").set_value(("recent.csv", history, "text/csv")).run()
    assert not at.exception, at.exception
    table = _table(at, "forecast")
    assert table["time"].iloc[0] == "2024-01-11 00:00"
    chart = charts_by_title(at)["The next 24 steps of load"]
    assert _trace(chart, "history")["x"][-1] == "2024-01-10 23:00"
    assert at.get("download_button")


def test_a_forecast_with_a_covariate_reads_its_future_values(ws: Workspace, series: Store, tmp_path: Path) -> None:
    run = run_on(series, "warm")
    warm = dataset_named(series, "warm")
    assert warm.info["covariates"] == ["temperature"]
    at = open_page("pages/6_Predict.py")
    at.selectbox(key="predict_run").set_value(run.id).run()
    assert not at.exception, at.exception
    assert any("temperature held at their last value" in c.value for c in at.caption)
    without = _table(at, "forecast")["forecast"].to_numpy()
    ahead = pd.date_range("2024-03-15", periods=24, freq="h")
    cold = pd.DataFrame({"time": ahead.strftime("%Y-%m-%d %H:%M"), "temperature": [-10.0] * 24})
    at.file_uploader(key="predict_future").set_value(("cold.csv", cold.to_csv(index=False).encode(), "text/csv"))
    at.run()
    assert not at.exception, at.exception
    assert not any("held at their last value" in c.value for c in at.caption)
    table = _table(at, "forecast")
    path = tmp_path / "cold.csv"
    cold.to_csv(path, index=False)
    subject = load_subject(RunFiles(ws.run_dir(run.id)), ws.cache_dir)
    inputs, times, _ = forecast_inputs(ws.dataset_dir(warm.id), warm.info, subject.fitted, future=path)
    assert table["forecast"].to_numpy() == pytest.approx(prediction.forecast(subject, inputs, times)["forecast"])
    assert not np.allclose(table["forecast"].to_numpy(), without)  # the cold day ahead is read, not the last value
    at.button(key="predict_forecast_why").click().run()
    assert not at.exception, at.exception
    assert _heatmap(at)["y"] == ["load", "temperature"]
    bad = cold.iloc[:20].to_csv(index=False).encode()
    at.file_uploader(key="predict_future").set_value(("short.csv", bad, "text/csv")).run()
    assert any("lacks covariate values for 4 of the 24 steps" in e.value for e in at.error)


# ---- every page ------------------------------------------------------------------------------------------------


def test_each_page_opens_on_series_runs_without_error(ws: Workspace, series: Store) -> None:
    for name in ("gestures", "load", "warm"):
        for page, key in (("pages/3_Runs.py", "runs_selected"), ("pages/4_Evaluate.py", "eval_run"),
                          ("pages/5_Explain.py", "explain_run"), ("pages/6_Predict.py", "predict_run")):
            at = open_page(page)
            at.selectbox(key=key).set_value(run_on(series, name).id).run()
            assert not at.exception, (name, page, at.exception)
    at = open_page("pages/2_Train.py")
    assert not at.exception, at.exception


def test_pages_branch_on_no_series_modality_or_task_outside_the_view_registry() -> None:
    """Words like "forecast" name columns and traces; comparing with, or looking up, the modality's or a task's
    name is what only `ui/views.py` may do."""
    root = Path(__file__).resolve().parents[2]
    names = "series|forecast|classification"
    branching = re.compile(rf'(==|!=)\s*"({names})"|"({names})"\s*(==|!=|in\b)|\b(modality|task|of|evaluation)\('
                           rf'"({names})"')
    named = []
    for path in [*sorted((root / "pages").glob("*.py")), *sorted((root / "ui").glob("*.py"))]:
        if path.name == "views.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if branching.search(line):
                named.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    assert named == []
    assert branching.search('if info["task"] == "forecast":') and branching.search('modality("series")')
