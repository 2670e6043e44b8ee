"""Classification and regression metrics from predictions, computed with scikit-learn rather than by hand,
and the plain verdict of a network against its baseline."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    mean_absolute_error,
    precision_recall_fscore_support,
    r2_score,
    roc_auc_score,
    root_mean_squared_error,
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



def regression_summary(targets: Sequence[float], predictions: Sequence[float]) -> dict[str, float | None]:
    """Mean absolute error, root mean squared error (both in the target's unit) and R² (scikit-learn's
    `r2_score`: 1 is perfect, 0 is what always answering the targets' mean scores, below 0 worse) of
    `predictions` against `targets`, both [n]. R² is None on fewer than two targets, where it is undefined;
    on targets that are all equal, scikit-learn gives 1.0 for exact predictions and 0.0 otherwise."""
    y = np.asarray(targets, dtype=np.float64)
    pred = np.asarray(predictions, dtype=np.float64)
    return {
        "mae": float(mean_absolute_error(y, pred)),
        "rmse": float(root_mean_squared_error(y, pred)),
        "r2": float(r2_score(y, pred)) if len(y) >= 2 else None,
    }


def binary_scores(labels: Sequence[int], probs: np.ndarray) -> dict[str, float | None]:
    """ROC-AUC and PR-AUC (scikit-learn's `roc_auc_score` and `average_precision_score`) of a two-class
    model, the positive class being index 1: `probs` is [n, 2] (its second column is used) or [n] (the
    positive class's probabilities). Under imbalance these say more than accuracy: PR-AUC's floor is the
    positives' share, not 0.5. Both are None when `labels` hold one class only, where they are undefined."""
    y = np.asarray(labels, dtype=int)
    scores = np.asarray(probs, dtype=np.float64)
    positive = scores[:, 1] if scores.ndim == 2 else scores
    if len(np.unique(y)) < 2:
        return {"roc_auc": None, "pr_auc": None}
    return {"roc_auc": float(roc_auc_score(y, positive)), "pr_auc": float(average_precision_score(y, positive))}


def blend(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The average of two models' outputs, element by element: class probabilities [n, k] (rows still
    sum to 1) or regression predictions [n]. Raises ValueError when the shapes differ."""
    a, b = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"cannot blend outputs of shapes {a.shape} and {b.shape}")
    return (a + b) / 2


# within this many points of accuracy (classification) or of R² (regression), two models are level
LEVEL_POINTS = 0.5
LEVEL_R2 = 0.01


def verdict(network: dict[str, Any], baseline: dict[str, Any], task: str, baseline_title: str) -> str:
    """One plain sentence comparing the network with a baseline on the same validation split, by accuracy
    (classification; the gap in percentage points) or by R² (regression): "The network is 1.2 points of
    accuracy below gradient boosting (LightGBM) on this table (85.3% against 86.5%)." Within LEVEL_POINTS
    points, or LEVEL_R2 of R², the two are "about level". Each dict holds the metric under its plain name
    ("accuracy", "r2") or a run's "val_" name ("val_accuracy", "val_r2"). Raises ValueError for an unknown
    task or a dict lacking the metric."""
    if task not in ("classification", "regression"):
        raise ValueError(f"unknown task {task!r}")
    key = "accuracy" if task == "classification" else "r2"
    ours, theirs = _score(network, key), _score(baseline, key)
    if ours is None or theirs is None:  # R² on under two validation rows
        name = "accuracy" if key == "accuracy" else "R²"
        return f"The network and {baseline_title} cannot be compared on this table: {name} is undefined for one."
    if key == "accuracy":
        gap, level = (ours - theirs) * 100, LEVEL_POINTS
        said = f"{abs(gap):.1f} points of accuracy"
        values = f"{ours:.1%} against {theirs:.1%}"
        within = f"within {LEVEL_POINTS} points of accuracy"
    else:
        gap, level = ours - theirs, LEVEL_R2
        said = f"{abs(gap):.2f} of R²"
        values = f"R² {ours:.2f} against {theirs:.2f}"
        within = f"within {LEVEL_R2} of R²"
    if abs(gap) <= level:
        return f"The network is about level with {baseline_title} on this table ({within}: {values})."
    side = "above" if gap > 0 else "below"
    return f"The network is {said} {side} {baseline_title} on this table ({values})."


def _score(metrics: dict[str, Any], key: str) -> float | None:
    for name in (key, f"val_{key}"):
        if name in metrics:
            return None if metrics[name] is None else float(metrics[name])
    raise ValueError(f"no {key!r} among the metrics given")

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
    true label and predicted probabilities (for drilling into a confusion-matrix cell); for a regression
    run, `regression_report`."""
    predictions = files.read_json(files.predictions)
    if "predictions" in predictions:
        return regression_report(predictions["items"], predictions["labels"], predictions["predictions"])
    classes = files.read_json(files.labels)
    probs = np.asarray(predictions["probs"], dtype=float)
    return {
        **report(predictions["labels"], probs, classes),
        "items": predictions["items"],
        "labels": predictions["labels"],
        "probs": probs,
    }


def regression_report(items: Sequence[int], targets: Sequence[float], predictions: Sequence[float]) -> dict[str, Any]:
    """What Evaluate shows of a regression run: `regression_summary` (MAE, RMSE, R²), per validation item its
    index in the dataset (`items`), true value (`labels`), prediction (`predictions`) and residual (prediction
    minus truth, in the target's unit), and `worst`: positions of the items ordered by absolute residual,
    largest first, the rows to read first."""
    y = np.asarray(targets, dtype=float)
    pred = np.asarray(predictions, dtype=float)
    residuals = pred - y
    return {"task": "regression", **regression_summary(y, pred), "items": list(items), "labels": y.tolist(),
            "predictions": pred, "residuals": residuals,
            "worst": [int(i) for i in np.argsort(-np.abs(residuals), kind="stable")]}


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
