"""What is wrong or suspicious in a table before it is stored, and after training a score too good to trust.

`check` returns problems as `{"level": "error"|"warning", "message": str, "kind": str, "columns": [names]}`
(plus "rows" or "classes" where they apply), so a page can offer to drop what a problem names. Kinds:
"missing_target", "one_class", "few_rows", "imbalance", "leak", "cardinality", "duplicates", "dropped".

Leaks are what a careful analyst looks for by hand: a column equal to the target, or one whose value, or
merely whether it is filled, gives the target on its own (a cancellation date filled only for customers who
left). Each column is scored alone: classification by leave-one-out accuracy of the majority class per value
(numbers in 20 quantile bins, ties kept together; for a yes/no target also the best single threshold),
regression by |Pearson r| and the leave-one-out R² of the mean per value. A column is named when it reaches
`LEAK_SCORE` and, for classification, leaves at most a tenth of the errors that always answering the
majority class makes (so a 99%-majority target does not make every column look like a leak).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from core.data import columns as columning
from core.data.base import MAX_LISTED, balance_warnings, listed

__all__ = ["LEAK_SCORE", "MIN_CLASS_ROWS", "check", "suspicious_score"]

LEAK_SCORE = 0.98
"""Accuracy, |r| or R² of one column alone from which it is named as a likely leak."""
MIN_CLASS_ROWS = 2
"""Rows a class needs: one to train on and one to validate on."""
FEW_CLASS_ROWS = 10
"""Below this many rows a class is warned about."""
MIN_ROWS = 20
"""Below this many rows with a target the table is warned about."""
SUSPICIOUS = 0.995
"""A validation accuracy (or R²) from which a score is flagged as too good to trust."""
_IMBALANCE = 5.0
_BINS = 20
# a categorical column is warned about above this share of distinct values (with at least _MANY_LEVELS) or
# above _MAX_LEVELS levels: most of its levels are seen too rarely to learn from
_LEVEL_SHARE = 0.5
_MANY_LEVELS = 10
_MAX_LEVELS = 1000


def _problem(level: str, message: str, kind: str, columns: list[str], **extra: Any) -> dict[str, Any]:
    return {"level": level, "message": message, "kind": kind, "columns": columns, **extra}


def _where(rows: list[int], lines: list[int] | None) -> str:
    """"lines 9, 17 and 3 more" (file lines when known) or "rows 8, 16" (1-based data rows)."""
    if lines is not None:
        return ("line " if len(rows) == 1 else "lines ") + listed([lines[r] for r in rows])
    return ("row " if len(rows) == 1 else "rows ") + listed([r + 1 for r in rows])


def check(frame: pd.DataFrame, columns: list[dict[str, Any]], values: list[Any], task: str, *,
          lines: list[int] | None = None) -> list[dict[str, Any]]:
    """Problems of a table about to be stored, errors first.

    `frame`: the raw text cells (`reading.read_frame`); `columns`: their descriptions (`columns.infer_columns`,
    possibly changed by `columns.with_roles`), one with role "target"; `values`: the target per row of `frame`
    (`columns.target_values`), None where it is missing; `task`: "classification" or "regression"; `lines`:
    each row's line in the file, for messages (else 1-based row numbers).

    Errors: no target value at all, one class (or one value), a class with fewer than `MIN_CLASS_ROWS` rows.
    Warnings: rows without a target, classes under `FEW_CLASS_ROWS` rows, imbalance, fewer than `MIN_ROWS` rows,
    likely leaks, categoricals with very many levels, duplicate rows, and one line per kind of dropped column
    (however many columns). Cells that cannot be converted are not reported here: `columns.typed` lists them."""
    target = next(c for c in columns if c["role"] == "target")
    name = target["name"]
    problems: list[dict[str, Any]] = []
    absent = [i for i, v in enumerate(values) if v is None]
    kept = [i for i, v in enumerate(values) if v is not None]
    if not kept:
        return [_problem("error", f"the target {name} has no value in any row", "missing_target", [name])]
    if absent:
        problems.append(_problem("warning", f"{len(absent)} row(s) have no value in the target {name} "
                                 f"({_where(absent, lines)}): they are left out", "missing_target", [name],
                                 rows=absent))
    target_values = [values[i] for i in kept]
    problems += _classes(target_values, name, kept, lines) if task == "classification" else _spread(target_values, name)
    if len(kept) < MIN_ROWS:
        problems.append(_problem("warning", f"only {len(kept)} rows have a target: too few to train a model and "
                                 "check it on rows it has not seen", "few_rows", [name]))
    typed_frame, _ = columning.typed(frame, columns)
    rows = np.asarray(kept)
    shown = {str(column): columning.cells(frame[column]) for column in frame.columns}
    shown = {column: [texts[i] for i in kept] for column, texts in shown.items()}
    problems += _leaks(shown, columns, typed_frame.iloc[rows].reset_index(drop=True), target_values, task, name)
    problems += _cardinality(columns, len(frame))
    problems += _duplicates(shown, kept, lines)
    problems += _dropped(columns)
    return sorted(problems, key=lambda p: p["level"] != "error")


# ---- the target --------------------------------------------------------------------------------------------


def _classes(labels: list[Any], name: str, kept: list[int], lines: list[int] | None) -> list[dict[str, Any]]:
    counts = Counter(str(v) for v in labels)
    if len(counts) == 1:
        only = next(iter(counts))
        return [_problem("error", f"the target {name} has one class only ({only!r}): there is nothing to tell "
                         "apart", "one_class", [name], classes=[only])]
    problems = []
    tiny = sorted(c for c, n in counts.items() if n < MIN_CLASS_ROWS)
    if tiny:
        rows = [kept[i] for i, v in enumerate(labels) if str(v) in tiny]
        these = f"class {tiny[0]!r} has" if len(tiny) == 1 else f"classes {listed([repr(c) for c in tiny])} have"
        problems.append(_problem(
            "error", f"{these} only 1 row ({_where(rows, lines)}): each class needs at least {MIN_CLASS_ROWS} rows "
            "(one to train on, one to check on); drop those rows or add more", "few_rows", [name],
            classes=tiny, rows=rows))
    few = sorted(c for c, n in counts.items() if MIN_CLASS_ROWS <= n < FEW_CLASS_ROWS)
    if few:
        shown = listed([f"{c!r} ({counts[c]})" for c in few])
        problems.append(_problem("warning", f"class(es) with fewer than {FEW_CLASS_ROWS} rows: {shown}; results on "
                                 "them will be unreliable", "few_rows", [name], classes=few))
    usable = {c: n for c, n in counts.items() if n >= MIN_CLASS_ROWS}
    if len(usable) > 1:
        problems += [{**p, "kind": "imbalance", "columns": [name]}
                     for p in balance_warnings(usable, "rows", 0, _IMBALANCE)]
    return problems


def _spread(numbers: list[Any], name: str) -> list[dict[str, Any]]:
    distinct = set(numbers)
    if len(distinct) == 1:
        return [_problem("error", f"the target {name} is always {next(iter(distinct)):g}: there is nothing to "
                         "predict", "one_class", [name])]
    return []


# ---- leaks -------------------------------------------------------------------------------------------------


def _bins(x: np.ndarray) -> np.ndarray:
    """Quantile bin per value (at most `_BINS`, equal values in one bin), missing values in a bin of their own."""
    codes = np.full(len(x), _BINS, dtype=np.int64)
    ok = ~np.isnan(x)
    if ok.any():
        _, inverse, counts = np.unique(x[ok], return_inverse=True, return_counts=True)
        before = np.cumsum(counts) - counts
        codes[ok] = (before * _BINS // ok.sum())[inverse]
    return codes


def _groups(values: pd.Series) -> np.ndarray:
    """A group id per row: numbers and times by quantile bin, other values as they are; missing is a group."""
    if values.dtype.kind == "M":
        ns = values.to_numpy(dtype="datetime64[ns]").astype(np.int64).astype(np.float64)
        ns[values.isna().to_numpy()] = np.nan
        return _bins(ns)
    if values.dtype.kind == "f":
        return _bins(values.to_numpy())
    codes, _ = pd.factorize(values, use_na_sentinel=True)
    return np.where(codes < 0, codes.max() + 1, codes)


def _loo_accuracy(groups: np.ndarray, y: np.ndarray, k: int) -> float:
    """Leave-one-out accuracy of predicting each row's class as the majority class of the other rows of its
    group (the overall majority for a row alone in its group; a tie counts half), so that a column of
    mostly distinct values does not look predictive by remembering each row."""
    table = np.zeros((groups.max() + 1, k))
    np.add.at(table, (groups, y), 1)
    ordered = np.sort(table, axis=1)
    top, second = ordered[:, -1:], ordered[:, -2:-1]
    rival = np.where(table == top, second, top)  # the best other class of each cell
    credit = np.where(table - 1 > rival, table, np.where(table - 1 == rival, table / 2, 0.0))
    alone = table.sum(axis=1) == 1
    credit[alone] = 0.0
    majority = np.bincount(y, minlength=k).argmax()
    credit[alone, majority] = table[alone, majority]
    return float(credit.sum() / len(y))


def _stump_accuracy(x: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of the best single threshold on `x` for a binary `y` (missing values one more group)."""
    ok = ~np.isnan(x)
    missing_right = np.bincount(y[~ok], minlength=2).max() if (~ok).any() else 0
    xs, ys = x[ok], y[ok]
    if not len(xs):
        return 0.0
    order = np.argsort(xs, kind="stable")
    xs, ys = xs[order], ys[order]
    cut = np.r_[0, np.flatnonzero(np.diff(xs)) + 1, len(xs)]  # thresholds between distinct values
    ones_left = np.r_[0, np.cumsum(ys)][cut]
    left = cut
    ones = ys.sum()
    zeros_right = (len(xs) - left) - (ones - ones_left)
    best = np.maximum((left - ones_left) + (ones - ones_left), ones_left + zeros_right).max()
    return float((best + missing_right) / len(x))


