"""A run beside its baselines (`core.baselines`): what always answering the largest class scores, what a
classical method scores on the same split, and a plain verdict, for the Runs and Evaluate pages.

A model at 77% looks good until one sees that always answering 'positive' scores 71% and that it finds
under a third of the 'negative' items: the verdict says so, and offers the remedy (class weights).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core.artifacts import RunFiles
from core.baselines import title
from core.errors import GlassboxError
from core.store import RunRecord
from ui import formatting, run_picker
from ui.shell import Studio

# a model that removes under this share of the majority baseline's errors is "barely better" than it
BARELY = 0.25
# within this many accuracy points of a classical baseline, a model is "about as good as" it
ABOUT = 0.01
# classes are imbalanced when the largest has this many times the validation items of the smallest:
# accuracy then flatters a model that favours the large class
IMBALANCE_RATIO = 1.5
_ICONS = {"success": ":material/check_circle:", "warning": ":material/warning:", "info": ":material/info:"}


def show(studio: Studio, run: RunRecord) -> None:
    """The run's accuracy, balanced accuracy and macro F1 beside each baseline's, and the verdict;
    nothing for a run trained before baselines were computed."""
    found: dict[str, dict[str, Any]] = run.metrics.get("baselines") or {}
    if not found:
        return
    try:
        report: dict[str, Any] | None = run_picker.report(RunFiles(studio.ws.run_dir(run.id)))
    except GlassboxError:  # predictions gone: the stored figures still stand, without per-class recall
        report = None
    st.markdown("**Against simple baselines** (same validation split)")
    st.dataframe(table(run.metrics, found), hide_index=True)
    for level, message in verdict(run.metrics, found, report, run.config.get("class_weights", "none")):
        getattr(st, level)(message, icon=_ICONS[level])


def table(metrics: dict[str, Any], found: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row for the model and one per baseline: accuracy, balanced accuracy and macro F1 as percentages."""
    rows = [("This model", {"accuracy": metrics.get("val_accuracy"),
                            "balanced_accuracy": metrics.get("val_balanced_accuracy"),
                            "macro_f1": metrics.get("val_macro_f1")})]
    rows += [(title(name, values), values) for name, values in found.items()]
    return pd.DataFrame([
        {"": label, "accuracy": formatting.percent(values.get("accuracy")),
         "balanced accuracy": formatting.percent(values.get("balanced_accuracy")),
         "macro F1": formatting.percent(values.get("macro_f1"))}
        for label, values in rows
    ])


def verdict(metrics: dict[str, Any], found: dict[str, dict[str, Any]], report: dict[str, Any] | None,
            class_weights: str = "none") -> list[tuple[str, str]]:
    """(level, message) pairs, level being a Streamlit alert ("success", "warning", "info"): the model
    against always answering the largest class (with the recall of its weakest class when it is barely
    better), against each classical baseline, and, when classes are imbalanced, that accuracy flatters
    it and what to do (class weights, unless the run used them)."""
    accuracy = float(metrics["val_accuracy"])
    majority = found["majority"]
    share, largest = float(majority["accuracy"]), majority["class"]
    always = f"always answering {largest!r} ({formatting.percent(share)})"
    gain = (accuracy - share) / (1 - share) if share < 1 else 0.0
    if accuracy <= share:
        said = [("warning", f"{formatting.percent(accuracy)} accuracy is no better than {always}.")]
    elif gain < BARELY:
        said = [("warning", f"{formatting.percent(accuracy)} accuracy is barely better than {always}.")]
    else:
        said = [("success", f"{formatting.percent(accuracy)} accuracy is well above {always}.")]
    weakest = _weakest_class(report) if report is not None else None
    if weakest is not None and said[0][0] == "warning":
        name, recall = weakest
        said[0] = ("warning", f"{said[0][1]} It finds only {formatting.percent(recall, 0)} of the {name!r} items "
                              f"(recall {recall:.2f}).")
    for name, values in found.items():
        if name == "majority":
            continue
        other = float(values["accuracy"])
        scores = f"{title(name, values)} scores {formatting.percent(other)} on the same split"
        if accuracy < other - ABOUT:
            said.append(("warning", f"{scores}: more than this model."))
        elif accuracy <= other + ABOUT:
            said.append(("info", f"{scores}: about as much as this model."))
        else:
            said.append(("success", f"{scores}: this model does {(accuracy - other) * 100:.1f} points better."))
    if report is not None and _imbalanced(report):
        balanced = metrics.get("val_balanced_accuracy", report.get("balanced_accuracy"))
        message = (f"Classes are imbalanced: {largest!r} is {formatting.percent(share)} of the validation items, "
                   f"so accuracy flatters a model that favours it; balanced accuracy "
                   f"({formatting.percent(balanced)}) counts every class the same.")
        if class_weights == "none":
            message += (" Train again with class weights *balanced* (Advanced settings on Train, or "
                        "`--class-weights balanced`) so that every class counts as much in training.")
        said.append(("info", message))
    return said


def _weakest_class(report: dict[str, Any]) -> tuple[str, float] | None:
    """The class with the lowest recall among those with validation items, and that recall."""
    present = [row for row in report["per_class"] if row["support"]]
    if not present:
        return None
    row = min(present, key=lambda r: r["recall"])
    return row["class"], float(row["recall"])


def _imbalanced(report: dict[str, Any]) -> bool:
    supports = np.asarray([row["support"] for row in report["per_class"] if row["support"]])
    return len(supports) > 1 and supports.max() >= IMBALANCE_RATIO * supports.min()
