"""The Predict page's views: a finished model on inputs it has never seen.

Text: type or paste one text and see the label, the probabilities and the coloured explanation (the same
view as the Explain page), or upload a CSV of texts and download their predictions beside the file's other
columns. Images: upload one or more and see each prediction with a Grad-CAM map of where the model looked,
and download them all with their maps as a zip. An input that looks unlike the training data is flagged
(`core.training_stats`). The work is in `core.prediction` and `core.explain`; what was computed stays in
the session until the inputs change.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core import data, prediction
from core.data.text import read_texts
from core.explain.text import explain_text
from core.training_stats import training_stats, unlike_training
from ui import explain_views, formatting, run_picker, text_explain, thumbnails
from ui.errors import user_errors
from ui.shell import Studio
from ui.uploads import staged_file

TOP_K = 5
TABLE_ROWS = 1000
MAPS = 24
TEXT_TYPES = ["csv", "tsv", "txt"]


def text(studio: Studio, picked: run_picker.Picked) -> None:
    """Predict with a text classifier: one text explained, or a CSV of texts as a table."""
    subject = explain_views.model_or_message(picked.files, studio.ws.cache_dir)
    if subject is None:
        return
    stats = training_stats(picked.files)
    one, many = st.tabs(["One text", "A CSV of texts"])
    with one:
        _one_text(subject, picked.run.id, stats)
    with many:
        _csv_of_texts(studio, subject, picked.run.id, stats, data.modality(picked.run.modality).item_noun)


def _staged_images(studio: Studio, uploads: list[Any], stack: ExitStack) -> tuple[list[Path], list[str]]:
    """Uploaded files on disk until `stack` closes, and their row names: an image by its name, the files
    of a zip by "zip name/path inside" (read as upload reads a zip: `prediction.image_files`)."""
    paths: list[Path] = []
    names: list[str] = []
    for upload in uploads:
        staged = stack.enter_context(staged_file(studio.ws.staging_dir, upload.name, upload.getvalue()))
        if staged.suffix.lower() == ".zip":
            inside, inside_names = stack.enter_context(prediction.image_files([staged], studio.ws.staging_dir))
            paths += inside
            names += [f"{upload.name}/{name}" for name in inside_names]
        else:
            paths.append(staged)
            names.append(upload.name)
    return paths, names


def images(studio: Studio, picked: run_picker.Picked) -> None:
    """Predict with an image classifier: uploaded images, each with its prediction and Grad-CAM map."""
    subject = explain_views.model_or_message(picked.files, studio.ws.cache_dir)
    if subject is None:
        return
    # no type filter: every file gets a row, a prediction or the reason it is no image (a HEIC, a PDF...)
    uploads = st.file_uploader("Images to classify (or zips of them)", accept_multiple_files=True,
                               key="predict_images")
    if not uploads:
        st.caption("Upload one or more images, in any format Pillow reads, or zips of folders of them: each image "
                   "gets the model's prediction and a map of where it looked, each other file the reason.")
        return
    signature = (picked.run.id, tuple(u.file_id for u in uploads))
    state = st.session_state
    if state.get("predict_images_result", {}).get("signature") != signature:
        with user_errors("Cannot classify these images: "), st.spinner(f"Classifying {len(uploads)} image(s)..."), \
                ExitStack() as stack:
            paths, names = _staged_images(studio, uploads, stack)
            table = prediction.images(subject, paths, names, training_stats(picked.files))
            readable = [i for i, error in enumerate(table["error"]) if not error][:MAPS]
            method, overlays = explain_views.map_thumbnails(
                subject, [paths[i] for i in readable], [subject.classes.index(table["predicted"][i]) for i in readable])
            state["predict_images_result"] = {"signature": signature, "table": table, "method": method,
                                              "maps": dict(zip(readable, overlays, strict=True))}
    stored = state.get("predict_images_result")
    if not stored or stored["signature"] != signature:
        return
    table: pd.DataFrame = stored["table"]
    failed = table[table["error"] != ""]
    if len(failed):
        st.warning(f"{len(failed)} of {len(table)} image(s) could not be read: "
                   + "; ".join(f"{row.image}: {row.error}" for row in failed.head(5).itertuples()),
                   icon=":material/broken_image:")
    _unlike_warning(table, "image")
    st.caption(f"{stored['method']} maps of the predicted class: where the model looked.")
    shown = [(png, f"{table['image'][i]}: {table['predicted'][i]} ({formatting.probability(table['confidence'][i])})")
             for i, png in list(stored["maps"].items())[:MAPS] if png is not None]
    for start in range(0, len(shown), 6):
        for column, (png, caption) in zip(st.columns(6), shown[start:start + 6], strict=False):
            column.image(png, caption=caption, width=thumbnails.SIZE + 32)
    _table_and_download(table, picked.run.id, data.modality(picked.run.modality).noun, subject.classes)
    _maps_download(studio, subject, uploads, stored, picked.run.id)


def _maps_download(studio: Studio, subject: Any, uploads: list[Any], stored: dict[str, Any], run_id: str) -> None:
    """The zip of the predictions and a map per readable image (`prediction.maps_zip`). Maps beyond the
    first `MAPS` are made on request, from the uploads staged again: they cost a backward pass each."""
    table: pd.DataFrame = stored["table"]
    maps: dict[int, bytes | None] = stored["maps"]
    missing = [i for i, error in enumerate(table["error"]) if not error and i not in maps]
    if missing and st.button(f"Make the maps of the other {len(missing)} image(s) for the zip",
                             key="predict_all_maps", icon=":material/layers:"):
        with user_errors("Cannot make the maps: "), st.spinner(f"Making {len(missing)} map(s)..."), \
                ExitStack() as stack:
            paths, _ = _staged_images(studio, uploads, stack)
            _, overlays = explain_views.map_thumbnails(
                subject, [paths[i] for i in missing], [subject.classes.index(table["predicted"][i]) for i in missing])
            maps.update(zip(missing, overlays, strict=True))
            missing = []
    if not missing:
        st.download_button(f"Download the predictions with a {stored['method']} map per image (zip)",
                           prediction.maps_zip(table, {i: png for i, png in maps.items() if png is not None}),
                           file_name=f"{run_id}-predictions-images.zip", mime="application/zip",
                           key="predict_download-maps", icon=":material/folder_zip:")


def _one_text(subject: Any, run_id: str, stats: dict[str, Any] | None) -> None:
    state = st.session_state
    typed = st.text_area("Text", key="predict_text", height=140,
                         placeholder="Type or paste a text, then press Predict.")
    # never disabled: a text typed but not yet committed (no Ctrl+Enter, no click elsewhere) only reaches
    # the script with the click itself, so a button disabled while the box looked empty could not be pressed
    go = st.button("Predict", type="primary", key="predict_go", icon=":material/play_arrow:")
    signature = (run_id, typed)
    if go and not typed.strip():
        st.warning("Type or paste a text to predict on first.", icon=":material/edit:")
    elif go:
        with user_errors("Cannot predict on this text: "), st.spinner("Predicting and explaining..."):
            state["predict_result"] = {"signature": signature, "result": explain_text(subject, typed, "ig")}
    stored = state.get("predict_result")
    if not stored or stored["signature"] != signature:
        return
    result = stored["result"]
    unlike = unlike_training(stats, typed)
    if unlike:
        st.warning(f"This text looks unlike the training texts ({unlike}): trust the prediction less.",
                   icon=":material/travel_explore:")
    label, chart = st.columns([1, 2], gap="large")
    label.metric("Prediction", result["predicted"])
    label.metric("Probability", formatting.probability(result["probability"]))
    classes = list(result["probabilities"])
    chart.plotly_chart(explain_views.top_k(list(result["probabilities"].values()), classes, TOP_K,
                                           highlight=classes.index(result["predicted"])), key="predict_topk")
    st.markdown("**Why:** Integrated Gradients over the words")
    text_explain.show_result(result, key="predict")
    st.page_link("pages/5_Explain.py", label="Explain other classes or with other methods",
                 icon=":material/lightbulb:")


def _csv_of_texts(studio: Studio, subject: Any, run_id: str, stats: dict[str, Any] | None, item: str) -> None:
    """A CSV of texts predicted as a table; `item` names one text, as its column in `prediction.texts` does."""
    state = st.session_state
    upload = st.file_uploader("CSV or TSV of texts, or a .txt file of one text per line", type=TEXT_TYPES,
                              key="predict_csv", help="A CSV or TSV needs a header row; its other columns (ids...) "
                                                      "are kept beside the predictions. A .txt file has no header.")
    column = st.text_input("Text column (optional)", key="predict_csv_column",
                           help="Leave empty to use the column that looks most like text.")
    if upload is None:
        return
    signature = (run_id, upload.file_id, column.strip())
    if state.get("predict_csv_result", {}).get("signature") != signature:
        with user_errors(f"Cannot predict on {upload.name}: ", about=upload.name), st.spinner("Predicting..."), \
                staged_file(studio.ws.staging_dir, upload.name, upload.getvalue()) as path:
            read = read_texts(path, column.strip() or None)
            state["predict_csv_result"] = {"signature": signature, "column": read.column,
                                           "table": prediction.texts(subject, read.texts, read.problems,
                                                                     read.others, stats)}
    stored = state.get("predict_csv_result")
    if not stored or stored["signature"] != signature:
        return
    table: pd.DataFrame = stored["table"]
    st.caption(f"{len(table)} text(s) from column **{stored['column']}**.")
    flagged = table[table["error"] != ""]
    if len(flagged):
        st.warning(f"{len(flagged)} row(s) to distrust (see the error column): "
                   + "; ".join(dict.fromkeys(flagged["error"].head(5))), icon=":material/warning:")
    cut = int(table["cut_off"].sum())
    if cut:
        st.info(f"{cut} text(s) are longer than the model's max length: only their first tokens were read "
                "(see the cut_off column).", icon=":material/content_cut:")
    _unlike_warning(table, item)
    _table_and_download(table, run_id, "texts", subject.classes)


def _unlike_warning(table: pd.DataFrame, kind: str) -> None:
    """Which inputs look unlike the training data, and how (the first few; the table's `unlike_training`
    column has them all)."""
    unlike = table[table["unlike_training"] != ""]
    if len(unlike):
        st.warning(f"{len(unlike)} of {len(table)} {kind}(s) look unlike the training data, so trust their "
                   "predictions less (see the unlike_training column): "
                   + "; ".join(f"{str(name)[:40]}: {hint}" for name, hint in zip(unlike[kind].head(5),
                                                                                 unlike["unlike_training"].head(5),
                                                                                 strict=True)),
                   icon=":material/travel_explore:")


def _counts_chart(table: pd.DataFrame, noun: str, classes: list[str]) -> go.Figure:
    """How many inputs each class got: a bar per class of the model (none predicted included), the most
    frequent on top, the count written at its end."""
    counts = table["predicted"].value_counts().reindex(classes, fill_value=0).sort_values(kind="stable")
    fig = go.Figure(go.Bar(x=counts.tolist(), y=counts.index.tolist(), orientation="h", marker_color="#2563eb",
                           text=counts.tolist(), textposition="outside", cliponaxis=False,
                           hovertemplate="%{y}: %{x}<extra></extra>"))
    fig.update_layout(xaxis=dict(title=f"{noun} predicted as the class", rangemode="tozero"),
                      yaxis=dict(title="predicted class", type="category"), height=90 + 28 * len(classes),
                      margin=dict(l=10, r=30, t=10, b=10))
    return fig


_FLAG_LABELS = {"error": "problem", "unlike_training": "unlike the training data", "cut_off": "cut at max length"}


def _table_and_download(table: pd.DataFrame, run_id: str, noun: str, classes: list[str]) -> None:
    st.plotly_chart(_counts_chart(table, noun, classes), key=f"predict_counts-{noun}")
    if len(table) > TABLE_ROWS:
        st.caption(f"The first {TABLE_ROWS} of {len(table)} rows; the download holds them all.")
    # one format for every probability; an unreadable file's row shows a dash, not "None", where it has none
    config = {"confidence": st.column_config.ProgressColumn("confidence", min_value=0.0, max_value=1.0,
                                                            format=formatting.PROBABILITY_FORMAT),
              **{f"p({c})": st.column_config.NumberColumn(f"p({c})", format=formatting.PROBABILITY_FORMAT)
                 for c in classes},
              **{column: label for column, label in _FLAG_LABELS.items() if column in table}}
    # what to distrust right after the prediction, where it is seen without scrolling; the CSV keeps its order
    flags = [column for column in ("error", "unlike_training", "cut_off") if column in table]
    order = [c for c in table.columns if c not in flags and not c.startswith("p(")] + flags + \
        [c for c in table.columns if c.startswith("p(")]
    st.dataframe(table.head(TABLE_ROWS), hide_index=True, key=f"predict_table-{noun}", column_config=config,
                 column_order=order, placeholder=formatting.MISSING)
    st.download_button("Download the predictions (CSV)", table.to_csv(index=False).encode("utf-8"),
                       file_name=f"{run_id}-predictions-{noun}.csv", mime="text/csv", key=f"predict_download-{noun}",
                       icon=":material/download:")
