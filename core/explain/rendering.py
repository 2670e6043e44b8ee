"""Explanation maps as pictures, with numpy and Pillow only (no plotting library in the core).

The overlay is what the CLI writes and what a grid of thumbnails shows: the picture the model saw with
the map painted over it. "No evidence" is always neutral, so the picture shows through where the map
is zero: a map that holds evidence against the class (Integrated Gradients, occlusion) is drawn in a
diverging map centred on zero (red for the class, blue against it), one that does not (Grad-CAM,
saliency) in a sequential map that starts transparent. Each colour's opacity grows with the evidence,
so weak evidence stays see-through. The pages draw their interactive figures with the same colour
maps (`colour_scale`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["DIVERGING", "SEQUENTIAL", "colour_scale", "colourise", "display_scale", "is_signed", "overlay",
           "save_overlay"]

# (position in [0, 1], (r, g, b, alpha)): matplotlib's "inferno" anchors, with an alpha ramp from 0
SEQUENTIAL = (
    (0.0, (0, 0, 4, 0.0)), (0.25, (101, 21, 110, 0.35)), (0.5, (212, 72, 66, 0.7)), (0.75, (250, 193, 39, 0.9)),
    (1.0, (252, 255, 164, 1.0)),
)
# ColorBrewer's RdBu over [-1, 1] (position 0.5 is zero): blue against the class, red for it, clear between
DIVERGING = (
    (0.0, (33, 102, 172, 1.0)), (0.25, (103, 169, 207, 0.7)), (0.5, (247, 247, 247, 0.0)),
    (0.75, (239, 138, 98, 0.7)), (1.0, (178, 24, 43, 1.0)),
)
# the share of values above which the colour saturates: one extreme pixel (common in gradient maps)
# would otherwise leave everything else blank
_PERCENTILE = 99.0
# negative values below this share of the map's scale are rounding, not evidence against the class
_SIGNED = 1e-3
MIN_SIDE = 256


def _top(magnitude: np.ndarray) -> float:
    nonzero = magnitude[magnitude > 0]
    return float(np.percentile(nonzero, _PERCENTILE)) if nonzero.size else 0.0


def is_signed(attribution: np.ndarray) -> bool:
    """Whether the map holds evidence against the class (values below zero beyond rounding), which the
    diverging colour map is for."""
    values = np.asarray(attribution, dtype=np.float64)
    top = _top(np.abs(values))
    return bool(top > 0 and (values < -_SIGNED * top).any())


def display_scale(attribution: np.ndarray) -> np.ndarray:
    """The map scaled for colouring, 1 at the 99th percentile of its magnitude: in [-1, 1] for a signed
    map (`is_signed`), else its positive part in [0, 1]; zeros when the map is empty."""
    values = np.asarray(attribution, dtype=np.float64)
    signed = is_signed(values)
    shown = values if signed else np.clip(values, 0, None)
    top = _top(np.abs(shown))
    if top == 0:
        return np.zeros_like(values)
    return np.clip(shown / top, -1 if signed else 0, 1)


def colour_scale(signed: bool) -> list[list[float | str]]:
    """The colour map as plotly's colorscale ([[position, "rgba(r,g,b,a)"], ...]) over the range [-1, 1]
    for a signed map, [0, 1] otherwise."""
    return [[position, f"rgba({r},{g},{b},{a})"] for position, (r, g, b, a) in (DIVERGING if signed else SEQUENTIAL)]


def colourise(values: np.ndarray, signed: bool = False) -> np.ndarray:
    """`display_scale` values to H x W x 4 RGBA floats (colour 0-255, alpha 0-1) of the diverging map
    (`signed`, values in [-1, 1]) or the sequential one (values in [0, 1])."""
    anchors = DIVERGING if signed else SEQUENTIAL
    positions = np.array([position for position, _ in anchors])
    colours = np.array([colour for _, colour in anchors], dtype=np.float64)
    flat = np.asarray(values, dtype=np.float64).ravel()
    flat = (np.clip(flat, -1, 1) + 1) / 2 if signed else np.clip(flat, 0, 1)
    rgba = np.stack([np.interp(flat, positions, colours[:, c]) for c in range(4)], axis=-1)
    return rgba.reshape(*np.shape(values), 4)


def overlay(picture: np.ndarray, attribution: np.ndarray, opacity: float = 0.6) -> np.ndarray:
    """`picture` (H x W x 3 uint8) with the map painted over it; `opacity` is that of the strongest
    evidence, and where the map is zero the picture is unchanged."""
    rgba = colourise(display_scale(attribution), is_signed(attribution))
    alpha = opacity * rgba[..., 3:]
    blended = (1 - alpha) * picture.astype(np.float64) + alpha * rgba[..., :3]
    return blended.round().clip(0, 255).astype(np.uint8)


def save_overlay(picture: np.ndarray, attribution: np.ndarray, path: Path, opacity: float = 0.6) -> Path:
    """Write the overlay as a PNG, enlarged by a whole factor (nearest neighbour, so pixels stay crisp)
    until its shorter side is at least MIN_SIDE: a 32 px input would be unreadable as it is."""
    image = Image.fromarray(overlay(picture, attribution, opacity))
    factor = max(1, -(-MIN_SIDE // min(image.size)))
    if factor > 1:
        image = image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return path
