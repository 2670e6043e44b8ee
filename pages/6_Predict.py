"""Predict: a finished run's model on new inputs, each prediction with the reason for it.

The page picks the run; the view for its modality (`ui.views`) does the rest.
"""

from __future__ import annotations

import streamlit as st

from ui import run_picker
from ui.shell import setup

studio = setup("Predict")
st.title("Predict")
st.caption("Try a trained model on inputs it has never seen.")
run_picker.show_view(studio, "predict_run", "predict with", "predict")
