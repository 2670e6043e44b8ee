"""Evaluate's view of a forecast: how far a finished run's forecasts on the validation windows (the last windows of
the series, rolling origin, never trained on) fall from what happened, in the series' own units (MAE, RMSE), scaled
(MASE: against the in-sample seasonal naive forecast) and in percent (sMAPE); beside the naive, seasonal naive and
exponential-smoothing forecasts, with a plain verdict; a window's forecast drawn over its history with the held-out
values and the prediction interval as a band; the error per step ahead; and the interval's level, method and
coverage measured on windows it was not fitted on.

Everything comes from the run's saved predictions (`core.evaluation.run_report`) and the dataset's series, so this
view trains nothing and loads no model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core import tasks
from core.data import Modality
from core.errors import GlassboxError
from core.store import DatasetRecord
from ui import baselines, error_analysis, formatting, run_picker, series_charts, series_data
from ui.errors import user_errors
from ui.shell import Studio

# a prediction interval whose coverage falls this far below its level is said to be too narrow
COVERAGE_SLACK = 0.05
_ABOUT = {
    "mae": "Mean absolute error over every window and step ahead, in the series' units.",
    "mase": "MAE divided by the in-sample error of the seasonal naive forecast on the training part (Hyndman and "
            "Koehler 2006): below 1 beats repeating the last season.",
    "rmse": "Root mean squared error, in the series' units: weighs large misses more than MAE.",
    "smape": "Symmetric mean absolute percentage error (M4 competition), in percent from 0 to 200.",
}


def show(studio: Studio, picked: run_picker.Picked, spec: Modality) -> None:
    """The view for one completed forecasting run (the page has picked it; `spec`, its modality, is not needed:
    a forecast's items are its windows)."""
    run = picked.run
    report: dict[str, Any] | None = None
    with user_errors("Cannot read this run's results: "):
        report = run_picker.report(picked.files)
    if report is None:
        return
    _headline(picked, report)
    baselines.show(studio, run)
    error_analysis.test_split(picked, [m for m in tasks.of_run(run.config).metrics_shown if m.key in report], "windows",
               "the series")
    _interval(run.metrics, report)

    refs: list[str] | None = None
    record: DatasetRecord | None = None
    stored: dict[str, np.ndarray] | None = None
    try:
        refs = run_picker.items(studio, run)
        record = studio.store.get_dataset(run.dataset_id)
        stored = series_data.arrays(studio, run.dataset_id)
    except GlassboxError as exc:  # the dataset was deleted since, or its files damaged: the figures still stand
        st.info(f"The series cannot be drawn: {exc}", icon=":material/info:")
    items = [int(i) for i in report["items"]]
    names = [refs[i] for i in items] if refs is not None else [f"window {p + 1}" for p in range(len(items))]
    st.subheader("A validation window")
    position = st.selectbox(
        f"Validation window ({len(items)})", list(range(len(items))), index=len(items) - 1,
        key=f"eval_window-{run.id}",
        format_func=lambda p: f"{names[p]} · MAE {formatting.amount(float(report['window_mae'][p]))}")
    if record is not None and stored is not None:
        st.plotly_chart(window_chart(record.info, stored, report, position), key=f"eval_window_chart-{run.id}")
    if st.button("Explain this forecast", key=f"eval_explain_window-{run.id}", icon=":material/lightbulb:",
                 help="Opens Explain on this window: which past steps drove the forecast."):
        run_picker.open_in_explain(run.id, position)
    st.subheader("Error per step ahead")
    st.plotly_chart(series_charts.step_errors(report["step_mae"], report.get("interval_halfwidth")),
                    key=f"eval_step_mae-{run.id}")
    st.caption("The further ahead, the less the past tells: errors usually grow with the steps ahead. The dashed line "
               "is the prediction interval's half-width.")
    _windows(picked, report, names)


def _headline(picked: run_picker.Picked, report: dict[str, Any]) -> None:
    """MAE, MASE, RMSE and sMAPE over the validation windows, how many windows and the best epoch."""
    run = picked.run
    shown = [m for m in tasks.of_run(run.config).metrics_shown if m.key in report]
    cols = st.columns(len(shown) + 2)
    for col, metric in zip(cols, shown, strict=False):
        col.metric(f"Validation {metric.title}", formatting.metric(metric, report[metric.key]),
                   help=_ABOUT.get(metric.key))
    cols[-2].metric("Validation windows", len(report["items"]),
                    help=f"Forecasts of {len(report['step_mae'])} steps each, made at the last origins of the series.")
    cols[-1].metric("Best epoch", run.metrics.get("best_epoch", "—"))
    st.caption("Scores of the best epoch's model on the last windows of the series (rolling origin), which it never "
               "trained on: each forecast reads only the steps before its window.")


def _interval(metrics: dict[str, Any], report: dict[str, Any]) -> None:
    """The prediction interval's level, how it was made and its coverage on windows it was not fitted on."""
    st.markdown("**Prediction interval**")
    widths = report.get("interval_halfwidth")
    if widths is None:
        st.info("This run has no prediction interval: its validation windows are too few to set one.",
                icon=":material/info:")
        return
    level = float(metrics.get("interval_level") or 0.9)
    coverage = report.get("interval_coverage")
    cols = st.columns(3)
    cols[0].metric("Level", formatting.percent(level, 0), help="The share of true values the interval aims to hold.")
    cols[1].metric("Coverage", formatting.percent(coverage),
                   help="The share of validation values inside intervals set on the other validation windows "
                        "(cross-fitted): on the windows that set it, it would hold by construction.")
    cols[2].metric("Half-width", f"± {formatting.amount(float(np.mean(widths)))}",
                   help="On average over the steps ahead, in the series' units.")
    st.caption(f"Split-conformal: the validation forecasts' absolute errors set each step's half-width, "
               f"{metrics.get('interval_method', 'per step ahead')}.")
    if coverage is None:
        st.info("Too few validation windows to measure the coverage on windows the interval was not set on.",
                icon=":material/info:")
    elif coverage < level - COVERAGE_SLACK:
        st.warning(f"The interval held {formatting.percent(coverage)} of the true values, short of the "
                   f"{formatting.percent(level, 0)} it aims at: read it as narrower than it claims.",
                   icon=":material/warning:")
    else:
        st.success(f"The interval held {formatting.percent(coverage)} of the true values, for the "
                   f"{formatting.percent(level, 0)} it aims at.", icon=":material/check_circle:")


def window_chart(info: dict[str, Any], stored: dict[str, np.ndarray], report: dict[str, Any], position: int) -> Any:
    """The forecast of one validation window (`position` in the report) over the series before it, with the true
    values held out and the interval as a band; the context the model read shaded."""
    context, horizon = int(info["context"]), int(info["horizon"])
    origin = int(report["items"][position]) + context
    start = max(0, origin - context - 2 * horizon)
    steps = series_data.times(stored["time"][start: origin + horizon])
    history = stored["target"][start:origin]
    return series_charts.forecast_window(
        steps[: origin - start], history, steps[origin - start:], np.asarray(report["predictions"][position]),
        str(info.get("target", "value")), truth=np.asarray(report["labels"][position]),
        halfwidth=report.get("interval_halfwidth"), context_from=steps[origin - context - start],
        title=f"Forecast from {steps[origin - start]} against what happened")


def _windows(picked: run_picker.Picked, report: dict[str, Any], names: list[str]) -> None:
    """Every validation window, the worst first; a click opens one on Explain; every forecast as CSV."""
    run_id = picked.run.id
    labels, predictions = np.asarray(report["labels"], dtype=float), np.asarray(report["predictions"], dtype=float)
    st.subheader("All validation windows, the worst first")
    table = pd.DataFrame({"window": pd.Series(names, dtype="str"), "MAE": np.asarray(report["window_mae"]),
                          "bias": (predictions - labels).mean(axis=1)}).iloc[report["worst"]]
    st.caption("Bias is the mean of forecast minus truth: positive when the model forecasts too high. Click a row to "
               "explain that window.")
    view = st.dataframe(table, hide_index=True, key=f"eval_windows-{run_id}", on_select="rerun",
                        selection_mode="single-row",
                        column_config={"window": st.column_config.TextColumn("window", width="large"),
                                       **{c: st.column_config.NumberColumn(c, format="%.4g") for c in ("MAE", "bias")}})
    if view.selection.rows:
        run_picker.open_in_explain(run_id, int(table.index[view.selection.rows[0]]), table.index)
    horizon = labels.shape[1] if labels.ndim == 2 else 0
    rows = pd.DataFrame({"window": np.repeat(names, horizon), "step_ahead": np.tile(np.arange(1, horizon + 1),
                                                                                     len(names)),
                         "true": labels.ravel(), "forecast": predictions.ravel()})
    rows["error"] = rows["forecast"] - rows["true"]
    st.download_button("Download every forecast (CSV)", rows.to_csv(index=False).encode("utf-8"),
                       file_name=f"{run_id}-validation-forecasts.csv", mime="text/csv", key=f"eval_download-{run_id}",
                       icon=":material/download:")
