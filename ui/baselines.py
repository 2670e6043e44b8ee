"""A run beside its baselines (`core.baselines`): what always answering the largest class (or the training mean)
scores, what a classical method and the blend of both score on the same split, and a plain verdict, for the Runs
and Evaluate pages.

A model at 77% looks good until one sees that always answering 'positive' scores 71% and that it finds
under a third of the 'negative' items: the verdict says so, and offers the remedy (class weights).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core import tasks
from core.artifacts import RunFiles
from core.baselines import BLEND, title
from core.errors import GlassboxError
from core.store import RunRecord
from core.tasks import Metric, Task
from ui import formatting, run_picker
from ui.shell import Studio

# a model that removes under this share of the majority baseline's errors is "barely better" than it
BARELY = 0.25
# within this much of a classical baseline's headline figure (a point of accuracy, 0.01 of R²), a model is
# "about as good as" it
ABOUT = 0.01
# an error (MAE) within this share of a baseline's is "about the same": errors compare by ratio, not difference
ABOUT_SHARE = 0.02
# classes are imbalanced when the largest has this many times the validation items of the smallest:
# accuracy then flatters a model that favours the large class
IMBALANCE_RATIO = 1.5
# figures a classifier's table also shows when its rows have them, beside its task's own
_MORE = (Metric("balanced_accuracy", "balanced accuracy", percent=True), Metric("roc_auc", "ROC-AUC"),
         Metric("pr_auc", "PR-AUC"))
_ICONS = {"success": ":material/check_circle:", "warning": ":material/warning:", "info": ":material/info:"}


def show(studio: Studio, run: RunRecord) -> None:
    """The run's figures beside each baseline's (its task's: accuracy, balanced accuracy and macro F1, or R², MAE
    and RMSE), and the verdict; nothing for a run trained before baselines were computed."""
    found: dict[str, dict[str, Any]] = run.metrics.get("baselines") or {}
    if not found:
        return
    task = tasks.of_run(run.config)
    try:
        report: dict[str, Any] | None = run_picker.report(RunFiles(studio.ws.run_dir(run.id)))
    except GlassboxError:  # predictions gone: the stored figures still stand, without per-class recall
        report = None
    if report is not None and "per_class" not in report:  # values rather than classes: no recall to name
        report = None
    st.markdown("**Against simple baselines** (same validation split)")
    st.dataframe(table(run.metrics, found, task), hide_index=True)
    for level, message in verdict(run.metrics, found, report, run.config.get("class_weights", "none"), task):
        getattr(st, level)(message, icon=_ICONS[level])


def table(metrics: dict[str, Any], found: dict[str, dict[str, Any]], task: Task | None = None) -> pd.DataFrame:
    """One row for the model and one per baseline (the blend of both included): every figure of the task that a
    row has (a baseline has no loss), and `_MORE` ones (balanced accuracy, ROC-AUC...) when a row has them."""
    task = task or tasks.of_run({})
    rows = [("This model", {key[len("val_"):]: value for key, value in metrics.items() if key.startswith("val_")})]
    rows += [(title(name, values), values) for name, values in found.items()]
    candidates = [*task.metrics_shown, *(m for m in _MORE if m.key not in {s.key for s in task.metrics_shown})]
    columns = [m for m in candidates if any(values.get(m.key) is not None for _, values in rows[1:])]
    return pd.DataFrame([{"": label, **{m.title: formatting.metric(m, values.get(m.key)) for m in columns}}
                         for label, values in rows])


def verdict(metrics: dict[str, Any], found: dict[str, dict[str, Any]], report: dict[str, Any] | None,
            class_weights: str = "none", task: Task | None = None) -> list[tuple[str, str]]:
    """(level, message) pairs, level being a Streamlit alert ("success", "warning", "info"): the model
    against the task's trivial baseline (always answering the largest class, with the recall of its weakest
    class when it is barely better; always answering the training mean), against each classical baseline and
    the blend, by the task's headline figure (accuracy, R²), and, when classes are imbalanced, that accuracy
    flatters it and what to do (class weights, unless the run used them). When the headline figure is an error
    (a forecast's MAE), the model's against each baseline's as a percentage (`_error_verdict`)."""
    task = task or tasks.of_run({})
    headline = task.metrics_shown[0]
    ours = float(metrics[f"val_{headline.key}"])
    if not headline.higher_is_better:
        return _error_verdict(headline, ours, found, task)
    trivial = found[task.trivial_baseline]
    theirs = float(trivial[headline.key])
    named = title(task.trivial_baseline, trivial)
    always = f"always answering {named[len('always '):]}" if named.startswith("always ") else named
    always = f"{always} ({_figure(headline, theirs, alone=True)})"
    best = 1.0 if headline.higher_is_better else 0.0  # accuracy and R² cannot beat 1
    gain = (ours - theirs) / (best - theirs) if best != theirs else 0.0
    mine = _figure(headline, ours)
    if gain <= 0:
        said = [("warning", f"{mine} is no better than {always}.")]
    elif gain < BARELY:
        said = [("warning", f"{mine} is barely better than {always}.")]
    else:
        said = [("success", f"{mine} is well above {always}.")]
    weakest = _weakest_class(report) if report is not None else None
    if weakest is not None and said[0][0] == "warning":
        name, recall = weakest
        said[0] = ("warning", f"{said[0][1]} It finds only {formatting.percent(recall, 0)} of the {name!r} items "
                              f"(recall {recall:.2f}).")
    sign = 1 if headline.higher_is_better else -1
    for name, values in found.items():
        if name == task.trivial_baseline or values.get(headline.key) is None:
            continue
        other = float(values[headline.key])
        label = title(name, values)
        scores = f"{label[:1].upper()}{label[1:]} scores {_figure(headline, other, alone=True)} on the same split"
        gap = _gap(headline, abs(ours - other))
        if sign * (ours - other) < -ABOUT:
            said.append(("warning", f"{scores}: {gap} better than this model."
                         + (" Averaging the two answers beats each alone." if name == BLEND else "")))
        elif sign * (ours - other) <= ABOUT:
            said.append(("info", f"{scores}: about as much as this model."))
        else:
            said.append(("success", f"{scores}: this model does {gap} better."))
    if report is not None and _imbalanced(report):
        largest, share = trivial.get("class"), theirs
        balanced = metrics.get("val_balanced_accuracy", report.get("balanced_accuracy"))
        message = (f"Classes are imbalanced: {largest!r} is {formatting.percent(share)} of the validation items, "
                   f"so accuracy flatters a model that favours it; balanced accuracy "
                   f"({formatting.percent(balanced)}) counts every class the same.")
        if class_weights == "none":
            message += (" Train again with class weights *balanced* (Advanced settings on Train, or "
                        "`--class-weights balanced`) so that every class counts as much in training.")
        said.append(("info", message))
    return said


def _error_verdict(headline: Metric, ours: float, found: dict[str, dict[str, Any]],
                   task: Task) -> list[tuple[str, str]]:
    """The verdict when the headline figure is an error (a forecast's MAE): by how many percent this model's
    error lies below or above each baseline's, as "This model's MAE (2.71) is 22% below that of the last season
    repeated, whose MAE is 3.47 on the same split". Well below the trivial baseline is a success, and barely below
    it (less than `BARELY`) or above any baseline a warning."""
    said: list[tuple[str, str]] = []
    mine = f"This model's {headline.title} ({formatting.metric(headline, ours)})"
    for name, values in found.items():
        if values.get(headline.key) is None:
            continue
        theirs = float(values[headline.key])
        other = (f"{title(name, values)}, whose {headline.title} is {formatting.metric(headline, theirs)} on the "
                 "same split")
        if theirs <= 0:  # a perfect baseline: no ratio to state
            said.append(("info", f"{mine} is about that of {other}.") if ours <= 0 else
                        ("warning", f"{mine} is above that of {other}: the baseline does better."))
            continue
        change = (ours - theirs) / theirs
        if abs(change) < ABOUT_SHARE:
            said.append(("info", f"{mine} is about that of {other}."))
        elif change > 0:
            said.append(("warning", f"{mine} is {change:.0%} above that of {other}: the baseline does better."
                         + (" Averaging the two answers beats each alone." if name == BLEND else "")))
        elif name == task.trivial_baseline and -change < BARELY:
            said.append(("warning", f"{mine} is only {-change:.0%} below that of {other}."))
        else:
            said.append(("success", f"{mine} is {-change:.0%} below that of {other}."))
    return said


def _figure(metric: Metric, value: float, alone: bool = False) -> str:
    """'58.3% accuracy' or 'R² 0.812'; `alone`: the value only for a percentage ('50.0%'), as a comparison
    in brackets reads."""
    shown = formatting.metric(metric, value)
    if metric.percent:
        return shown if alone else f"{shown} {metric.title}"
    return f"{metric.title} {shown}"


def _gap(metric: Metric, difference: float) -> str:
    """A difference of the headline figure in words: '1.2 points' of a percentage, '0.05 of R²' otherwise."""
    return f"{difference * 100:.1f} points" if metric.percent else f"{difference:.2f} of {metric.title}"


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
