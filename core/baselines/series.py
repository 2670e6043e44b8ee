"""What the time-series baselines read of a run: a series dataset's arrays (`series.npz`, as the series
modality writes it) and the run's split, shaped for a forecast (the one series and each item's origin step) or
for classification (the padded series, their real lengths and classes).

The forecasting baselines (`naive`, `seasonal_naive`, `ets`) and the classification one (`series_features`)
are each a module beside this one; each raises ValueError on a dataset of the other task, which
`core.baselines.compute` takes as "does not apply here".
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from core.baselines import Context

ARRAYS = "series.npz"
FORECAST = "forecast"
CLASSIFICATION = "classification"


@dataclass(frozen=True)
class History:
    """A forecasting run as a baseline sees it: `target` float64 [T] (the whole series, gaps filled),
    `origins` int64 [n_val] (each validation item's origin step o: its forecast reads steps before o and
    predicts steps [o, o + horizon)), `train_end` (the first validation origin: the steps before it are the
    training part, all a baseline may fit on), `season` (steps, 1 for none) and `horizon`."""

    target: np.ndarray
    origins: np.ndarray
    train_end: int
    season: int
    horizon: int


@dataclass(frozen=True)
class Labelled:
    """A classification run as a baseline sees it: `values` float [N, T, C] in the series' own units (0 after
    each series' end), `lengths` int64 [N] (real steps), `classes` int64 [N] (class indices), and the run's
    `train` and `val` item indices."""

    values: np.ndarray
    lengths: np.ndarray
    classes: np.ndarray
    train: np.ndarray
    val: np.ndarray


def history(context: Context) -> History:
    """The forecasting run of `context`. Raises ValueError when the dataset is not a series to forecast (another
    task or modality) or the split has no validation origin; RuntimeError when an item's origin time is not a
    step of the series (items.csv and series.npz disagree)."""
    arrays = _arrays(context, FORECAST)
    if not len(context.split.val):
        raise ValueError("no validation origin to forecast from")
    steps = origins(Path(context.dataset_dir), arrays["time"])[np.asarray(context.split.val, dtype=int)]
    horizon = int(np.asarray(context.targets).reshape(len(context.targets), -1).shape[1])
    season = int(context.state.get("season") or context.info.get("season") or 1)
    return History(np.asarray(arrays["target"], dtype=np.float64), steps, int(steps.min()), max(1, season), horizon)


def labelled(context: Context) -> Labelled:
    """The classification run of `context`. Raises ValueError when the dataset is not series to classify."""
    arrays = _arrays(context, CLASSIFICATION)
    return Labelled(np.asarray(arrays["values"], dtype=np.float64), np.asarray(arrays["lengths"], dtype=np.int64),
                    np.asarray(context.targets, dtype=np.int64), np.asarray(context.split.train, dtype=int),
                    np.asarray(context.split.val, dtype=int))


def origins(dataset_dir: Path, time: np.ndarray) -> np.ndarray:
    """Each item's origin step, int64 [n_items]: the item column of items.csv holds the origin's time (ISO,
    "2000-06-05 00:30"), found in `time` (int64 ns since the epoch, the npz's). Raises RuntimeError when one is
    not a step of the series."""
    with open(Path(dataset_dir) / "items.csv", encoding="utf-8", newline="") as handle:
        stamps = [row[0] for row in list(csv.reader(handle))[1:]]
    wanted = pd.to_datetime(pd.Series(stamps, dtype="str"), format="ISO8601").to_numpy("datetime64[ns]")
    wanted = wanted.astype(np.int64)
    steps = np.searchsorted(time, wanted).clip(0, max(0, len(time) - 1))
    if len(wanted) and (not len(time) or not np.array_equal(time[steps], wanted)):
        raise RuntimeError(f"dataset {Path(dataset_dir).name}: an origin in items.csv is not a step of the series")
    return steps.astype(np.int64)


def _arrays(context: Context, task: str) -> dict[str, np.ndarray]:
    if context.info.get("task") != task:
        raise ValueError(f"this baseline is for {task}, not {context.info.get('task')}")
    path = Path(context.dataset_dir) / ARRAYS
    if not path.is_file():
        raise ValueError(f"not a series dataset: no {ARRAYS}")
    with np.load(path, allow_pickle=False) as stored:
        return {key: stored[key] for key in stored.files}
