"""Explanation maps as pictures, with numpy and Pillow only (no plotting library in the core).

The overlay is what the CLI writes and what a grid of thumbnails shows: the picture the model saw,
with the map's positive evidence painted over it in a perceptual colour map. Weak evidence is left
transparent (each pixel's opacity grows with its value), so the picture stays readable under it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["colourise", "display_scale", "overlay", "save_overlay"]

# anchor colours of matplotlib's "inferno" (dark = little evidence, bright yellow = most)
_INFERNO = np.array([
    [0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21], [250, 193, 39],
    [252, 255, 164],
], dtype=np.float64)
# the share of positive values above which the colour saturates: one extreme pixel (common in gradient
# maps) would otherwise leave everything else black
_PERCENTILE = 99.0
MIN_SIDE = 256


def display_scale(attribution: np.ndarray) -> np.ndarray:
    """The map's positive part scaled to [0, 1] (1 at the 99th percentile of positive values): evidence
    for the target class; zeros when the map has none."""
    positive = np.clip(np.asarray(attribution, dtype=np.float64), 0, None)
    nonzero = positive[positive > 0]
    if nonzero.size == 0:
        return np.zeros_like(positive)
    top = float(np.percentile(nonzero, _PERCENTILE))
    return np.clip(positive / top, 0, 1) if top > 0 else np.zeros_like(positive)


def colourise(values: np.ndarray) -> np.ndarray:
    """[0, 1] values to H x W x 3 uint8 colours of the inferno map."""
    positions = np.linspace(0.0, 1.0, len(_INFERNO))
    flat = np.clip(np.asarray(values, dtype=np.float64), 0, 1).ravel()
    rgb = np.stack([np.interp(flat, positions, _INFERNO[:, c]) for c in range(3)], axis=-1)
    return rgb.reshape(*np.shape(values), 3).round().astype(np.uint8)


def overlay(picture: np.ndarray, attribution: np.ndarray, opacity: float = 0.6) -> np.ndarray:
    """`picture` (H x W x 3 uint8) with the map painted over it; `opacity` is that of the strongest evidence."""
    scaled = display_scale(attribution)
    alpha = (opacity * scaled)[..., None]
    blended = (1 - alpha) * picture.astype(np.float64) + alpha * colourise(scaled).astype(np.float64)
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
