"""Baselines: what a run's model must beat to have learned anything, scored on the run's own split.

Every classification run gets `majority` (always answer the training split's largest class); a modality
names the classical methods it also has in `Modality.baselines` (text: `tfidf_logreg`, TF-IDF features and
a logistic regression), each a module here with `NAME`, `TITLE` and `predict`. They are cheap (scikit-learn
on the split, seconds at most), so the training loop computes them once per run, beside its metrics.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core import evaluation
from core.baselines import majority, text

if TYPE_CHECKING:
    from core.data.base import Modality, Split

# the classical methods a modality may name, by name
_CLASSICAL = {text.NAME: text}


def compute(modality: Modality, dataset_dir: Path, info: dict[str, Any], split: Split) -> dict[str, Any]:
    """Each baseline's validation metrics on `split`, and the strongest one's.

    Returns {"baselines": {name: {"accuracy", "balanced_accuracy", "macro_f1"}}, "baseline_metrics": the
    strongest baseline's metrics with "baseline" naming it}; the strongest is the one with the highest
    accuracy, the first listed (majority) on a tie. `majority` also gives the class it always answers
    ("class"). A classical method that scikit-learn cannot fit on this data (no word shared by two
    training texts, say) is left out rather than failing the run."""
    classes: list[str] = info["classes"]
    labels = np.asarray(modality.labels(dataset_dir, info))
    val_labels = labels[split.val]
    largest = majority.largest_class(labels[split.train])
    found = {majority.NAME: {**_metrics(val_labels, np.full(len(split.val), largest), len(classes)),
                             "class": classes[largest]}}
    items = modality.items(dataset_dir, info) if modality.baselines else []
    for name in modality.baselines:
        try:
            preds = _CLASSICAL[name].predict(items, labels, split)
        except ValueError:  # scikit-learn's refusal of data it cannot fit
            continue
        found[name] = _metrics(val_labels, preds, len(classes))
    strongest = max(found, key=lambda name: found[name]["accuracy"])
    return {"baselines": found, "baseline_metrics": {"baseline": strongest, **found[strongest]}}


def describe(found: dict[str, Any]) -> str:
    """One line for a run's events: "baselines on the validation split: always 'positive' 71.2%,
    TF-IDF + logistic regression 77.4% accuracy"."""
    shown = ", ".join(f"{title(name, value)} {value['accuracy']:.1%}" for name, value in found["baselines"].items())
    return f"baselines on the validation split: {shown} accuracy"


def title(name: str, metrics: dict[str, Any]) -> str:
    """A baseline as people read it: "always 'positive'" for the majority, else its method's title."""
    return f"always {metrics['class']!r}" if name == majority.NAME else _CLASSICAL[name].TITLE


def _metrics(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> dict[str, float]:
    return evaluation.summary(labels.tolist(), np.asarray(preds).tolist(), num_classes)
