"""The Data page's preview of a dataset whose items each carry one class label (images, texts): counts, class
balance, text lengths or image sizes, how the file was read, and samples per class.

`labelled_items` is registered for those modalities in `ui.views`; it reads only the dataset's info and files.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from core.config import TrainConfig
from core.data import modality
from core.data.reading import DELIMITER_NAMES
from core.store import DatasetRecord
from ui import charts, formatting, thumbnails
from ui.shell import Studio

MAX_CLASSES_SHOWN = 12


def labelled_items(studio: Studio, dataset: DatasetRecord, readd: Callable[[dict[str, Any]], None]) -> None:
    """Figures, problems, the class-count chart, reading notes and samples of a labelled dataset (`readd` is
    unused: its ingest choices are made before the upload)."""
    info = dataset.info
    classes: list[str] = info.get("classes", [])
    counts: dict[str, int] = info.get("counts", {})
    figures = st.columns(4)
    figures[0].metric("Items", info.get("num_items", 0))
    figures[1].metric("Classes", len(classes))
    figures[2].metric("Smallest class", min(counts.values()) if counts else 0)
    figures[3].metric("Files left out", len(info.get("dropped", [])))

    for problem in info.get("problems", []):
        show = st.error if problem.get("level") == "error" else st.warning
        show(problem.get("message", ""), icon=":material/warning:")

    chart_col, stats_col = st.columns([3, 2], gap="large")
    with chart_col:
        st.plotly_chart(charts.class_counts(counts), key="class_counts")
        if "length_histogram" in info:
            st.plotly_chart(charts.length_histogram(info["length_histogram"], TrainConfig.max_length),
                            key="length_histogram")
    with stats_col:
        _reading(dataset)
    _samples(studio, dataset)


def _reading(dataset: DatasetRecord) -> None:
    """Text lengths and how a CSV was read, or image sizes and colour modes."""
    info = dataset.info
    length = info.get("length", {})
    if length:
        st.markdown(f"**Text length ({length['unit']})**")
        st.dataframe(pd.DataFrame([{k: length.get(k) for k in ("min", "median", "p95", "max")}]), hide_index=True,
                     placeholder=formatting.MISSING)
        if length.get("tokenizer"):
            st.caption(f"Tokens of {length['tokenizer']}'s tokenizer, [CLS] and [SEP] included; other backbones "
                       f"split words a little differently. Median {length['words_median']:.0f} words.")
    if "encoding" in info:
        st.caption(f"Read as {info['encoding']}, delimiter: {DELIMITER_NAMES.get(info['delimiter'], info['delimiter'])}"
                   f"; texts from column **{info['text_column']}**, labels from **{info['label_column']}** "
                   f"(columns: {', '.join(info.get('columns', []))}).")
        for note in info.get("reading", []):
            st.caption(note)
    size = info.get("size", {})
    if size:
        st.markdown("**Image size (px)**")
        st.dataframe(
            pd.DataFrame(
                [{"": axis, **{k: size[axis].get(k) for k in ("min", "median", "max")}}
                 for axis in ("width", "height") if axis in size]
            ),
            hide_index=True, placeholder=formatting.MISSING,
        )
    modes = info.get("modes", {})
    if modes:
        st.markdown("**Colour modes**")
        st.dataframe(pd.DataFrame([{"mode": m, f"{modality(dataset.modality).noun}": n} for m, n in modes.items()]),
                     hide_index=True)
    layout = f"Layout: {info['layout']} · " if "layout" in info else ""
    st.caption(f"{layout}Added {formatting.timestamp(dataset.created_at)} · id `{dataset.id}`")


def _samples(studio: Studio, dataset: DatasetRecord) -> None:
    """A few items per class: thumbnails of images, the texts themselves."""
    info = dataset.info
    samples: dict[str, list[str]] = info.get("samples", {})
    if not samples:
        return
    classes: list[str] = info.get("classes", [])
    counts: dict[str, int] = info.get("counts", {})
    dataset_dir = studio.ws.dataset_dir(dataset.id)
    st.markdown("**Samples per class**")
    shown_classes = classes
    if len(classes) > MAX_CLASSES_SHOWN:
        shown_classes = st.multiselect("Classes to show", classes, default=classes[:MAX_CLASSES_SHOWN],
                                       key=f"sample_classes-{dataset.id}")
    for name in shown_classes:
        st.caption(f"**{name}** · {counts.get(name, 0)} items")
        if modality(dataset.modality).shows_items_as == "thumbnails":
            thumbnails.grid([dataset_dir / rel for rel in samples.get(name, [])])
        else:
            for text in samples.get(name, []):
                st.text(text if len(text) <= 400 else text[:400] + "…")
