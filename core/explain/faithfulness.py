"""How far to trust an image explanation, measured rather than eyeballed.

- Deletion and insertion curves (Petsiuk et al., RISE, 2018): remove the map's most important regions
  first (painted black, a grid cell at a time) and watch the target probability fall, or add them first
  to a blurred copy and watch it rise. A faithful map falls faster (smaller deletion area) and rises
  faster (larger insertion area) than a random map: the same map moved to a random place with a fixed
  seed (see `random_map`), so the comparison is stable and tests only where the map points.
- Captum's `infidelity` (does the map predict how the score reacts to noise?) beside a random map's, and
  `sensitivity_max` (the largest change of the map under a tiny input change, relative to the map's
  norm, so the figure compares across methods).
- The model-parameter randomisation test (Adebayo et al., 2018): randomise the top layers and check
  that the map changes; a map that survives it shows the image (edges), not what the model learned.
- `rank`: the methods run on one input, most faithful first by how far their deletion area lies below
  the random map's, with one verdict for them all (`ranking_verdict`).

Each figure says how long it took (`Faithfulness.seconds`, `Randomisation.seconds`), since some of them
re-run the method many times.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import torch
from captum.metrics import infidelity, sensitivity_max
from scipy.stats import spearmanr

from core.explain import ExplainOptions, Explanation, explain, methods
from core.explain.images import ImageModel

__all__ = ["Curve", "Faithfulness", "Randomisation", "Ranked", "curves", "measure", "random_map", "randomisation_test",
           "rank", "ranking_verdict", "verdict"]

FRACTIONS = np.linspace(0.0, 1.0, 11)  # 10% steps: "the top 10%" is a point on every curve, and 11 points
# for each of 4 curves keep the figures near a second for a 224 px EfficientNet on 2 CPU cores
TOP = 0.10
_SEED = 0
_CELLS = 16  # the image is removed in about 16 x 16 cells (see _cells)
# a map is called better than chance when its deletion area is below this share of the random map's
_CLEARLY_BELOW = 0.8
_INFIDELITY_SAMPLES = 10
_INFIDELITY_NOISE = 0.1  # pixel-noise standard deviation, as a fraction of the value range
# Spearman correlation between the map and the randomised model's map above which it "barely changed"
_SAME_MAP = 0.5


@dataclass(frozen=True)
class Curve:
    """Target probability after removing (deletion) or adding (insertion) a fraction of the pixels."""

    fractions: tuple[float, ...]
    probabilities: tuple[float, ...]

    @property
    def auc(self) -> float:
        """Area under the curve over fractions 0..1 (the mean probability along the way)."""
        return float(np.trapezoid(self.probabilities, self.fractions))

    def at(self, fraction: float) -> float:
        return float(np.interp(fraction, self.fractions, self.probabilities))


@dataclass(frozen=True)
class Faithfulness:
    deletion: Curve
    insertion: Curve
    random_deletion: Curve
    random_insertion: Curve
    infidelity: float
    random_infidelity: float
    sensitivity: float | None  # None when not measured (it re-runs the method several times)
    verdict: str
    # seconds each measure took: "deletion and insertion", "infidelity" and, when measured, "sensitivity"
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def deletion_gap(self) -> float:
        """The random map's deletion area minus this map's: how much faster the probability falls when
        the map's top regions go first than when a random map's do (higher is more faithful)."""
        return self.random_deletion.auc - self.deletion.auc

    @property
    def beats_random(self) -> bool:
        return _beats_random(self.deletion, self.random_deletion)

    def summary(self) -> dict[str, Any]:
        """The figures as plain numbers, for JSON (the CLI) and tables (the pages)."""
        return {
            "deletion_auc": round(self.deletion.auc, 4),
            "insertion_auc": round(self.insertion.auc, 4),
            "random_deletion_auc": round(self.random_deletion.auc, 4),
            "random_insertion_auc": round(self.random_insertion.auc, 4),
            "infidelity": _rounded(self.infidelity),
            "random_infidelity": _rounded(self.random_infidelity),
            "sensitivity_max": None if self.sensitivity is None else _rounded(self.sensitivity),
            "verdict": self.verdict,
        }


@dataclass(frozen=True)
class Randomisation:
    layers: tuple[str, ...]  # randomised, top first
    randomised: Explanation
    correlation: float  # see _rank_correlation
    verdict: str
    seconds: float = 0.0  # explaining again with the randomised model, comparison included

    @property
    def changed(self) -> bool:
        return self.correlation < _SAME_MAP


def curves(subject: ImageModel, inputs: torch.Tensor, attribution: np.ndarray, target: int) -> tuple[Curve, Curve]:
    """(deletion, insertion) for `attribution` (H x W), most important cells first. Ties (flat regions of a
    Grad-CAM or occlusion map) are broken in a seeded random order rather than in raster order, which
    would favour the top of the image."""
    cells, count = _cells(inputs.shape[-2], inputs.shape[-1])
    flat = np.asarray(attribution, dtype=np.float64).ravel()
    scores = np.bincount(cells.ravel(), weights=flat, minlength=count) / np.bincount(cells.ravel(), minlength=count)
    rng = np.random.default_rng(_SEED)
    return _curves(subject, inputs, cells, np.lexsort((rng.random(count), -scores)), target)


def random_map(attribution: np.ndarray, seed: int = _SEED) -> np.ndarray:
    """The map moved to a random place: rolled (wrapping around) by a seeded offset of a quarter to three
    quarters of each side.

    A map of independent random values would remove scattered cells, and scattered black squares break
    an image net's prediction faster than any one region does, so every coherent map would look worse
    than chance. The moved map keeps the map's values, blob sizes and smoothness and changes only where
    it points, which is the thing being tested.
    """
    rng = np.random.default_rng(seed + 1)
    height, width = attribution.shape
    shift = (int(rng.integers(height // 4, 3 * height // 4 + 1)), int(rng.integers(width // 4, 3 * width // 4 + 1)))
    return np.roll(attribution, shift, axis=(0, 1))


def measure(subject: ImageModel, inputs: torch.Tensor, explanation: Explanation,
            options: ExplainOptions | None = None, sensitivity_samples: int = 0) -> Faithfulness:
    """Every figure for one explanation. `sensitivity_samples` > 0 also measures sensitivity_max, which
    re-runs the method that many times on slightly perturbed inputs (the slow part for IG and occlusion)."""
    options = options or ExplainOptions()
    target = explanation.target
    moved = random_map(explanation.attribution)
    seconds: dict[str, float] = {}
    (deletion, insertion), (random_deletion, random_insertion) = _timed(seconds, "deletion and insertion", lambda: (
        curves(subject, inputs, explanation.attribution, target), curves(subject, inputs, moved, target)))
    infidelities = _timed(seconds, "infidelity", lambda: (
        _infidelity(subject, inputs, explanation.attribution, target, options),
        _infidelity(subject, inputs, moved, target, options)))
    sensitivity = None
    if sensitivity_samples > 0:
        sensitivity = _timed(seconds, "sensitivity",
                             lambda: _sensitivity(subject, inputs, explanation, options, sensitivity_samples))
    return Faithfulness(
        deletion=deletion, insertion=insertion, random_deletion=random_deletion, random_insertion=random_insertion,
        infidelity=infidelities[0], random_infidelity=infidelities[1], sensitivity=sensitivity,
        verdict=verdict(subject.classes[target], deletion, random_deletion), seconds=seconds,
    )


def verdict(class_name: str, deletion: Curve, random_deletion: Curve) -> str:
    """One line a non-specialist can read: what removing the map's top pixels does, against chance."""
    start, after, by_chance = deletion.at(0.0), deletion.at(TOP), random_deletion.at(TOP)
    if round(after, 2) == round(start, 2):
        effect = f"leaves the probability of {class_name} at {start:.2f}"
    else:
        move = "drops" if after < start else "raises"
        effect = f"{move} the probability of {class_name} from {start:.2f} to {after:.2f}"
    judgement = (
        "over the whole curve the map points at what the model relies on"
        if _beats_random(deletion, random_deletion)
        else "over the whole curve no clearer than a random map, so read it with caution"
    )
    return f"Removing the top {TOP:.0%} of this map {effect}; a random map: to {by_chance:.2f} ({judgement})."


