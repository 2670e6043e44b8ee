"""The Runs page: a queued run and its cancellation, a finished run's curves, resume and comparison."""

from __future__ import annotations

import json
import time

from core import runs
from core.config import TrainConfig
from core.store import DatasetRecord, Store
from core.workspace import Workspace
from tests.pages.conftest import fabricate_run, open_page, write_predictions
from ui import formatting

PAGE = "pages/3_Runs.py"


def _chart_traces(at, index: int = 0) -> list[dict]:
    return json.loads(at.get("plotly_chart")[index].proto.spec)["data"]


def test_no_runs_points_to_train(store: Store) -> None:
    at = open_page(PAGE)
    assert any("No runs yet" in i.value for i in at.info)


def test_queued_run_shows_and_cancel_marks_it_cancelled(ws: Workspace, store: Store, dataset: DatasetRecord,
                                                        no_workers) -> None:
    run = runs.create(ws, store, TrainConfig(dataset_id=dataset.id, epochs=2))
    at = open_page(PAGE)
    table = at.dataframe[0].value
    assert list(table["id"]) == [run.id] and list(table["status"]) == ["queued"]
    assert at.selectbox(key="runs_selected").value == run.id
    assert any("Queued" in i.value for i in at.info)

    at.button(key="cancel_run").click().run()
    assert not at.exception, at.exception
    assert store.get_run(run.id).status == "cancelled"
    assert list(at.dataframe[0].value["status"]) == ["cancelled"]
    # a cancelled run can be resumed, not cancelled again
    keys = [b.key for b in at.button]
    assert "resume_run" in keys and "cancel_run" not in keys

    at.button(key="resume_run").click().run()
    assert store.get_run(run.id).status == "queued"


def test_completed_run_shows_its_curves_and_final_metrics(store: Store, dataset: DatasetRecord) -> None:
    run = fabricate_run(store, dataset, "completed", epochs=2, epoch=2, step=8, total_steps=8,
                        metrics={"val_accuracy": 0.75, "val_macro_f1": 0.7, "val_loss": 0.61, "best_epoch": 2})
    rows = []
    for step in range(1, 9):
        epoch = (step - 1) // 4 + 1
        rows += [(epoch, step, "train_loss", 1.5 - step * 0.1), (epoch, step, "train_accuracy", 0.3 + step * 0.05)]
        if step % 4 == 0:
            rows += [(epoch, step, "val_loss", 1.0 - epoch * 0.2), (epoch, step, "val_accuracy", 0.5 + epoch * 0.125)]
    store.add_metrics(run.id, rows)

    at = open_page(PAGE)
    assert not at.exception, at.exception
    traces = _chart_traces(at)
    by_axis = {(t["name"], t.get("xaxis", "x")): t for t in traces}
    assert by_axis[("training (per step)", "x")]["y"][0] == 1.4  # the loss panel
    assert by_axis[("validation (per epoch)", "x2")]["y"] == [0.625, 0.75]  # the accuracy panel
    assert by_axis[("validation (per epoch)", "x2")]["x"] == [4, 8]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Val accuracy"] == "75.0%" and metrics["Best epoch"] == "2"
    assert at.progress[0].value == 100
    assert any("Evaluate" in link.label for link in at.get("page_link"))


def test_compare_overlays_runs_and_lists_differing_settings(store: Store, dataset: DatasetRecord) -> None:
    first = fabricate_run(store, dataset, "completed", epochs=2, metrics={"val_accuracy": 0.5})
    second = fabricate_run(store, dataset, "completed", epochs=2, metrics={"val_accuracy": 0.9})
    store.update_run(second.id, config={**second.config, "lr": 0.01})
    for run, values in ((first, (0.4, 0.5)), (second, (0.8, 0.9))):
        store.add_metrics(run.id, [(e, e * 4, "val_accuracy", v) for e, v in enumerate(values, start=1)])

    at = open_page(PAGE)
    at.multiselect(key="compare").set_value([first.id, second.id]).run()
    assert not at.exception, at.exception
    overlay = json.loads(at.get("plotly_chart")[-1].proto.spec)["data"]
    assert [t["y"] for t in overlay] == [[0.4, 0.5], [0.8, 0.9]]
    table = at.dataframe[-1].value
    assert "lr" in table.columns and "epochs" not in table.columns
    assert list(table["val accuracy"]) == ["50.0%", "90.0%"]
    assert list(table["lr"]) == ["0.001", "0.01"]

    at.toggle(key="compare_all_settings").set_value(True).run()
    assert list(at.dataframe[-1].value["epochs"]) == ["2", "2"]


