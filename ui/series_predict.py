"""The Predict page's views of a series model.

- Series to classify (`classes`): a file of series (CSV, TSV, Excel or Parquet, in the training file's form: wide or
  long, any lengths) read with the training dataset's columns and rules (`core.data.series.read_series`), each
  classified (`core.prediction.series`) and downloadable as CSV; or one series pasted as numbers. Either way one
  series is explained.
- A series to forecast (`forecast`): the next H values from the end of the training data, or from an uploaded
  history (its last `context` steps), optionally with a file of the covariates over the horizon
  (`core.data.series.forecast_inputs`, `core.prediction.forecast`); drawn with the prediction interval as a band,
  downloadable as CSV, and explained on request.
"""

from __future__ import annotations

import re
from contextlib import ExitStack
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core import prediction
from core.data.series import forecast_inputs, read_series
from core.data.series_frames import SeriesSet, stamp_text
from core.errors import GlassboxError
from core.explain.series import SeriesModel, explain_series
from core.store import DatasetRecord
from ui import explain_views, formatting, run_picker, series_charts, series_data, series_explain
from ui.errors import user_errors
from ui.shell import Studio
from ui.uploads import staged_file

FILE_TYPES = ["csv", "tsv", "txt", "xlsx", "parquet"]
TABLE_ROWS = 1000
_NUMBER = re.compile(r"[,;\s]+")
_TRAINING_END, _HISTORY = "The end of the training data", "An uploaded history"


def _loaded(studio: Studio, picked: run_picker.Picked) -> tuple[SeriesModel, DatasetRecord] | None:
    """The run's model and the dataset it was trained on (whose columns and rules new series are read with)."""
    subject: SeriesModel | None = explain_views.model_or_message(picked.files, studio.ws.cache_dir)
    if subject is None:
        return None
    with user_errors("Cannot read the dataset this run was trained on: "):
        return subject, studio.store.get_dataset(picked.run.dataset_id)
    return None


# ---- series to classify ----------------------------------------------------------------------------------------


def classes(studio: Studio, picked: run_picker.Picked) -> None:
    """Classify series from a file, or one pasted series."""
    loaded = _loaded(studio, picked)
    if loaded is None:
        return
    subject, record = loaded
    many, one = st.tabs(["A file of series", "Paste one series"])
    with many:
        _file_of_series(studio, picked, subject, record)
    with one:
        _pasted(picked, subject)


def _file_of_series(studio: Studio, picked: run_picker.Picked, subject: SeriesModel, record: DatasetRecord) -> None:
    state = st.session_state
    used = record.info.get("columns", {})
    form = ("wide: one row per series, one column per step" if used.get("form") == "wide" else
            f"long: one row per reading, with the columns {', '.join(c for c in _long_columns(used))}")
    upload = st.file_uploader("A CSV, TSV, Excel or Parquet file of series", type=FILE_TYPES, key="predict_series",
                              help=f"In the training file's form ({form}); a label column, if present, is ignored. "
                                   "Series may be shorter or longer than in training.")
    sheet = st.text_input("Excel sheet (optional)", key="predict_series_sheet",
                          help="Leave empty to read the sheet that holds the series.")
    if upload is None:
        return
    signature = (picked.run.id, upload.file_id, sheet.strip())
    if state.get("predict_series_result", {}).get("signature") != signature:
        with user_errors(f"Cannot predict on {upload.name}: ", about=upload.name), st.spinner("Predicting..."), \
                staged_file(studio.ws.staging_dir, upload.name, upload.getvalue()) as path:
            found = read_series(path, record.info, sheet=sheet.strip() or None)
            state["predict_series_result"] = {"signature": signature, "found": found,
                                              "table": prediction.series(subject, found)}
    stored = state.get("predict_series_result")
    if not stored or stored["signature"] != signature:
        return
    found: SeriesSet = stored["found"]
    for problem in found.problems:
        st.warning(problem.get("message", ""), icon=":material/warning:")
    for note in found.notes:
        st.caption(note)
    table: pd.DataFrame = stored["table"]
    _classes_table(table, picked.run.id, subject)
    index = st.selectbox("Series to explain", list(range(len(found.ids))), key=f"predict_series_pick-{picked.run.id}",
                         format_func=lambda i: f"{found.ids[i]} → {table['predicted'].iloc[i]}")
    _explained(subject, found, index, f"file-{upload.file_id}")


def _long_columns(used: dict[str, Any]) -> list[str]:
    return [c for c in (used.get("series_id"), used.get("time"), used.get("channel"), *(used.get("value") or [])) if c]


def _pasted(picked: run_picker.Picked, subject: SeriesModel) -> None:
    channels = subject.channel_names
    what = "its values" if len(channels) == 1 else f"one line per channel ({', '.join(channels)})"
    text = st.text_area(f"One series: {what}, numbers separated by commas or spaces", key="predict_series_text",
                        height=120, placeholder="0.1, 0.4, 1.3, 2.2, 1.1, 0.3")
    if not text.strip():
        return
    found: SeriesSet | None = None
    with user_errors("Cannot read these values: "):
        found = pasted_series(text, channels)
    if found is None:
        return
    table = prediction.series(subject, found)
    _classes_table(table, picked.run.id, subject, key="pasted")
    _explained(subject, found, 0, "pasted")