def randomisation_test(subject: ImageModel, inputs: torch.Tensor, explanation: Explanation,
                       options: ExplainOptions | None = None, layers: int = 3) -> Randomisation:
    """Re-explain with the top `layers` layers re-initialised and compare the maps (see `_rank_correlation`)."""
    started = time.perf_counter()
    randomised_model, names = subject.randomised(layers)
    again = explain(randomised_model, inputs, explanation.target, explanation.method, options)
    correlation = _rank_correlation(explanation.attribution, again.attribution)
    if correlation < _SAME_MAP:
        text = (f"With the top {len(names)} layer(s) randomised the map changes (rank correlation "
                f"{correlation:.2f}): it depends on what the model learned.")
    else:
        text = (f"With the top {len(names)} layer(s) randomised the map barely changes (rank correlation "
                f"{correlation:.2f}): it may show the image's edges rather than what the model learned.")
    return Randomisation(layers=tuple(names), randomised=again, correlation=correlation, verdict=text,
                         seconds=time.perf_counter() - started)


@dataclass(frozen=True)
class Ranked:
    """One method's place in `rank`: its deletion and insertion areas against the random map's."""

    method: str
    deletion_gap: float  # `Faithfulness.deletion_gap`: higher is more faithful
    insertion_gap: float  # this map's insertion area minus the random map's: higher is more faithful
    beats_random: bool