def test_the_star_marks_the_best_run_in_the_table_and_the_chart(store: Store, dataset: DatasetRecord) -> None:
    scores = (0.5, 0.9, 0.7)
    made = [fabricate_run(store, dataset, "completed", epochs=2, metrics={"val_accuracy": s}) for s in scores]
    for run, score in zip(made, scores, strict=True):
        store.add_metrics(run.id, [(1, 4, "val_accuracy", score - 0.1), (2, 8, "val_accuracy", score)])

    at = open_page(PAGE)
    assert not at.exception, at.exception
    table = at.dataframe[-1].value
    starred = dict(zip(table["run"], table["best"], strict=True))
    assert starred == {made[0].id: "", made[1].id: "★", made[2].id: ""}
    traces = {t["y"][-1]: t for t in json.loads(at.get("plotly_chart")[-1].proto.spec)["data"]}
    assert traces[0.9]["name"].startswith("★ ") and traces[0.9]["line"]["width"] == 5
    assert not traces[0.5]["name"].startswith("★") and "width" not in traces[0.5]["line"]


def test_lower_is_better_stars_the_smallest_error(store: Store, dataset: DatasetRecord) -> None:
    made = []
    for mae in (2.0, 0.5, 1.0):
        run = fabricate_run(store, dataset, "completed", metrics={"val_mae": mae, "val_r2": 0.9 - mae / 10})
        store.update_run(run.id, config={**run.config, "task": "forecast"})
        made.append(run)

    at = open_page(PAGE)
    assert not at.exception, at.exception
    table = at.dataframe[-1].value
    assert dict(zip(table["run"], table["best"], strict=True)) == {made[0].id: "", made[1].id: "★", made[2].id: ""}
    assert dict(zip(table["run"], table["val MAE"], strict=True)) == {made[0].id: "2", made[1].id: "0.5",
                                                                      made[2].id: "1"}


def test_a_dataset_is_picked_first_and_its_newest_finished_runs_are_preselected(
    store: Store, dataset: DatasetRecord, text_dataset: DatasetRecord
) -> None:
    finished = [fabricate_run(store, dataset, "completed", metrics={"val_accuracy": 0.1 * k}) for k in range(6)]
    fabricate_run(store, dataset, "failed")
    other = fabricate_run(store, text_dataset, "completed", metrics={"val_accuracy": 0.5})

    at = open_page(PAGE)
    # at first the dataset of the run looked at above: the newest run's
    assert at.selectbox(key="runs_selected").value == other.id
    assert at.selectbox(key="compare_dataset").value == text_dataset.id
    assert at.multiselect(key="compare").value == [other.id]
    assert list(at.dataframe[-1].value["run"]) == [other.id]

    at.selectbox(key="compare_dataset").set_value(dataset.id).run()
    assert not at.exception, at.exception
    # newest first, completed only, five at most
    assert at.multiselect(key="compare").value == [r.id for r in reversed(finished)][:5]
    assert len(at.multiselect(key="compare").options) == 7  # its failed run can be picked; the text run cannot
    assert list(at.dataframe[-1].value["best"]) == ["★", "", "", "", ""]  # 0.5, the highest of the five


