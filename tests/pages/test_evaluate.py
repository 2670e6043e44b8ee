"""The Evaluate page on a fabricated completed run: headline figures, confusion matrix, drill-down, the decision
threshold, calibration, curves per class; and a trained table run whose confusion cell opens a row on Explain."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from core.artifacts import RunFiles
from core.store import DatasetRecord, RunRecord, Store
from core.workspace import Workspace
from tests.pages.conftest import (
    CLASSES,
    TEXT_CLASSES,
    Planned,
    charts_by_title,
    copy_template,
    fabricate_run,
    fabricate_text_run,
    metrics_shown,
    open_page,
    predictions_of,
    train_template,
    write_predictions,
)

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


# ---- error analysis: the decision threshold, calibration, curves per class, the test split -----------------------

# six reviews (texts 0-5 alternate bad/good) and the probability of "good" the model gave each
BINARY_LABELS = [0, 1, 0, 1, 0, 1]
P_GOOD = [0.1, 0.9, 0.6, 0.7, 0.3, 0.4]


def _cm(at) -> list[list[int]]:  # type: ignore[no-untyped-def]
    figure = charts_by_title(at)["Confusion matrix (click a cell)"]
    return next(t for t in figure["data"] if t["type"] == "heatmap")["z"]


def test_the_decision_threshold_redraws_the_confusion_matrix(ws: Workspace, store: Store,
                                                             text_dataset: DatasetRecord) -> None:
    run = fabricate_run(store, text_dataset, "completed", metrics={"val_accuracy": 4 / 6, "best_epoch": 1})
    files = RunFiles(ws.run_dir(run.id))
    write_predictions(ws, run, list(range(6)), BINARY_LABELS, [0] * 6, classes=TEXT_CLASSES)
    files.write_json(files.predictions, {"items": list(range(6)), "labels": BINARY_LABELS,
                                         "probs": [[1 - p, p] for p in P_GOOD]})
    at = open_page(PAGE)
    # at 0.5 (the argmax): texts 1 and 3 rightly good, 2 wrongly, 5 missed; texts 0 and 4 rightly bad
    assert _cm(at) == [[2, 1], [1, 2]]
    assert metrics_shown(at)["Precision (good)"] == "66.7%"

    at.slider(key=f"eval-{run.id}-threshold").set_value(0.65).run()
    assert not at.exception, at.exception
    assert _cm(at) == [[3, 0], [1, 2]]  # text 2 (0.6) is now bad, rightly
    shown = metrics_shown(at)
    assert (shown["Accuracy at this threshold"], shown["Precision (good)"], shown["Recall (good)"],
            shown["F1 (good)"]) == ("83.3%", "100.0%", "66.7%", "80.0%")
    _pick_cell(at, run, "good", "bad")
    assert metrics_shown(at)["Texts in this cell"] == "1"  # text 5 (0.4)
    assert at.dataframe(key=f"eval_cell_rows-{run.id}").value["item"].tolist() == [
        "review 5 of the product was lovely overall"]

    at.slider(key=f"eval-{run.id}-threshold").set_value(0.35).run()
    assert _cm(at) == [[2, 1], [0, 3]]  # text 5 (0.4) found, text 2 (0.6) still a false alarm


def test_no_threshold_for_more_than_two_classes(store: Store, evaluated: RunRecord) -> None:
    at = open_page(PAGE)
    assert not at.slider
    assert _cm(at) == [[2, 1, 0], [0, 3, 0], [1, 0, 2]]


# raw logits whose softmax says 0.9 for the predicted class (log 0.9 against log 0.05 twice) on every item, seven of
# the nine right: over-confident by 0.9 - 7/9. Divided by T = 2 they say sqrt(0.9) / (sqrt(0.9) + 2 sqrt(0.05)).
T = 2.0
RAW_CONFIDENCE = 0.9
SCALED_CONFIDENCE = np.sqrt(0.9) / (np.sqrt(0.9) + 2 * np.sqrt(0.05))


def _logits(preds: list[int]) -> np.ndarray:
    logits = np.full((len(preds), len(CLASSES)), np.log(0.05))
    logits[np.arange(len(preds)), preds] = np.log(0.9)
    return logits


def test_the_reliability_diagram_before_and_after_temperature_scaling(ws: Workspace, store: Store,
                                                                      dataset: DatasetRecord) -> None:
    run = fabricate_run(store, dataset, "completed", metrics={"val_accuracy": 7 / 9, "best_epoch": 3})
    write_predictions(ws, run, ITEMS, LABELS, PREDS)
    files = RunFiles(ws.run_dir(run.id))
    logits = _logits(PREDS)
    scaled = np.exp(logits / T) / np.exp(logits / T).sum(axis=1, keepdims=True)
    files.write_json(files.predictions, {"items": ITEMS, "labels": LABELS, "probs": scaled.tolist(),
                                         "logits": logits.tolist()})
    files.write_json(files.target, {"classes": list(CLASSES), "temperature": T})
    at = open_page(PAGE)
    assert not at.exception, at.exception
    before, after = abs(RAW_CONFIDENCE - 7 / 9), abs(SCALED_CONFIDENCE - 7 / 9)
    assert f"{before:.1%}" == "12.2%" and f"{after:.1%}" == "9.8%"
    sentence = ("Temperature scaling (T = 2) lowered the validation ECE from 12.2% to 9.8%; shown probabilities are "
                "calibrated; the raw logits are in predictions.json.")
    assert sentence in [m.value for m in at.markdown]
    shown = metrics_shown(at)
    assert (shown["ECE before (validation)"], shown["ECE (validation)"]) == ("12.2%", "9.8%")
    lines = {t["name"]: t for t in charts_by_title(at)["Reliability diagram"]["data"]}
    raw, calibrated = lines["before temperature scaling (raw logits)"], lines["after temperature scaling (shown)"]
    assert raw["x"] == pytest.approx([RAW_CONFIDENCE]) and raw["y"] == pytest.approx([7 / 9])
    assert calibrated["x"] == pytest.approx([SCALED_CONFIDENCE]) and calibrated["y"] == pytest.approx([7 / 9])
    assert lines["perfectly calibrated"]["x"] == [0, 1]


def test_a_run_without_logits_shows_its_probabilities_diagram_only(store: Store, evaluated: RunRecord) -> None:
    at = open_page(PAGE)
    assert not at.exception, at.exception
    names = [t["name"] for t in charts_by_title(at)["Reliability diagram"]["data"]]
    assert names == ["perfectly calibrated", "the model's probabilities (shown)"]
    assert any(m.value.startswith("The validation ECE is ") and "predates temperature scaling" in m.value
               for m in at.markdown)
    assert "ECE before (validation)" not in metrics_shown(at)


def test_roc_and_precision_recall_curves_per_class(store: Store, evaluated: RunRecord) -> None:
    at = open_page(PAGE)
    charts = charts_by_title(at)
    roc = {t["name"]: t for t in charts["ROC curves (one-vs-rest)"]["data"]}
    # p(cross) of the three crosses is 0.80, 0.81, 0.82; of the six others at most 0.10 but for a circle taken for a
    # cross at 0.82: of the 18 (cross, other) pairs two are ordered wrong and one tied, so AUC = (18 - 2.5) / 18
    assert roc["cross (AUC 0.861)"]["x"][-1] == 1
    assert sorted(roc) == ["circle (AUC 0.639)", "cross (AUC 0.861)", "guessing", "square (AUC 0.833)"]
    pr = [t["name"] for t in charts["Precision-recall curves (one-vs-rest)"]["data"]]
    assert len(pr) == 3 and pr[1].startswith("cross (AP ")


def test_the_test_split_has_its_own_confusion_matrix(ws: Workspace, store: Store, dataset: DatasetRecord) -> None:
    run = fabricate_run(store, dataset, "completed", metrics={"val_accuracy": 7 / 9, "best_epoch": 3,
                                                              "test_accuracy": 0.5, "test_macro_f1": 0.4})
    write_predictions(ws, run, ITEMS, LABELS, PREDS)
    files = RunFiles(ws.run_dir(run.id))
    # four test images: a circle and a square right, a cross taken for a circle, a square for a cross
    files.write_json(files.test_predictions, {"items": [3, 9, 15, 16], "labels": [0, 1, 2, 2],
                                              "probs": [[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.1, 0.2, 0.7],
                                                        [0.1, 0.6, 0.3]]})
    at = open_page(PAGE)
    assert not at.exception, at.exception
    shown = metrics_shown(at)
    assert (shown["Test accuracy"], shown["Test images"], shown["Validation accuracy"]) == ("50.0%", "4", "77.8%")
    test_cm = next(t for t in charts_by_title(at)["Test confusion matrix"]["data"] if t["type"] == "heatmap")
    assert test_cm["z"] == [[1, 0, 0], [1, 0, 0], [0, 1, 1]]
    assert any(m.value.startswith("The test ECE is ") for m in at.markdown)
    assert _cm(at) == [[2, 1, 0], [0, 3, 0], [1, 0, 2]], "the main matrix stays validation's"


# ---- a table run: a confusion cell's row opens on Explain ---------------------------------------------------------


def _accounts_csv(rows: int = 60) -> str:
    """Accounts: a plan and a fee; the plan decides whether they left ("yes" for basic), one row in six flipped."""
    lines = ["plan,fee,left"]
    for i in range(rows):
        plan = ("basic", "pro", "team")[i % 3]
        left = (plan == "basic") != (i % 6 == 1)
        lines.append(f"{plan},{10 + (i * 7) % 40},{'yes' if left else 'no'}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def table_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with a table and a quick MLP run on it, trained once by the worker in this process."""
    home = tmp_path_factory.mktemp("evaluate-table-home")
    csv = tmp_path_factory.mktemp("evaluate-table") / "accounts.csv"
    csv.write_text(_accounts_csv())
    return train_template(home, [Planned(csv, "accounts", {"target": "left"},
                                         settings={"epochs": 4, "early_stopping_patience": 0})])


