"""Evaluate's view of a classifier: how a finished run does on its validation items, class by class, which
classes it confuses (at a decision threshold of the user's choosing for two classes), down to the items in any
cell of the confusion matrix, each one click from its explanation; ROC and precision-recall curves per class and
how far its probabilities can be trusted (`ui.error_analysis`); the test split apart when the user made one; a
table of every validation item to sort and filter, its most confident mistakes explained, and a new run without
the items marked on Explain.

Everything comes from `core.evaluation.run_report` on the run's saved predictions (the best epoch's), so this
view trains nothing and loads a model only to explain the mistakes on request.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core import datasets, runs
from core.config import TrainConfig
from core.data import Modality
from core.errors import GlassboxError
from core.evaluation import OUTCOMES, confident_mistakes, filter_table, run_report, validation_table
from ui import baselines, charts, error_analysis, explain_views, formatting, run_picker, thumbnails, views
from ui.errors import user_errors
from ui.shell import Studio

MAX_SAMPLES = 48
MISTAKES_TO_EXPLAIN = 12
TABLE_ROWS = 1000
ALL_CLASSES = "All classes"
# the figures of a run beside accuracy and macro F1 when it has them (two classes: imbalance-proof scores)
_BINARY = (("roc_auc", "ROC-AUC", "Area under the ROC curve: the chance that a random positive item scores above "
                                  "a random negative one (0.5 is guessing)."),
           ("pr_auc", "PR-AUC", "Area under the precision-recall curve (average precision): its floor is the "
                                "positives' share, not 0.5, so imbalance does not flatter it."))


def show(studio: Studio, picked: run_picker.Picked, spec: Modality) -> None:
    """The view for one completed classification run (the page has picked it)."""
    run, files = picked.run, picked.files
    report: dict[str, Any] | None = None
    refs: list[str] | None = None
    with user_errors("Cannot read this run's results: "):
        report = run_picker.report(files)
    if report is None:
        return
    try:
        refs = run_picker.items(studio, run)
    except GlassboxError as exc:  # the dataset was deleted since, or its files damaged: the figures still stand
        st.info(f"The validation {spec.noun} cannot be shown: {exc}", icon=":material/info:")

    _headline(studio, picked, report, spec)
    _per_class(report, spec)
    _confusion(studio, picked, report, refs, spec)
    st.subheader("ROC and precision-recall curves")
    error_analysis.curves(report, f"eval_curves-{run.id}")
    st.subheader("Calibration")
    error_analysis.calibration(report, f"eval_calibration-{run.id}")
    rows = _validation_items(picked, report, refs, spec) if refs is not None else None
    if refs is not None:
        _mistakes(studio, picked, report, refs, spec)
    _marked(studio, picked, refs, spec)
    if refs is not None and rows is not None and len(rows):
        if st.button(f"Explain one {spec.item_noun} in depth", key=f"eval_in_depth-{run.id}",
                     icon=":material/lightbulb:",
                     help="Opens Explain on the first row of the table above, offering the rows of its filter."):
            run_picker.open_in_explain(run.id, int(rows.index[0]), rows.index)
    else:
        st.page_link("pages/5_Explain.py", label=f"Explain one {spec.item_noun} in depth", icon=":material/lightbulb:")


def _headline(studio: Studio, picked: run_picker.Picked, report: dict[str, Any], spec: Modality) -> None:
    """Accuracy and macro F1 (and for two classes ROC-AUC and PR-AUC), the baselines, the test set's figures."""
    run, noun = picked.run, spec.noun
    binary = [(key, title, about) for key, title, about in _BINARY if run.metrics.get(f"val_{key}") is not None]
    cols = st.columns(4 + len(binary))
    cols[0].metric("Validation accuracy", formatting.percent(report["accuracy"]),
                   help=f"Share of validation {noun} whose most probable class is the true one.")
    cols[1].metric("Macro F1", formatting.percent(report["macro_f1"]),
                   help="F1 averaged over classes with equal weight: a weak small class pulls it down.")
    for col, (key, title, about) in zip(cols[2:], binary, strict=False):
        col.metric(title, f"{run.metrics[f'val_{key}']:.3f}", help=about)
    cols[-2].metric(f"Validation {noun}", len(report["labels"]))
    cols[-1].metric("Best epoch", run.metrics.get("best_epoch", "—"))
    st.caption(f"Scores of the best epoch's model on the validation {noun}, which it never trained on.")
    baselines.show(studio, run)
    if "test_accuracy" in run.metrics or picked.files.test_predictions.exists():  # the user's own test split
        _test_split(picked, spec)


