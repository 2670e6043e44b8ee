"""Baselines: what a run's model must beat to have learned anything, scored on the run's own split.

Every run gets its task's trivial baseline (`Task.trivial_baseline`: `majority`, always answer the training
split's largest class; `mean`, always answer the training targets' mean); a modality names the classical
methods it also has in `Modality.baselines` (text: `tfidf_logreg`; tables: `lightgbm`), each a module here
with `NAME`, `TITLE` and `predict(context)`. They are cheap (scikit-learn or LightGBM on the split, seconds
at most), so the training loop computes them once per run, beside its metrics, with the task's own metrics.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from core import evaluation
from core.baselines import majority

if TYPE_CHECKING:
    from core.data.base import Modality, Split
    from core.tasks import Task

# every baseline by name (its module here), imported when a run names it: LightGBM loads only for tables
_MODULES = {"majority": "majority", "mean": "mean", "tfidf_logreg": "text", "lightgbm": "tabular",
            "naive": "naive", "seasonal_naive": "seasonal_naive", "ets": "ets", "series_features": "series_features"}
_TRIVIAL = ("majority", "mean", "naive")
BLEND = "blend"
BLEND_TITLE = "average of this model and"


@dataclass(frozen=True)
class Context:
    """What a baseline fits on: the dataset, the run's split and task state, every item's target (class
    index or value, `Modality.targets`), the seed, and the run's fitted input preprocessing (a table's
    encoder, `Modality.fit_inputs`), so that a baseline sees the inputs exactly as the network does."""

    modality: Modality
    dataset_dir: Path
    info: dict[str, Any]
    split: Split
    targets: np.ndarray
    state: dict[str, Any]
    seed: int = 0
    inputs: dict[str, Any] | None = None


@dataclass
class Found:
    """`metrics`: {"baselines": {name: metrics}, "baseline_metrics": the strongest one's, with "baseline"
    naming it}, what a run's metrics carry; `answers`: each baseline's validation answers (probabilities
    [n, classes] or values [n]), for the blend with the network."""

    metrics: dict[str, Any]
    answers: dict[str, np.ndarray] = field(default_factory=dict)


def compute(modality: Modality, task: Task, context: Context) -> Found:
    """Each baseline's validation metrics on `context.split`, and the strongest one's (by the task's headline
    metric; the first listed, the trivial one, on a tie). `majority` also gives the class it always answers
    ("class"). A classical method that cannot fit this data (scikit-learn's refusal: no word shared by two
    training texts, say) is left out rather than failing the run."""
    val_targets = context.targets[context.split.val]
    found: dict[str, dict[str, Any]] = {}
    answers: dict[str, np.ndarray] = {}
    for name in (task.trivial_baseline, *modality.baselines):
        try:
            answers[name] = _method(name).predict(context)
        except ValueError:
            continue
        found[name] = task.metrics(val_targets, answers[name], context.state)
        if name == majority.NAME:
            found[name]["class"] = context.state["classes"][int(answers[name][0].argmax())] if len(val_targets) \
                else context.state["classes"][0]
    strongest = _strongest(task, found)
    return Found({"baselines": found, "baseline_metrics": {"baseline": strongest, **found[strongest]}}, answers)


def with_blend(task: Task, found: Found, val_targets: np.ndarray, network: np.ndarray,
               state: dict[str, Any]) -> Found:
    """`found` plus the blend of the network and the strongest classical baseline (the average of their
    probabilities or predictions) when it beats each of the two on the task's headline metric: a third row
    a careful analyst would also try. Returns `found` unchanged otherwise."""
    classical = [name for name in found.answers if name not in _TRIVIAL]
    if not classical:
        return found
    best = _strongest(task, {name: found.metrics["baselines"][name] for name in classical})
    blended = evaluation.blend(network, found.answers[best])
    metrics = task.metrics(val_targets, blended, state)
    own = task.metrics(val_targets, network, state)
    headline = task.metrics_shown[0]
    rivals = (own[headline.key], found.metrics["baselines"][best][headline.key])
    if _ranked(metrics[headline.key], headline.higher_is_better) <= max(
            _ranked(v, headline.higher_is_better) for v in rivals):
        return found
    baselines = {**found.metrics["baselines"], BLEND: {**metrics, "with": best}}
    return Found({"baselines": baselines, "baseline_metrics": found.metrics["baseline_metrics"]},
                 {**found.answers, BLEND: blended})


def describe(found: Found, task: Task) -> str:
    """One line for a run's events: "baselines on the validation split: always 'positive' 71.2%,
    TF-IDF + logistic regression 77.4% accuracy" (or "... always the training mean 0.000 R²")."""
    headline = task.metrics_shown[0]
    shown = ", ".join(f"{title(name, value)} {_figure(value[headline.key], headline.percent)}"
                      for name, value in found.metrics["baselines"].items())
    return f"baselines on the validation split: {shown} {headline.title}"


def title(name: str, metrics: dict[str, Any]) -> str:
    """A baseline as people read it: "always 'positive'" for the majority, "average of this model and
    gradient boosting (LightGBM)" for a blend, else its method's title."""
    if name == majority.NAME:
        return f"always {metrics['class']!r}"
    if name == BLEND:
        return f"{BLEND_TITLE} {_method(metrics['with']).TITLE}"
    return _method(name).TITLE


def _method(name: str) -> ModuleType:
    return importlib.import_module(f"core.baselines.{_MODULES[name]}")


def _strongest(task: Task, found: dict[str, dict[str, Any]]) -> str:
    """The baseline with the best headline metric; one whose metric is undefined (R² on a single validation
    row) never wins."""
    headline = task.metrics_shown[0]
    return max(found, key=lambda name: _ranked(found[name][headline.key], headline.higher_is_better))


def _ranked(value: float | None, higher_is_better: bool) -> float:
    if value is None:
        return float("-inf")
    return value if higher_is_better else -value


def _figure(value: float | None, percent: bool) -> str:
    if value is None:
        return "undefined"
    return f"{value:.1%}" if percent else f"{value:.3f}"
