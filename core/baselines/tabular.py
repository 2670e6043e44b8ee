"""The classical table baseline: gradient-boosted trees (LightGBM) fitted on the run's training rows, on
the same encoded inputs the network gets, and scored on its validation rows.

On tables of a few thousand rows, tuned gradient-boosted trees usually match or beat deep models
(Grinsztajn, Oyallon and Varoquaux, "Why do tree-based models still outperform deep learning on typical
tabular data?", NeurIPS 2022), so every table run shows this beside the network.

Inputs are the encoder's (`core.data.table_encoding`): numeric features (imputed, scaled; trees do not
mind the scaling) and categorical codes, which LightGBM splits on as categories, not as numbers.

Settings, LightGBM's defaults where they suit small tables (a few hundred to tens of thousands of rows):
learning rate 0.05 and 31 leaves; at most 2,000 rounds, stopped 50 rounds after the last improvement on
a held-out 15% of the training rows (stratified by class), then refitted on all training rows for the
rounds found; below 100 training rows there is no hold-out and 100 rounds are used. The minimum rows
per leaf and per category group is 20, scaled down on tiny tables to a fiftieth of the training rows,
never below 2, so a table of 200 rows can still split; a category takes part in splits from a quarter
of that many training rows (at least 1; LightGBM's default, 10, leaves most levels of a small table out).
One thread and `deterministic=True`: the same seed gives the same model.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from core.baselines import Context

NAME = "lightgbm"
TITLE = "gradient boosting (LightGBM)"

LEARNING_RATE = 0.05
NUM_LEAVES = 31
MAX_ROUNDS = 2000
STOPPING_ROUNDS = 50
# the share of training rows held out to find the number of rounds, and the fewest rows that make it worth it
HOLDOUT = 0.15
MIN_ROWS_TO_STOP_EARLY = 100
FIXED_ROUNDS = 100
MIN_CHILD_SAMPLES = 20


@dataclass
class Fitted:
    """What the baseline gives back: `outputs` ([n_val, num_classes] probabilities for classification,
    [n_val] predictions for regression), `importance` (LightGBM's total split gain per encoded input:
    the numeric features, then the categorical columns; all zero when no tree could split) and `rounds`
    (the boosting rounds of the final model)."""

    outputs: np.ndarray
    importance: list[float]
    rounds: int


def predict(context: Context) -> np.ndarray:
    """The run's validation rows' class probabilities [n_val, classes] or predicted values [n_val]
    (`fit_on(context).outputs`)."""
    return fit_on(context).outputs


def fit_on(context: Context) -> Fitted:
    """`fit` on a run's table: every row encoded with the run's fitted encoder (`context.inputs`, the
    `TableEncoder.to_dict` that `Modality.fit_inputs` fitted on the training rows only), so LightGBM reads
    exactly what the network reads; fitted on the split's training rows with the run's seed, answering its
    validation rows. Raises ValueError when the run has no table encoder (a modality other than tables)."""
    from core.data.table_encoding import TableEncoder
    from core.data.tables import typed_rows

    if not context.inputs:
        raise ValueError("LightGBM fits tables only: this run has no table encoder")
    encoder = TableEncoder.from_dict(context.inputs)
    encoded = encoder.transform(typed_rows(context.dataset_dir, context.info))
    train, val = ({name: part[rows] for name, part in encoded.items()} for rows in (context.split.train,
                                                                                     context.split.val))
    task = context.info.get("task", "classification")
    return fit(train, context.targets[context.split.train], val, task, len(context.state.get("classes", ())),
               context.seed)


def by_column(importance: Sequence[float], sources: Sequence[str]) -> dict[str, float]:
    """`Fitted.importance` summed per source column and given as shares of the total gain (summing to 1;
    all 0 when no tree split), largest first: `sources` names each encoded input's column, the encoder's
    `feature_columns + category_columns` (a date's parts and a column's missing indicator add to it)."""
    if len(importance) != len(sources):
        raise ValueError(f"{len(importance)} importances for {len(sources)} encoded inputs")
    totals: dict[str, float] = {}
    for source, gain in zip(sources, importance, strict=True):
        totals[source] = totals.get(source, 0.0) + float(gain)
    whole = sum(totals.values())
    shares = {source: (gain / whole if whole > 0 else 0.0) for source, gain in totals.items()}
    return dict(sorted(shares.items(), key=lambda item: -item[1]))


def fit_predict(train: dict[str, np.ndarray], y_train: np.ndarray, val: dict[str, np.ndarray], task: str,
                num_classes: int, seed: int = 0) -> np.ndarray:
    """`fit(...).outputs`: the validation rows' class probabilities or predicted values."""
    return fit(train, y_train, val, task, num_classes, seed).outputs