def _test_split(picked: run_picker.Picked, spec: Modality) -> None:
    """The test split's figures apart from validation's: from test_predictions.json when the run kept it (its
    confusion matrix and calibration too), else from the run's metrics."""
    run, noun = picked.run, spec.noun
    test: dict[str, Any] | None = None
    if picked.files.test_predictions.exists():
        with user_errors("Cannot read this run's test predictions: "):
            test = run_report(picked.files, "test")
    st.subheader("Test set")
    cols = st.columns(4)
    figures = test if test is not None else {"accuracy": run.metrics.get("test_accuracy"),
                                             "macro_f1": run.metrics.get("test_macro_f1")}
    cols[0].metric("Test accuracy", formatting.percent(figures["accuracy"]))
    cols[1].metric("Test macro F1", formatting.percent(figures["macro_f1"]))
    cols[2].metric(f"Test {noun}", len(test["labels"]) if test is not None else run.metrics.get("test_items", "—"))
    st.caption(f"The same model on the dataset's own test {noun}, scored once after training: unlike validation, "
               "they played no part in choosing the best epoch. Everything below is about validation.")
    if test is None or not len(test["labels"]):
        return
    with st.expander(f"Test {noun}: confusion matrix and calibration"):
        figure = charts.confusion_matrix(test["confusion"], test["classes"])
        figure.update_layout(title="Test confusion matrix", clickmode="none")
        st.plotly_chart(figure, key=f"eval_test_cm-{run.id}")
        error_analysis.calibration(test, f"eval_test_calibration-{run.id}", part="test")


def _per_class(report: dict[str, Any], spec: Modality) -> None:
    noun = spec.noun
    st.subheader("Per class")
    st.dataframe(
        pd.DataFrame(report["per_class"]),
        hide_index=True,
        column_config={
            "class": st.column_config.TextColumn("class"),
            "precision": st.column_config.NumberColumn(
                "precision", format="%.3f", help=f"Of the {noun} predicted as this class, the share that are."),
            "recall": st.column_config.NumberColumn("recall", format="%.3f",
                                                    help=f"Of the {noun} of this class, the share found."),
            "f1": st.column_config.NumberColumn("F1", format="%.3f"),
            "support": st.column_config.NumberColumn("support", help=f"Validation {noun} of this class."),
        },
    )


