"""Evaluate's error analysis of a classifier, beside its confusion matrix: whether its probabilities can be taken at
their word (a reliability diagram before and after temperature scaling, and the expected calibration error), ROC
and precision-recall curves per class (one-vs-rest), and for two classes a decision threshold that redraws the
confusion matrix and its figures. For a run that predicts values (regression, forecast), the user's own test split
reported apart from validation (`test_split`).

The figures come from `core.evaluation` (`calibration_report`, `class_curves`, `at_threshold`) on a run report;
the chart builders take plain data, so a test can read a figure without a browser.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.colors import qualitative

from core.evaluation import at_threshold, calibration_report, calibration_sentence, class_curves, run_report
from ui import charts, formatting, run_picker
from ui.errors import user_errors

_MARGIN = dict(l=10, r=10, t=40, b=10)
_RAW_COLOUR, _CALIBRATED_COLOUR, _DIAGONAL_COLOUR = "#f97316", "#2563eb", "#9ca3af"
_CLASS_COLOURS = qualitative.D3
CURVES_LEGEND_MAX = 20  # beyond this many classes the legend hides and a class shows on hover only


# ---- charts ---------------------------------------------------------------------------------------------------


def reliability_chart(found: dict[str, Any]) -> go.Figure:
    """The reliability diagram of `core.evaluation.calibration_report` (Guo et al., 2017, fig. 1): per non-empty
    confidence bin, the share of its items predicted right against their mean confidence, a marker sized by the
    bin's items; the diagonal is perfect calibration. Two lines when the run kept its raw logits (before and after
    temperature scaling), one otherwise."""
    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
                               line=dict(color=_DIAGONAL_COLOUR, dash="dash"), hoverinfo="skip"))
    lines = [("before temperature scaling (raw logits)", found["raw_bins"], _RAW_COLOUR),
             ("after temperature scaling (shown)", found["bins"], _CALIBRATED_COLOUR)]
    if found["raw_bins"] is None:
        lines = [("the model's probabilities (shown)", found["bins"], _CALIBRATED_COLOUR)]
    for name, bins, colour in lines:
        kept = [b for b in bins if b["count"]]
        largest = max((b["count"] for b in kept), default=1)
        fig.add_trace(go.Scatter(
            x=[b["confidence"] for b in kept], y=[b["accuracy"] for b in kept], mode="lines+markers", name=name,
            line=dict(color=colour), marker=dict(color=colour, size=[6 + 14 * (b["count"] / largest) ** 0.5
                                                                     for b in kept]),
            customdata=[[b["lower"], b["upper"], b["count"]] for b in kept],
            hovertemplate="confidence %{customdata[0]:.2f}-%{customdata[1]:.2f}: %{customdata[2]} item(s)<br>"
                          "mean confidence %{x:.2f}, right %{y:.0%}<extra></extra>"))
    fig.update_layout(title="Reliability diagram", height=380, margin=_MARGIN,
                      xaxis=dict(title="confidence (probability of the predicted class)", range=[0, 1.02]),
                      yaxis=dict(title="share predicted right", range=[0, 1.02], tickformat=".0%"),
                      legend=dict(orientation="h", y=-0.25))
    return fig


def curves_chart(curves: list[dict[str, Any]], kind: str) -> go.Figure:
    """One line per class of `core.evaluation.class_curves`: its ROC curve (`kind` "roc": true against false
    positive rate, the chance diagonal dashed) or its precision-recall curve (`kind` "pr"), its area in the
    legend. Classes without a curve (no item of theirs, or only theirs) are left out. Raises ValueError for
    another kind."""
    if kind not in ("roc", "pr"):
        raise ValueError(f"kind must be 'roc' or 'pr', not {kind!r}")
    fig = go.Figure()
    if kind == "roc":
        fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="guessing",
                                 line=dict(color=_DIAGONAL_COLOUR, dash="dash"), hoverinfo="skip"))
    drawn = [c for c in curves if c["roc_auc"] is not None]
    for index, curve in enumerate(drawn):
        x, y = (curve["fpr"], curve["tpr"]) if kind == "roc" else (curve["recall"], curve["precision"])
        area = f"AUC {curve['roc_auc']:.3f}" if kind == "roc" else f"AP {curve['average_precision']:.3f}"
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=f"{curve['class']} ({area})",
                                 line=dict(color=_CLASS_COLOURS[index % len(_CLASS_COLOURS)],
                                           shape="hv" if kind == "pr" else "linear"),
                                 hovertemplate=f"{curve['class']}<br>%{{x:.2f}}, %{{y:.2f}}<extra></extra>"))
    titles = {"roc": ("ROC curves (one-vs-rest)", "false positive rate", "true positive rate (recall)"),
              "pr": ("Precision-recall curves (one-vs-rest)", "recall", "precision")}[kind]
    fig.update_layout(title=titles[0], height=380, margin=_MARGIN, showlegend=len(drawn) <= CURVES_LEGEND_MAX,
                      xaxis=dict(title=titles[1], range=[0, 1.02]), yaxis=dict(title=titles[2], range=[0, 1.02]),
                      legend=dict(orientation="h", y=-0.25))
    return fig


# ---- views ----------------------------------------------------------------------------------------------------


def calibration(report: dict[str, Any], key: str, part: str = "validation") -> None:
    """The reliability diagram and the calibration sentence of a run report (`core.evaluation.run_report`)."""
    labels = np.asarray(report["labels"], dtype=int)
    if not len(labels):
        return
    found = calibration_report(labels, report["probs"], report.get("logits"), report.get("temperature"))
    chart_col, words_col = st.columns([3, 2], gap="large")
    chart_col.plotly_chart(reliability_chart(found), key=f"{key}-reliability")
    with words_col:
        st.markdown(calibration_sentence(found, part))
        cols = st.columns(2)
        if found["ece_raw"] is not None:
            cols[0].metric(f"ECE before ({part})", formatting.percent(found["ece_raw"]),
                           help="Expected calibration error of the raw logits' probabilities.")
        cols[-1].metric(f"ECE ({part})", formatting.percent(found["ece"]),
                        help="Expected calibration error of the probabilities shown: the gap between how sure the "
                             "model says it is and how often it is right, averaged over the items (0 is perfect).")
        st.caption("A model that says 80% should be right 8 times in 10: points below the diagonal are "
                   "over-confident, above it under-confident. Temperature scaling divides the logits by one number "
                   "T fitted on validation (Guo et al., 2017); it never changes which class is predicted.")


def curves(report: dict[str, Any], key: str) -> None:
    """ROC and precision-recall curves per class, one-vs-rest, side by side."""
    found = class_curves(report["labels"], np.asarray(report["probs"], dtype=float), report["classes"])
    if not any(c["roc_auc"] is not None for c in found):
        st.info("No curve can be drawn: the validation items hold a single class.", icon=":material/info:")
        return
    roc_col, pr_col = st.columns(2, gap="large")
    roc_col.plotly_chart(curves_chart(found, "roc"), key=f"{key}-roc")
    pr_col.plotly_chart(curves_chart(found, "pr"), key=f"{key}-pr")
    missing = [c["class"] for c in found if c["roc_auc"] is None]
    st.caption("Each class against all the others, scored by its own probability: the closer a ROC curve hugs the "
               "top left, and a precision-recall curve the top right, the better the class is told apart. A "
               "precision-recall curve's floor is the class's share of the items, so imbalance does not flatter it."
               + (f" No curve for {', '.join(missing)}: no validation item, or only theirs." if missing else ""))


def threshold(report: dict[str, Any], key: str) -> dict[str, Any] | None:
    """For a two-class report, a decision-threshold slider on the second class's probability, with accuracy,
    precision, recall and F1 at that threshold; returns `core.evaluation.at_threshold`'s figures (its
    "predictions" and "confusion" are what the confusion matrix shows). None for more than two classes."""
    classes: list[str] = report["classes"]
    if len(classes) != 2:
        return None
    labels = np.asarray(report["labels"], dtype=int)
    probs = np.asarray(report["probs"], dtype=float).reshape(len(labels), 2)
    positive = classes[1]
    cut = st.slider(f"Decision threshold: predict *{positive}* when its probability is above", 0.0, 1.0, 0.5,
                    step=0.01, key=f"{key}-threshold",
                    help=f"0.5 predicts the more probable class. Raise it to predict {positive} only when surer "
                         f"(fewer false alarms, more {positive} missed); lower it to miss fewer.")
    found = at_threshold(labels, probs, cut)
    cols = st.columns(4)
    cols[0].metric("Accuracy at this threshold", formatting.percent(found["accuracy"]))
    cols[1].metric(f"Precision ({positive})", formatting.percent(found["precision"]),
                   help=f"Of the items predicted {positive}, the share that are.")
    cols[2].metric(f"Recall ({positive})", formatting.percent(found["recall"]),
                   help=f"Of the {positive} items, the share found.")
    cols[3].metric(f"F1 ({positive})", formatting.percent(found["f1"]))
    return found


def test_split(picked: run_picker.Picked, shown: list[Any], noun: str, target: str) -> None:
    """The user's own test split apart from validation, when the run has one: the task's figures `shown`
    (`core.tasks.Metric`s) from test_predictions.json when the run kept it (and its predicted against true values),
    else from the run's `test_` metrics; nothing without a test split."""
    run, files = picked.run, picked.files
    test: dict[str, Any] | None = None
    if files.test_predictions.exists():
        with user_errors("Cannot read this run's test predictions: "):
            test = run_report(files, "test")
    if test is None and not any(f"test_{m.key}" in run.metrics for m in shown):
        return
    st.subheader("Test set")
    cols = st.columns(len(shown) + 1)
    for col, metric in zip(cols, shown, strict=False):
        value = test.get(metric.key) if test is not None else run.metrics.get(f"test_{metric.key}")
        col.metric(f"Test {metric.title}", formatting.metric(metric, value))
    cols[-1].metric(f"Test {noun}", len(test["labels"]) if test is not None else run.metrics.get("test_items", "—"))
    st.caption(f"The same model on the dataset's own test {noun}, scored once after training: unlike validation, they "
               "played no part in choosing the best epoch. Everything below is about validation.")
    if test is None or not len(test["labels"]) or np.ndim(test["predictions"]) != 1:
        return
    with st.expander(f"Test {noun}: predicted against true"):
        figure = charts.predicted_vs_true(np.asarray(test["labels"], dtype=float),
                                          np.asarray(test["predictions"], dtype=float), target, None)
        figure.update_layout(title=f"Test: predicted against true {target}")
        st.plotly_chart(figure, key=f"eval_test_scatter-{run.id}")