def fit(train: dict[str, np.ndarray], y_train: np.ndarray, val: dict[str, np.ndarray], task: str,
        num_classes: int, seed: int = 0) -> Fitted:
    """Fit LightGBM on the encoded training rows and predict the validation rows.

    `train`/`val`: {"numeric": float32 [n, p], "categorical": int64 [n, c]} (the encoder's output; either
    may have no columns). `y_train`: class indices in [0, num_classes) for task "classification", numbers
    for "regression" (`num_classes` is then unused). Classification outputs are [n_val, num_classes]
    probabilities (two columns for a binary target; a class absent from the training rows gets 0
    everywhere; with one class present, it gets 1); regression outputs are [n_val] predictions. With no
    input column at all, the outputs are the training classes' shares or mean. Raises ValueError for an
    unknown task."""
    if task not in ("classification", "regression"):
        raise ValueError(f"unknown task {task!r}")
    x_train, categorical = _matrix(train)
    x_val, _ = _matrix(val)
    y = np.asarray(y_train)
    present = np.unique(y.astype(int)) if task == "classification" else np.empty(0, dtype=int)
    if x_train.shape[1] == 0 or (task == "classification" and len(present) < 2):
        return _constant(y, len(x_val), x_train.shape[1], task, num_classes)
    # LightGBM wants classes numbered 0..k-1: number the present ones so, and spread them back after
    target = np.searchsorted(present, y.astype(int)) if task == "classification" else y.astype(np.float64)
    params = _params(task, len(present), len(x_train), seed)
    rounds = _rounds(x_train, target, categorical, params, task, seed)
    booster = _train(x_train, target, categorical, params, rounds)
    raw = booster.predict(x_val)
    importance = [float(v) for v in booster.feature_importance(importance_type="gain")]
    if task == "regression":
        return Fitted(np.asarray(raw, dtype=np.float64), importance, rounds)
    raw = np.asarray(raw, dtype=np.float64)
    outputs = np.zeros((len(x_val), num_classes), dtype=np.float64)
    # binary: LightGBM gives the second class's probability [n]; several classes: [n, present classes]
    binary = len(present) == 2
    outputs[:, present] = np.column_stack([1.0 - raw, raw]) if binary else raw.reshape(len(x_val), len(present))
    return Fitted(outputs, importance, rounds)


def _matrix(inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, list[int]]:
    """One float64 matrix, numeric features then categorical codes (LightGBM reads categories from float
    columns holding non-negative integers), and the positions of the categorical columns."""
    numeric = np.asarray(inputs["numeric"], dtype=np.float64)
    codes = np.asarray(inputs["categorical"], dtype=np.float64)
    return np.hstack([numeric, codes]), list(range(numeric.shape[1], numeric.shape[1] + codes.shape[1]))


def _params(task: str, n_classes: int, n_rows: int, seed: int) -> dict[str, Any]:
    min_child = max(2, min(MIN_CHILD_SAMPLES, n_rows // 50))
    objective = {"regression": {"objective": "regression"}, "binary": {"objective": "binary"},
                 "multiclass": {"objective": "multiclass", "num_class": n_classes}}
    kind = "regression" if task == "regression" else ("binary" if n_classes == 2 else "multiclass")
    return {
        **objective[kind],
        "learning_rate": LEARNING_RATE,
        "num_leaves": NUM_LEAVES,
        "min_child_samples": min_child,
        # LightGBM's categorical defaults suit large tables: 100 rows per category group, and categories
        # with fewer training rows than cat_smooth (10) left out of its many-category splits, which on a
        # small table drops most levels (gapminder's countries have about 10 training rows each)
        "min_data_per_group": min_child,
        "cat_smooth": max(1.0, min_child / 4),
        "seed": seed,
        "deterministic": True,
        "force_col_wise": True,
        # one thread: small tables gain nothing from more, and OpenMP threads spin on a busy shared machine
        # (ten times slower on two cores)
        "num_threads": 1,
        "verbose": -1,
    }


def _rounds(x: np.ndarray, target: np.ndarray, categorical: list[int], params: dict[str, Any], task: str,
            seed: int) -> int:
    """The number of boosting rounds: early stopping on a held-out slice of the training rows, or
    FIXED_ROUNDS when they are too few to spare one."""
    if len(x) < MIN_ROWS_TO_STOP_EARLY:
        return FIXED_ROUNDS
    held = _holdout(target if task == "classification" else None, len(x), seed)
    if not len(held):
        return FIXED_ROUNDS
    kept = np.setdiff1d(np.arange(len(x)), held)
    import lightgbm as lgb

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LightGBM's notes on categorical settings say nothing to the user
        fit_set = lgb.Dataset(x[kept], target[kept], categorical_feature=categorical, free_raw_data=False)
        check_set = lgb.Dataset(x[held], target[held], reference=fit_set, categorical_feature=categorical)
        booster = lgb.train(params, fit_set, num_boost_round=MAX_ROUNDS, valid_sets=[check_set],
                            callbacks=[lgb.early_stopping(STOPPING_ROUNDS, verbose=False)])
    return max(1, int(booster.best_iteration or MAX_ROUNDS))


def _holdout(labels: np.ndarray | None, n: int, seed: int) -> np.ndarray:
    """HOLDOUT of the rows, drawn per class when `labels` are given (a class with under 1/HOLDOUT rows
    gives none, and every class keeps most of its rows for fitting), reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if labels is None else [np.flatnonzero(labels == c) for c in np.unique(labels)]
    held = [rng.permutation(group)[: int(len(group) * HOLDOUT)] for group in groups]
    return np.sort(np.concatenate(held))


def _train(x: np.ndarray, target: np.ndarray, categorical: list[int], params: dict[str, Any], rounds: int) -> Any:
    import lightgbm as lgb

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lgb.train(params, lgb.Dataset(x, target, categorical_feature=categorical), num_boost_round=rounds)


def _constant(y: np.ndarray, n_val: int, n_features: int, task: str, num_classes: int) -> Fitted:
    """No feature to split on, or one class only: the training mean, or the training classes' shares
    (certainty, for one class)."""
    importance = [0.0] * n_features
    if task == "regression":
        return Fitted(np.full(n_val, float(np.mean(y))), importance, 0)
    outputs = np.zeros((n_val, num_classes), dtype=np.float64)
    shares = np.bincount(y.astype(int), minlength=num_classes) / max(1, len(y))
    outputs[:] = shares
    return Fitted(outputs, importance, 0)
