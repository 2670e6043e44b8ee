"""The classical series classifier: summary features of every series, per channel and over its real steps only,
classified by extremely randomised trees (scikit-learn's `ExtraTreesClassifier`; Geurts, Ernst and Wehenkel,
"Extremely randomized trees", Machine Learning 63, 2006).

Features, per channel: mean, standard deviation, minimum, 10/25/50/75/90% quantiles, maximum, least-squares
slope, mean absolute and standard deviation of the step-to-step change, first and last value, the means of 8
equal segments (piecewise aggregate approximation, PAA) of the series as recorded, and of 16 segments of the
series z-scored by its own mean and spread (its shape whatever its level); plus the series' length. Interval
statistics under a tree ensemble are the idea of the time series forest (Deng, Runger, Tuv and Vladimir, "A time
series forest for classification and feature extraction", Information Sciences 239, 2013); summary features
under a forest that of catch22 (Lubba et al., "catch22: CAnonical Time-series CHaracteristics", Data Mining and
Knowledge Discovery 33, 2019). Variable lengths need no padding or resampling: every feature reads the real
steps, and a series shorter than a segment count gives each segment its nearest step.

Why this and not another. MiniRocket (aeon, sktime), the strong classical choice, cannot be installed beside
Glassbox's pins (pandas 3.1.1, numpy 2.4; issue 11). Of the scikit-learn pipelines weighed, on the UCR/UEA
archive's own TRAIN/TEST splits of eight sets aeon 1.6.0 ships, accuracy:

| data set (train/test, length, channels) | extra trees | forest | boosting | 1-NN z series | 1-NN z channels |
| --- | --- | --- | --- | --- | --- |
| JapaneseVowels (270/370, 7-29, 12) | 0.981 | 0.957 | 0.941 | 0.586 | 0.959 |
| BasicMotions (40/40, 100, 6) | 1.000 | 1.000 | 0.950 | 0.725 | 0.575 |
| GunPoint (50/150, 150, 1) | 0.893 | 0.927 | 0.873 | 0.913 | 0.913 |
| ArrowHead (36/175, 251, 1) | 0.766 | 0.720 | 0.714 | 0.800 | 0.800 |
| ItalyPowerDemand (67/1029, 24, 1) | 0.959 | 0.962 | 0.903 | 0.955 | 0.955 |
| OSULeaf (200/242, 427, 1) | 0.628 | 0.636 | 0.649 | 0.521 | 0.521 |
| PickupGestureWiimoteZ (50/50, 29-361, 1) | 0.920 | 0.860 | 0.700 | 0.640 | 0.680 |
| ACSF1 (100/100, 1460, 1) | 0.820 | 0.810 | 0.630 | 0.540 | 0.540 |
| mean | 0.871 | 0.859 | 0.795 | 0.710 | 0.743 |

(The first three columns: these features under extra trees, a random forest and HistGradientBoosting; seed 0,
300 trees. 1-NN: Euclidean distance on the series linearly resampled to the longest length;
HistGradientBoosting with at least a tenth of the training series per leaf, as its default of 20 cannot split 36
series.) 1-NN wins on two short univariate shape problems only, and by little; it fails on multichannel motion
(BasicMotions), and z-scoring each series, the UCR convention, erases what tells JapaneseVowels' speakers apart
(each coefficient's level: 0.586 against 0.959). Extra trees and a random forest are close (four wins to three)
at the same features; gradient boosting trails on small sets.

Settings: 300 trees, sqrt(features) tried per split, leaves down to one series, one thread; a few seconds at most
on JapaneseVowels' 640 series.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from core.baselines import series

if TYPE_CHECKING:
    from core.baselines import Context

NAME = "series_features"
TITLE = "summary features + extra trees"

TREES = 300
RAW_SEGMENTS = 8
SHAPE_SEGMENTS = 16
QUANTILES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)
# per channel: mean, std, the quantiles, slope, mean |change|, std of change, first, last, then the segments
PER_CHANNEL = 2 + len(QUANTILES) + 5 + RAW_SEGMENTS + SHAPE_SEGMENTS


def predict(context: Context) -> np.ndarray:
    """Class probabilities [n_val, classes] of the run's validation series from trees fitted on its training
    series; classes absent from the training series get 0. Raises ValueError when the run is not series
    classification (or scikit-learn's, when there is no training series)."""
    found = series.labelled(context)
    inputs = features(found.values, found.lengths)
    return fit_predict(inputs[found.train], found.classes[found.train], inputs[found.val],
                       len(context.state["classes"]), context.seed)


def fit_predict(train: np.ndarray, classes: np.ndarray, val: np.ndarray, num_classes: int,
                seed: int = 0) -> np.ndarray:
    """Probabilities [n_val, num_classes] from `ExtraTreesClassifier` fitted on `train` [n, F] with class
    indices `classes` [n] (the same seed gives the same answers)."""
    from sklearn.ensemble import ExtraTreesClassifier

    model = ExtraTreesClassifier(n_estimators=TREES, max_features="sqrt", random_state=seed, n_jobs=1)
    model.fit(train, classes)
    answers = np.zeros((len(val), num_classes))
    answers[:, model.classes_] = model.predict_proba(val) if len(val) else np.zeros((0, len(model.classes_)))
    return answers


def features(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Features float64 [N, C * PER_CHANNEL + 1] of series `values` [N, T, C] (in their own units; whatever
    follows each series' end is ignored) with real lengths `lengths` int [N] (each at least 1): per channel the
    statistics named in the module's docstring, grouped by statistic (all channels' means, then all channels'
    standard deviations, ...), then the length."""
    x = np.asarray(values, dtype=np.float64)
    n, steps, channels = x.shape
    length = np.asarray(lengths, dtype=np.int64)
    if n and (length.min() < 1 or length.max() > steps):
        raise ValueError(f"lengths must lie between 1 and {steps}")
    real = (np.arange(steps)[None, :] < length[:, None])[..., None]
    count = length[:, None].astype(np.float64)
    x = np.where(real, x, 0.0)
    mean = x.sum(axis=1) / count
    centred = np.where(real, x - mean[:, None], 0.0)
    spread = np.sqrt((centred ** 2).sum(axis=1) / count)
    padded = np.where(real, x, np.nan)
    quantiles = [np.nanquantile(padded, q, axis=1) for q in QUANTILES] if n else [mean] * len(QUANTILES)
    # slope: least squares on the step number, 0 for a one-step series
    time = np.arange(steps)[None, :, None] - (count[:, :, None] - 1) / 2
    time = np.where(real, time, 0.0)
    square = (time ** 2).sum(axis=1)
    slope = np.divide((time * centred).sum(axis=1), square, out=np.zeros_like(mean), where=square > 0)
    change = np.where(real[:, 1:], np.diff(x, axis=1), 0.0)
    changes = np.maximum(count - 1, 1.0)
    change_mean = np.abs(change).sum(axis=1) / changes
    change_sq = (change ** 2).sum(axis=1) / changes - (change.sum(axis=1) / changes) ** 2
    change_std = np.sqrt(np.maximum(change_sq, 0.0))
    first = x[:, 0]
    last = x[np.arange(n), length - 1]
    shape = centred / np.where(spread > 1e-12, spread, 1.0)[:, None]
    groups = [mean, spread, *quantiles, slope, change_mean, change_std, first, last,
              *_segments(x, length, RAW_SEGMENTS), *_segments(shape, length, SHAPE_SEGMENTS)]
    return np.column_stack([*groups, count]) if n else np.zeros((0, channels * PER_CHANNEL + 1))


def _segments(x: np.ndarray, length: np.ndarray, parts: int) -> list[np.ndarray]:
    """The means [N, C] of `parts` equal runs of each series' real steps: run j covers steps
    [floor(j l / parts), floor((j + 1) l / parts)), or its first step alone when that is empty (l < parts)."""
    n = len(x)
    edges = (np.arange(parts + 1)[None, :] * length[:, None]) // parts
    start, end = edges[:, :-1], np.maximum(edges[:, 1:], edges[:, :-1] + 1)
    sums = np.concatenate([np.zeros((n, 1, x.shape[2])), np.cumsum(x, axis=1)], axis=1)
    rows = np.arange(n)[:, None]
    means = (sums[rows, end] - sums[rows, start]) / (end - start)[..., None]
    return [means[:, j] for j in range(parts)]