def _loo_r2(groups: np.ndarray, y: np.ndarray) -> float:
    """Leave-one-out R² of predicting each row's value as the mean of the other rows of its group (the overall
    mean for a row alone in its group)."""
    sums, sizes = np.bincount(groups, weights=y), np.bincount(groups)
    size = sizes[groups]
    others = np.where(size > 1, (sums[groups] - y) / np.maximum(size - 1, 1), y.mean())
    total = ((y - y.mean()) ** 2).sum()
    return float(1 - ((y - others) ** 2).sum() / total) if total > 0 else 0.0


def _leaks(shown: dict[str, list[str | None]], columns: list[dict[str, Any]], typed_frame: pd.DataFrame,
           target_values: list[Any], task: str, target: str) -> list[dict[str, Any]]:
    """A warning per column that gives the target away on its own (see the module docstring). `shown` and
    `typed_frame` hold the rows with a target only, as text and as values."""
    classification = task == "classification"
    k, base, baseline = 0, 0.0, ""
    if classification:
        y, classes = pd.factorize(pd.Series([str(v) for v in target_values], dtype=object))
        k = len(classes)
        if k < 2:
            return []
        counts = np.bincount(y, minlength=k)
        majority, base = str(classes[counts.argmax()]), counts.max() / len(y)
        baseline = f"against {base:.0%} by always answering {majority!r}"
    else:
        y = np.asarray(target_values, dtype=np.float64)
        if np.ptp(y) == 0:
            return []
    target_cells = shown[target]
    n = len(target_cells)

    def leaking(score: float) -> bool:
        return score >= LEAK_SCORE and (not classification or 1 - score <= 0.1 * (1 - base))

    problems = []
    for column in columns:
        name = column["name"]
        if column["role"] == "target" or name not in shown:
            continue
        found = ""
        raw = shown[name]
        same = sum(a == b for a, b in zip(raw, target_cells, strict=True) if a is not None) / n
        filled = np.asarray([c is not None for c in raw])
        if same >= LEAK_SCORE:
            found = f"{name} equals the target {target} in {same:.0%} of rows"
        elif 0 < filled.sum() < n:
            presence = filled.astype(np.int64)
            score = _loo_accuracy(presence, y, k) if classification else _loo_r2(presence, y)
            if leaking(score):
                said = f"predicts {target} for {score:.0%} of rows, {baseline}" if classification else \
                    f"explains {target} with R² {score:.2f}"
                found = f"whether {name} is filled alone {said}"
        if not found and name in typed_frame.columns:
            values = typed_frame[name]
            found = _value_leak(name, values, y, k, target, baseline, leaking)
        if found:
            after = " (it is dropped already)" if column["dropped"] else \
                ": drop it unless its value is known before the outcome it predicts"
            problems.append(_problem("warning", f"likely leak: {found}{after}", "leak", [name]))
    return problems


