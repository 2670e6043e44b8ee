"""The Data page's views of time series: the fields of a series upload (its form, columns, task, horizon,
context and season), and the preview of a stored series dataset.

- Series to classify (`classes`): how many, of which classes and lengths, a few drawn per class over their real
  steps (the padding that evens out their lengths is masked, never drawn), what was wrong with the file and how
  it was resolved.
- A series to forecast (`forecast`): the series drawn over its grid with the steps its ingest filled marked and the
  validation windows shaded, its frequency, season, horizon and context, and every fault found with the rule
  applied.

Both read the dataset's info and its `series.npz` (`core.data.series`: numpy arrays, no pickles). Registered for
series in `ui.views`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core.config import TrainConfig
from core.data.series import OPTIONS, rolling_origins
from core.data.series_frames import FORECAST_TASK, TASKS, stamp_text
from core.errors import GlassboxError
from core.store import DatasetRecord
from ui import charts, formatting, series_charts
from ui.errors import user_errors
from ui.shell import Studio

ARRAYS = "series.npz"
SHOWN_PER_CLASS = 3
MAX_CLASSES_DRAWN = 10
STORED_UPLOAD = "upload.*"
CLASSIFYING = next(name for name in TASKS if name != FORECAST_TASK)


@dataclass(frozen=True)
class Form:
    """A form a user can say a series upload is in: the ingest task it sets (None: detected), the column fields that
    apply (`COLUMN_FIELDS` keys), whether a horizon, context and season apply, what it is, and what the target
    column is called there."""

    task: str | None
    columns: tuple[str, ...]
    steps: bool
    title: str
    target: str


FORMS = {
    "detected": Form(None, ("target", "time", "series_id", "channel", "value"), True, "Detected from the columns",
                     "Label or target column"),
    "long": Form(CLASSIFYING, ("target", "series_id", "time", "channel", "value"), False,
                 "Long: one row per reading (series id, time, value, optional channel, label), to classify",
                 "Label column"),
    "wide": Form(CLASSIFYING, ("target",), False,
                 "Wide: one row per series (a label, then one column per step), to classify", "Label column"),
    "forecast": Form(FORECAST_TASK, ("target", "time"), True,
                     "One series over time (time, value, optional covariates), to forecast", "Column to forecast"),
}
COLUMN_FIELDS = {"target": "The label to classify by, or the column to forecast.",
                 "time": ("Time column", "Dates, times or step numbers; long form: orders each series' readings."),
                 "series_id": ("Series id column", "Long form: which series a row belongs to."),
                 "channel": ("Channel column", "Long form: which channel (sensor, axis) a row's value belongs to."),
                 "value": ("Value column", "Long form: the reading.")}
NUMBER_FIELDS = {"horizon": ("Horizon (steps ahead)", "How many steps each forecast covers. Default: one season "
                                                      "(a day of hourly data: 24)."),
                 "context": ("Context (steps read)", "How many past steps the model reads. Default: two seasons or "
                                                     "two horizons, whichever is longer."),
                 "season": ("Season (steps)", "The length of the repeating cycle. Default: from the frequency "
                                              "(hourly: 24, daily: 7, monthly: 12).")}

Readd = Callable[[dict[str, Any]], None]


# ---- the upload's fields ----------------------------------------------------------------------------------------


def upload_options() -> dict[str, Any]:
    """The fields of a series upload (`core.data.series.OPTIONS`), drawn where the Data page asks: its form (which
    sets the task), the columns that play each part, and for a forecast its horizon, context and season. Returns
    the options filled in; blank ones are detected by the library."""
    state = st.session_state
    form = FORMS[st.radio("Form", list(FORMS), format_func=lambda f: FORMS[f].title, key="series_form")]
    columns = st.columns(3)
    for index, name in enumerate(form.columns):
        label, about = (form.target, COLUMN_FIELDS[name]) if name == "target" else COLUMN_FIELDS[name]
        columns[index % 3].text_input(label, key=f"series_{name}", placeholder="detected", help=about)
    if form.steps:
        for column, (name, (label, about)) in zip(st.columns(3), NUMBER_FIELDS.items(), strict=True):
            column.number_input(label, min_value=1, value=None, step=1, key=f"series_{name}", help=about,
                                placeholder="default")
    st.text_input("Excel sheet", key="series_sheet", placeholder="the sheet that holds the series")
    shown = [*form.columns, *(NUMBER_FIELDS if form.steps else ()), "sheet"]
    options: dict[str, Any] = {"task": form.task} if form.task else {}
    for name in (n for n in OPTIONS if n in shown):
        value = state.get(f"series_{name}")
        value = value.strip() if isinstance(value, str) else value
        if value not in (None, ""):
            options[name] = str(int(value)) if name in NUMBER_FIELDS else value
    return options


# ---- what both previews read --------------------------------------------------------------------------------


def arrays(studio: Studio, dataset_id: str) -> dict[str, np.ndarray]:
    """The dataset's stored arrays (`series.npz`). Raises GlassboxError when the file is missing or damaged."""
    path = studio.ws.dataset_dir(dataset_id) / ARRAYS
    return _arrays(str(path), path.stat().st_mtime if path.exists() else 0.0)


