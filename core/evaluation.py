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
    auc,
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    mean_absolute_error,
    precision_recall_curve,
    precision_recall_fscore_support,
    r2_score,
    roc_auc_score,
    roc_curve,
    root_mean_squared_error,
)

from core.artifacts import RunFiles, target_state
from core.calibration import BINS, expected_calibration_error, reliability_bins, softmax


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


def forecast_summary(targets: np.ndarray, predictions: np.ndarray, mase_scale: float | None
                     ) -> dict[str, float | None]:
    """Forecast errors over every origin and step: `targets` and `predictions` are [n, H] (n forecast origins,
    H steps ahead each; any equal shapes are read element by element), in the series' unit.

    - "mae", "rmse": mean absolute and root mean squared error, in the series' unit.
    - "mase": the MAE divided by `mase_scale`, the in-sample MAE of the seasonal naive forecast on the training
      part (`seasonal_naive_scale`): below 1, better than repeating the last season did in sample (Hyndman and
      Koehler, "Another look at measures of forecast accuracy", International Journal of Forecasting 22(4),
      2006, eq. 5; as scored in the M4 competition). None when the scale is 0, missing or not finite (a series
      that repeats its season exactly), where it is undefined.
    - "smape": the symmetric MAPE of the M4 competition, 100 * mean(2 |F - A| / (|A| + |F|)), in percent from 0
      to 200 (Makridakis, Spiliotis and Assimakopoulos, "The M4 Competition: 100,000 time series and 61
      forecasting methods", International Journal of Forecasting 36(1), 2020, eq. 1); a step where both the
      truth and the forecast are 0 counts as exact (0), where the formula reads 0/0.

    Every figure is None when there is no value. Raises ValueError when the shapes differ."""
    y = np.asarray(targets, dtype=np.float64)
    pred = np.asarray(predictions, dtype=np.float64)
    if y.shape != pred.shape:
        raise ValueError(f"targets {y.shape} and predictions {pred.shape} differ in shape")
    if not y.size:
        return {"mae": None, "rmse": None, "mase": None, "smape": None}
    errors = np.abs(pred - y)
    mae = float(errors.mean())
    denominator = np.abs(y) + np.abs(pred)
    ratios = np.divide(2 * errors, denominator, out=np.zeros_like(errors), where=denominator > 0)
    usable = mase_scale is not None and np.isfinite(mase_scale) and mase_scale > 0
    return {"mae": mae, "rmse": float(np.sqrt(np.mean(errors ** 2))),
            "mase": mae / float(mase_scale) if usable else None, "smape": float(100 * ratios.mean())}


def seasonal_naive_scale(history: np.ndarray, season: int) -> float:
    """MASE's scale (Hyndman and Koehler 2006): the mean absolute difference between each value of `history`
    (float [T], the training part of the series, oldest first) and the value `season` steps earlier, the
    in-sample error of the seasonal naive forecast; with `season` 1, of the naive forecast. A history no longer
    than one season is scaled by the naive forecast (lag 1), as the seasonal one has nothing to compare.
    Raises ValueError for a history of fewer than two values or a season below 1."""
    values = np.asarray(history, dtype=np.float64)
    if season < 1:
        raise ValueError(f"season must be at least 1, not {season}")
    if len(values) < 2:
        raise ValueError("a history of at least two values is needed to scale errors")
    lag = season if len(values) > season else 1
    return float(np.mean(np.abs(values[lag:] - values[:-lag])))