@pytest.fixture
def table_run(ws: Workspace, table_home: Path) -> Iterator[RunRecord]:
    yield copy_template(table_home, ws).list_runs(["completed"])[0]


def test_a_confusion_cell_row_opens_on_explain(ws: Workspace, table_run: RunRecord) -> None:
    run = table_run
    found = predictions_of(ws, run)
    labels, probs = np.asarray(found["labels"]), np.asarray(found["probs"])
    classes = json.loads(RunFiles(ws.run_dir(run.id)).labels.read_text())
    # the cell of the commonest (true, predicted) pair, its rows most confident first, as the page orders them
    pairs = list(zip(labels.tolist(), probs.argmax(1).tolist(), strict=True))
    t, p = max(set(pairs), key=pairs.count)
    in_cell = [i for i in np.argsort(-probs[:, p], kind="stable") if labels[i] == t and probs[i].argmax() == p]
    at = open_page(PAGE)
    _pick_cell(at, run, classes[t], classes[p])
    rows = at.dataframe(key=f"eval_cell_rows-{run.id}").value
    assert len(rows) == min(len(in_cell), 48) and rows["item"].str.startswith("line ").all()

    # a click on the cell's second row (Streamlit's selection state, which AppTest cannot click)
    at.session_state[f"eval_cell_rows-{run.id}"] = {"selection": {"rows": [1], "columns": [], "cells": []}}
    at.run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Explain"]
    item = at.selectbox(key=f"explain_table_item-{run.id}")
    assert item.value == in_cell[1] and len(item.options) == len(in_cell)  # the cell's rows, offered beside it
    shown_row = next(d.value for d in at.dataframe if "plan" in d.value.columns)
    dataset_row = _accounts_csv().splitlines()[1 + int(found["items"][in_cell[1]])].split(",")
    assert shown_row[["plan", "fee"]].astype(str).iloc[0].tolist() == dataset_row[:2]
