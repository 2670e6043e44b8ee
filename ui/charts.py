"""Plotly figure builders for the pages: class balance, a target's values, training curves, run comparison, the
confusion matrix and a regression's predicted-against-true and residual plots.

They take plain data (dicts and lists read from the store or a run report) and return a figure, so a
page only decides what to show, and a figure can be checked in a test without a browser.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

_TRAIN_COLOUR = "#93c5fd"
_VAL_COLOUR = "#2563eb"
_MARGIN = dict(l=10, r=10, t=40, b=10)
# one colour per compared run, set on the trace: the Streamlit theme's colorway repeats close blues
_RUN_COLOURS = qualitative.D3


def class_counts(counts: Mapping[str, int]) -> go.Figure:
    """Items per class, in class order: a skewed dataset is visible at a glance."""
    names = list(counts)
    fig = go.Figure(go.Bar(x=names, y=[counts[n] for n in names], marker_color=_VAL_COLOUR,
                           text=[counts[n] for n in names], textposition="outside", cliponaxis=False))
    fig.update_layout(title="Items per class", xaxis_title="class", yaxis_title="items", height=320,
                      margin=_MARGIN, xaxis_type="category")
    return fig


def target_histogram(values: Sequence[float], target: str, summary: Mapping[str, float] | None = None) -> go.Figure:
    """Rows per range of a regression target's values, with its mean and median marked (`summary`, the dataset's
    `target_summary`): a skewed or clipped target shows at a glance."""
    fig = go.Figure(go.Histogram(x=list(values), marker_color=_VAL_COLOUR, nbinsx=40,
                                 hovertemplate=f"{target} %{{x}}: %{{y}} rows<extra></extra>"))
    for name, dash in (("mean", "dash"), ("median", "dot")):
        if summary and summary.get(name) is not None:
            fig.add_vline(x=summary[name], line_dash=dash, line_color="#ea580c",
                          annotation_text=f"{name} {summary[name]:.4g}", annotation_position="top right")
    fig.update_layout(title=f"Values of {target}", xaxis_title=target, yaxis_title="rows", height=320,
                      margin=_MARGIN, bargap=0.05)
    return fig


def length_histogram(histogram: Mapping[str, Any], max_length: int | None = None) -> go.Figure:
    """Texts per length bin (`info["length_histogram"]`), with the default max length marked when the
    lengths are in tokens: what lies right of the line is cut off in training."""
    edges, counts = list(histogram["edges"]), list(histogram["counts"])
    unit = histogram.get("unit", "words")
    fig = go.Figure(go.Bar(
        x=[(a + b) / 2 for a, b in zip(edges[:-1], edges[1:], strict=True)], y=counts,
        width=[b - a for a, b in zip(edges[:-1], edges[1:], strict=True)], marker_color=_VAL_COLOUR,
        customdata=[[a, b] for a, b in zip(edges[:-1], edges[1:], strict=True)],
        hovertemplate="%{customdata[0]:.0f}-%{customdata[1]:.0f} " + unit + ": %{y} texts<extra></extra>",
    ))
    if max_length is not None and unit == "tokens":
        fig.add_vline(x=max_length, line_dash="dash", line_color="#ea580c",
                      annotation_text=f"max length {max_length}", annotation_position="top right")
    fig.update_layout(title=f"Text length ({unit})", xaxis_title=unit, yaxis_title="texts", height=320,
                      margin=_MARGIN, bargap=0.05)
    return fig


# per-step series longer than this are thinned (every k-th point, the last one kept) before being
# sent to the browser: a live view refreshing every 2 s must stay light on long runs
MAX_POINTS = 2000


def _series(rows: Sequence[Mapping[str, Any]], name: str) -> tuple[list[int], list[float]]:
    picked = [r for r in rows if r["name"] == name]
    if len(picked) > MAX_POINTS:
        stride = -(-len(picked) // MAX_POINTS)
        picked = picked[::stride] + ([picked[-1]] if (len(picked) - 1) % stride else [])
    return [int(r["step"]) for r in picked], [float(r["value"]) for r in picked]


def _epochs(rows: Sequence[Mapping[str, Any]], name: str) -> list[int]:
    return [int(r["epoch"]) for r in rows if r["name"] == name]


def training_curves(rows: Sequence[Mapping[str, Any]], score: str = "accuracy", title: str = "accuracy",
                    percent: bool = True) -> go.Figure:
    """Loss and the run's headline score (`score`, e.g. "accuracy" or "r2", titled `title`, read as a
    percentage when `percent`) side by side on one step axis: the noisy per-step training values (the worker
    logs `train_loss` and, for classification, `train_accuracy`), and the per-epoch validation values
    (`val_loss`, `val_<score>`) placed at the step where their epoch ended (so over- or under-fitting shows
    as the two lines parting)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Loss", title[:1].upper() + title[1:]),
                        horizontal_spacing=0.08)
    for col, (train_name, val_name) in enumerate((("train_loss", "val_loss"), (f"train_{score}", f"val_{score}")),
                                                 start=1):
        steps, values = _series(rows, train_name)
        fig.add_trace(
            go.Scatter(x=steps, y=values, mode="lines" if len(steps) > 1 else "markers", name="training (per step)",
                       line=dict(color=_TRAIN_COLOUR), marker=dict(color=_TRAIN_COLOUR),
                       legendgroup="train", showlegend=col == 1),
            row=1, col=col,
        )
        steps, values = _series(rows, val_name)
        fig.add_trace(
            go.Scatter(x=steps, y=values, mode="lines+markers", name="validation (per epoch)",
                       line=dict(color=_VAL_COLOUR, width=3), legendgroup="val", showlegend=col == 1,
                       customdata=_epochs(rows, val_name),
                       hovertemplate="epoch %{customdata}: %{y:.4f}<extra></extra>"),
            row=1, col=col,
        )
        fig.update_xaxes(title_text="step", row=1, col=col)
    # a log scale: the first steps' loss (ln of the class count and up) would otherwise flatten the rest
    # full tick values ("0.3", "2"): Plotly's default log ticks abbreviate to leading digits ("3", "2"),
    # which reads as if 2 and 20 were the same
    fig.update_yaxes(type="log", title_text="loss (log scale)", tickformat=".2~g", row=1, col=1)
    if percent:
        fig.update_yaxes(range=[0, 1.02], tickformat=".0%", row=1, col=2)
    fig.update_layout(height=340, margin=_MARGIN, legend=dict(orientation="h", y=-0.2))
    return fig


