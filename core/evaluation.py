"""Classification metrics from predictions, computed with scikit-learn rather than by hand."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from core.artifacts import RunFiles


def summary(labels: Sequence[int], preds: Sequence[int], num_classes: int) -> dict[str, float]:
    """The two headline figures logged every epoch."""
    return {
        "accuracy": float(accuracy_score(labels, preds)),
        "macro_f1": float(f1_score(labels, preds, average="macro", labels=list(range(num_classes)),
                                   zero_division=0)),
    }


def report(labels: Sequence[int], probs: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """Everything the Evaluate page shows, from the validation predictions of a run."""
    labels_arr = np.asarray(labels)
    preds = np.asarray(probs).argmax(axis=1)
    ids = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels_arr, preds, labels=ids, zero_division=0
    )
    return {
        **summary(labels_arr, preds, len(classes)),
        "per_class": [
            {"class": name, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)
        ],
        "confusion": confusion_matrix(labels_arr, preds, labels=ids).tolist(),
        "classes": list(classes),
    }


def run_report(files: RunFiles) -> dict[str, Any]:
    """The Evaluate view of a run: `report` plus, per validation item, its index in the dataset,
    true label and predicted probabilities (for drilling into a confusion-matrix cell)."""
    predictions = files.read_json(files.predictions)
    classes = files.read_json(files.labels)
    probs = np.asarray(predictions["probs"], dtype=float)
    return {
        **report(predictions["labels"], probs, classes),
        "items": predictions["items"],
        "labels": predictions["labels"],
        "probs": probs,
    }


def confident_mistakes(report: dict[str, Any], limit: int | None = None) -> list[int]:
    """Positions (in `report`'s items, labels and probs) of the validation items the model got wrong,
    most confident first: a confident mistake says more about what the model learned than a hesitant
    one, so the Evaluate and Explain pages start from these."""
    probs = np.asarray(report["probs"], dtype=float)
    if not len(probs):
        return []
    preds = probs.argmax(axis=1)
    wrong = np.flatnonzero(preds != np.asarray(report["labels"]))
    ranked = wrong[np.argsort(-probs[wrong, preds[wrong]], kind="stable")]
    return [int(i) for i in ranked[:limit]]
