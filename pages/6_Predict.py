"""Predict and export: a finished run's model on new inputs, each prediction with the reason for it, and the
run as one zip that predicts the same elsewhere.

The page picks the run; the view for its modality (`ui.views`) predicts, `ui.export_views` exports.
"""

from __future__ import annotations

import streamlit as st

from ui import export_views, run_picker
from ui.shell import setup

studio = setup("Predict")
st.title("Predict")
st.caption("Try a trained model on inputs it has never seen, or take it away as a bundle that runs elsewhere.")
picked = run_picker.pick_completed(studio, "predict_run", "predict with")
run_picker.show_step(studio, picked, "predict")
export_views.show(studio, picked)