def metric_overlay(series: Mapping[str, Sequence[tuple[int, float]]], title: str = "accuracy",
                   percent: bool = True) -> go.Figure:
    """A validation figure (`title`: accuracy, R²; a percentage when `percent`) per epoch of several runs on one
    axis: {label: [(epoch, value), ...]}.

    Each run gets its own colour from a qualitative palette (cycled past ten runs), and the axis spans
    the epochs run, from 1, with about ten ticks at most."""
    fig = go.Figure()
    for k, (label, points) in enumerate(series.items()):
        colour = _RUN_COLOURS[k % len(_RUN_COLOURS)]
        fig.add_trace(go.Scatter(x=[e for e, _ in points], y=[v for _, v in points], mode="lines+markers",
                                 name=label, line=dict(color=colour), marker=dict(color=colour)))
    last = max((e for points in series.values() for e, _ in points), default=1)
    fig.update_layout(title=f"Validation {title} per epoch", xaxis_title="epoch", yaxis_title=title,
                      yaxis=dict(tickformat=".0%", range=[0, 1.02]) if percent else dict(),
                      xaxis=dict(range=[0.5, last + 0.5], tick0=1, dtick=max(1, math.ceil(last / 10))), height=360,
                      margin=_MARGIN, legend=dict(orientation="h", y=-0.25))
    return fig