@st.cache_data(max_entries=8, show_spinner=False)
def _arrays(path: str, mtime: float) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as stored:
            return {key: stored[key] for key in stored.files}
    except (OSError, ValueError):
        raise GlassboxError(f"{Path(path).parent.name}: {ARRAYS} is missing or damaged") from None


def times(stamps: np.ndarray) -> list[str]:
    """Steps' times (int64 ns) as people read them: "2024-03-01 13:30"."""
    return [stamp_text(int(ns), always_time=True) for ns in stamps]


def _problems(info: dict[str, Any]) -> None:
    for problem in info.get("problems", []):
        show = st.error if problem.get("level") == "error" else st.warning
        show(problem.get("message", ""), icon=":material/warning:")


def _added(dataset: DatasetRecord) -> None:
    st.caption(f"Added {formatting.timestamp(dataset.created_at)} · id `{dataset.id}`")


# ---- series to classify ------------------------------------------------------------------------------------------


def classes(studio: Studio, dataset: DatasetRecord, readd: Readd) -> None:
    """The preview of series to classify (`readd` is unused: their choices are made before the upload)."""
    info = dataset.info
    lengths: dict[str, Any] = info.get("lengths", {})
    figures = st.columns(5)
    figures[0].metric("Series", info.get("num_items", 0))
    figures[1].metric("Classes", len(info.get("classes", [])))
    figures[2].metric("Channels", len(info.get("channels", [])),
                      help=", ".join(info.get("channels", [])) or None)
    figures[3].metric("Steps", f"{lengths.get('min', 0)} to {lengths.get('max', 0)}" if lengths.get("min")
                      != lengths.get("max") else lengths.get("max", 0),
                      help=f"Median {lengths.get('median', 0):g} steps." if lengths else None)
    figures[4].metric("Form", str(info.get("form", "")).capitalize())
    _problems(info)
    stored: dict[str, np.ndarray] | None = None
    with user_errors("Cannot read the series: "):
        stored = arrays(studio, dataset.id)
    if stored is not None and lengths.get("min") != lengths.get("max"):
        st.info(f"Series are padded to {stored['values'].shape[1]} steps and masked: the shorter ones get zeros "
                "after their end, which the models and the explanations never read.", icon=":material/info:")
    chart_col, notes_col = st.columns([3, 2], gap="large")
    with chart_col:
        st.plotly_chart(charts.class_counts(info.get("counts", {})), key="class_counts")
    with notes_col:
        if stored is not None:
            st.plotly_chart(series_charts.lengths_histogram(stored["lengths"].tolist()), key="series_lengths")
        _columns_used(info)
        for note in info.get("notes", []):
            st.caption(note)
        _added(dataset)
    if stored is not None:
        _drawn(studio, dataset, stored)


def _columns_used(info: dict[str, Any]) -> None:
    used = info.get("columns", {})
    parts = [f"{what} **{used[key]}**" for key, what in (("series_id", "series id"), ("time", "time"),
                                                         ("channel", "channel"), ("label", "label"))
             if used.get(key)]
    values = used.get("value") or []
    if values:
        parts.append(f"values **{values[0]}**" if len(values) == 1 else f"{len(values)} value columns")
    if parts:
        st.caption("Columns: " + ", ".join(parts) + ".")


def _drawn(studio: Studio, dataset: DatasetRecord, stored: dict[str, np.ndarray]) -> None:
    """`SHOWN_PER_CLASS` series of each class (the first in the file), one channel at a time."""
    info = dataset.info
    items = pd.read_csv(studio.ws.dataset_dir(dataset.id) / "items.csv", dtype=str, keep_default_na=False)
    ids, labels = items.iloc[:, 0].tolist(), items.iloc[:, 1].tolist()
    classes_drawn = list(info.get("classes", []))[:MAX_CLASSES_DRAWN]
    rows = [i for name in classes_drawn
            for i in [j for j, label in enumerate(labels) if label == name][:SHOWN_PER_CLASS]]
    channels: list[str] = list(info.get("channels", [])) or ["value"]
    channel = 0
    if len(channels) > 1:
        channel = st.columns([1, 3])[0].selectbox("Channel drawn", range(len(channels)),
                                                  format_func=lambda c: channels[c], key=f"series_channel-{dataset.id}")
    st.plotly_chart(series_charts.series_lines(stored["values"][rows], stored["lengths"][rows].tolist(),
                                               [labels[i] for i in rows], [ids[i] for i in rows], channel,
                                               channels[channel]), key="series_drawn")
    if len(info.get("classes", [])) > MAX_CLASSES_DRAWN:
        st.caption(f"Series of the first {MAX_CLASSES_DRAWN} classes.")