def _confusion(studio: Studio, picked: run_picker.Picked, report: dict[str, Any], refs: list[str] | None,
               spec: Modality) -> None:
    """The confusion matrix (for two classes at the decision threshold chosen above it), and the items of the cell
    clicked (or chosen in the two select boxes), each one click from its explanation."""
    state = st.session_state
    run_id, noun, item_noun = picked.run.id, spec.noun, spec.item_noun
    classes: list[str] = report["classes"]
    labels = np.asarray(report["labels"], dtype=int)
    probs = np.asarray(report["probs"], dtype=float)
    st.subheader("Confusion matrix")
    decided = error_analysis.threshold(report, f"eval-{run_id}") if len(labels) else None
    if decided is not None:
        preds, matrix = decided["predictions"], np.asarray(decided["confusion"], dtype=int)
    else:
        preds = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=int)
        matrix = np.asarray(report["confusion"], dtype=int)
    true_key, pred_key, chart_key = f"eval_true-{run_id}", f"eval_pred-{run_id}", f"cm-{run_id}"
    if true_key not in state or pred_key not in state:
        # start on the most frequent mistake, which is what one usually wants to look at first
        off = matrix.copy()
        np.fill_diagonal(off, -1)
        t, p = np.unravel_index(int(off.argmax()), off.shape) if off.size and off.max() > 0 else (0, 0)
        state[true_key], state[pred_key] = classes[int(t)], classes[int(p)]

    def _on_cell_click() -> None:
        """A click on the matrix selects that cell's marker; mirror it into the two selectboxes."""
        event = state.get(chart_key) or {}
        for point in event.get("selection", {}).get("points", []):
            true_name, pred_name = point.get("y"), point.get("x")
            if true_name in classes and pred_name in classes:
                state[true_key], state[pred_key] = true_name, pred_name
                return

    chart_col, pick_col = st.columns([3, 2], gap="large")
    with chart_col:
        selected_cell = (classes.index(state[true_key]), classes.index(state[pred_key]))
        st.plotly_chart(charts.confusion_matrix(matrix.tolist(), classes, selected=selected_cell), key=chart_key,
                        on_select=_on_cell_click, selection_mode="points")
    with pick_col:
        st.markdown("**Look at one cell**")
        st.caption("Click a cell in the matrix, or choose it here.")
        true_class = st.selectbox("True class", classes, key=true_key)
        pred_class = st.selectbox("Predicted class", classes, key=pred_key)
        t_idx, p_idx = classes.index(true_class), classes.index(pred_class)
        st.metric(f"{noun.capitalize()} in this cell", int(matrix[t_idx, p_idx]))
        row_total = int(matrix[t_idx].sum())
        if row_total:
            st.caption(f"{formatting.percent(matrix[t_idx, p_idx] / row_total)} of the {row_total} validation "
                       f"{noun} of **{true_class}**.")

    in_cell = np.flatnonzero((labels == t_idx) & (preds == p_idx))
    in_cell = in_cell[np.argsort(-probs[in_cell, p_idx], kind="stable")] if len(in_cell) else in_cell
    verdict = "correct" if t_idx == p_idx else "mistaken"
    counted = noun if len(in_cell) != 1 else item_noun
    st.markdown(f"**{len(in_cell)} {verdict} {counted}: true *{true_class}*, predicted *{pred_class}*** "
                "(most confident first)")
    if not len(in_cell) or refs is None:
        return
    shown = in_cell[:MAX_SAMPLES]
    picked_refs = [refs[int(report["items"][i])] for i in shown]
    if spec.shows_items_as == "thumbnails":
        captions = [
            f"p({pred_class}) = {formatting.probability(probs[i, p_idx])}"
            + ("" if t_idx == p_idx else f" · p({true_class}) = {formatting.probability(probs[i, t_idx])}")
            for i in shown
        ]
        dataset_dir = studio.ws.dataset_dir(picked.run.dataset_id)
        opened = thumbnails.grid([dataset_dir / ref for ref in picked_refs], captions, per_row=6, button="Explain",
                                 key=f"eval_open-{run_id}")
        if opened is not None:
            run_picker.open_in_explain(run_id, int(shown[opened]), in_cell)
    else:
        st.caption(f"Click a row to explain that {item_noun}.")
        cell_rows = st.dataframe(
            pd.DataFrame({"item": picked_refs, f"p({pred_class})": probs[shown, p_idx],
                          f"p({true_class})": probs[shown, t_idx]}),  # one column when the cell is correct
            hide_index=True, key=f"eval_cell_rows-{run_id}", on_select="rerun", selection_mode="single-row",
            column_config={"item": st.column_config.TextColumn(item_noun, width="large"),
                           **{f"p({c})": st.column_config.NumberColumn(f"p({c})", format=formatting.PROBABILITY_FORMAT)
                              for c in (pred_class, true_class)}},
        )
        if cell_rows.selection.rows:
            run_picker.open_in_explain(run_id, int(shown[cell_rows.selection.rows[0]]), in_cell)
    if len(in_cell) > MAX_SAMPLES:
        st.caption(f"Showing the {MAX_SAMPLES} most confident of {len(in_cell)}; the table below holds them all.")