def confusion_matrix(matrix: Sequence[Sequence[int]], classes: Sequence[str],
                     selected: tuple[int, int] | None = None) -> go.Figure:
    """Counts of (true class, predicted class), the diagonal being the correct predictions.

    Plotly heatmaps send no selection events (streamlit/streamlit#8760), so a transparent square
    marker sits on every cell: clicking a cell selects its marker, whose customdata carries the
    (true, predicted) class indices. `selected` outlines one cell so the table below it reads as its
    drill-down.
    """
    n = len(classes)
    names = list(classes)
    z = [list(map(int, row)) for row in matrix]
    fig = go.Figure()
    fig.add_trace(go.Heatmap(
        z=z, x=names, y=names, colorscale="Blues", showscale=False, hoverinfo="skip",
        text=[[str(v) for v in row] for row in z], texttemplate="%{text}",
        textfont=dict(size=14 if n <= 12 else 9),
    ))
    cells = [(t, p) for t in range(n) for p in range(n)]
    fig.add_trace(go.Scatter(
        x=[names[p] for _, p in cells], y=[names[t] for t, _ in cells], mode="markers",
        marker=dict(symbol="square", size=max(12, 400 // max(n, 1)), color="rgba(0,0,0,0)"),
        selected=dict(marker=dict(color="rgba(0,0,0,0.12)")), unselected=dict(marker=dict(opacity=1)),
        customdata=[[t, p, z[t][p]] for t, p in cells], showlegend=False, name="cells",
        hovertemplate="true %{y}<br>predicted %{x}<br>%{customdata[2]} item(s)<extra></extra>",
    ))
    if selected is not None:
        t, p = selected
        fig.add_shape(type="rect", x0=p - 0.5, x1=p + 0.5, y0=t - 0.5, y1=t + 0.5,
                      line=dict(color="#f97316", width=3))
    fig.update_layout(
        title="Confusion matrix (click a cell)",
        # fixed ranges: the click markers would otherwise pad the axes and float the matrix off its labels
        xaxis=dict(title="predicted class", type="category", range=[-0.5, n - 0.5], showgrid=False, zeroline=False),
        yaxis=dict(title="true class", type="category", range=[n - 0.5, -0.5], showgrid=False, zeroline=False),
        height=min(900, max(360, 44 * n + 150)), margin=_MARGIN, clickmode="event+select", dragmode=False,
        plot_bgcolor="white",
    )
    return fig


# a scatter of more points than this is drawn with WebGL: SVG slows the browser on many thousands of markers
_WEBGL_POINTS = 2000


def _scatter(n: int) -> type[go.Scatter] | type[go.Scattergl]:
    return go.Scattergl if n > _WEBGL_POINTS else go.Scatter


def predicted_vs_true(truth: Sequence[float], predicted: Sequence[float], target: str,
                      hover: Sequence[str] | None = None) -> go.Figure:
    """Each validation item as a point (true value across, predicted up) with the diagonal where a perfect model's
    points lie: a model that shrinks towards the mean shows as a cloud flatter than the line. `hover` names each
    item (a row's values)."""
    xs, ys = [float(v) for v in truth], [float(v) for v in predicted]
    low, high = min(xs + ys, default=0.0), max(xs + ys, default=1.0)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[low, high], y=[low, high], mode="lines", name="perfect",
                             line=dict(color="#9ca3af", dash="dash"), hoverinfo="skip"))
    fig.add_trace(_scatter(len(xs))(
        x=xs, y=ys, mode="markers", name="validation", marker=dict(color=_VAL_COLOUR, size=6, opacity=0.6),
        text=list(hover) if hover is not None else None,
        hovertemplate="true %{x:.4g}, predicted %{y:.4g}" + ("<br>%{text}" if hover is not None else "")
        + "<extra></extra>"))
    fig.update_layout(title=f"Predicted against true {target}", xaxis_title=f"true {target}",
                      yaxis_title=f"predicted {target}", height=380, margin=_MARGIN, showlegend=False)
    return fig


def residuals(truth: Sequence[float], predicted: Sequence[float], target: str,
              hover: Sequence[str] | None = None) -> go.Figure:
    """The error of each validation item (predicted minus true) against its prediction, around a zero line: a
    funnel or a curve says where the model misses systematically."""
    xs = [float(v) for v in predicted]
    errors = [float(p) - float(t) for p, t in zip(predicted, truth, strict=True)]
    fig = go.Figure(_scatter(len(xs))(
        x=xs, y=errors, mode="markers", marker=dict(color=_VAL_COLOUR, size=6, opacity=0.6),
        text=list(hover) if hover is not None else None,
        hovertemplate="predicted %{x:.4g}, error %{y:+.4g}" + ("<br>%{text}" if hover is not None else "")
        + "<extra></extra>"))
    fig.add_hline(y=0, line_dash="dash", line_color="#9ca3af")
    fig.update_layout(title="Residuals (predicted minus true)", xaxis_title=f"predicted {target}",
                      yaxis_title="error", height=380, margin=_MARGIN, showlegend=False)
    return fig
