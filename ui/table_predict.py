"""The Predict page's view of a table model: one row typed into a form built from the run's columns, with its
prediction and the columns it rests on; or a CSV, TSV, Excel or Parquet file of rows, each predicted, with the
reason beside any row that cannot be used (a word in a numeric column) while the others are still predicted, to
download as CSV.

New rows are read exactly as the run's training rows were (`core.data.tables.rows_to_predict`: the same
conversions, missing values imputed, unseen categories read as unknown) and predicted by `core.prediction.rows`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from core import prediction
from core.artifacts import RunFiles
from core.data.tables import rows_to_predict
from core.explain.tables import explain_row
from ui import explain_views, formatting, run_picker, table_explain
from ui.errors import user_errors
from ui.shell import Studio
from ui.uploads import staged_file

TOP_K = 5
TABLE_ROWS = 1000
FILE_TYPES = ["csv", "tsv", "txt", "xlsx", "parquet"]


def show(studio: Studio, picked: run_picker.Picked) -> None:
    """Predict with a table model: one typed row explained, or a file of rows as a table."""
    subject = _subject_or_message(picked.files, studio.ws.cache_dir)
    if subject is None:
        return
    one, many = st.tabs(["One row", "A file of rows"])
    with one:
        _one_row(studio, picked, subject)
    with many:
        _file_of_rows(studio, picked, subject)


def _subject_or_message(files: RunFiles, cache_dir: Path) -> prediction.TableSubject | None:
    with user_errors("Cannot load this run's model: "):
        mtime = files.weights.stat().st_mtime if files.weights.exists() else 0.0
        return _loaded(str(files.root), str(cache_dir), mtime)
    return None


@st.cache_resource(max_entries=2, show_spinner="Loading the model...")
def _loaded(run_dir: str, cache_dir: str, mtime: float) -> prediction.TableSubject:
    return prediction.TableSubject(RunFiles(Path(run_dir)), Path(cache_dir))


def _one_row(studio: Studio, picked: run_picker.Picked, subject: prediction.TableSubject) -> None:
    state = st.session_state
    run_id = picked.run.id
    st.caption("Each field starts at the training rows' typical value (the median, the most frequent level); an "
               "empty field is a missing value, and a category never seen in training is read as unknown.")
    row = table_explain.row_form(subject.columns, subject.encoder, f"predict_row-{run_id}")
    go = st.button("Predict", type="primary", key="predict_row_go", icon=":material/play_arrow:")
    signature = (run_id, row.to_json())
    if go:
        with user_errors("Cannot predict on this row: "), st.spinner("Predicting and explaining..."):
            read = rows_to_predict(row, subject.columns, subject.target)
            table = prediction.rows(subject, read)
            result = None
            if not read.problems[0]:
                explainer = explain_views.explainable_model(picked.files, studio.ws.cache_dir)
                encoded = explainer.encoder.transform(read.typed)
                with user_errors("Cannot explain this prediction: "):
                    result = explain_row(explainer, encoded["numeric"], encoded["categorical"], "ig")
            state["predict_row_result"] = {"signature": signature, "table": table, "result": result}
    stored = state.get("predict_row_result")
    if not stored or stored["signature"] != signature:
        return
    table: pd.DataFrame = stored["table"]
    error = str(table["error"].iloc[0])
    if error:
        st.error(f"This row cannot be used: {error}", icon=":material/error:")
        return
    label, chart = st.columns([1, 2], gap="large")
    predicted = table["predicted"].iloc[0]
    if subject.classes:
        label.metric("Prediction", str(predicted))
        label.metric("Probability", formatting.probability(float(table["confidence"].iloc[0])))
        probabilities = [float(table[f"p({c})"].iloc[0]) for c in subject.classes]
        chart.plotly_chart(explain_views.top_k(probabilities, subject.classes, TOP_K,
                                               highlight=subject.classes.index(str(predicted))), key="predict_topk")
    else:
        label.metric(f"Predicted {subject.target}", formatting.amount(float(predicted)))
    if stored["result"] is not None:
        st.markdown("**Why:** Integrated Gradients over the columns")
        table_explain.show_result(stored["result"], key="predict_row")
    st.page_link("pages/5_Explain.py", label="Explain other classes or with other methods",
                 icon=":material/lightbulb:")


def _file_of_rows(studio: Studio, picked: run_picker.Picked, subject: prediction.TableSubject) -> None:
    state = st.session_state
    upload = st.file_uploader("A CSV, TSV, Excel or Parquet file of rows", type=FILE_TYPES, key="predict_rows",
                              help="With a header row naming the columns the model reads; other columns (ids...) are "
                                   "kept beside the predictions, and a target column, if present, is ignored.")
    sheet = st.text_input("Excel sheet (optional)", key="predict_rows_sheet",
                          help="Leave empty to read the sheet that holds the table.")
    if upload is None:
        return
    signature = (picked.run.id, upload.file_id, sheet.strip())
    if state.get("predict_rows_result", {}).get("signature") != signature:
        with user_errors(f"Cannot predict on {upload.name}: ", about=upload.name), st.spinner("Predicting..."), \
                staged_file(studio.ws.staging_dir, upload.name, upload.getvalue()) as path:
            read = rows_to_predict(path, subject.columns, subject.target, sheet=sheet.strip() or None)
            state["predict_rows_result"] = {"signature": signature, "table": prediction.rows(subject, read)}
    stored = state.get("predict_rows_result")
    if not stored or stored["signature"] != signature:
        return
    _rows_table(stored["table"], picked.run.id, subject)


def _rows_table(table: pd.DataFrame, run_id: str, subject: Any) -> None:
    """The predictions with the reason beside each row that could not be used, and the CSV to download."""
    failed = table[table["error"] != ""]
    st.caption(f"{len(table)} row(s), {len(table) - len(failed)} predicted.")
    if len(failed):
        st.warning(f"{len(failed)} of {len(table)} row(s) could not be used (see the error column): "
                   + "; ".join(f"row {row.row}: {row.error}" for row in failed.head(5).itertuples()),
                   icon=":material/warning:")
    if len(table) > TABLE_ROWS:
        st.caption(f"The first {TABLE_ROWS} of {len(table)} rows; the download holds them all.")
    config: dict[str, Any] = {"error": "problem"}
    if subject.classes:
        config.update({"confidence": st.column_config.ProgressColumn(
            "confidence", min_value=0.0, max_value=1.0, format=formatting.PROBABILITY_FORMAT),
            **{f"p({c})": st.column_config.NumberColumn(f"p({c})", format=formatting.PROBABILITY_FORMAT)
               for c in subject.classes}})
    else:
        config["predicted"] = st.column_config.NumberColumn(f"predicted {subject.target}", format="%.4g")
    # the prediction and what to distrust first, where they are seen without scrolling; the CSV keeps its order
    first = [c for c in ("row", "predicted", "confidence", "error") if c in table]
    order = first + [c for c in table.columns if c not in first]
    st.dataframe(table.head(TABLE_ROWS), hide_index=True, key="predict_table-rows", column_config=config,
                 column_order=order, placeholder=formatting.MISSING)
    st.download_button("Download the predictions (CSV)", table.to_csv(index=False).encode("utf-8"),
                       file_name=f"{run_id}-predictions-rows.csv", mime="text/csv", key="predict_download-rows",
                       icon=":material/download:")
