"""Evaluate: how a finished run does on the validation items it never trained on, and beside its baselines.

The page picks the run; the view for its task (`ui.views`: a confusion matrix, per-class figures, ROC and
precision-recall curves and a reliability diagram for a classifier; predicted against true values for a
regression; forecasts over their history) does the rest, from the run's saved predictions (the best epoch's, and
the test split's apart when the user made one), so this page trains nothing.
"""

from __future__ import annotations

import streamlit as st

from core import data, tasks
from ui import run_picker, views
from ui.errors import user_errors
from ui.shell import setup

studio = setup("Evaluate")
st.title("Evaluate")
picked = run_picker.pick_completed(studio, "eval_run", "evaluate")
with user_errors("Cannot evaluate this run: "):
    task = tasks.of_run(picked.run.config)
    views.evaluation(task.name)(studio, picked, data.modality(picked.run.modality))
