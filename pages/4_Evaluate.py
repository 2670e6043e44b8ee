"""Evaluate: how a finished run does on its validation images, class by class, and which images it
confuses, down to the pictures in any cell of the confusion matrix.

Everything comes from `core.evaluation.run_report` on the run's saved predictions (the best epoch's),
so this page trains nothing and loads no model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core import data
from core.artifacts import RunFiles
from core.errors import GlassboxError
from core.evaluation import confident_mistakes, run_report
from ui import charts, explain_views, formatting, thumbnails
from ui.errors import user_errors
from ui.shell import setup

studio = setup("Evaluate", icon=":material/analytics:")
state = st.session_state
MAX_SAMPLES = 48
MISTAKES_TO_EXPLAIN = 12


@st.cache_data(max_entries=32, show_spinner=False)
def _report(run_dir: str, mtime: float) -> dict[str, Any]:
    """The run's report, recomputed only when its predictions file changes (a resumed run)."""
    return run_report(RunFiles(Path(run_dir)))


@st.cache_data(max_entries=32, show_spinner=False)
def _items(dataset_dir: str, dataset_id: str) -> list[str]:
    """Each dataset item's reference (an image's path under the dataset folder), in the order the
    report's item indices refer to."""
    record = studio.store.get_dataset(dataset_id)
    return list(data.modality(record.modality).items(Path(dataset_dir), record.info))


st.title("Evaluate")

completed = studio.store.list_runs(["completed"])
if not completed:
    st.info("No finished run to evaluate yet: train one, or wait for the current one to complete.",
            icon=":material/info:")
    st.page_link("pages/3_Runs.py", label="Go to Runs", icon=":material/monitoring:")
    st.page_link("pages/2_Train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()

dataset_names = {d.id: d.name for d in studio.store.list_datasets()}
by_id = {r.id: r for r in completed}
if state.get("eval_run") not in by_id:
    state["eval_run"] = state["run_id"] if state.get("run_id") in by_id else completed[0].id
run_id = st.selectbox(
    "Completed run", list(by_id), key="eval_run",
    format_func=lambda i: f"{i} · {by_id[i].backbone} on {dataset_names.get(by_id[i].dataset_id, by_id[i].dataset_id)}"
                          f" · {formatting.percent(by_id[i].metrics.get('val_accuracy'))}",
)
state["run_id"] = run_id
run = by_id[run_id]
files = RunFiles(studio.ws.run_dir(run_id))

report: dict[str, Any] | None = None
with user_errors("Cannot read this run's results: "):
    mtime = files.predictions.stat().st_mtime if files.predictions.exists() else 0.0
    report = _report(str(files.root), mtime)
if report is None:
    st.stop()

classes: list[str] = report["classes"]
labels = np.asarray(report["labels"], dtype=int)
probs = np.asarray(report["probs"], dtype=float)
preds = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=int)

# ---- headline figures and per-class table ------------------------------------------------------------
cols = st.columns(4)
cols[0].metric("Validation accuracy", formatting.percent(report["accuracy"]),
               help="Share of validation images whose most probable class is the true one.")
cols[1].metric("Macro F1", formatting.percent(report["macro_f1"]),
               help="F1 averaged over classes with equal weight: a weak small class pulls it down.")
cols[2].metric("Validation images", len(labels))
cols[3].metric("Best epoch", run.metrics.get("best_epoch", "—"))
st.caption("Scores of the best epoch's model on the validation images, which it never trained on.")

st.subheader("Per class")
st.dataframe(
    pd.DataFrame(report["per_class"]),
    hide_index=True,
    column_config={
        "class": st.column_config.TextColumn("class"),
        "precision": st.column_config.NumberColumn("precision", format="%.3f",
                                                   help="Of the images predicted as this class, the share that are."),
        "recall": st.column_config.NumberColumn("recall", format="%.3f",
                                                help="Of the images of this class, the share found."),
        "f1": st.column_config.NumberColumn("F1", format="%.3f"),
        "support": st.column_config.NumberColumn("support", help="Validation images of this class."),
    },
)

