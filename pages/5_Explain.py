"""Explain: why a finished run's model decides what it does on one input, method by method, with how far
each explanation can be trusted.

The page picks the run; the view for its modality (`ui.views`) does the rest.
"""

from __future__ import annotations

import streamlit as st

from ui import run_picker
from ui.shell import setup

studio = setup("Explain")
st.title("Explain")
st.caption("Which parts of an input a trained model relies on, and how far each explanation can be trusted.")
run_picker.show_view(studio, "explain_run", "explain", "explain")