def _validation_items(picked: run_picker.Picked, report: dict[str, Any], refs: list[str],
                      spec: Modality) -> pd.DataFrame:
    """Every validation item, sortable and filterable; returns the rows the filters keep."""
    run_id, noun, item_noun = picked.run.id, spec.noun, spec.item_noun
    classes: list[str] = report["classes"]
    st.subheader(f"All validation {noun}")
    st.caption("Click a column's header to sort by it. Confidence is the probability of the predicted class; "
               "p(label) that of the true one.")
    table = validation_table(report, refs)
    outcome_col, label_col, pred_col, search_col = st.columns([1, 1, 1, 2])
    outcome = outcome_col.selectbox("Outcome", OUTCOMES, key=f"eval_outcome-{run_id}")
    label_filter = label_col.selectbox("Label", [ALL_CLASSES, *classes], key=f"eval_label-{run_id}")
    pred_filter = pred_col.selectbox("Prediction", [ALL_CLASSES, *classes], key=f"eval_predicted-{run_id}")
    contains = search_col.text_input("Containing", key=f"eval_contains-{run_id}",
                                     placeholder=spec.search_hint, help="Case does not matter.")
    rows = filter_table(table, outcome, None if label_filter == ALL_CLASSES else label_filter,
                        None if pred_filter == ALL_CLASSES else pred_filter, contains)
    st.caption(f"{len(rows)} of {len(table)} validation {noun}"
               + (f"; the first {TABLE_ROWS} are shown, download them all below." if len(rows) > TABLE_ROWS else "."))
    table_view = st.dataframe(
        rows.head(TABLE_ROWS), hide_index=True, key=f"eval_table-{run_id}", on_select="rerun",
        selection_mode="single-row", placeholder=formatting.MISSING,
        column_config={
            "item": st.column_config.TextColumn(item_noun, width="large"),
            "label": st.column_config.TextColumn("label"),
            "predicted": st.column_config.TextColumn("prediction"),
            "confidence": st.column_config.ProgressColumn("confidence", min_value=0.0, max_value=1.0,
                                                          format=formatting.PROBABILITY_FORMAT),
            "p_label": st.column_config.NumberColumn("p(label)", format=formatting.PROBABILITY_FORMAT),
            "correct": st.column_config.CheckboxColumn("correct"),
        },
    )
    if table_view.selection.rows:  # a click on a row opens it on Explain, among the rows of this filter
        run_picker.open_in_explain(run_id, int(rows.index[table_view.selection.rows[0]]), rows.index)
    st.download_button("Download these rows (CSV)", rows.to_csv(index=False).encode("utf-8"),
                       file_name=f"{run_id}-validation.csv", mime="text/csv", key=f"eval_download-{run_id}",
                       icon=":material/download:")
    return rows