def rank(figures: Mapping[str, Faithfulness]) -> list[Ranked]:
    """The methods measured on one input (method name -> its figures), most faithful first: ordered by
    their deletion gap to the random map (Petsiuk et al.'s deletion test, the measure `verdict` reads),
    ties broken by the insertion gap."""
    ranked = [Ranked(method, f.deletion_gap, f.insertion.auc - f.random_insertion.auc, f.beats_random)
              for method, f in figures.items()]
    return sorted(ranked, key=lambda r: (-r.deletion_gap, -r.insertion_gap))


def ranking_verdict(ranked: Sequence[Ranked], titles: Mapping[str, str]) -> str:
    """One line on a `rank`: which method to trust on this input, if any (`titles` names each method)."""
    if not ranked:
        return "No method was measured on this input."
    best = ranked[0]
    beating = sum(r.beats_random for r in ranked)
    if not best.beats_random:
        return ("No method's map is clearly better than a random map on this input: do not read these maps as "
                "what the model relies on.")
    others = "" if len(ranked) == 1 else f"; {beating} of the {len(ranked)} methods beat a random map"
    return (f"{titles.get(best.method, best.method)} is the most faithful on this input: removing its top regions "
            f"lowers the probability faster than a random map's (deletion area {best.deletion_gap:.3f} lower)"
            f"{others}.")


# ---- internals --------------------------------------------------------------------------------------

_T = TypeVar("_T")


def _timed(seconds: dict[str, float], step: str, work: Callable[[], _T]) -> _T:
    """`work()`, its wall time recorded in `seconds[step]`."""
    started = time.perf_counter()
    value = work()
    seconds[step] = time.perf_counter() - started
    return value


def _beats_random(deletion: Curve, random_deletion: Curve) -> bool:
    return deletion.auc < _CLEARLY_BELOW * random_deletion.auc