def _value_leak(name: str, values: pd.Series, y: np.ndarray, k: int, target: str, baseline: str,
                leaking: Callable[[float], bool]) -> str:
    """What gives the target away in a column's values ("" when nothing): `k` classes, or 0 for regression."""
    groups = _groups(values)
    if k:  # classification
        score = _loo_accuracy(groups, y, k)
        if k == 2 and values.dtype.kind in "fM":
            x = values.to_numpy(dtype=np.float64) if values.dtype.kind == "f" else \
                np.where(values.isna(), np.nan, values.to_numpy(dtype="datetime64[ns]").astype(np.int64))
            score = max(score, _stump_accuracy(np.asarray(x, dtype=np.float64), y))
        return f"{name} alone predicts {target} for {score:.0%} of rows, {baseline}" if leaking(score) else ""
    if values.dtype.kind == "f":
        ok = ~np.isnan(values.to_numpy())
        if ok.sum() > 2 and np.ptp(values.to_numpy()[ok]) > 0:
            r = float(np.corrcoef(values.to_numpy()[ok], y[ok])[0, 1])
            if leaking(abs(r)):
                return f"{name} correlates with {target} at r = {r:.3f}"
    score = _loo_r2(groups, y)
    return f"{name} alone explains {target} with R² {score:.2f}" if leaking(score) else ""


