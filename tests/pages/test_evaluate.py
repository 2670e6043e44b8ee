"""The Evaluate page on a fabricated completed run: headline figures, confusion matrix, drill-down."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.store import DatasetRecord, RunRecord, Store
from core.workspace import Workspace
from tests.pages.conftest import CLASSES, fabricate_run, fabricate_text_run, open_page, write_predictions

PAGE = "pages/4_Evaluate.py"
# dataset items are sorted by path: circle 0-5, cross 6-11, square 12-17; three of each are "validation"
ITEMS = [0, 1, 2, 6, 7, 8, 12, 13, 14]
LABELS = [0, 0, 0, 1, 1, 1, 2, 2, 2]
PREDS = [0, 0, 1, 1, 1, 1, 2, 0, 2]  # item 2 (a circle) taken for a cross, item 13 (a square) for a circle


@pytest.fixture
def evaluated(ws: Workspace, store: Store, dataset: DatasetRecord) -> RunRecord:
    run = fabricate_run(store, dataset, "completed", metrics={"val_accuracy": 7 / 9, "best_epoch": 3})
    write_predictions(ws, run, ITEMS, LABELS, PREDS)
    return run


def _pick_cell(at, run: RunRecord, true: str, pred: str) -> None:
    at.selectbox(key=f"eval_true-{run.id}").set_value(true)
    at.selectbox(key=f"eval_pred-{run.id}").set_value(pred)
    at.run()
    assert not at.exception, at.exception


def test_no_completed_run(store: Store) -> None:
    at = open_page(PAGE)
    assert any("No finished run" in i.value for i in at.info)


def test_figures_match_the_predictions(store: Store, evaluated: RunRecord) -> None:
    at = open_page(PAGE)
    assert at.selectbox(key="eval_run").value == evaluated.id
    metrics = {m.label: m.value for m in at.metric}
    expected = np.mean(np.asarray(LABELS) == np.asarray(PREDS))
    assert metrics["Validation accuracy"] == f"{expected * 100:.1f}%" == "77.8%"
    assert metrics["Validation images"] == "9"

    per_class = at.dataframe[0].value
    assert list(per_class["class"]) == list(CLASSES)
    assert list(per_class["support"]) == [3, 3, 3]
    assert per_class["recall"].round(3).tolist() == [0.667, 1.0, 0.667]

    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    heatmap = next(t for t in spec["data"] if t["type"] == "heatmap")
    assert heatmap["z"] == [[2, 1, 0], [0, 3, 0], [1, 0, 2]]
    # the view opens on the most frequent mistake
    assert at.selectbox(key=f"eval_true-{evaluated.id}").value == "circle"
    assert at.selectbox(key=f"eval_pred-{evaluated.id}").value == "cross"


def test_choosing_a_cell_lists_its_samples(store: Store, evaluated: RunRecord) -> None:
    at = open_page(PAGE)
    _pick_cell(at, evaluated, "square", "circle")
    assert {m.label: m.value for m in at.metric}["Images in this cell"] == "1"
    assert any("1 mistaken image: true *square*, predicted *circle*" in m.value for m in at.markdown)

    _pick_cell(at, evaluated, "cross", "cross")
    assert {m.label: m.value for m in at.metric}["Images in this cell"] == "3"
    assert any("3 correct images: true *cross*" in m.value for m in at.markdown)


def test_cell_samples_show_their_images_and_probabilities(ws: Workspace, store: Store, evaluated: RunRecord) -> None:
    at = open_page(PAGE)
    _pick_cell(at, evaluated, "square", "circle")
    images = at.get("image")
    assert len(images) == 1
    probs = json.loads((ws.run_dir(evaluated.id) / "predictions.json").read_text())["probs"][ITEMS.index(13)]
    captions = [img.caption for image in images for img in image.proto.imgs]
    assert captions == [f"p(circle) = {probs[0]:.2f} · p(square) = {probs[2]:.2f}"]

    _pick_cell(at, evaluated, "cross", "cross")
    assert len(at.get("image")) == 3


def test_every_validation_image_is_in_a_filterable_table(store: Store, evaluated: RunRecord) -> None:
    at = open_page(PAGE)
    rows = at.dataframe[-1].value  # the per-class table comes first, the validation table last
    assert len(rows) == len(ITEMS)
    assert rows["item"].str.startswith("images/").all()
    assert rows["correct"].tolist() == [lab == p for lab, p in zip(LABELS, PREDS, strict=True)]

    at.selectbox(key=f"eval_outcome-{evaluated.id}").set_value("Wrong").run()
    wrong = at.dataframe[-1].value
    assert list(zip(wrong["label"], wrong["predicted"], strict=True)) == [("circle", "cross"), ("square", "circle")]
    assert any("2 of 9 validation images" in c.value for c in at.caption)

    at.selectbox(key=f"eval_outcome-{evaluated.id}").set_value("All")
    at.selectbox(key=f"eval_predicted-{evaluated.id}").set_value("cross").run()
    assert at.dataframe[-1].value["predicted"].tolist() == ["cross"] * 4
    at.text_input(key=f"eval_contains-{evaluated.id}").set_value("CIRCLE/").run()  # case does not matter
    assert at.dataframe[-1].value["label"].tolist() == ["circle"]
    assert not at.exception, at.exception


def test_a_text_run_lists_its_validation_texts(ws: Workspace, store: Store, text_dataset: DatasetRecord,
                                               minilm_weights: Path) -> None:
    preds = [0, 1, 1, 1, 0, 0]  # texts 0-5 alternate bad/good: texts 2 (bad) and 5 (good) are mistakes
    run = fabricate_text_run(ws, store, text_dataset, minilm_weights, preds)
    at = open_page(PAGE)
    assert {m.label: m.value for m in at.metric}["Validation texts"] == "6"
    assert any("1 mistaken text: true *bad*, predicted *good*" in m.value for m in at.markdown)
    assert not at.get("image"), "texts are not shown as images"

    rows = at.dataframe[-1].value
    assert rows["item"].tolist()[:2] == ["review 0 of the product was awful overall",
                                         "review 1 of the product was lovely overall"]
    at.selectbox(key=f"eval_outcome-{run.id}").set_value("Wrong").run()
    assert at.dataframe[-1].value["item"].str.extract(r"review (\d+)")[0].tolist() == ["2", "5"]
    at.text_input(key=f"eval_contains-{run.id}").set_value("LOVELY").run()
    wrong_lovely = at.dataframe[-1].value
    assert wrong_lovely["label"].tolist() == ["good"] and wrong_lovely["predicted"].tolist() == ["bad"]
    assert any(b.label == "Explain the mistakes" for b in at.button)


def test_the_most_confident_text_mistakes_are_coloured(ws: Workspace, store: Store, text_dataset: DatasetRecord,
                                                       minilm_weights: Path) -> None:
    run = fabricate_text_run(ws, store, text_dataset, minilm_weights, [0, 1, 1, 1, 0, 0])
    at = open_page(PAGE)
    at.button(key=f"eval_explain-{run.id}").click().run()
    assert not at.exception, at.exception
    assert any(c.value.startswith("Integrated Gradients word scores.") for c in at.caption)
    coloured = [h.proto.body for h in at.get("html")]
    assert len(coloured) == 2  # texts 2 and 5, the two mistakes
    assert "awful" in coloured[0] and "lovely" in coloured[1]
    assert all(h.count('title="') == 8 for h in coloured), "every word of 'review N of the product was ...' scored"
    heads = [m.value for m in at.markdown if "→" in m.value]
    assert heads == ["**bad → good (0.82)**", "**good → bad (0.82)**"]


def test_a_test_split_is_shown_apart_from_validation(ws: Workspace, store: Store, dataset: DatasetRecord) -> None:
    run = fabricate_run(store, dataset, "completed", metrics={
        "val_accuracy": 7 / 9, "best_epoch": 3, "split": "folders", "test_accuracy": 0.5, "test_macro_f1": 0.4,
        "test_items": 6})
    write_predictions(ws, run, ITEMS, LABELS, PREDS)
    at = open_page(PAGE)
    assert not at.exception, at.exception
    assert [s.value for s in at.subheader][:2] == ["Test set", "Per class"]
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Test accuracy"], metrics["Test macro F1"], metrics["Test images"]) == ("50.0%", "40.0%", "6")
    assert metrics["Validation accuracy"] == "77.8%"


def test_no_test_section_without_a_test_split(store: Store, evaluated: RunRecord) -> None:
    at = open_page(PAGE)
    assert "Test set" not in [s.value for s in at.subheader]


def test_a_confusion_cell_image_opens_on_explain(store: Store, evaluated: RunRecord) -> None:
    at = open_page(PAGE)
    # the cell holds report positions 3, 4 and 5 (items 6, 7 and 8), most confident (0.82, 0.81, 0.80) first
    _pick_cell(at, evaluated, "cross", "cross")
    at.button(key=f"eval_open-{evaluated.id}-1").click().run()
    assert not at.exception, at.exception
    assert at.session_state["explain_run"] == evaluated.id == at.session_state["run_id"]
    assert at.session_state["explain_request"] == {"run": evaluated.id, "position": 4, "positions": [5, 4, 3]}
    assert [t.value for t in at.title] == ["Explain"]


def test_explain_in_depth_honours_the_tables_filter(store: Store, evaluated: RunRecord) -> None:
    at = open_page(PAGE)
    at.selectbox(key=f"eval_outcome-{evaluated.id}").set_value("Wrong").run()
    at.button(key=f"eval_in_depth-{evaluated.id}").click().run()
    assert not at.exception, at.exception
    assert at.session_state["explain_request"] == {"run": evaluated.id, "position": 2, "positions": [2, 7]}


def test_marked_items_train_again_without_them(ws: Workspace, store: Store, dataset: DatasetRecord,
                                               evaluated: RunRecord, no_workers: None) -> None:
    at = open_page(PAGE)
    assert "Marked items" not in [s.value for s in at.subheader]
    at.session_state["item_marks"] = {dataset.id: {2: "mislabelled", 13: "exclude"}}
    at.run()
    assert "Marked items" in [s.value for s in at.subheader]
    at.button(key=f"eval_retrain-{evaluated.id}").click().run()
    assert not at.exception, at.exception

    new_run = store.get_run(at.session_state["run_id"])
    assert new_run.id != evaluated.id and new_run.status == "queued"
    child = store.get_dataset(new_run.dataset_id)
    assert child.info["parent"] == dataset.id
    assert [(e["item"], e["reason"]) for e in child.info["excluded"]] == [
        ("images/circle/02.png", "mislabelled"), ("images/square/01.png", "exclude")]
    assert child.info["num_items"] == 16
    assert store.get_run(evaluated.id).dataset_id == dataset.id, "the evaluated run keeps its dataset"
    assert at.session_state["item_marks"][dataset.id] == {}
