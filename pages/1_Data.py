"""Data: add a dataset (a zip upload, a CSV, an Excel or Parquet table or time series, or a bundled sample), see
what Glassbox made of it, delete it.

Validation is the library's (`core.datasets.add`); this page only moves the upload onto the
workspace's disk, asks the user about unusable files when the library finds some, and hands the
dataset to its modality's preview (`ui.views`), which may add it again with other choices (a table's
target and column roles). What an upload holds is detected, unless the user says (a CSV of numbers reads as a
table or as time series alike): the modalities offered, and their own fields, are `ui.views`'.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from core import datasets
from core.data import BadFilesError, modality
from core.data.labels import MERGE_OPTION
from core.errors import GlassboxError
from core.store import DatasetRecord
from ui import formatting, views
from ui.errors import naming_once, user_errors
from ui.shell import setup
from ui.uploads import staged_file

studio = setup("Data")
SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample_data"
# the bundled samples (sample_data/README.md has their sources and licences): button key -> (file, dataset name,
# button label, what it holds, ingest options)
SAMPLES: dict[str, tuple[str, str, str, str, dict[str, Any]]] = {
    "load_sample": ("digits.zip", "sample-digits", "Load sample: handwritten digits",
                    "400 handwritten digits 0-9 (UCI, CC BY 4.0), 40 per class", {}),
    "load_sample_text": ("drugreviews.csv", "sample-drug-reviews", "Load sample: drug reviews (text)",
                         "888 Drugs.com patient reviews labelled positive or negative (UCI, CC BY 4.0)", {}),
    "load_sample_penguins": ("penguins.csv", "sample-penguins", "Load sample: penguins (table)",
                             "344 Palmer penguins: the species from island, bill, flipper, body mass and sex, with "
                             "missing values (Horst, Hill and Gorman, CC0)", {"target": "species"}),
    "load_sample_gapminder": ("gapminder.csv", "sample-gapminder", "Load sample: life expectancy (table, regression)",
                              "1,704 country-years of Gapminder data: life expectancy from continent, country, year, "
                              "population and GDP per head (Gapminder, CC BY 4.0)", {"target": "lifeExp"}),
    "load_sample_vowels": ("japanese_vowels.csv", "sample-japanese-vowels", "Load sample: spoken vowels (time series)",
                           "640 recordings of nine speakers saying /ae/, 12 channels over 7 to 29 steps, in long form: "
                           "the speaker from the series (UCI / UEA archive, CC BY 4.0)",
                           {"target": "label", "series_id": "series_id", "time": "time", "channel": "channel",
                            "value": "value"}),
    "load_sample_demand": ("electricity_demand.csv", "sample-electricity-demand",
                           "Load sample: electricity demand (forecast)",
                           "12 weeks of half-hourly demand in England and Wales (Taylor 2003): forecast the next day",
                           {"time": "timestamp", "target": "demand_mw", "horizon": "48"}),
}
UPLOAD_TYPES = ["zip", "csv", "tsv", "txt", "xlsx", "parquet"]
# a table dataset keeps its upload as upload.<suffix> (`core.data.tables.UPLOAD`), so that other choices of target
# and columns can be applied to it later
STORED_UPLOAD = "upload.*"
state = st.session_state


def _flash(kind: str, message: str) -> None:
    """A message that survives the rerun a button causes, shown once at the add section."""
    state["data_flash"] = (kind, message)


def _add(filename: str, data: bytes | None, *, source: Path | None = None, name: str | None = None,
         drop_bad: bool = False, options: dict[str, Any] | None = None, kind: str | None = None,
         label: str | None = None) -> None:
    """Add an upload (its bytes, staged to a temporary file) or a file on disk; report the outcome.

    Unusable files are not an error but a question: the upload is kept in the session until the
    user drops them or cancels. The same bytes as a stored dataset are not added again: the page offers
    to open that one instead. `options` (a sample's, the choices made for an upload or on a table) replace the
    page's ingest options; `kind` names the modality (the user's "What it holds", or a stored upload's dataset's;
    None: detected); `label` names the upload in messages when its file name would not say what it is (a stored
    upload).
    """
    shown = label or filename
    state.pop("data_duplicate", None)
    try:
        with st.spinner(f"Checking {shown}..."):
            if source is not None:
                record = datasets.add(studio.ws, studio.store, source, name=name, drop_bad=drop_bad, modality=kind,
                                      options=options if options is not None else _ingest_options(columns=False))
            else:
                assert data is not None
                with staged_file(studio.ws.staging_dir, filename, data) as path:
                    record = datasets.add(studio.ws, studio.store, path, drop_bad=drop_bad, modality=kind,
                                          options=options if options is not None else _ingest_options(columns=True))
    except datasets.DuplicateDatasetError as exc:
        state["data_duplicate"] = (shown, exc.existing.id)
        return
    except BadFilesError as exc:
        state["pending_upload"] = {"filename": filename, "data": data, "source": source, "name": name,
                                   "options": options, "kind": kind, "bad": exc.bad}
        return
    except GlassboxError as exc:
        _flash("error", f"{shown} was not added: {naming_once(str(exc), filename)}")
        return
    state.pop("pending_upload", None)
    state["dataset_id"] = state["data_selected"] = record.id
    spec = modality(record.modality)
    dropped = len(record.info.get("dropped", []))
    note = f" ({dropped} unusable {'file(s)' if spec.items_are_files else 'row(s)'} left out)" if dropped else ""
    classes = record.info.get("classes", [])
    what = f"in {len(classes)} classes" if classes else f"predicting {record.info.get('target', 'a value')}"
    _flash("success", f"Added **{record.name}**: {record.info['num_items']} items {what}{note}.")


def _ingest_options(*, columns: bool, kind: str | None = None) -> dict[str, Any]:
    """The user's choices for ingest: merging similar labels and, for an upload (`columns`), the columns they
    named: a CSV of texts' text and label columns, a table's target and an Excel workbook's sheet (blank ones
    are suggested by the library); only those the modality `kind` reads, when the user named one."""
    options: dict[str, Any] = {MERGE_OPTION: True} if state.get("merge_similar_labels") else {}
    if columns:
        names = {"text_column": state.get("csv_text_column", ""), "label_column": state.get("csv_label_column", ""),
                 "target": state.get("table_target_column", ""), "sheet": state.get("table_sheet", "")}
        options.update({key: value.strip() for key, value in names.items() if value and value.strip()})
    if kind is not None:
        options = {key: value for key, value in options.items() if key in modality(kind).options}
    return options


def _what_it_holds() -> tuple[str | None, dict[str, Any]]:
    """The modality the user says the next upload holds (None: detected from the file) and the ingest options
    for it: that modality's own fields (`ui.views`: a series' form, columns and horizon) when it has some, else
    the fields above."""
    offered = {"": "detected from the file", **views.choices()}
    kind = st.radio("What it holds", list(offered), format_func=offered.get, key="upload_holds", horizontal=True,
                    help="A CSV of numbers can be a table (one row per item) or time series: Glassbox reads it as a "
                         "table unless you say otherwise.") or None
    fields = views.of(kind).upload_options if kind else ""
    return kind, views.view(fields)() if fields else _ingest_options(columns=True, kind=kind)


def _choose(action: str) -> None:
    state["pending_action"] = action


def _open(dataset_id: str) -> None:
    state.pop("data_duplicate", None)
    state["dataset_id"] = state["data_selected"] = dataset_id


def _load_sample(key: str) -> None:
    filename, name, _, _, options = SAMPLES[key]
    existing = [d for d in studio.store.list_datasets() if d.name == name]
    if existing:
        state["dataset_id"] = state["data_selected"] = existing[0].id
        _flash("info", f"The sample {name} is already loaded: selected below.")
        return
    _add(filename, None, source=SAMPLE_DIR / filename, name=name, options=options or None)


def _readd(dataset: DatasetRecord, options: dict[str, Any]) -> None:
    """Ask for `dataset`'s stored upload to be added again with `options`, on the rerun this starts: the add
    selects the new dataset, which only a run that has not drawn the dataset picker yet may do."""
    state["data_readd"] = (dataset.id, options)
    st.rerun()


st.title("Data")
st.markdown(
    "Upload a **zip of images with one folder per class** (`cats/001.jpg`, `dogs/002.png`, ...), or a zip with a "
    "`labels.csv` (columns `filename,label`). Every image is checked once on upload, so training never trips over a "
    "broken file. For text, upload a **CSV or TSV** with a text column and a label column: the encoding, "
    "delimiter and columns are detected, and you can name the columns yourself. For a **table** (CSV, TSV, Excel "
    "or Parquet: one row per item, a column to predict), every column's role is inferred and shown below, where "
    "you can change it, and the target and task. For **time series** (series to classify, in long or wide form, "
    "or one series to forecast), say so under *What it holds* before uploading."
)

upload_col, sample_col = st.columns([3, 2], gap="large")
with upload_col:
    uploaded = st.file_uploader("Upload a zip of labelled images, a CSV of texts, or a table",
                                type=UPLOAD_TYPES, key="upload")
    st.checkbox("Merge labels that differ only by case, spaces or accents", key="merge_similar_labels",
                help="'Cat', 'cat' and 'cat ' become one class. Leave it off if they are different classes; "
                     "Glassbox names such labels after an upload either way.")
    with st.expander("Columns of a text CSV (optional)"):
        left, right = st.columns(2)
        left.text_input("Text column", key="csv_text_column", placeholder="suggested from the file")
        right.text_input("Label column", key="csv_label_column", placeholder="suggested from the file")
    with st.expander("Target and sheet of a table (optional)"):
        left, right = st.columns(2)
        left.text_input("Target column", key="table_target_column", placeholder="suggested from the file",
                        help="The column to predict; you can also change it after the upload.")
        right.text_input("Excel sheet", key="table_sheet", placeholder="the sheet that holds the table")
    with st.expander("What it holds: detected, a table or time series (optional)"):
        upload_kind, upload_options = _what_it_holds()
with sample_col:
    st.markdown("**No data at hand?**")
    for key, (_, _, label, about, _) in SAMPLES.items():
        st.button(label, key=key, icon=":material/download:", on_click=_load_sample, args=(key,), help=about)

# what the upload was added as: a file still in the uploader can be added again after the choices change
choice = json.dumps([upload_kind, upload_options], sort_keys=True, default=str)
if uploaded is not None and uploaded.file_id != state.get("handled_upload"):
    state["handled_upload"], state["handled_choice"] = uploaded.file_id, choice
    state.pop("pending_upload", None)
    # the uploader keeps its one key: the browser sends the next file to the widget it shows, so a key
    # changed after this run drew the widget would drop that file; the file id keeps a file from being
    # added twice
    _add(uploaded.name, uploaded.getvalue(), kind=upload_kind, options=upload_options)
elif uploaded is not None and state.get("handled_choice") != choice and upload_col.button(
        f"Add {uploaded.name} with these choices", key="upload_again", icon=":material/published_with_changes:",
        help="The file was added with other choices; this adds it once more as you now say."):
    state["handled_choice"] = choice
    state.pop("pending_upload", None)
    _add(uploaded.name, uploaded.getvalue(), kind=upload_kind, options=upload_options)

readd = state.pop("data_readd", None)
if readd is not None:
    dataset_id, options = readd
    record = studio.store.get_dataset(dataset_id)
    stored = next(studio.ws.dataset_dir(dataset_id).glob(STORED_UPLOAD), None)
    if stored is None:
        _flash("error", f"{record.name} was added before its upload was kept: upload the file again to change it.")
    else:
        _add(stored.name, None, source=stored, name=record.name, options=options, kind=record.modality,
             label=f"{record.name} with your choices")

action = state.pop("pending_action", None)
pending: dict[str, Any] | None = state.get("pending_upload")
if pending is not None and action == "drop":
    state.pop("pending_upload", None)
    _add(pending["filename"], pending["data"], source=pending["source"], name=pending["name"], drop_bad=True,
         options=pending.get("options"), kind=pending.get("kind"))
    pending = state.get("pending_upload")
elif pending is not None and action == "cancel":
    state.pop("pending_upload", None)
    pending = None
    _flash("info", "Upload cancelled: nothing was added.")

flash = state.pop("data_flash", None)
if flash is not None:
    kind, message = flash
    {"success": st.success, "error": st.error, "info": st.info}[kind](message)

records = studio.store.list_datasets()
by_id = {d.id: d for d in records}
duplicate = state.get("data_duplicate")
if duplicate is not None and duplicate[1] in by_id:
    filename, existing_id = duplicate
    existing = by_id[existing_id]
    st.info(f"**{filename}** is identical to the dataset **{existing.name}** (`{existing.id}`, added "
            f"{formatting.timestamp(existing.created_at)}): nothing was added.", icon=":material/content_copy:")
    st.button(f"Open {existing.name}", key="open_duplicate", icon=":material/visibility:", on_click=_open,
              args=(existing.id,))

if pending is not None:
    bad = pending["bad"]
    with st.container(border=True):
        st.warning(f"**{pending['filename']}**: {len(bad)} file(s) cannot be used. Drop them and add the rest, "
                   "or cancel and fix the upload.", icon=":material/warning:")
        st.dataframe(pd.DataFrame(bad, columns=["file", "reason"]), hide_index=True,
                     height=min(300, 38 + 35 * len(bad)))
        drop_col, cancel_col, _ = st.columns([2, 1, 3])
        drop_col.button("Drop them and continue", key="drop_bad", type="primary", on_click=_choose, args=("drop",))
        cancel_col.button("Cancel", key="cancel_upload", on_click=_choose, args=("cancel",))


# ---- the datasets -----------------------------------------------------------------------------------

st.divider()
st.subheader(f"Datasets ({len(records)})")
if not records:
    st.info("No datasets yet: upload a zip above or load the sample digits.", icon=":material/info:")
    st.stop()

st.dataframe(
    pd.DataFrame(
        [
            {
                "name": d.name,
                "modality": d.modality,
                "items": d.info.get("num_items", 0),
                "task": d.info.get("task", modality(d.modality).tasks[0]),
                "classes": len(d.info.get("classes", [])),
                "created": formatting.timestamp(d.created_at),
                "id": d.id,
            }
            for d in records
        ]
    ),
    hide_index=True,
)

if state.get("data_selected") not in by_id:
    state["data_selected"] = state["dataset_id"] if state.get("dataset_id") in by_id else records[0].id
selected_id = st.selectbox("Dataset to preview", list(by_id), key="data_selected",
                           format_func=lambda i: f"{by_id[i].name} · {by_id[i].info.get('num_items', 0)} items · {i}")
state["dataset_id"] = selected_id
dataset: DatasetRecord = by_id[selected_id]
info = dataset.info


# ---- preview ------------------------------------------------------------------------------------------

st.subheader(f"Preview: {dataset.name}")
with user_errors("Cannot show this dataset: "):
    views.view(views.of(dataset.modality, info.get("task")).dataset)(studio, dataset,
                                                                       lambda options: _readd(dataset, options))


# ---- delete -------------------------------------------------------------------------------------------

st.divider()


def _ask_delete(dataset_id: str | None) -> None:
    state["confirm_delete"] = dataset_id


def _delete(dataset_id: str) -> None:
    state["confirm_delete"] = None
    try:
        datasets.delete(studio.ws, studio.store, dataset_id)
    except GlassboxError as exc:
        _flash("error", f"Not deleted: {exc}")
        return
    _flash("success", f"Deleted {by_id[dataset_id].name}.")
    state.pop("data_selected", None)
    state.pop("dataset_id", None)


if state.get("confirm_delete") == dataset.id:
    with st.container(border=True):
        st.warning(f"Delete **{dataset.name}** and its {info.get('num_items', 0)} files from the workspace? "
                   "Runs trained on it keep their metrics, but cannot be resumed or show its images.",
                   icon=":material/delete:")
        yes_col, no_col, _ = st.columns([1, 1, 4])
        yes_col.button("Yes, delete", key="confirm_delete_yes", type="primary", on_click=_delete, args=(dataset.id,))
        no_col.button("Keep it", key="confirm_delete_no", on_click=_ask_delete, args=(None,))
else:
    st.button("Delete this dataset", key="delete_dataset", icon=":material/delete:", on_click=_ask_delete,
              args=(dataset.id,))