# ---- columns -----------------------------------------------------------------------------------------------


def _cardinality(columns: list[dict[str, Any]], rows: int) -> list[dict[str, Any]]:
    """One warning naming the kept categorical columns with very many levels."""
    wide = []
    for column in columning.feature_columns(columns):
        levels, filled = column.get("n_levels", column["distinct"]), rows - column["missing"]
        if column["role"] == "categorical" and (
                levels > _MAX_LEVELS or (levels >= _MANY_LEVELS and levels > _LEVEL_SHARE * filled)):
            wide.append((column["name"], levels, filled))
    if not wide:
        return []
    shown = listed([f"{name} ({levels:,} levels in {filled:,} rows)" for name, levels, filled in wide])
    return [_problem("warning", f"categorical column(s) with very many levels: {shown}; most levels are seen too "
                     "rarely to learn from: drop them or mark them as identifiers", "cardinality",
                     [name for name, _, _ in wide])]


def _duplicates(shown: dict[str, list[str | None]], kept: list[int], lines: list[int] | None) -> list[dict[str, Any]]:
    """Rows that copy an earlier row in every column, as shown (ids included: rows that differ only by an id,
    or by a column the model does not read, may well be different records)."""
    seen: set[tuple[str | None, ...]] = set()
    repeated = []
    for position, row in zip(kept, zip(*shown.values(), strict=True), strict=True):
        if row in seen:
            repeated.append(position)
        seen.add(row)
    if not repeated:
        return []
    return [_problem("warning", f"{len(repeated)} row(s) copy an earlier row in every column "
                     f"({_where(repeated, lines)}): they count twice in training and can sit on both sides of the "
                     "validation split", "duplicates", [], rows=repeated)]


_DROPPED_WHAT = {"constant": ("constant", "constant"), "identifier": ("an identifier", "identifiers"),
                 "text": ("free text", "free text")}


def _short(reason: str) -> str:
    return reason.split(": dropped")[0].split(", dropped")[0].removesuffix(": an identifier")


def _dropped(columns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per role of the columns left out by inference (constant, identifier, free text), however many:
    "40 of 1,101 columns are always '0': dropped (g1001, g1002, g1003, g1004, g1005 and 35 more)"."""
    features = [c for c in columns if c["role"] != "target"]
    problems = []
    for role, (one, many) in _DROPPED_WHAT.items():
        group = [c for c in features if c["role"] == role and c["dropped"] and "by you" not in c["reason"]]
        if not group:
            continue
        reasons = {_short(c["reason"]) for c in group}
        n = len(group)
        what = one if n == 1 else many
        if len(reasons) == 1 and role == "constant":
            what = next(iter(reasons))
        if len(reasons) == 1 or n > MAX_LISTED or role != "constant":
            detail = listed([c["name"] for c in group])
        else:
            detail = listed([f"{c['name']}: {_short(c['reason'])}" for c in group])
        verb = "is" if n == 1 else "are"
        problems.append(_problem("warning", f"{n} of {len(features):,} columns {verb} {what}: dropped ({detail})",
                                 "dropped", [c["name"] for c in group]))
    return problems


# ---- after training ----------------------------------------------------------------------------------------


def suspicious_score(metrics: dict[str, Any], task: str) -> str | None:
    """A warning when a validation score is near perfect (accuracy or R² from `SUSPICIOUS`, ROC-AUC from 0.999),
    which on real tables most often means a column gives the answer away; None otherwise. `metrics` holds
    fractions under plain ("accuracy", "r2") or run ("val_accuracy", "val_r2") names; absent or None ones
    are skipped."""
    def metric(key: str) -> float | None:
        for name in (f"val_{key}", key):
            value = metrics.get(name)
            if value is not None and value == value:
                return float(value)
        return None

    advice = ("check for a column that leaks the answer (one known only once the outcome is), unless the task is "
              "simply easy (compare with the baselines)")
    if task == "classification":
        accuracy = metric("accuracy")
        if accuracy is not None and accuracy >= SUSPICIOUS:
            return f"accuracy {accuracy:.0%} on validation: {advice}"
        auc = metric("roc_auc")
        if auc is not None and auc >= 0.999:
            return f"ROC-AUC {auc:.3f} on validation: {advice}"
        return None
    r2 = metric("r2")
    if r2 is not None and r2 >= SUSPICIOUS:
        return f"R² {r2:.3f} on validation: {advice}"
    return None