def test_one_click_opens_the_best_run_on_evaluate(ws: Workspace, store: Store, dataset: DatasetRecord) -> None:
    worse = fabricate_run(store, dataset, "completed", metrics={"val_accuracy": 0.4, "best_epoch": 1})
    better = fabricate_run(store, dataset, "completed", metrics={"val_accuracy": 0.8, "best_epoch": 1})
    for run in (worse, better):
        write_predictions(ws, run, [0, 6, 12], [0, 1, 2], [0, 1, 2])

    at = open_page(PAGE)
    at.selectbox(key="runs_selected").set_value(worse.id).run()
    at.button(key="open_best-classification").click().run()
    assert not at.exception, at.exception
    assert at.session_state["run_id"] == better.id
    assert at.selectbox(key="eval_run").value == better.id


def test_a_run_computing_features_shows_the_count_not_step_zero(store: Store, dataset: DatasetRecord,
                                                                 no_workers) -> None:
    run = fabricate_run(store, dataset, "running", epochs=3, started_at=time.time(),
                        phase={"what": "encoding features", "done": 310, "total": 888, "eta_s": 42.0})
    at = open_page(PAGE)
    assert not at.exception, at.exception
    bar = at.progress[0]
    assert bar.proto.text == "encoding features 310/888 · about 42 s left"
    assert bar.value == 34  # percent, rounded down by Streamlit
    assert store.get_run(run.id).phase["done"] == 310


def test_a_cancelled_run_shows_its_best_epoch(store: Store, dataset: DatasetRecord) -> None:
    fabricate_run(store, dataset, "cancelled", epochs=10, epoch=4, step=16, total_steps=40,
                  metrics={"val_accuracy": 0.8, "val_macro_f1": 0.75, "val_loss": 0.5, "best_epoch": 3})
    at = open_page(PAGE)
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Val accuracy"], metrics["Val macro F1"], metrics["Best epoch"]) == ("80.0%", "75.0%", "3")
    assert "Metrics of epoch 3, the best of the 4 epoch(s) this cancelled run finished; its weights are the " \
           "ones kept." in [c.value for c in at.caption]
    assert list(at.dataframe[0].value["val accuracy"]) == ["80.0%"]


def test_compare_names_runs_readably_with_distinct_colours_and_an_epoch_axis(
    store: Store, dataset: DatasetRecord
) -> None:
    first = fabricate_run(store, dataset, "completed", epochs=3, backbone="efficientnet_lite0")
    second = fabricate_run(store, dataset, "completed", epochs=3, backbone="resnet18")
    store.update_run(first.id, config={**first.config, "preset": "quick"})
    for run in (first, second):
        store.add_metrics(run.id, [(e, e * 4, "val_accuracy", 0.2 * e) for e in (1, 2, 3)])

    at = open_page(PAGE)
    picker = at.multiselect(key="compare")
    made = formatting.timestamp(first.created_at)
    assert f"{dataset.name} · efficientnet_lite0 · Quick (CPU) · {made}" in picker.options
    picker.set_value([first.id, second.id]).run()
    assert not at.exception, at.exception
    spec = json.loads(at.get("plotly_chart")[-1].proto.spec)
    names = [t["name"] for t in spec["data"]]
    # equal scores: the first picked is the best, starred
    assert names == [f"★ {dataset.name} · efficientnet_lite0 · Quick (CPU) · {made}",
                     f"{dataset.name} · resnet18 · custom · {formatting.timestamp(second.created_at)}"]
    colours = [t["line"]["color"] for t in spec["data"]]
    assert len(set(colours)) == 2
    assert spec["layout"]["xaxis"]["range"] == [0.5, 3.5] and spec["layout"]["xaxis"]["dtick"] == 1


def test_the_loss_curve_uses_a_log_scale(store: Store, dataset: DatasetRecord) -> None:
    run = fabricate_run(store, dataset, "completed", epochs=1, epoch=1, step=4, total_steps=4)
    store.add_metrics(run.id, [(1, s, "train_loss", 10.0 / s) for s in range(1, 5)])
    at = open_page(PAGE)
    layout = _chart_traces_layout(at)
    assert layout["yaxis"]["type"] == "log"


def _chart_traces_layout(at, index: int = 0) -> dict:
    return json.loads(at.get("plotly_chart")[index].proto.spec)["layout"]