# ---- a series to forecast ---------------------------------------------------------------------------------------


def forecast(studio: Studio, dataset: DatasetRecord, readd: Readd) -> None:
    """The preview of a series to forecast; `readd(options)` adds its upload again with another horizon, context or
    season when the dataset kept its upload."""
    info = dataset.info
    figures = st.columns(6)
    figures[0].metric("Steps", f"{info.get('num_steps', 0):,}",
                      help=f"From {info.get('time', {}).get('start', '?')} to {info.get('time', {}).get('end', '?')}.")
    figures[1].metric("Frequency", info.get("frequency", "—"), help="A pandas offset alias: h is hourly, 30min "
                                                                   "half-hourly, D daily, MS monthly.")
    figures[2].metric("Season", f"{info.get('season', 1)} steps", help="The length of the repeating cycle, which "
                                                                       "seasonal naive repeats and MASE is scaled by.")
    figures[3].metric("Horizon", f"{info.get('horizon', 0)} steps", help="How many steps ahead each forecast goes.")
    figures[4].metric("Context", f"{info.get('context', 0)} steps", help="How many past steps the model reads.")
    figures[5].metric("Filled steps", info.get("filled", 0), help="Steps whose value was missing and made up by the "
                                                                  "rule below.")
    _faults(info)
    stored: dict[str, np.ndarray] | None = None
    with user_errors("Cannot read the series: "):
        stored = arrays(studio, dataset.id)
    if stored is not None:
        steps = times(stored["time"])
        _, val = rolling_origins(len(steps), int(info["horizon"]), int(info["context"]), TrainConfig.val_fraction)
        st.plotly_chart(series_charts.forecast_series(steps, stored["target"], stored["filled"], info["target"],
                                                      validation_from=steps[val[0]] if val else None),
                        key="forecast_series")
        st.caption(f"The shaded end holds the {len(val)} validation window(s) of {info['horizon']} steps at the "
                   f"default validation share ({formatting.percent(TrainConfig.val_fraction, 0)}): runs are scored on "
                   "forecasts made there, never trained on them.")
    left, right = st.columns([3, 2], gap="large")
    with left:
        covariates = info.get("covariates", [])
        st.markdown(f"**Target** {info.get('target')} · **time** {info.get('time', {}).get('column')} · **covariates** "
                    + (", ".join(covariates) if covariates else "none"))
        summary = info.get("target_summary", {})
        if summary:
            st.caption(f"{info.get('target')}: from {formatting.amount(summary.get('min'))} to "
                       f"{formatting.amount(summary.get('max'))}, mean {formatting.amount(summary.get('mean'))}.")
        for note in info.get("notes", []):
            st.caption(note)
        _added(dataset)
    with right:
        _settings(studio, dataset, readd)


def _faults(info: dict[str, Any]) -> None:
    """Every fault counted at ingest, and the warnings that say the rule each was resolved by."""
    faults: dict[str, int] = info.get("faults", {})
    found = {name: count for name, count in faults.items() if count}
    if found:
        st.dataframe(pd.DataFrame([{"fault": name.replace("_", " "), "count": count} for name, count in found.items()]),
                     hide_index=True)
    else:
        st.success("No missing, duplicate, out-of-order or off-grid time stamps: the series is on a regular grid as "
                   "given.", icon=":material/check_circle:")
    _problems(info)


def _settings(studio: Studio, dataset: DatasetRecord, readd: Readd) -> None:
    """The horizon, context and season to forecast with, editable when the dataset kept its upload (adding it
    again: runs trained on this dataset keep it as it is)."""
    info = dataset.info
    kept = next(studio.ws.dataset_dir(dataset.id).glob(STORED_UPLOAD), None) is not None
    st.markdown("**Horizon, context and season**")
    if not kept:
        st.caption("To forecast with another horizon, context or season, upload the file again with them chosen "
                   "(*What it holds* → time series).")
        return
    chosen = {name: st.number_input(label, min_value=1, value=int(info[name]), step=1, help=about,
                                    key=f"series_{name}-{dataset.id}")
              for name, (label, about) in NUMBER_FIELDS.items()}
    base = dict(info.get("source", {}).get("options", {}))
    options = {**base, **{name: str(int(value)) for name, value in chosen.items() if int(value) != int(info[name])}}
    changed = options != base
    if st.button("Add the series again with these", key=f"series_readd-{dataset.id}", type="primary",
                 icon=":material/published_with_changes:", disabled=not changed,
                 help=None if changed else "Change the horizon, the context or the season first."):
        readd(options)