def pasted_series(text: str, channels: list[str]) -> SeriesSet:
    """One series typed or pasted: a line of numbers per channel (commas, semicolons or spaces between them), every
    line as long. Raises GlassboxError for a word among the numbers, the wrong number of lines or lines of
    different lengths."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if len(lines) != len(channels):
        raise GlassboxError(f"the model reads {len(channels)} channel(s) ({', '.join(channels)}): give one line of "
                            f"numbers for each, not {len(lines)}")
    rows = []
    for line, name in zip(lines, channels, strict=True):
        cells = [cell for cell in _NUMBER.split(line.strip()) if cell]
        try:
            rows.append([float(cell) for cell in cells])
        except ValueError:
            bad = next(cell for cell in cells if not _is_number(cell))
            raise GlassboxError(f"{name}: {bad!r} is not a number") from None
    if len({len(row) for row in rows}) != 1:
        raise GlassboxError(f"the channels have different numbers of steps ({', '.join(str(len(r)) for r in rows)})")
    values = np.asarray(rows, dtype=np.float32).T  # [T, C]
    if not np.isfinite(values).all():
        raise GlassboxError("the series has missing values: give a number at every step")
    steps = len(values)
    return SeriesSet(ids=["pasted"], labels=[None], values=values[None], mask=np.ones((1, steps), dtype=bool),
                     lengths=np.asarray([steps], dtype=np.int64), channels=list(channels), faults={})


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _classes_table(table: pd.DataFrame, run_id: str, subject: SeriesModel, key: str = "file") -> None:
    st.caption(f"{len(table)} series predicted.")
    if len(table) > TABLE_ROWS:
        st.caption(f"The first {TABLE_ROWS} of {len(table)} series; the download holds them all.")
    config: dict[str, Any] = {
        "confidence": st.column_config.ProgressColumn("confidence", min_value=0.0, max_value=1.0,
                                                      format=formatting.PROBABILITY_FORMAT),
        **{f"p({c})": st.column_config.NumberColumn(f"p({c})", format=formatting.PROBABILITY_FORMAT)
           for c in subject.classes}}
    st.dataframe(table.head(TABLE_ROWS), hide_index=True, key=f"predict_table-series-{key}", column_config=config,
                 placeholder=formatting.MISSING)
    st.download_button("Download the predictions (CSV)", table.to_csv(index=False).encode("utf-8"),
                       file_name=f"{run_id}-predictions-series.csv", mime="text/csv",
                       key=f"predict_download-series-{key}", icon=":material/download:")


def _explained(subject: SeriesModel, found: SeriesSet, index: int, key: str) -> None:
    """One series of `found` explained for its predicted class (Integrated Gradients), drawn under the series."""
    length = int(found.lengths[index])
    inputs = series_explain.series_inputs(subject, found.values, found.mask, index)
    with user_errors("Cannot explain this prediction: "), st.spinner("Explaining..."):
        result = _explanation(subject, inputs, f"{key}-{index}")
        st.markdown(f"**Why {result['predicted']}:** Integrated Gradients over the steps")
        series_explain.show_result(result, list(range(length)), found.values[index][:length],
                                   key=f"predict_series-{key}")
    st.page_link("pages/5_Explain.py", label="Explain other classes or with other methods",
                 icon=":material/lightbulb:")


def _explanation(subject: SeriesModel, inputs: dict[str, np.ndarray], key: str) -> dict[str, Any]:
    """`explain_series` with Integrated Gradients, kept for the session by `key` so reruns do not explain again."""
    cache = st.session_state.setdefault("predict_series_explained", {})
    if key not in cache:
        cache.clear()
        cache[key] = explain_series(subject, inputs, "ig")
    return cache[key]


# ---- a series to forecast --------------------------------------------------------------------------------------


def forecast(studio: Studio, picked: run_picker.Picked) -> None:
    """The next H values with their interval, from the end of the training data or an uploaded history."""
    state = st.session_state
    loaded = _loaded(studio, picked)
    if loaded is None:
        return
    subject, record = loaded
    uploads = _uploads(record.info)
    if uploads is None:
        return
    history, future = uploads
    signature = (picked.run.id, history.file_id if history else None, future.file_id if future else None)
    if state.get("predict_forecast_result", {}).get("signature") != signature:
        with user_errors("Cannot forecast: "), st.spinner("Forecasting..."):
            inputs, times, notes = _inputs(studio, record, subject, history, future)
            state["predict_forecast_result"] = {"signature": signature, "inputs": inputs, "times": times,
                                                "notes": notes, "table": prediction.forecast(subject, inputs, times)}
    stored = state.get("predict_forecast_result")
    if not stored or stored["signature"] != signature:
        return
    for note in stored["notes"]:
        st.caption(note)
    context = series_explain.context(stored["inputs"], subject)
    before = _context_times(studio, record, history is None, stored["times"][0], len(context))
    _forecast_shown(subject, record.info, stored, context, before, picked.run.id)
    if st.button("Why this forecast?", key="predict_forecast_why", icon=":material/lightbulb:",
                 help="Integrated Gradients over the steps the model read."):
        with user_errors("Cannot explain this forecast: "), st.spinner("Explaining..."):
            state["predict_forecast_explained"] = {"signature": signature,
                                                   "result": explain_series(subject, stored["inputs"], "ig")}
    why = state.get("predict_forecast_explained")
    if why and why["signature"] == signature:
        series_explain.show_result(why["result"], before or list(range(-len(context), 0)), context,
                                   key="predict_forecast",
                                   ahead=series_explain.ahead(why["result"], subject, stored["times"]))


def _uploads(info: dict[str, Any]) -> tuple[Any, Any] | None:
    """Where the forecast starts (the end of the training data, or an uploaded history) and the file of future
    covariates when the series has some: (history upload or None, future upload or None); None while an uploaded
    history is chosen but not given yet."""
    source = st.radio("Forecast from", (_TRAINING_END, _HISTORY), horizontal=True, key="predict_forecast_source",
                      help="The training data's last steps, or a file like the training one with the latest steps.")
    history = future = None
    if source == _HISTORY:
        history = st.file_uploader(f"The latest history (at least its last {info['context']} steps), with the "
                                   f"columns {info['time']['column']} and {info['target']}", type=FILE_TYPES,
                                   key="predict_history")
        if history is None:
            return None
    if info.get("covariates"):
        future = st.file_uploader(f"The covariates over the next {info['horizon']} steps (optional): "
                                  f"{info['time']['column']} and {', '.join(info['covariates'])}", type=FILE_TYPES,
                                  key="predict_future",
                                  help="Without it, each covariate keeps its last value over the horizon.")
    return history, future


def _forecast_shown(subject: SeriesModel, info: dict[str, Any], stored: dict[str, Any], context: np.ndarray,
                    before: list[str] | None, run_id: str) -> None:
    """The forecast drawn after the steps the model read, with its band; the table and its CSV."""
    table: pd.DataFrame = stored["table"]
    halfwidth = subject.state.get("interval_halfwidth")
    st.plotly_chart(series_charts.forecast_window(
        before or [], context[:, 0] if before else np.zeros(0), stored["times"], table["forecast"].to_numpy(),
        str(info["target"]), halfwidth=halfwidth, title=f"The next {len(table)} steps of {info['target']}"),
        key="predict_forecast_chart")
    if halfwidth is not None:
        level = subject.state.get("interval_level", 0.9)
        coverage = subject.state.get("interval_coverage")
        st.caption(f"The band is the {formatting.percent(level, 0)} prediction interval (split-conformal, from the "
                   "validation errors)" + (f"; it held {formatting.percent(coverage)} of the validation values."
                                           if coverage is not None else "."))
    st.dataframe(table, hide_index=True, key="predict_table-forecast",
                 column_config={c: st.column_config.NumberColumn(c, format="%.4g")
                                for c in ("forecast", "lower", "upper")})
    st.download_button("Download the forecast (CSV)", table.to_csv(index=False).encode("utf-8"),
                       file_name=f"{run_id}-forecast.csv", mime="text/csv", key="predict_download-forecast",
                       icon=":material/download:")


def _inputs(studio: Studio, record: DatasetRecord, subject: SeriesModel, history: Any,
            future: Any) -> tuple[dict[str, np.ndarray], list[str], list[str]]:
    """The model input of the forecast (`forecast_inputs`), the uploads staged to files while it reads them."""
    with ExitStack() as stack:
        staged = {name: stack.enter_context(staged_file(studio.ws.staging_dir, upload.name, upload.getvalue()))
                  for name, upload in (("history", history), ("future", future)) if upload is not None}
        return forecast_inputs(studio.ws.dataset_dir(record.id), record.info, subject.fitted,
                               history=staged.get("history"), future=staged.get("future"))


def _context_times(studio: Studio, record: DatasetRecord, training_end: bool, first: str,
                   steps: int) -> list[str] | None:
    """The times of the `steps` steps the model read before the forecast starting at `first`: the training data's
    last ones, or for an uploaded history the grid counted back from `first` (None on opening hours, whose closed
    steps a calendar cannot count)."""
    if training_end:
        return series_data.times(series_data.arrays(studio, record.id)["time"][-steps:])
    grid = record.info.get("grid", {})
    if "weekdays" in grid or "times" in grid:
        return None
    try:
        stamps = pd.date_range(end=pd.Timestamp(first), periods=steps + 1, freq=record.info["frequency"])[:-1]
    except (ValueError, TypeError, KeyError):
        return None
    return [stamp_text(int(ns), always_time=True) for ns in stamps.as_unit("ns").asi8]