def _cells(height: int, width: int) -> tuple[np.ndarray, int]:
    """Each pixel's cell (H x W ints) in a grid of about _CELLS x _CELLS squares, and the number of cells.

    Pixels are removed a cell at a time, ranked by the map's mean over the cell: a pixel-level map (IG,
    saliency) would otherwise be judged by scattered single pixels, salt-and-pepper noise that says more
    about the model's dislike of noise than about the map."""
    side = max(1, min(height, width) // _CELLS)
    rows, cols = -(-height // side), -(-width // side)
    grid = (np.arange(height)[:, None] // side) * cols + np.arange(width)[None, :] // side
    return grid, rows * cols


def _curves(subject: ImageModel, inputs: torch.Tensor, cells: np.ndarray, order: np.ndarray,
            target: int) -> tuple[Curve, Curve]:
    """Probabilities with the first k cells of `order` removed (deletion) or kept (insertion), for the
    k matching each fraction, all in one batched pass."""
    x = inputs[:1].detach()
    rank_of_cell = np.empty(len(order), dtype=np.int64)
    rank_of_cell[order] = np.arange(len(order))
    ranks = torch.as_tensor(rank_of_cell[cells])
    counts = torch.as_tensor(np.round(FRACTIONS * len(order)).astype(np.int64))
    masks = ranks.view(1, 1, *ranks.shape) < counts.view(-1, 1, 1, 1)  # masks[k]: the counts[k] first cells
    deleted = torch.where(masks, subject.black(x), x)
    inserted = torch.where(masks, x, subject.blurred(x))
    probs = subject.probabilities(torch.cat([deleted, inserted]))[:, target]
    fractions = tuple(float(f) for f in FRACTIONS)
    n = len(FRACTIONS)
    return (Curve(fractions, tuple(float(p) for p in probs[:n])),
            Curve(fractions, tuple(float(p) for p in probs[n:])))


def _infidelity(subject: ImageModel, inputs: torch.Tensor, attribution: np.ndarray, target: int,
                options: ExplainOptions) -> float:
    """Captum's infidelity with per-pixel Gaussian noise shared by the colour channels, so that the
    noise's dot product with the map spread over the channels equals its dot product with the H x W map.
    `normalize=True` fits the map's scale first: Grad-CAM's and IG's units differ, their shapes compare."""
    x = inputs[:1].detach()
    channels = x.shape[1]
    per_channel = torch.as_tensor(attribution, dtype=x.dtype).expand_as(x[0]).unsqueeze(0) / channels
    generator = torch.Generator().manual_seed(_SEED)
    scale = _INFIDELITY_NOISE * subject.value_range

    def perturb(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        noise = torch.randn((batch.shape[0], 1, *batch.shape[2:]), generator=generator, dtype=batch.dtype) * scale
        noise = noise.expand_as(batch)
        return noise, batch - noise

    with subject.lock, torch.no_grad():
        value = infidelity(subject.model, perturb, x, per_channel, target=target,
                           n_perturb_samples=_INFIDELITY_SAMPLES,
                           max_examples_per_batch=min(options.internal_batch_size, _INFIDELITY_SAMPLES),
                           normalize=True)
    return float(value[0])


def _sensitivity(subject: ImageModel, inputs: torch.Tensor, explanation: Explanation, options: ExplainOptions,
                 samples: int) -> float:
    method = methods(subject.modality).get(explanation.method)

    def maps(batch: torch.Tensor | tuple[torch.Tensor, ...], target: int) -> tuple[torch.Tensor]:
        # Captum passes the inputs as a tuple, and iterates over what comes back: a tuple, not a batch
        tensor = batch[0] if isinstance(batch, tuple) else batch
        return (method.attribute(subject, tensor, target, options, None)[0],)

    with subject.lock, torch.random.fork_rng():
        torch.manual_seed(_SEED)
        value = sensitivity_max(maps, inputs[:1].detach(), perturb_radius=0.02 * subject.value_range,
                                n_perturb_samples=samples, max_examples_per_batch=samples,
                                target=explanation.target)
    return float(value[0])


def _rank_correlation(first: np.ndarray, second: np.ndarray) -> float:
    """Spearman correlation of the absolute maps (as Adebayo et al.: a flipped sign alone does not make
    another explanation), over the positions where either map is non-zero: ReLU'd maps (Grad-CAM) are
    mostly zero, and those tied zeros would count as agreement. A map that is constant (an empty
    Grad-CAM) shares nothing with the other: 0."""
    a, b = np.abs(first).ravel(), np.abs(second).ravel()
    shown = (a > 0) | (b > 0)
    a, b = a[shown], b[shown]
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(a, b).statistic)


def _rounded(value: float) -> float:
    return float(f"{value:.4g}")
