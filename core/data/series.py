"""The "series" modality: time series to classify (one label per series) or one series to forecast.

Uploads are read by the one table reader (`reading.read_frame`: CSV, TSV, Excel, Parquet) and shaped by
`series_frames` (wide or long form for classification; time, target and covariates for forecasting), which says
how every fault was resolved. A dataset folder keeps the shaped arrays in `series.npz` (numpy, no pickles) and
`items.csv`:
- classification: `values` float32 [N, T, C] (gaps filled, 0 after each series' end), `mask` bool [N, T], `lengths`
  int64 [N]; items.csv rows (series id, label);
- forecast: `time` int64 [T] (ns since the epoch), `target` float64 [T], `filled` bool [T], `covariates` float64
  [T, K]; an item is a forecast ORIGIN o (context = steps [o - L, o), target = steps [o, o + H)), items.csv rows
  (ISO time of the origin, "").

Validation for forecasting is rolling-origin on the last windows, never a random split (`split`, `rolling_origins`),
and what is fitted for a run (the target's mean and spread, the MASE scale) comes from the steps before the first
validation origin only (`fit_inputs`). Classification standardises each channel with the training series' mean and
spread over their real steps (`normalise`). torch is imported only where a torch dataset is built.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core.config import TrainConfig
from core.data import MODALITIES, reading, series_frames
from core.data.base import (
    UPLOAD,
    LabelledItems,
    Split,
    balance_warnings,
    item_labels,
    listed,
    read_items,
    warning,
    write_items,
)
from core.data.series_frames import FORECAST_TASK, TASKS, SeriesSet, next_times
from core.errors import GlassboxError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from core.data.base import PhaseProgress

__all__ = ["OPTIONS", "ForecastWindows", "SeriesItems", "SeriesModality", "default_horizon", "forecast_inputs",
           "minimum_steps", "normalise", "read_series", "rolling_origins"]

OPTIONS = ("target", "task", "time", "series_id", "channel", "value", "horizon", "context", "season", "sheet")
ARRAYS = "series.npz"
_SERIES_COLUMN = "series"
_ORIGIN_COLUMN = "origin"
# training origins kept per run: every step up to this many, else evenly spaced ones (neighbouring windows
# overlap in all but one step, so more add time, not information)
MAX_TRAIN_ORIGINS = 20_000
# fewer training windows than this and a network has little to learn from: said as a warning
_FEW_WINDOWS = 20
_FEW_SERIES = 10
_IMBALANCE = 5.0
# M4 competition horizons (Makridakis et al. 2020) where a season is not the natural one: 13 weeks, 3 years
_HORIZON_BY_FREQUENCY = {"W": 13, "Y": 3}
_LONGEST_SEASON_HORIZON = 96
_FALLBACK_HORIZON = 7


def default_horizon(frequency: str, season: int) -> int:
    """Steps ahead when none is chosen: a season (a day of half-hours: 48, of hours: 24; a week of days: 7; a year
    of months: 12, of quarters: 4), a quarter of weeks (13) or 3 years, else 7."""
    base = frequency.split("-")[0].lstrip("0123456789")
    base = base[0] if base[:1] in ("W", "Y") else base
    if base in _HORIZON_BY_FREQUENCY:
        return _HORIZON_BY_FREQUENCY[base]
    return season if 1 < season <= _LONGEST_SEASON_HORIZON else _FALLBACK_HORIZON


def minimum_steps(horizon: int, context: int | None = None) -> int:
    """The shortest series that forecasts `horizon` steps ahead: a context (`context`, else as long as the horizon
    and at least 2 steps), one training target of `horizon` steps after it and `horizon` held-out steps to
    validate on."""
    return (context if context is not None else max(horizon, 2)) + 2 * horizon


def _default_context(horizon: int, season: int, num_steps: int) -> int:
    """max(2 horizons, 2 seasons), shortened so that at least half the steps outside the two horizons remain for
    training windows, and never under `minimum_steps`' context."""
    wanted = max(2 * horizon, 2 * season)
    return max(max(horizon, 2), min(wanted, (num_steps - 2 * horizon) // 2))


def rolling_origins(num_steps: int, horizon: int, context: int, val_fraction: float) -> tuple[list[int], list[int]]:
    """(training origins, validation origins) of a series of `num_steps` steps (Hyndman & Athanasopoulos,
    "Forecasting: Principles and Practice", 3rd ed., sec. 5.10: evaluation on a rolling forecasting origin).

    Validation origins are spaced `horizon` apart over the last `val_fraction` of the series (at least one; the
    last is num_steps - horizon, so the held-out windows tile the end); training origins are every step from
    `context` whose `horizon` targets end at or before the first validation origin (evenly thinned to
    `MAX_TRAIN_ORIGINS`). Origin o reads steps [o - context, o) and predicts [o, o + horizon)."""
    windows = max(1, round(val_fraction * num_steps / horizon))
    windows = min(windows, max(1, (num_steps - context - horizon) // horizon))
    first = num_steps - windows * horizon
    val = [first + k * horizon for k in range(windows)]
    train = np.arange(context, first - horizon + 1)
    if len(train) > MAX_TRAIN_ORIGINS:
        train = train[np.unique(np.linspace(0, len(train) - 1, MAX_TRAIN_ORIGINS).round().astype(int))]
    return train.tolist(), val


def normalise(values: np.ndarray, mask: np.ndarray, fitted: dict[str, Any]) -> np.ndarray:
    """Series standardised per channel with the training series' statistics (`fitted["mean"]`, `fitted["std"]`
    [C], from `SeriesModality.fit_inputs`), padding kept at 0: float32 [N, T, C] from values [N, T, C] and mask
    bool [N, T].

    Not each series by its own mean and spread, as UCR/UEA classifiers often do (Dau et al. 2019): that erases
    a channel's level, which is what tells classes apart in many sets. On JapaneseVowels (speakers differ in
    each coefficient's level) 1-NN scores 0.959 on channels standardised and 0.586 on series z-scored each by
    itself (the archive's own split)."""
    mean = np.asarray(fitted["mean"], dtype=np.float64)[None, None, :]
    spread = np.asarray(fitted["std"], dtype=np.float64)[None, None, :]
    return (((values - mean) / spread) * mask[..., None]).astype(np.float32)


def _channel_statistics(values: np.ndarray, mask: np.ndarray) -> tuple[list[float], list[float]]:
    """Per channel, the mean and standard deviation over the real steps of `values` [N, T, C] (a channel that
    does not vary gets a spread of 1)."""
    real = values[mask]  # [steps, C]
    if not len(real):
        return [0.0] * values.shape[2], [1.0] * values.shape[2]
    spread = real.std(axis=0)
    return real.mean(axis=0).tolist(), np.where(spread > 1e-8, spread, 1.0).tolist()


def _whole(options: dict[str, Any], key: str) -> int | None:
    value = options.get(key)
    if value in (None, ""):
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        number = 0
    if number < 1 or str(value).strip().lstrip("+") != str(number):
        raise GlassboxError(f"{key} must be a whole number of steps, at least 1 (got {value!r})")
    return number


def _iso(ns: int) -> str:
    """A step's time for items.csv and people: "2024-03-01 00:00", seconds only when there are some."""
    return series_frames.stamp_text(ns, always_time=True)


def _load(dataset_dir: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(Path(dataset_dir) / ARRAYS, allow_pickle=False) as stored:
            return {key: stored[key] for key in stored.files}
    except (OSError, ValueError) as exc:
        raise GlassboxError(f"dataset {Path(dataset_dir).name}: {ARRAYS} is missing or damaged ({exc})") from None


def _is_forecast(info: dict[str, Any]) -> bool:
    return info.get("task") == FORECAST_TASK


class SeriesModality(LabelledItems):
    name = "series"
    title = "Time series"
    tasks = TASKS
    training_profile = None
    # the classical baselines of both tasks (the naive forecast is the forecast task's trivial one): each raises
    # ValueError on a dataset of the other task, which `core.baselines.compute` skips
    baselines = ("series_features", "seasonal_naive", "ets")
    noun = "series"
    item_noun = "series"
    search_hint = "a series id, label or date"
    explanation_noun = "step attributions"
    shows_items_as = "series"
    items_are_files = False
    input_size_setting = ""
    input_size_unit = ""
    input_size_label = "input size"
    settings: tuple[str, ...] = ()
    options = OPTIONS

    def accepts(self, source: Path) -> bool:
        """Never by itself: a CSV of numbers is a table unless the user says series (`--modality series`, or a
        series option such as `--time` or `--horizon`), since both readings are reasonable."""
        return False

    def ingest(
        self, source: Path, dest: Path, *, drop_bad: bool = False, options: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """See `Modality.ingest`. `options` (`OPTIONS`): `target` (the label column, or the column to forecast),
        `task` ("classification" or "forecast"; default: forecast when a time column sits beside a numeric target
        and no series id), `time`, `series_id`, `channel`, `value` (long form columns), `horizon` H, `context` L,
        `season` (steps; default from the frequency), `sheet` (Excel).

        Every fault of the source is resolved by a stated rule (`series_frames`) and counted in info["faults"]
        and in the problems. Refusals (one line): a series too short for context + horizon + validation (naming
        the minimum), one class, a class of one series, no usable column. `drop_bad` is not used: faulty rows and
        series are resolved or left out with a warning, never asked about."""
        source, dest = Path(source), Path(dest)
        options = {k: v for k, v in (options or {}).items() if v not in (None, "", [], {})}
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise GlassboxError(f"unknown series options: {', '.join(unknown)}")
        for key in ("horizon", "context", "season"):
            _whole(options, key)  # a wrong number is refused before the file is read
        read = reading.read_frame(source, sheet=options.get("sheet"))
        if read.frame.empty or read.frame.shape[1] < 2:
            raise GlassboxError(f"{source.name}: series need at least two columns (values and a label or a time)")
        layout = series_frames.choose_layout(read.frame, options, source.name)
        # a wide row with fewer cells than the header is a shorter series, not a doubt
        short = {line: reason for line, reason in read.problems().items()
                 if layout.form != "wide" or line not in read.short_rows}
        problems = [warning(f"{len(short)} row(s) read with a doubt: "
                            f"{listed([f'{read.line_label} {k}: {v}' for k, v in short.items()])}")] if short else []
        if layout.task == FORECAST_TASK:
            info = _ingest_forecast(read, layout, options, dest, source.name)
        else:
            info = _ingest_classification(read, layout, dest, source.name)
        info["problems"] = problems + info["problems"]
        info["notes"] = [*read.notes, *info["notes"]]
        info["sheet"] = read.sheet
        # the upload itself, so that other choices (horizon, season, columns) can be applied to it later
        shutil.copyfile(source, dest / f"{UPLOAD}{source.suffix.lower()}")
        return info

    def items(self, dataset_dir: Path, info: dict[str, Any]) -> list[str]:
        """Each item for people: "series g13 (walk, 79 steps)", "line 5 (square, 50 steps)" (wide form: its line in
        the file), or for forecasting "forecast from 2024-03-01 00:00"."""
        if _is_forecast(info):
            return [f"forecast from {origin}" for origin, _ in read_items(Path(dataset_dir), _ORIGIN_COLUMN)]
        lengths = _load(dataset_dir)["lengths"]
        prefix = "series " if info.get("form") == "long" else ""
        return [f"{prefix}{sid} ({label}, {int(n)} steps)"
                for (sid, label), n in zip(read_items(Path(dataset_dir), _SERIES_COLUMN), lengths, strict=True)]

    def labels(self, dataset_dir: Path, info: dict[str, Any]) -> list[int]:
        """Class indices; for forecasting 0 for every origin (a split of origins is made by `split`, not on
        labels)."""
        if _is_forecast(info):
            return [0] * int(info["num_items"])
        return item_labels(Path(dataset_dir), info, _SERIES_COLUMN)

    def targets(self, dataset_dir: Path, info: dict[str, Any]) -> np.ndarray:
        """Class indices int64 [N]; for forecasting float64 [n_items, H], the true next H values of each origin."""
        if not _is_forecast(info):
            return np.asarray(self.labels(dataset_dir, info), dtype=np.int64)
        target = _load(dataset_dir)["target"]
        horizon, context = int(info["horizon"]), int(info["context"])
        windows = np.lib.stride_tricks.sliding_window_view(target, horizon)
        return np.ascontiguousarray(windows[context: len(target) - horizon + 1], dtype=np.float64)

    def split(self, dataset_dir: Path, info: dict[str, Any], config: TrainConfig) -> Split | None:
        """Forecasting: the rolling-origin split (`rolling_origins` with `config.val_fraction`), as item indices
        (origin - context). Classification: None (the usual stratified split of whole series)."""
        if not _is_forecast(info):
            return None
        context = int(info["context"])
        train, val = rolling_origins(int(info["num_steps"]), int(info["horizon"]), context, config.val_fraction)
        return Split(train=[o - context for o in train], val=[o - context for o in val], source="rolling origin")

    def fit_inputs(self, dataset_dir: Path, info: dict[str, Any], config: TrainConfig,
                   split: Split) -> dict[str, Any]:
        """Classification: the shape the model reads (`channels`, the padded `length`) and each channel's `mean`
        and `std` over the training series' real steps (`normalise`). Forecasting, from the steps before
        the first validation origin only (all steps when the split has no validation): the target's `mean` and
        `std`, each covariate's (`covariates`: {"mean", "std"}), `mase_scale` (the in-sample seasonal-naive MAE on
        those steps, Hyndman & Koehler 2006, "Another look at measures of forecast accuracy"; the one-step naive
        MAE when they hold under two seasons or the seasonal one is 0), and `season`, `horizon`, `context`,
        `channels` (target first, then covariates), `future_covariates` K and `fitted_steps`."""
        arrays = _load(dataset_dir)
        if not _is_forecast(info):
            rows = np.asarray(split.train, dtype=int)
            mean, spread = _channel_statistics(arrays["values"][rows], arrays["mask"][rows])
            return {"channels": list(info["channels"]), "length": int(arrays["values"].shape[1]), "mean": mean,
                    "std": spread}
        context = int(info["context"])
        end = context + min(split.val) if split.val else len(arrays["target"])
        past = arrays["target"][:end]
        covariates = arrays["covariates"][:end]
        spread = float(past.std())
        cov_spread = covariates.std(axis=0) if covariates.shape[1] else np.zeros(0)
        return {"mean": float(past.mean()), "std": spread if spread > 1e-12 else 1.0,
                "covariates": {"mean": covariates.mean(axis=0).tolist() if covariates.shape[1] else [],
                               "std": np.where(cov_spread > 1e-12, cov_spread, 1.0).tolist()},
                "mase_scale": _mase_scale(past, int(info["season"])), "season": int(info["season"]),
                "horizon": int(info["horizon"]), "context": context,
                "channels": [info["target"], *info["covariates"]], "future_covariates": len(info["covariates"]),
                "fitted_steps": int(end)}

    def fixed_inputs(self, config: TrainConfig) -> bool:
        """Always: a series or window is read the same way every epoch (no augmentation)."""
        return True

    def datasets(
        self, dataset_dir: Path, info: dict[str, Any], config: TrainConfig, split: Split, model: nn.Module,
        progress: PhaseProgress | None = None,
    ) -> tuple[SeriesItems | ForecastWindows, SeriesItems | ForecastWindows]:
        """Train and validation datasets of (inputs, target): classification ({"values": float32 [T, C], "mask":
        bool [T]}, class index int64), channels standardised with the training series' statistics
        (`normalise`); forecasting ({"values":
        float32 [L, 1 + K], "mask": bool [L], "future": float32 [H, K]}, float32 [H] in the target's own units),
        z-scored with the run's `fit_inputs` (`model.inputs`, else fitted here on `split`)."""
        arrays = _load(dataset_dir)
        fitted = getattr(model, "inputs", None) or self.fit_inputs(dataset_dir, info, config, split)
        if not _is_forecast(info):
            values = normalise(arrays["values"], arrays["mask"], fitted)
            labels = np.asarray(self.labels(dataset_dir, info), dtype=np.int64)
            return (SeriesItems.of(values, arrays["mask"], labels, split.train),
                    SeriesItems.of(values, arrays["mask"], labels, split.val))
        context, horizon = int(info["context"]), int(info["horizon"])
        scaled, future = _scaled(arrays["target"], arrays["covariates"], fitted)
        make = ForecastWindows.of
        return (make(scaled, future, arrays["target"], [context + i for i in split.train], context, horizon),
                make(scaled, future, arrays["target"], [context + i for i in split.val], context, horizon))


def _mase_scale(past: np.ndarray, season: int) -> float:
    lag = season if season > 1 and len(past) >= 2 * season else 1
    for m in dict.fromkeys((lag, 1)):
        if len(past) > m:
            scale = float(np.mean(np.abs(past[m:] - past[:-m])))
            if scale > 1e-12:
                return scale
    return 1.0


def _scaled(target: np.ndarray, covariates: np.ndarray, fitted: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(every step's model input float32 [T, 1 + K]: the target then the covariates, z-scored; the covariates
    alone float32 [T, K], what the future windows read)."""
    future = ((covariates - np.asarray(fitted["covariates"]["mean"], dtype=np.float64))
              / np.asarray(fitted["covariates"]["std"], dtype=np.float64)).reshape(len(target), -1)
    values = np.concatenate([((target - fitted["mean"]) / fitted["std"])[:, None], future], axis=1)
    return values.astype(np.float32), future.astype(np.float32)


@dataclass
class SeriesItems:
    """Series to classify as a torch dataset: item i is ({"values": float32 [T, C], "mask": bool [T]}, class index
    int64)."""

    values: torch.Tensor
    mask: torch.Tensor
    targets: torch.Tensor

    @classmethod
    def of(cls, values: np.ndarray, mask: np.ndarray, labels: np.ndarray, items: list[int]) -> SeriesItems:
        import torch

        index = np.asarray(items, dtype=int)
        return cls(torch.from_numpy(np.ascontiguousarray(values[index])),
                   torch.from_numpy(np.ascontiguousarray(mask[index])), torch.from_numpy(labels[index]))

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        return {"values": self.values[i], "mask": self.mask[i]}, self.targets[i]


@dataclass
class ForecastWindows:
    """Forecast origins as a torch dataset: item i (origin o) is ({"values": float32 [L, 1 + K] (steps o - L to
    o - 1, z-scored), "mask": bool [L] (all True), "future": float32 [H, K] (the z-scored covariates of steps o to
    o + H - 1)}, float32 [H] (the target there, in its own units))."""

    values: torch.Tensor
    future: torch.Tensor
    target: torch.Tensor
    origins: list[int]
    context: int
    horizon: int

    @classmethod
    def of(cls, values: np.ndarray, future: np.ndarray, target: np.ndarray, origins: list[int], context: int,
           horizon: int) -> ForecastWindows:
        import torch

        return cls(torch.from_numpy(values), torch.from_numpy(future),
                   torch.from_numpy(target.astype(np.float32)), list(origins), context, horizon)

    def __len__(self) -> int:
        return len(self.origins)

    def __getitem__(self, i: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        import torch

        o = self.origins[i]
        inputs = {"values": self.values[o - self.context: o], "mask": torch.ones(self.context, dtype=torch.bool),
                  "future": self.future[o: o + self.horizon]}
        return inputs, self.target[o: o + self.horizon]


# ---- ingest --------------------------------------------------------------------------------------------------


def _ingest_classification(read: reading.Frame, layout: series_frames.Layout, dest: Path,
                           name: str) -> dict[str, Any]:
    shaped = series_frames.series_set(read, layout)
    problems = list(shaped.problems)
    keep = [i for i, label in enumerate(shaped.labels) if label is not None]
    unlabelled = [shaped.ids[i] for i, label in enumerate(shaped.labels) if label is None]
    if unlabelled:
        problems.append(warning(f"{len(unlabelled)} series without a label left out: {listed(unlabelled)}"))
    labels = [str(shaped.labels[i]) for i in keep]
    counts = {c: labels.count(c) for c in sorted(set(labels))}
    if len(counts) < 2:
        only = f"every series is {next(iter(counts))!r}" if counts else "no series has a label"
        raise GlassboxError(f"{name}: {only}: at least two classes are needed (label column {layout.label!r})")
    single = [c for c, n in counts.items() if n < 2]
    if single:
        raise GlassboxError(f"{name}: the class(es) {listed([repr(c) for c in single])} have a single series: at least "
                            "two per class are needed to train and validate")
    problems += balance_warnings(counts, "series", _FEW_SERIES, _IMBALANCE)
    lengths = shaped.lengths[keep]
    longest = int(lengths.max())
    values, mask = shaped.values[keep][:, :longest], shaped.mask[keep][:, :longest]
    dest.mkdir(parents=True, exist_ok=True)
    np.savez(dest / ARRAYS, values=values, mask=mask, lengths=lengths)
    write_items(dest, _SERIES_COLUMN, [(shaped.ids[i], shaped.labels[i]) for i in keep])
    return {"task": "classification", "form": layout.form, "classes": sorted(counts), "counts": counts,
            "num_items": len(keep), "channels": shaped.channels, "num_steps": longest,
            "lengths": {"min": int(lengths.min()), "median": float(np.median(lengths)), "max": longest},
            "faults": shaped.faults, "problems": problems, "notes": shaped.notes, "columns": layout.described(),
            "conversions": layout.conversions, "target": layout.label,
            "dropped": [*shaped.dropped, *unlabelled]}


def _ingest_forecast(read: reading.Frame, layout: series_frames.Layout, options: dict[str, Any], dest: Path,
                     name: str) -> dict[str, Any]:
    shaped = series_frames.forecast_series(read, layout, name)
    steps = len(shaped.time)
    grid = shaped.grid
    notes = list(shaped.notes)
    season = _whole(options, "season") or grid.season
    seasons = [season]
    if options.get("season"):
        notes.append(f"season: {season} steps, as chosen (the frequency suggests {grid.season})")
    else:
        longer, note = _weekly(shaped.target, grid.season, TrainConfig.val_fraction)
        seasons += [longer] if longer else []
        notes += [note] if note else []
    chosen_horizon, chosen_context = _whole(options, "horizon"), _whole(options, "context")
    problems = list(shaped.problems)
    horizon = chosen_horizon or default_horizon(grid.frequency, season)
    if minimum_steps(horizon, chosen_context) > steps:
        fits = [h for h in range(horizon - 1, 0, -1) if minimum_steps(h, chosen_context) <= steps]
        if chosen_horizon or not fits:
            raise GlassboxError(_too_short(name, steps, horizon, chosen_context, fits[0] if fits else None))
        problems.append(warning(f"horizon: {fits[0]} steps, the most {steps} steps allow (the usual one for "
                                f"{grid.frequency} data is {horizon}); choose another with --horizon"))
        horizon = fits[0]
    context = chosen_context or _default_context(horizon, max(seasons), steps)
    train, val = rolling_origins(steps, horizon, context, TrainConfig.val_fraction)
    if len(train) < _FEW_WINDOWS:
        problems.append(warning(f"only {len(train)} training window(s) of {context} + {horizon} steps fit before the "
                                f"{len(val)} validation window(s): a network has little to learn from, and a "
                                "seasonal-naive forecast may well be better"))
    notes.append(f"forecasts {horizon} steps ahead from the last {context} steps (context); validation on the last "
                 f"windows, rolling origin, never a random split")
    dest.mkdir(parents=True, exist_ok=True)
    np.savez(dest / ARRAYS, time=shaped.time.astype(np.int64), target=shaped.target.astype(np.float64),
             filled=shaped.filled.astype(bool), covariates=shaped.covariates.astype(np.float64).reshape(steps, -1))
    origins = range(context, steps - horizon + 1)
    write_items(dest, _ORIGIN_COLUMN, [(_iso(shaped.time[o]), "") for o in origins])
    return {"task": FORECAST_TASK, "target": layout.label, "covariates": list(layout.values),
            "frequency": grid.frequency, "season": int(season), "seasons": [int(m) for m in seasons],
            "horizon": int(horizon), "context": int(context),
            "num_steps": steps, "num_items": len(origins), "classes": [], "counts": {},
            "time": {"column": layout.time, "start": _iso(shaped.time[0]), "end": _iso(shaped.time[-1])},
            "grid": grid.spec, "faults": shaped.faults, "filled": int(shaped.filled.sum()),
            "target_summary": {"min": float(shaped.target.min()), "max": float(shaped.target.max()),
                               "mean": float(shaped.target.mean())},
            "problems": problems, "notes": notes, "columns": layout.described(), "conversions": layout.conversions,
            "dropped": []}


def _weekly(target: np.ndarray, daily: int, val_fraction: float) -> tuple[int | None, str]:
    """A week's steps when a sub-daily series repeats more closely a week later than a day later (a call centre
    quiet on Sundays) on its part before validation, else None; and a note saying so. The season stays the
    day's (the frequency's); the week is a second one the seasonal-naive baseline also tries and the default
    context covers. Only a series holding three weeks there is compared."""
    weekly = 7 * daily
    past = target[: int(len(target) * (1 - val_fraction))]
    if daily <= 1 or len(past) < 3 * weekly:
        return None, ""
    errors = {m: float(np.mean(np.abs(past[m:] - past[:-m]))) for m in (daily, weekly)}
    if errors[weekly] >= errors[daily]:
        return None, ""
    return weekly, (f"a weekly cycle too: the value a week earlier ({weekly} steps) is closer than a day earlier "
                    f"(mean error {errors[weekly]:.4g} against {errors[daily]:.4g}), so the seasonal-naive "
                    "baseline also tries a week and each forecast reads at least a week back")


def _too_short(name: str, steps: int, horizon: int, context: int | None, fits: int | None) -> str:
    need = minimum_steps(horizon, context)
    used = context if context is not None else max(horizon, 2)
    if fits:
        fix = f"lower --horizon to {fits} or less, or give a longer series"
    else:
        one = minimum_steps(1, context)
        fix = "give a longer series" + (f" (one step ahead needs {one})" if horizon > 1 and one > steps else "")
    return (f"{name}: {steps} steps are too few to forecast {horizon} ahead: at least {need} are needed (a context of "
            f"{used}, a {horizon}-step training target and {horizon} held out to validate); {fix}")


# ---- new series (prediction) ---------------------------------------------------------------------------------


def read_series(source: Path, info: dict[str, Any], sheet: str | None = None) -> SeriesSet:
    """Series to classify from a new file (wide or long, as in training; labels not needed), read with the
    training dataset's columns and conversions and the same rules. Series may be shorter or longer than in
    training: `values` is padded to the longest of the file, and `normalise(values, mask)` makes the model input.

    Raises GlassboxError for a forecasting dataset, a file lacking the columns the model reads, or no series."""
    if _is_forecast(info):
        raise GlassboxError("this dataset forecasts one series: give its latest history instead")
    read = reading.read_frame(Path(source), sheet=sheet)
    return series_frames.series_set(read, series_frames.stored_layout(read.frame, info))


def forecast_inputs(dataset_dir: Path, info: dict[str, Any], fitted: dict[str, Any], *,
                    history: Path | None = None, future: Path | None = None, sheet: str | None = None,
                    ) -> tuple[dict[str, np.ndarray], list[str], list[str]]:
    """The model input of the forecast made at the end of the history, the times it forecasts and notes.

    `history` is a file like the training one (default: the training series itself); its last `context` steps
    are read. `future` holds the covariates over the horizon (time column and covariate columns): its rows are
    matched to the next H steps by time; without it, the covariates keep their last values (said in the notes).
    `sheet` names the Excel sheet of both files.
    Returns ({"values": float32 [L, 1 + K], "mask": bool [L], "future": float32 [H, K]}, H ISO times, notes).

    Raises GlassboxError when the history is shorter than the context, or the future file lacks a step or a
    covariate."""
    context, horizon = int(info["context"]), int(info["horizon"])
    notes: list[str] = []
    if history is None:
        arrays = _load(dataset_dir)
        time, target, covariates = arrays["time"], arrays["target"], arrays["covariates"]
    else:
        read = reading.read_frame(Path(history), sheet=sheet)
        layout = series_frames.Layout(FORECAST_TASK, "forecast", label=info["target"], time=info["time"]["column"],
                                      values=list(info["covariates"]), conversions=dict(info["conversions"]))
        absent = [n for n in (layout.time, layout.label, *layout.values) if n not in read.frame.columns]
        if absent:
            raise GlassboxError(f"the history lacks the column(s) {listed([repr(a) for a in absent])}")
        shaped = series_frames.forecast_series(read, layout, Path(history).name)
        if shaped.grid.frequency != info["frequency"]:
            notes.append(f"the history's frequency is {shaped.grid.frequency}, training's {info['frequency']}")
        time, target, covariates = shaped.time, shaped.target, shaped.covariates
        notes += [p["message"] for p in shaped.problems]
    if len(target) < context:
        raise GlassboxError(f"the history has {len(target)} steps: the model reads the last {context}")
    spec = info["grid"]
    stamps = next_times(spec, int(time[-1]), horizon)
    ahead = np.repeat(covariates[-1:], horizon, axis=0) if len(covariates) else np.zeros((horizon, 0))
    if info["covariates"]:
        if future is None:
            notes.append(f"no future covariates given (--future FILE): {listed(info['covariates'])} "
                         "held at their last value")
        else:
            ahead = _future_covariates(Path(future), info, stamps, sheet)
    scaled, _ = _scaled(target[-context:], covariates[-context:], fitted)
    ahead_scaled = ((ahead - np.asarray(fitted["covariates"]["mean"])) / np.asarray(fitted["covariates"]["std"]))
    inputs = {"values": scaled, "mask": np.ones(context, dtype=bool),
              "future": ahead_scaled.reshape(horizon, -1).astype(np.float32)}
    return inputs, [_iso(s) for s in stamps], notes


def _future_covariates(path: Path, info: dict[str, Any], stamps: np.ndarray, sheet: str | None) -> np.ndarray:
    read = reading.read_frame(path, sheet=sheet)
    time_column, names = info["time"]["column"], list(info["covariates"])
    absent = [n for n in (time_column, *names) if n not in read.frame.columns]
    if absent:
        raise GlassboxError(f"{path.name} lacks the column(s) {listed([repr(a) for a in absent])}")
    layout = series_frames.Layout(FORECAST_TASK, "forecast", time=time_column, values=names,
                                  conversions=dict(info["conversions"]))
    typed, _ = series_frames.typed_columns(read.frame, layout, [time_column, *names])
    times, missing = series_frames.times_ns(typed[time_column])
    by_time = pd.DataFrame(typed[names].to_numpy(dtype=np.float64)[~missing], index=times[~missing])
    ahead = by_time.groupby(level=0).mean().reindex(stamps).to_numpy()
    lacking = [_iso(s) for s, row in zip(stamps, ahead, strict=True) if np.isnan(row).any()]
    if lacking:
        raise GlassboxError(f"{path.name} lacks covariate values for {len(lacking)} of the {len(stamps)} steps "
                            f"forecast: {listed(lacking)}")
    return ahead


MODALITIES.register("series")(SeriesModality())