def conformal_interval(residuals: np.ndarray, level: float = 0.9) -> np.ndarray:
    """Half-widths [H] of split-conformal prediction intervals (forecast ± half-width), one per step ahead, from
    `residuals` [n, H] (forecast minus truth on n calibration forecasts, the validation origins, none of which
    the model was fitted on): per step, the ceil((n + 1) * level)-th smallest |residual|, the (n + 1)-corrected
    empirical quantile that gives a new forecast's interval at least `level` coverage when the residuals are
    exchangeable with it (Vovk, Gammerman and Shafer, "Algorithmic Learning in a Random World", 2005; Lei,
    G'Sell, Rinaldo, Tibshirani and Wasserman, "Distribution-free predictive inference for regression", JASA
    113(523), 2018, sec. 2.2). Infinite when n is too small for that rank (n + 1 < 1 / (1 - level), e.g. fewer
    than 9 residuals at 90%): no finite interval is guaranteed. Raises ValueError for `level` outside (0, 1)
    or residuals that are not [n, H]."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie between 0 and 1, not {level}")
    values = np.abs(np.asarray(residuals, dtype=np.float64))
    if values.ndim != 2:
        raise ValueError(f"residuals must be [n, H], not of shape {values.shape}")
    n = len(values)
    # the tolerance keeps float products such as 10 * 0.9 = 9.000000000000002 from rounding up a rank
    rank = int(np.ceil((n + 1) * level - 1e-9))
    if rank > n:
        return np.full(values.shape[1], np.inf)
    return np.sort(values, axis=0)[rank - 1]


def interval_coverage(targets: np.ndarray, predictions: np.ndarray, halfwidths: np.ndarray) -> float:
    """The share (0-1) of true values inside their interval, |truth - forecast| <= half-width, over every origin
    and step: `targets` and `predictions` [n, H], `halfwidths` [H] (`conformal_interval`). Raises ValueError
    when the shapes disagree or there is no value."""
    y = np.asarray(targets, dtype=np.float64)
    pred = np.asarray(predictions, dtype=np.float64)
    widths = np.asarray(halfwidths, dtype=np.float64)
    if y.shape != pred.shape or y.ndim != 2 or widths.shape != (y.shape[1],):
        raise ValueError(f"targets {y.shape}, predictions {pred.shape} and half-widths {widths.shape} disagree")
    if not y.size:
        raise ValueError("no value to measure the coverage on")
    return float(np.mean(np.abs(y - pred) <= widths))


def held_out_coverage(targets: np.ndarray, predictions: np.ndarray, level: float = 0.9) -> float | None:
    """The empirical coverage of `conformal_interval` on forecasts it did not see: half-widths from the residuals
    of the first half of the rows of `targets`/`predictions` [n, H] (the earlier origins), coverage measured on
    the later half. The coverage on the residuals an interval was calibrated on is at least `level` by
    construction and says nothing; this one can fall short when errors grow over time. None with fewer than two
    rows, or when the earlier half is too small for a finite interval at `level` (fewer than 9 rows at 90%:
    an infinite interval covers everything and says nothing either)."""
    y = np.asarray(targets, dtype=np.float64)
    pred = np.asarray(predictions, dtype=np.float64)
    if y.shape != pred.shape or y.ndim != 2:
        raise ValueError(f"targets {y.shape} and predictions {pred.shape} must be the same [n, H]")
    if len(y) < 2:
        return None
    half = len(y) // 2
    widths = conformal_interval(pred[:half] - y[:half], level)
    if not np.isfinite(widths).all():
        return None
    return interval_coverage(y[half:], pred[half:], widths)


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


PARTS = ("val", "test")


def run_report(files: RunFiles, part: str = "val") -> dict[str, Any]:
    """The Evaluate view of a run's predictions on `part` ("val": predictions.json; "test": test_predictions.json,
    the user's own test split): `report` plus, per item, its index in the dataset, true label and predicted
    (calibrated) probabilities (for drilling into a confusion-matrix cell), the raw `logits` [n, C] (None for runs
    that kept none) and the run's `temperature` (None when it fitted none); for a regression run
    `regression_report`, for a forecast `forecast_report`. Raises ValueError for another part, GlassboxError when
    the file is missing."""
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, not {part!r}")
    predictions = files.read_json(files.test_predictions if part == "test" else files.predictions)
    if "predictions" in predictions and np.ndim(predictions["predictions"]) == 2:
        return forecast_report(predictions["items"], predictions["labels"], predictions["predictions"],
                               target_state(files))
    if "predictions" in predictions:
        return regression_report(predictions["items"], predictions["labels"], predictions["predictions"])
    classes = files.read_json(files.labels)
    probs = np.asarray(predictions["probs"], dtype=float)
    logits = predictions.get("logits")
    temperature = target_state(files).get("temperature")
    return {
        **report(predictions["labels"], probs, classes),
        "items": predictions["items"],
        "labels": predictions["labels"],
        "probs": probs,
        "logits": None if logits is None else np.asarray(logits, dtype=float).reshape(probs.shape),
        "temperature": None if temperature is None else float(temperature),
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


def forecast_report(items: Sequence[int], targets: Sequence[Sequence[float]], predictions: Sequence[Sequence[float]],
                    state: dict[str, Any]) -> dict[str, Any]:
    """What Evaluate shows of a forecasting run: `forecast_summary` over its validation windows, per window its
    item (the origin's index in the dataset's items), true next values (`labels` [n, H]), forecasts
    (`predictions` [n, H]) and MAE (`window_mae` [n]), `worst` (windows by MAE, largest first), the MAE per step
    ahead (`step_mae` [H]: errors usually grow with the horizon) and the run's prediction interval (`state`'s
    `interval_halfwidth` [H] or None, `interval_coverage`)."""
    y = np.asarray(targets, dtype=float)
    pred = np.asarray(predictions, dtype=float)
    errors = np.abs(pred - y)
    window_mae = errors.mean(axis=1)
    return {"task": "forecast", **forecast_summary(y, pred, state.get("mase_scale")), "items": list(items),
            "labels": y, "predictions": pred, "window_mae": window_mae, "step_mae": errors.mean(axis=0),
            "worst": [int(i) for i in np.argsort(-window_mae, kind="stable")],
            "interval_halfwidth": state.get("interval_halfwidth"), "interval_coverage": state.get("interval_coverage")}


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


# ---- error analysis: calibration, curves per class, a binary decision threshold -------------------------------


def calibration_report(labels: Sequence[int], probs: np.ndarray, logits: np.ndarray | None = None,
                       temperature: float | None = None, bins: int = BINS) -> dict[str, Any]:
    """What the reliability diagram and its sentence show (Guo, Pleiss, Sun and Weinberger, "On Calibration of
    Modern Neural Networks", ICML 2017; `core.calibration`): `labels` [n] class indices, `probs` [n, C] the
    probabilities shown (calibrated: softmax(logits / T)), `logits` [n, C] the raw model outputs or None (runs made
    before temperature scaling kept none: their `probs` are the model's own).

    Returns {"bins": `reliability_bins` of `probs`, "ece": their ECE (0-1), "raw_bins" and "ece_raw": the same of
    softmax(logits) (before temperature scaling; None without logits), "temperature": T (None without logits;
    1.0 when logits came without a temperature)}. The ECEs are None for no item. Raises ValueError when the
    shapes disagree."""
    y = np.asarray(labels, dtype=int)
    p = np.asarray(probs, dtype=np.float64).reshape(len(y), -1) if len(y) else np.zeros((0, 1))
    found: dict[str, Any] = {"bins": reliability_bins(p, y, bins), "ece": _ece(p, y, bins),
                             "raw_bins": None, "ece_raw": None, "temperature": None}
    if logits is not None:
        raw = softmax(np.asarray(logits, dtype=np.float64).reshape(p.shape))
        found.update(raw_bins=reliability_bins(raw, y, bins), ece_raw=_ece(raw, y, bins),
                     temperature=1.0 if temperature is None else float(temperature))
    return found


def _ece(probs: np.ndarray, labels: np.ndarray, bins: int) -> float | None:
    return expected_calibration_error(probs, labels, bins) if len(labels) else None


def calibration_sentence(found: dict[str, Any], part: str = "validation") -> str:
    """`calibration_report` in one plain sentence: "Temperature scaling (T = 1.8) lowered the validation ECE from
    9.1% to 2.3%; shown probabilities are calibrated; the raw logits are in predictions.json." ("raised" or "left"
    when it did not lower it), or for a run that kept no logits, its ECE and that its probabilities are the
    model's own. `part` names the split ("validation", "test")."""
    ece = found["ece"]
    if ece is None:
        return f"No {part} item to measure the calibration on."
    if found["ece_raw"] is None:
        return (f"The {part} ECE is {ece:.1%}. This run predates temperature scaling: the probabilities shown are "
                "the model's own, uncalibrated (train it again to calibrate them).")
    before, after = round(found["ece_raw"] * 100, 1), round(ece * 100, 1)
    moved = "lowered" if after < before else "raised" if after > before else "left"
    change = f"from {before:.1f}% to {after:.1f}%" if moved != "left" else f"at {after:.1f}%"
    files = "test_predictions.json" if part == "test" else "predictions.json"
    return (f"Temperature scaling (T = {found['temperature']:.3g}) {moved} the {part} ECE {change}; shown "
            f"probabilities are calibrated; the raw logits are in {files}.")


def class_curves(labels: Sequence[int], probs: np.ndarray, classes: Sequence[str]) -> list[dict[str, Any]]:
    """ROC and precision-recall curves per class, one-vs-rest (the class's items positive, all others negative,
    scored by the class's probability; scikit-learn's `roc_curve`, `precision_recall_curve`, `auc` and
    `average_precision_score`). `labels` [n] class indices, `probs` [n, C], `classes` the C names.

    One dict per class, in class order: "class", "positives" (its items), "fpr", "tpr" (ROC points, lists from
    (0, 0) to (1, 1)), "roc_auc", "precision", "recall" (PR points, recall decreasing to 0 as scikit-learn gives
    them) and "average_precision"; the curves and areas are None for a class with no positive or no negative item
    among `labels`, where they are undefined."""
    y = np.asarray(labels, dtype=int)
    p = np.asarray(probs, dtype=np.float64).reshape(len(y), len(classes))
    found = []
    for index, name in enumerate(classes):
        positive = (y == index).astype(int)
        entry: dict[str, Any] = {"class": name, "positives": int(positive.sum()), "fpr": None, "tpr": None,
                                 "roc_auc": None, "precision": None, "recall": None, "average_precision": None}
        if 0 < positive.sum() < len(y):
            fpr, tpr, _ = roc_curve(positive, p[:, index])
            precision, recall, _ = precision_recall_curve(positive, p[:, index])
            entry.update(fpr=fpr.tolist(), tpr=tpr.tolist(), roc_auc=float(auc(fpr, tpr)),
                         precision=precision.tolist(), recall=recall.tolist(),
                         average_precision=float(average_precision_score(positive, p[:, index])))
        found.append(entry)
    return found


def at_threshold(labels: Sequence[int], probs: np.ndarray, threshold: float) -> dict[str, Any]:
    """A two-class model's answers at a decision threshold: an item is predicted positive (class index 1) when its
    positive probability exceeds `threshold` (strictly, so that 0.5 gives the argmax's answers, which break a tie
    towards the first class). `labels` [n] in {0, 1}; `probs` [n, 2] (its second column is used) or [n].

    Returns {"threshold", "predictions" ([n] of 0/1), "confusion" ([[TN, FP], [FN, TP]], rows true, columns
    predicted, as `report`'s), "accuracy", "precision", "recall", "f1" (the last three of the positive class; 0
    where undefined, as scikit-learn's zero_division=0)}. Raises ValueError for a threshold outside [0, 1] or
    more than two classes."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"the threshold must lie between 0 and 1, not {threshold}")
    y = np.asarray(labels, dtype=int)
    scores = np.asarray(probs, dtype=np.float64)
    if scores.ndim == 2 and scores.shape[1] != 2:
        raise ValueError(f"a decision threshold needs two classes, not {scores.shape[1]}")
    positive = scores[:, 1] if scores.ndim == 2 else scores
    predicted = (positive > threshold).astype(int)
    precision, recall, f1, _ = precision_recall_fscore_support(y, predicted, labels=[1], zero_division=0)
    return {"threshold": float(threshold), "predictions": predicted,
            "confusion": confusion_matrix(y, predicted, labels=[0, 1]).tolist(),
            "accuracy": float(accuracy_score(y, predicted)) if len(y) else 0.0,
            "precision": float(precision[0]), "recall": float(recall[0]), "f1": float(f1[0])}
