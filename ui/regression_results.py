"""Evaluate's view of a regression: how far a finished run's predictions fall from the true values of the
validation items, in the target's own units (R², MAE, RMSE), beside its baselines; predicted against true values
and the residuals as plots; and every validation item, the worst predicted first, to read what the model gets
wrong and open one on Explain.

Everything comes from the run's saved predictions (the best epoch's `predictions.json`), so this view trains
nothing and loads no model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core import tasks
from core.artifacts import target_state
from core.data import Modality
from core.errors import GlassboxError
from ui import baselines, charts, error_analysis, formatting, run_picker
from ui.errors import user_errors
from ui.shell import Studio

TABLE_ROWS = 1000


def show(studio: Studio, picked: run_picker.Picked, spec: Modality) -> None:
    """The view for one completed regression run (the page has picked it)."""
    run, files = picked.run, picked.files
    task = tasks.of_run(run.config)
    report: dict[str, Any] | None = None
    with user_errors("Cannot read this run's results: "):
        report = run_picker.report(files)
    if report is None:
        return
    truth = np.asarray(report["labels"], dtype=float)
    predicted = np.asarray(report["predictions"], dtype=float)
    target = str(target_state(files).get("target") or "target")

    shown = [m for m in task.metrics_shown if f"val_{m.key}" in run.metrics and m.key != "loss"]
    cols = st.columns(len(shown) + 2)
    for col, metric in zip(cols, shown, strict=False):
        col.metric(f"Validation {metric.title}", formatting.metric(metric, run.metrics[f"val_{metric.key}"]))
    cols[-2].metric(f"Validation {spec.noun}", len(truth))
    cols[-1].metric("Best epoch", run.metrics.get("best_epoch", "—"))
    st.caption(f"Scores of the best epoch's model on the validation {spec.noun}, which it never trained on: R² is 1 "
               f"for perfect predictions and 0 for always answering the mean; MAE and RMSE are in {target}'s units "
               "(RMSE weighs large misses more).")
    baselines.show(studio, run)
    error_analysis.test_split(picked, shown, spec.noun, target)

    refs: list[str] | None = None
    try:
        refs = run_picker.items(studio, run)
    except GlassboxError as exc:  # the dataset was deleted since, or its files damaged: the figures still stand
        st.info(f"The validation {spec.noun} cannot be shown: {exc}", icon=":material/info:")
    items = [int(i) for i in report["items"]]
    hover = [refs[i] for i in items] if refs is not None else None
    st.subheader("Predicted against true")
    scatter_col, residual_col = st.columns(2, gap="large")
    scatter_col.plotly_chart(charts.predicted_vs_true(truth, predicted, target, hover), key=f"eval_scatter-{run.id}")
    residual_col.plotly_chart(charts.residuals(truth, predicted, target, hover), key=f"eval_residuals-{run.id}")
    if refs is not None:
        _validation_items(picked, worst_first(report, [refs[i] for i in items]), spec)


def worst_first(report: dict[str, Any], refs: list[str]) -> pd.DataFrame:
    """One row per validation item of a regression report (`core.evaluation.regression_report`), indexed by its
    position in the report: the item (`refs`, in the report's order), its true and predicted value, the error
    (predicted minus true: positive when the model says too much) and its size, the largest miss first."""
    residuals = np.asarray(report["residuals"], dtype=float)
    table = pd.DataFrame({"item": pd.Series(refs, dtype="str"), "true": np.asarray(report["labels"], dtype=float),
                          "predicted": np.asarray(report["predictions"], dtype=float), "error": residuals,
                          "miss": np.abs(residuals)})
    return table.iloc[report["worst"]]


def _validation_items(picked: run_picker.Picked, table: pd.DataFrame, spec: Modality) -> None:
    """Every validation item, the worst predicted first, searchable and downloadable; a click opens one on Explain."""
    run_id = picked.run.id
    st.subheader(f"All validation {spec.noun}, the worst predicted first")
    st.caption("Click a column's header to sort by it, or a row to explain it. The error is the prediction minus the "
               "true value: positive when the model says too much.")
    contains = st.text_input("Containing", key=f"eval_contains-{run_id}", placeholder=spec.search_hint,
                             help="Case does not matter.")
    rows = table[table["item"].str.contains(contains.strip(), case=False, regex=False)] if contains.strip() else table
    st.caption(f"{len(rows)} of {len(table)} validation {spec.noun}"
               + (f"; the first {TABLE_ROWS} are shown, download them all below." if len(rows) > TABLE_ROWS else "."))
    view = st.dataframe(
        rows.head(TABLE_ROWS), hide_index=True, key=f"eval_table-{run_id}", on_select="rerun",
        selection_mode="single-row", placeholder=formatting.MISSING,
        column_config={"item": st.column_config.TextColumn(spec.item_noun, width="large"),
                       **{name: st.column_config.NumberColumn(name, format="%.4g")
                          for name in ("true", "predicted", "error", "miss")}},
    )
    if view.selection.rows:  # a click on a row opens it on Explain, among the rows of this search
        run_picker.open_in_explain(run_id, int(rows.index[view.selection.rows[0]]), rows.index)
    st.download_button("Download these rows (CSV)", rows.to_csv(index=False).encode("utf-8"),
                       file_name=f"{run_id}-validation.csv", mime="text/csv", key=f"eval_download-{run_id}",
                       icon=":material/download:")
    if len(rows) and st.button(f"Explain the worst predicted {spec.item_noun}", key=f"eval_in_depth-{run_id}",
                               icon=":material/lightbulb:"):
        run_picker.open_in_explain(run_id, int(rows.index[0]), rows.index)