def _mistakes(studio: Studio, picked: run_picker.Picked, report: dict[str, Any], refs: list[str],
              spec: Modality) -> None:
    """The most confident mistakes, each explained for the class it was taken for by the modality's own way
    (`ui.views`: a map per image, coloured words per text, the strongest columns per row)."""
    state = st.session_state
    run, files, run_id = picked.run, picked.files, picked.run.id
    mistakes = confident_mistakes(report, MISTAKES_TO_EXPLAIN)
    explainer = views.of(run.modality).mistakes
    if not mistakes or not explainer:
        return
    classes: list[str] = report["classes"]
    labels = np.asarray(report["labels"], dtype=int)
    probs = np.asarray(report["probs"], dtype=float)
    preds = probs.argmax(axis=1)
    st.subheader("Explain the mistakes")
    st.caption(f"Why the model decided as it did when it was most sure and wrong: the {len(mistakes)} most confident "
               f"mistakes, each explained for the class it was taken for.")
    maps_key = f"eval_mistake_maps-{run_id}"
    if st.button("Explain the mistakes", key=f"eval_explain-{run_id}", icon=":material/lightbulb:"):
        with user_errors("Cannot explain the mistakes: "), st.spinner("Explaining the mistakes..."):
            items = [int(report["items"][i]) for i in mistakes]
            subject = explain_views.explainable_model(files, studio.ws.cache_dir)
            state[maps_key] = views.view(explainer)(studio, run, subject, items, [refs[i] for i in items],
                                                    [int(preds[i]) for i in mistakes])
    if maps_key not in state:
        return
    method, shown_maps = state[maps_key]
    st.caption(f"{method} {spec.explanation_noun}. True class → predicted class (its probability).")
    captions = [f"{classes[labels[i]]} → {classes[preds[i]]} ({formatting.probability(probs[i, preds[i]])})"
                for i in mistakes]
    opened_mistake = None
    if spec.shows_items_as == "thumbnails":
        pictures = [(i, png, c) for i, png, c in zip(mistakes, shown_maps, captions, strict=True) if png is not None]
        for start in range(0, len(pictures), 6):
            for column, (i, png, caption) in zip(st.columns(6), pictures[start:start + 6], strict=False):
                column.image(png, caption=caption, width=thumbnails.SIZE + 32)
                if column.button("Explain", key=f"eval_open_mistake-{run_id}-{i}", icon=":material/lightbulb:"):
                    opened_mistake = i
    else:
        for i, shown, caption in zip(mistakes, shown_maps, captions, strict=True):
            st.markdown(f"**{caption}**")
            if shown is not None:
                st.html(shown)
            if st.button("Explain in depth", key=f"eval_open_mistake-{run_id}-{i}", icon=":material/lightbulb:"):
                opened_mistake = i
    if opened_mistake is not None:
        run_picker.open_in_explain(run_id, opened_mistake, mistakes)


def _marked(studio: Studio, picked: run_picker.Picked, refs: list[str] | None, spec: Modality) -> None:
    """The items marked on Explain to leave out, and a new run without them."""
    run, run_id, noun, item_noun = picked.run, picked.run.id, spec.noun, spec.item_noun
    marked = run_picker.marks(run.dataset_id)
    if not marked or refs is None:
        return
    st.subheader("Marked items")
    st.caption(f"{noun.capitalize()} marked on Explain as mislabelled or to exclude. A new run trains on a copy of "
               f"the dataset without them, with this run's settings; this run keeps its dataset.")
    st.dataframe(pd.DataFrame({"item": [refs[i] for i in marked], "mark": list(marked.values())}), hide_index=True,
                 column_config={"item": st.column_config.TextColumn(item_noun, width="large")})
    retrain, clear = st.columns([3, 1])
    if retrain.button(f"Train again without these {len(marked)} {noun if len(marked) != 1 else item_noun}",
                      type="primary", key=f"eval_retrain-{run_id}", icon=":material/play_arrow:"):
        new_run = None
        with user_errors("Could not start the new run: "):
            child = datasets.derive(studio.ws, studio.store, run.dataset_id, dict(marked))
            new_run = runs.create(studio.ws, studio.store,
                                  TrainConfig.from_dict(run.config).updated(dataset_id=child.id))
        if new_run is not None:
            marked.clear()
            st.session_state["run_id"] = new_run.id
            st.switch_page("pages/3_Runs.py")
    clear.button("Clear the marks", key=f"eval_clear_marks-{run_id}", on_click=marked.clear)
