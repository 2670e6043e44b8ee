"""Plotly figures of time series: series to classify drawn over their real steps, a series to forecast with its
filled steps and validation part, a forecast over its history with the held-out values and the interval as a
band, the error per step ahead, and an explanation as a heatmap under the series it explains.

Figures take plain arrays and return a figure, so a view only decides what to show and a figure can be checked
in a test without a browser. Padded steps (past a series' length) are never drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from core.explain import rendering

_MARGIN = dict(l=10, r=10, t=60, b=10)
_HISTORY = "#64748b"
_TRUTH = "#111827"
_FORECAST = "#2563eb"
_BAND = "rgba(37, 99, 235, 0.18)"
_FILLED = "#dc2626"
_HELD_OUT = "rgba(234, 88, 12, 0.10)"
_CONTEXT = "rgba(100, 116, 139, 0.10)"
_COLOURS = qualitative.D3
# a line of more points than this is drawn with WebGL: SVG slows the browser on long series
_WEBGL_POINTS = 5000
# legends above the plot, right-aligned beside the title: below it they run into the time axis' labels
_LEGEND = dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1)
_LEGEND_CHANNELS = 3


def _line(n: int) -> type[go.Scatter] | type[go.Scattergl]:
    return go.Scattergl if n > _WEBGL_POINTS else go.Scatter


def lengths_histogram(lengths: Sequence[int]) -> go.Figure:
    """Series per length (real steps): how unequal the lengths are, hence how much padding the models skip."""
    fig = go.Figure(go.Histogram(x=[int(n) for n in lengths], marker_color=_FORECAST,
                                 hovertemplate="%{x} steps: %{y} series<extra></extra>"))
    fig.update_layout(title="Series length (steps)", xaxis_title="steps", yaxis_title="series", height=300,
                      margin=_MARGIN, bargap=0.05)
    return fig


def series_lines(values: np.ndarray, lengths: Sequence[int], labels: Sequence[str], names: Sequence[str],
                 channel: int, channel_name: str) -> go.Figure:
    """A few series to classify, one line each over its real steps only (`values` [n, T, C] padded, `lengths` [n]),
    of one channel, coloured by class (`labels` [n]), named by `names` [n]."""
    classes = list(dict.fromkeys(labels))
    fig = go.Figure()
    for row, (length, label, name) in enumerate(zip(lengths, labels, names, strict=True)):
        colour = _COLOURS[classes.index(label) % len(_COLOURS)]
        fig.add_trace(go.Scatter(
            x=list(range(int(length))), y=[float(v) for v in values[row, : int(length), channel]], mode="lines",
            name=f"{label}: {name}", line=dict(color=colour, width=1.5), legendgroup=label,
            hovertemplate=f"{name} ({label})<br>step %{{x}}: %{{y:.4g}}<extra></extra>"))
    fig.update_layout(title=f"A few series per class ({channel_name})", xaxis_title="step", yaxis_title=channel_name,
                      height=360, margin=_MARGIN)
    return fig


def forecast_series(times: Sequence[str], target: np.ndarray, filled: np.ndarray, name: str,
                    validation_from: str | None = None) -> go.Figure:
    """The series to forecast over its whole grid (`times`, ISO), its filled steps marked in red (they hold
    values the ingest rules made up), and the part its runs validate on (from `validation_from`) shaded."""
    xs = list(times)
    values = np.asarray(target, dtype=float)
    marked = np.flatnonzero(np.asarray(filled, dtype=bool))
    fig = go.Figure()
    fig.add_trace(_line(len(xs))(x=xs, y=values.tolist(), mode="lines", name=name, line=dict(color=_HISTORY, width=1),
                                 hovertemplate="%{x}: %{y:.4g}<extra></extra>"))
    if len(marked):
        fig.add_trace(go.Scatter(x=[xs[i] for i in marked], y=values[marked].tolist(), mode="markers",
                                 name=f"filled ({len(marked)} steps)", marker=dict(color=_FILLED, size=5),
                                 hovertemplate="%{x}: %{y:.4g} (filled)<extra></extra>"))
    if validation_from is not None:
        fig.add_vrect(x0=validation_from, x1=xs[-1], fillcolor=_HELD_OUT, line_width=0,
                      annotation_text="validation windows", annotation_position="top left")
    fig.update_layout(title=f"{name} over time", yaxis_title=name, height=360, margin=_MARGIN,
                      legend=_LEGEND)
    return fig


def forecast_window(history_times: Sequence[str], history: np.ndarray, times: Sequence[str], forecast: np.ndarray,
                    name: str, *, truth: np.ndarray | None = None, halfwidth: Sequence[float] | None = None,
                    context_from: str | None = None, title: str = "") -> go.Figure:
    """A forecast over its history: the history (`history_times`, `history`), the forecast (`times`, `forecast`
    [H]) with its interval as a band (forecast ± `halfwidth` [H]), the held-out true values (`truth` [H]) when
    known, and the context the model read (from `context_from`) shaded."""
    fig = go.Figure()
    xs = list(times)
    values = np.asarray(forecast, dtype=float)
    if len(history_times):
        fig.add_trace(_line(len(history_times))(
            x=list(history_times), y=np.asarray(history, dtype=float).tolist(), mode="lines", name="history",
            line=dict(color=_HISTORY, width=1.5), hovertemplate="%{x}: %{y:.4g}<extra>history</extra>"))
    if halfwidth is not None:
        widths = np.asarray(halfwidth, dtype=float)
        fig.add_trace(go.Scatter(x=xs, y=(values + widths).tolist(), mode="lines", line=dict(width=0),
                                 name="interval upper", showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=xs, y=(values - widths).tolist(), mode="lines", line=dict(width=0),
                                 fill="tonexty", fillcolor=_BAND, name="prediction interval", hoverinfo="skip"))
    if truth is not None:
        fig.add_trace(go.Scatter(x=xs, y=np.asarray(truth, dtype=float).tolist(), mode="lines+markers",
                                 name="held out (true)", line=dict(color=_TRUTH, width=2), marker=dict(size=4),
                                 hovertemplate="%{x}: %{y:.4g}<extra>true</extra>"))
    fig.add_trace(go.Scatter(x=xs, y=values.tolist(), mode="lines+markers", name="forecast",
                             line=dict(color=_FORECAST, width=2.5), marker=dict(size=4),
                             hovertemplate="%{x}: %{y:.4g}<extra>forecast</extra>"))
    if context_from is not None and len(history_times):
        fig.add_vrect(x0=context_from, x1=history_times[-1], fillcolor=_CONTEXT, line_width=0,
                      annotation_text="context the model read", annotation_position="top left")
    fig.update_layout(title=title or f"Forecast of {name}", yaxis_title=name, height=380,
                      margin=_MARGIN, legend=_LEGEND)
    return fig


def step_errors(step_mae: Sequence[float], halfwidth: Sequence[float] | None = None) -> go.Figure:
    """The MAE per step ahead (1 to H) over the validation windows, and the interval's half-width per step when
    there is one: errors usually grow with the horizon."""
    steps = list(range(1, len(step_mae) + 1))
    fig = go.Figure(go.Bar(x=steps, y=[float(v) for v in step_mae], name="MAE", marker_color=_FORECAST,
                           hovertemplate="%{x} step(s) ahead: MAE %{y:.4g}<extra></extra>"))
    if halfwidth is not None:
        fig.add_trace(go.Scatter(x=steps, y=[float(v) for v in halfwidth], mode="lines", name="interval half-width",
                                 line=dict(color=_HISTORY, dash="dash"),
                                 hovertemplate="%{x} step(s) ahead: ± %{y:.4g}<extra></extra>"))
    fig.update_layout(title="MAE per step ahead", xaxis_title="steps ahead", yaxis_title="MAE", height=320,
                      margin=_MARGIN, legend=_LEGEND)
    return fig


def attribution_heatmap(x: Sequence[Any], values: np.ndarray, attributions: np.ndarray, channels: Sequence[str],
                        title: str, *, ahead: dict[str, Any] | None = None) -> go.Figure:
    """A series (`values` [T, C] over `x` [T], real steps only) drawn above its explanation as a heatmap
    (`attributions` [C, T], one row per channel: evidence for the explained output red, against it blue, white
    none; scaled to the largest magnitude so the colours compare across channels). `ahead` ({"x", "forecast",
    "lower", "upper", "truth"}, the last three may be None) continues the top panel with a forecast, its band and
    the true values, which the heatmap leaves blank."""
    data = np.asarray(values, dtype=float).reshape(len(x), -1)
    maps = np.asarray(attributions, dtype=float).reshape(len(channels), -1)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=[0.62, 0.38])
    for c, name in enumerate(channels):
        fig.add_trace(go.Scatter(x=list(x), y=data[:, c].tolist(), mode="lines", name=name,
                                 line=dict(color=_COLOURS[c % len(_COLOURS)], width=1.5),
                                 hovertemplate=f"{name}<br>%{{x}}: %{{y:.4g}}<extra></extra>"), row=1, col=1)
    if ahead is not None:
        if ahead.get("upper") is not None:
            fig.add_trace(go.Scatter(x=list(ahead["x"]), y=list(ahead["upper"]), mode="lines", line=dict(width=0),
                                     showlegend=False, hoverinfo="skip"), row=1, col=1)
            fig.add_trace(go.Scatter(x=list(ahead["x"]), y=list(ahead["lower"]), mode="lines", line=dict(width=0),
                                     fill="tonexty", fillcolor=_BAND, name="prediction interval", hoverinfo="skip"),
                          row=1, col=1)
        if ahead.get("truth") is not None:
            fig.add_trace(go.Scatter(x=list(ahead["x"]), y=list(ahead["truth"]), mode="lines+markers",
                                     name="held out (true)", line=dict(color=_TRUTH, width=2), marker=dict(size=4),
                                     hovertemplate="%{x}: %{y:.4g}<extra>true</extra>"), row=1, col=1)
        fig.add_trace(go.Scatter(x=list(ahead["x"]), y=list(ahead["forecast"]), mode="lines+markers", name="forecast",
                                 line=dict(color=_FORECAST, width=2.5), marker=dict(size=4),
                                 hovertemplate="%{x}: %{y:.4g}<extra>forecast</extra>"), row=1, col=1)
    top = float(np.abs(maps).max()) if maps.size else 0.0
    fig.add_trace(go.Heatmap(
        z=(maps / top if top > 0 else maps).tolist(), x=list(x), y=list(channels), zmin=-1, zmax=1,
        colorscale=rendering.colour_scale(True), colorbar=dict(thickness=10, len=0.38, y=0.19, title="share"),
        customdata=maps.tolist(), hovertemplate="%{y} at %{x}: %{customdata:+.4g}<extra></extra>",
    ), row=2, col=1)
    fig.update_yaxes(type="category", autorange="reversed", row=2, col=1)  # the first channel on top
    # beyond a few channels a legend would bury the title: the heatmap's rows and each line's hover name them
    fig.update_layout(title=title, height=300 + 60 + 22 * len(channels), margin=_MARGIN, legend=_LEGEND,
                      showlegend=len(channels) <= _LEGEND_CHANNELS)
    return fig
