"""Glassbox home: what the studio is, the steps, and where the workspace stands.

Run with `streamlit run app.py`; the steps live in `pages/` (Streamlit's own multipage convention),
each of which calls `ui.shell.setup` first so a bookmarked page looks the same as this one.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.store import ACTIVE
from ui.shell import setup

studio = setup("Home")

st.title("Glassbox")
st.markdown(
    "Train an image or text classifier without writing code: upload labelled images or a CSV of texts, pick a "
    "pretrained backbone, and watch it learn.  \n"
    "Then look inside: per-class metrics, the confusion matrix, the very items it gets wrong, and which pixels "
    "or words each decision rests on."
)

datasets = studio.store.list_datasets()
all_runs = studio.store.list_runs()
active = [r for r in all_runs if r.status in ("queued", *ACTIVE)]

counts = st.columns(3)
counts[0].metric("Datasets", len(datasets))
counts[1].metric("Runs", len(all_runs))
counts[2].metric("Active or queued runs", len(active))

st.subheader("Steps")
steps = [
    ("pages/1_Data.py", "1 · Data", ":material/folder_open:",
     "Upload a zip of images (one folder per class) or a CSV of texts and labels."),
    ("pages/2_Train.py", "2 · Train", ":material/model_training:", "Choose a backbone and a preset, then start."),
    ("pages/3_Runs.py", "3 · Runs", ":material/monitoring:", "Watch training live, cancel, resume, compare."),
    ("pages/4_Evaluate.py", "4 · Evaluate", ":material/analytics:", "Metrics per class and the confusion matrix."),
    ("pages/5_Explain.py", "5 · Explain", ":material/lightbulb:", "Why the model decides as it does, input by input."),
    ("pages/6_Predict.py", "6 · Predict", ":material/online_prediction:",
     "Try the model on new inputs; export it as a bundle that runs elsewhere."),
]
here = Path(__file__).resolve().parent
for page, label, icon, help_text in steps:
    if not (here / page).exists():  # a step still being built is simply not offered
        continue
    left, right = st.columns([1, 3], vertical_alignment="center")
    with left:
        st.page_link(page, label=label, icon=icon)
    right.caption(help_text)

if not datasets:
    st.info(
        "**New here? Start with the sample digits.** On the Data page, press *Load sample: handwritten digits* "
        "(400 small scans of the digits 0-9), then train with the *Quick (CPU)* preset: under a minute on a laptop.",
        icon=":material/lightbulb:",
    )
    st.page_link("pages/1_Data.py", label="Start with the sample digits", icon=":material/arrow_forward:")
elif not all_runs:
    st.info("You have data: train your first model.", icon=":material/lightbulb:")
    st.page_link("pages/2_Train.py", label="Go to Train", icon=":material/arrow_forward:")
elif active:
    st.info(f"{len(active)} run(s) in progress.", icon=":material/monitoring:")
    st.page_link("pages/3_Runs.py", label="Watch them live", icon=":material/arrow_forward:")
