"""Views of explanations: plotly figures (top-k predictions, a map over its picture, the map alone, the
deletion/insertion curves beside a random map's, the words for and against a class, a table row's columns for and
against its prediction, columns' importance in several models), overlay thumbnails
for grids of many maps, and the loaded model that the Explain, Evaluate and Predict pages share between
clicks.

Figures take plain data (arrays, dataclasses from `core.explain`) and return a figure, so a page only
decides what to show and a figure can be checked in a test without a browser.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from PIL import Image
from plotly.subplots import make_subplots

from core.artifacts import RunFiles
from core.data.pictures import load_image
from core.errors import GlassboxError
from core.explain import Explainable, explain, load_subject, methods, rendering
from core.explain.faithfulness import Faithfulness
from core.explain.images import ImageModel
from core.store import RunRecord
from ui import formatting
from ui.errors import user_errors
from ui.shell import Studio

_MARGIN = dict(l=4, r=4, t=36, b=4)
_MAP_COLOUR = "#ea580c"
_RANDOM_COLOUR = "#9ca3af"
_FOR_COLOUR = "#16a34a"
_AGAINST_COLOUR = "#dc2626"


def top_k(probs: Sequence[float], classes: Sequence[str], k: int = 5, highlight: int | None = None) -> go.Figure:
    """The k most probable classes, most probable on top; `highlight` (the class being explained) in orange."""
    order = list(np.argsort(-np.asarray(probs), kind="stable")[:k])[::-1]
    colours = [_MAP_COLOUR if i == highlight else "#2563eb" for i in order]
    fig = go.Figure(go.Bar(
        x=[float(probs[i]) for i in order], y=[classes[i] for i in order], orientation="h", marker_color=colours,
        text=[formatting.probability(float(probs[i])) for i in order], textposition="outside", cliponaxis=False,
        hovertemplate="%{y}: %{x:.2f}<extra></extra>",
    ))
    fig.update_layout(title=f"Top {len(order)} predictions", xaxis=dict(range=[0, 1.1], tickformat=".0%"),
                      yaxis=dict(type="category"), height=60 + 32 * len(order), margin=dict(l=10, r=10, t=36, b=10))
    return fig


def overlay(picture: np.ndarray, attribution: np.ndarray, opacity: float, title: str) -> go.Figure:
    """The map over the picture the model saw, in `core.explain.rendering`'s colour maps (no evidence is
    clear); `opacity` applies to the whole map layer."""
    fig = go.Figure()
    fig.add_trace(go.Image(source=_data_uri(picture), hoverinfo="skip"))
    fig.add_trace(_heatmap(attribution, opacity=opacity, showscale=False))
    return _square(fig, title, picture.shape[1], picture.shape[0])


def map_alone(attribution: np.ndarray, title: str) -> go.Figure:
    """The map on white, in the colours of `overlay`: diverging around 0 when it holds evidence against
    the class (IG, occlusion), a ramp from clear otherwise. Scaled to the 99th percentile of its
    magnitude so one extreme pixel does not wash out the rest."""
    values = np.asarray(attribution)
    return _square(go.Figure(_heatmap(values, colorbar=dict(thickness=10, len=0.8))), title,
                   values.shape[1], values.shape[0])


def _heatmap(attribution: np.ndarray, **style: Any) -> go.Heatmap:
    signed = rendering.is_signed(attribution)
    return go.Heatmap(z=rendering.display_scale(attribution), zmin=-1 if signed else 0, zmax=1,
                      colorscale=rendering.colour_scale(signed),
                      hovertemplate="x %{x}, y %{y}: %{z:.2f} of the map's top<extra></extra>", **style)


def curves(figures: Faithfulness) -> go.Figure:
    """Deletion (lower is better) above insertion (higher is better), each beside a random map's curve:
    stacked, so that neither chart's titles or ticks run into the other's in a narrow column."""
    fig = make_subplots(rows=2, cols=1, vertical_spacing=0.3, subplot_titles=(
        f"Deletion: {figures.deletion.auc:.3f} vs random {figures.random_deletion.auc:.3f}",
        f"Insertion: {figures.insertion.auc:.3f} vs random {figures.random_insertion.auc:.3f}",
    ))
    pairs = ((figures.deletion, figures.random_deletion), (figures.insertion, figures.random_insertion))
    for row, (curve, random) in enumerate(pairs, start=1):
        fig.add_trace(go.Scatter(x=curve.fractions, y=curve.probabilities, mode="lines", name="this map",
                                 line=dict(color=_MAP_COLOUR, width=3), legendgroup="map", showlegend=row == 1),
                      row=row, col=1)
        fig.add_trace(go.Scatter(x=random.fractions, y=random.probabilities, mode="lines",
                                 name="random map (this map, moved)", line=dict(color=_RANDOM_COLOUR, dash="dash"),
                                 legendgroup="random", showlegend=row == 1), row=row, col=1)
        fig.update_xaxes(title_text="share of the image removed" if row == 1 else "share of the image added",
                         tickformat=".0%", title_standoff=4, row=row, col=1)
        fig.update_yaxes(range=[0, 1.02], title_text="probability", row=row, col=1)
    fig.update_annotations(font_size=12)
    # the legend sits above both charts, clear of the axis titles
    fig.update_layout(height=460, margin=dict(l=10, r=10, t=70, b=10),
                      legend=dict(orientation="h", yanchor="bottom", y=1.12, x=0))
    return fig


def overlay_png(picture: np.ndarray, attribution: np.ndarray, opacity: float = 0.6) -> bytes:
    """A small overlay as PNG bytes, for grids of many maps where an interactive figure each would be heavy."""
    return _png(rendering.overlay(picture, attribution, opacity))


def explainable_model(files: RunFiles, cache_dir: Path) -> Any:
    """A run's model prepared for explaining by its modality (`core.explain.load_subject`), kept between
    clicks and shared by pages and sessions (the model's lock serialises explanations); loaded again
    only when the run's weights change."""
    mtime = files.weights.stat().st_mtime if files.weights.exists() else 0.0
    return _loaded(str(files.root), str(cache_dir), mtime)


def model_or_message(files: RunFiles, cache_dir: Path) -> Any | None:
    """`explainable_model`, or None after showing why it cannot be loaded (weights missing or damaged)."""
    with user_errors("Cannot load this run's model: "):
        return explainable_model(files, cache_dir)
    return None


@st.cache_resource(max_entries=2, show_spinner="Loading the model...")
def _loaded(run_dir: str, cache_dir: str, mtime: float) -> Explainable:
    return load_subject(RunFiles(Path(run_dir)), Path(cache_dir))


def word_bars(top: dict[str, list[tuple[str, float]]], target: str) -> go.Figure:
    """The words with the most evidence for the class (green, right) and against it (red, left), the
    strongest at the top of each group: `core.explain.text.top_words` as a bar chart."""
    rows = [*reversed(top["against"]), *reversed(top["for"])]  # plotly draws the first bar at the bottom
    labels = [f"{word} " + "\u200b" * i for i, (word, _) in enumerate(rows)]  # a word may appear twice
    fig = go.Figure(go.Bar(
        x=[score for _, score in rows], y=labels, orientation="h",
        marker_color=[_FOR_COLOUR if score >= 0 else _AGAINST_COLOUR for _, score in rows],
        hovertemplate="%{y}: %{x:.4f}<extra></extra>",
    ))
    fig.update_layout(title=f"Words for and against {target}", xaxis_title="attribution", yaxis=dict(type="category"),
                      height=80 + 24 * max(len(rows), 1), margin=dict(l=10, r=10, t=36, b=10))
    return fig


def column_bars(attributions: dict[str, float], target: str, limit: int = 20) -> go.Figure:
    """A table row's explanation: each source column's signed attribution as a bar, evidence for the explained
    output (`target`: a class, or the predicted value) green and to the right, against it red and to the left,
    the strongest at the top; beyond `limit` columns the weakest are left out (the title says how many)."""
    ranked = sorted(attributions.items(), key=lambda item: -abs(item[1]))
    shown = list(reversed(ranked[:limit]))  # plotly draws the first bar at the bottom
    left_out = len(ranked) - len(shown)
    fig = go.Figure(go.Bar(
        x=[value for _, value in shown], y=[name for name, _ in shown], orientation="h",
        marker_color=[_FOR_COLOUR if value >= 0 else _AGAINST_COLOUR for _, value in shown],
        hovertemplate="%{y}: %{x:+.4g}<extra></extra>",
    ))
    title = f"Columns for and against {target}" + (f" (the {left_out} weakest left out)" if left_out else "")
    fig.update_layout(title=title, xaxis_title="attribution", yaxis=dict(type="category"),
                      height=90 + 26 * max(len(shown), 1), margin=dict(l=10, r=10, t=36, b=10))
    return fig


def importance_bars(importance: dict[str, dict[str, float]], limit: int = 20) -> go.Figure:
    """Several models' importance per column side by side ({model: {column: share}}), the columns ordered by
    the first model's, strongest at the top; beyond `limit` columns the weakest are left out."""
    models = list(importance)
    first = importance[models[0]] if models else {}
    columns = list(reversed(sorted(first, key=lambda c: -first[c])[:limit]))
    fig = go.Figure([go.Bar(x=[importance[m].get(c, 0.0) for c in columns], y=columns, orientation="h", name=m,
                            marker_color=[_MAP_COLOUR, _RANDOM_COLOUR, "#2563eb"][k % 3],
                            hovertemplate="%{y}: %{x:.1%}<extra>" + m + "</extra>")
                     for k, m in enumerate(models)])
    fig.update_layout(title="Share of each column in each model's decisions", barmode="group",
                      xaxis=dict(title="share of the total", tickformat=".0%"), yaxis=dict(type="category"),
                      height=110 + 22 * len(models) * max(len(columns), 1), margin=dict(l=10, r=10, t=36, b=10),
                      legend=dict(orientation="h", y=-0.15))
    return fig


def columns_html(attributions: dict[str, float], k: int = 3) -> str:
    """The `k` columns with the most evidence for the explained class and the `k` with the most against it, as
    one line of coloured HTML: "for: flipper_length_mm +0.41, island +0.12 · against: bill_depth_mm -0.30"."""
    def listed(pairs: list[tuple[str, float]], colour: str) -> str:
        return ", ".join(f'<span style="color:{colour}">{html.escape(name)} {value:+.3g}</span>'
                         for name, value in pairs) or "none"

    ranked = sorted(attributions.items(), key=lambda item: -item[1])
    supporting = [(n, v) for n, v in ranked if v > 0][:k]
    opposing = [(n, v) for n, v in reversed(ranked) if v < 0][:k]
    return f"for: {listed(supporting, _FOR_COLOUR)} · against: {listed(opposing, _AGAINST_COLOUR)}"


def map_thumbnails(subject: ImageModel, paths: Sequence[Path], targets: Sequence[int],
                   method: str = "gradcam") -> tuple[str, list[bytes | None]]:
    """Overlay PNGs of one method's maps for several images (None for an image that cannot be read), and
    the title of the method used: `method`, or the first one that applies when it does not apply to
    this model."""
    registry = methods(subject.modality)
    if registry.get(method).unavailable(subject) is not None:
        method = next(name for name in registry if registry.get(name).unavailable(subject) is None)
    thumbnails: list[bytes | None] = []
    for path, target in zip(paths, targets, strict=True):
        try:
            inputs = subject.tensor(load_image(path, subject.image_size))
        except GlassboxError:  # the file changed or vanished since ingest: a gap, not an error page
            thumbnails.append(None)
            continue
        result = explain(subject, inputs, target, method)
        thumbnails.append(overlay_png(subject.picture(inputs), result.attribution))
    return registry.get(method).title, thumbnails


def image_mistakes(studio: Studio, run: RunRecord, subject: ImageModel, items: Sequence[int], refs: Sequence[str],
                   predicted: Sequence[int]) -> tuple[str, list[bytes | None]]:
    """Evaluate's explanation of mistaken images (`ui.views`): a Grad-CAM overlay PNG of the predicted class per
    image (`refs`: paths under the run's dataset folder), and the method's title."""
    dataset_dir = studio.ws.dataset_dir(run.dataset_id)
    return map_thumbnails(subject, [dataset_dir / ref for ref in refs], list(predicted))


def _square(fig: go.Figure, title: str, width: int, height: int) -> go.Figure:
    fig.update_xaxes(visible=False, range=[-0.5, width - 0.5], constrain="domain")
    fig.update_yaxes(visible=False, range=[height - 0.5, -0.5], scaleanchor="x", constrain="domain")
    fig.update_layout(title=dict(text=title, font_size=14), height=320, margin=_MARGIN, plot_bgcolor="white")
    return fig


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _data_uri(pixels: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(_png(pixels)).decode("ascii")


def deletion_check(figures: dict[str, Any], noun: str, nouns: str, top: str, action: str, draws: int = 20) -> None:
    """A faithfulness check's figures in words and two metrics: the output's change when the explanation's top k
    parts (`nouns`: "columns", "steps"; `top` names them) are changed as `action` says ("Setting {parts} to a
    typical value", "Flattening {parts}"), against k random ones (averaged over `draws` seeded draws), and
    whether the top ones matter more."""
    k = figures["k"]
    what = noun if k == 1 else nouns
    said = (f"{action.format(parts=f'the top {k} {what} ({top})')} changes {figures['measure']} by "
            f"{formatting.amount(figures['topk_change'])}; {k} random {what} change it by "
            f"{formatting.amount(figures['random_change'])} on average")
    if figures["beats_random"]:
        st.success(said + f": the {nouns} the explanation picks matter more than random ones.")
    else:
        st.warning(said + f": the explanation's top {nouns} matter no more than random ones, so do not read much "
                          "into it.")
    first, second = st.columns(2)
    first.metric(f"Change, top {k} {what}", formatting.amount(figures["topk_change"]))
    second.metric(f"Change, {k} random {what}", formatting.amount(figures["random_change"]),
                  help=f"The same for k random {nouns}, averaged over {draws} seeded draws.")