# ---- confusion matrix with drill-down ----------------------------------------------------------------
st.subheader("Confusion matrix")
true_key, pred_key, chart_key = f"eval_true-{run_id}", f"eval_pred-{run_id}", f"cm-{run_id}"
matrix = np.asarray(report["confusion"], dtype=int)
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
    st.metric("Images in this cell", int(matrix[t_idx, p_idx]))
    row_total = int(matrix[t_idx].sum())
    if row_total:
        st.caption(f"{formatting.percent(matrix[t_idx, p_idx] / row_total)} of the {row_total} validation "
                   f"image(s) of **{true_class}**.")

in_cell = np.flatnonzero((labels == t_idx) & (preds == p_idx))
in_cell = in_cell[np.argsort(-probs[in_cell, p_idx], kind="stable")] if len(in_cell) else in_cell
verdict = "correct" if t_idx == p_idx else "mistaken"
st.markdown(f"**{len(in_cell)} {verdict} image(s): true *{true_class}*, predicted *{pred_class}*** "
            "(most confident first)")
if len(in_cell):
    refs: list[str] | None = None
    try:
        refs = _items(str(studio.ws.dataset_dir(run.dataset_id)), run.dataset_id)
    except GlassboxError as exc:  # the dataset was deleted since, or its files damaged
        st.info(f"The images cannot be shown: {exc}", icon=":material/image_not_supported:")
    if refs is not None:
        shown = in_cell[:MAX_SAMPLES]
        captions = [
            f"p({pred_class}) = {probs[i, p_idx]:.2f}"
            + ("" if t_idx == p_idx else f" · p({true_class}) = {probs[i, t_idx]:.2f}")
            for i in shown
        ]
        picked = [refs[int(report["items"][i])] for i in shown]
        if run.modality == "images":
            dataset_dir = studio.ws.dataset_dir(run.dataset_id)
            thumbnails.grid([dataset_dir / ref for ref in picked], captions, per_row=6)
        else:
            st.dataframe(pd.DataFrame({"item": picked, "probabilities": captions}), hide_index=True)
        if len(in_cell) > MAX_SAMPLES:
            st.caption(f"Showing the {MAX_SAMPLES} most confident of {len(in_cell)}.")

# ---- explain the mistakes ----------------------------------------------------------------------------
mistakes = confident_mistakes(report, MISTAKES_TO_EXPLAIN) if run.modality == "images" else []
if mistakes:
    st.subheader("Explain the mistakes")
    st.caption(f"Where the model looked when it was most sure and wrong: a map of the predicted class for each of "
               f"the {len(mistakes)} most confident mistakes.")
    maps_key = f"eval_mistake_maps-{run_id}"
    if st.button("Explain the mistakes", key=f"eval_explain-{run_id}", icon=":material/lightbulb:"):
        with user_errors("Cannot explain the mistakes: "), st.spinner("Explaining the mistakes..."):
            refs = _items(str(studio.ws.dataset_dir(run.dataset_id)), run.dataset_id)
            paths = [studio.ws.dataset_dir(run.dataset_id) / refs[int(report["items"][i])] for i in mistakes]
            subject = explain_views.explainable_model(files, studio.ws.cache_dir)
            state[maps_key] = explain_views.map_thumbnails(subject, paths, [int(preds[i]) for i in mistakes])
    if maps_key in state:
        method, overlays = state[maps_key]
        st.caption(f"{method} maps. True class → predicted class (its probability).")
        shown = [(png, f"{classes[labels[i]]} → {classes[preds[i]]} ({probs[i, preds[i]]:.2f})")
                 for png, i in zip(overlays, mistakes, strict=True) if png is not None]
        for start in range(0, len(shown), 6):
            for column, (png, caption) in zip(st.columns(6), shown[start:start + 6], strict=False):
                column.image(png, caption=caption, width=thumbnails.SIZE + 32)
    st.page_link("pages/5_Explain.py", label="Explain one image in depth", icon=":material/lightbulb:")
