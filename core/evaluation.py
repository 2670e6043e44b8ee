"""Classification metrics from predictions, computed with scikit-learn rather than by hand."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

from core.artifacts import RunFiles


def summary(labels: Sequence[int], preds: Sequence[int], num_classes: int) -> dict[str, float]:
    """The headline figures logged every epoch: accuracy, balanced accuracy (the mean of the per-class
    recalls over the classes present in `labels`, scikit-learn's `balanced_accuracy_score`: always answering
    the largest class scores 1/k on it, however large that class) and macro F1."""
    return {
        "accuracy": float(accuracy_score(labels, preds)),
        "balanced_accuracy": _balanced_accuracy(labels, preds),
        "macro_f1": float(f1_score(labels, preds, average="macro", labels=list(range(num_classes)),
                                   zero_division=0)),
    }


def _balanced_accuracy(labels: Sequence[int], preds: Sequence[int]) -> float:
    # scikit-learn warns when a prediction names a class absent from `labels` (common on small validation
    # sets); its recall is undefined and is rightly left out of the mean, so the warning says nothing new
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        return float(balanced_accuracy_score(labels, preds))


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


OUTCOMES = ("All", "Correct", "Wrong")


def validation_table(report: dict[str, Any], refs: Sequence[str]) -> pd.DataFrame:
    """One row per validation item (its text or image path, true and predicted class, the confidence of
    the prediction and the probability of the true class), in the report's order: the table a user sorts
    and filters to read what the model gets wrong."""
    probs = np.asarray(report["probs"], dtype=float).reshape(len(report["labels"]), len(report["classes"]))
    labels = np.asarray(report["labels"], dtype=int)
    preds = probs.argmax(axis=1)
    rows = np.arange(len(labels))
    classes = list(report["classes"])
    return pd.DataFrame({
        "item": pd.Series([refs[int(i)] for i in report["items"]], dtype="str"),
        "label": pd.Series([classes[i] for i in labels], dtype="str"),
        "predicted": pd.Series([classes[i] for i in preds], dtype="str"),
        "confidence": probs[rows, preds],
        "p_label": probs[rows, labels],
        "correct": labels == preds,
    })


def filter_table(table: pd.DataFrame, outcome: str = "All", label: str | None = None, predicted: str | None = None,
                 contains: str = "") -> pd.DataFrame:
    """The rows of `validation_table` that match every filter given; `contains` matches the item without
    regard to case, as a word search would."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}")
    keep = np.ones(len(table), dtype=bool)
    if outcome != "All":
        keep &= table["correct"].to_numpy() == (outcome == "Correct")
    if label is not None:
        keep &= (table["label"] == label).to_numpy()
    if predicted is not None:
        keep &= (table["predicted"] == predicted).to_numpy()
    if contains.strip():
        keep &= table["item"].str.contains(contains.strip(), case=False, regex=False).to_numpy()
    return table[keep]


SHOWN = (*OUTCOMES, "Most confident mistakes")


def positions(report: dict[str, Any], shown: str = "All", label: str | None = None) -> list[int]:
    """Positions of the validation items to offer for explaining: all, the correct or wrong ones (in
    the report's order) or the most confident mistakes first, optionally only those of one true class."""
    if shown not in SHOWN:
        raise ValueError(f"shown must be one of {SHOWN}")
    labels = np.asarray(report["labels"], dtype=int)
    if shown == "Most confident mistakes":
        kept = confident_mistakes(report)
    else:
        preds = np.asarray(report["probs"], dtype=float).reshape(len(labels), -1).argmax(axis=1)
        wanted = {"All": np.ones(len(labels), bool), "Correct": labels == preds, "Wrong": labels != preds}[shown]
        kept = [int(i) for i in np.flatnonzero(wanted)]
    if label is not None:
        index = list(report["classes"]).index(label)
        kept = [i for i in kept if labels[i] == index]
    return kept
