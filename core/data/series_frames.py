"""Series out of a table of text cells (`reading.read_frame`): which columns play which part, and the arrays a
series modality stores, with every fault of the source counted and resolved by one stated rule.

Three layouts are read:
- wide: one row per series, a label column, then one column per time step (blank cells inside a row are gaps,
  blank cells at its end make it a shorter series);
- long: one row per (series, time[, channel]) reading: a series id, an optional time, the value (or one column per
  channel, or a channel column beside one value column) and the label; multivariate and variable-length series
  come naturally;
- forecast: one series to forecast: a time column, the target and optional numeric covariates.

The rules, said in the dataset's notes and problems:
- a missing value (blank, NaN, #N/A, n/a, "-": `columns.is_blank`) is a gap; gaps inside a series are filled by
  linear interpolation between their neighbours, gaps at a series' start or end by the nearest value
  (`numpy.interp`); a series (wide form) ends at its last value, the blanks after it are padding;
- rows are sorted by time; rows sharing a time (a series' step) are merged into their mean;
- time stamps between two steps of the grid are moved to the step at or before them;
- steps of the grid without a row are inserted and filled like gaps (counted);
- forecasting: the frequency is `pandas.infer_freq` of the distinct sorted stamps or, when that fails (gaps,
  duplicates, stray stamps), the most common step between them; the season follows from it (30 min: 48, hourly:
  24, daily: 7, weekly: 52, monthly: 12, quarterly: 4, else 1). Sub-daily or daily data that leaves many steps of
  its grid empty is read as opening hours when the empty steps are whole days of the week or times of the day
  (the grid is then the open steps only); otherwise a regular grid is asked for.

Nothing here fits anything to the data: statistics are the run's (`core.data.series`).
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from core.data import columns
from core.data.base import listed, warning
from core.data.reading import Frame
from core.errors import GlassboxError

__all__ = ["FORECAST_TASK", "TASKS", "ForecastSeries", "Grid", "Layout", "SeriesSet", "choose_layout", "fill_gaps",
           "forecast_series", "next_times", "series_set", "stamp_text", "stored_layout", "times_ns", "typed_columns"]

TASKS = ("classification", "forecast")
FORECAST_TASK = "forecast"
DAY_NS = 86_400 * 10**9
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_NUMERIC_KINDS = ("number", "currency", "percent", "boolean")

# column names that say a column's part, most telling first (compared case-insensitively, spaces as underscores)
_ID_NAMES = ("series_id", "series", "id", "sample_id", "sample", "case_id", "case", "subject_id", "subject",
             "recording_id", "recording", "sequence_id", "sequence", "seq_id", "unit_id", "item_id", "ts_id",
             "unique_id", "uid", "instance", "trial_id", "trial")
_TIME_NAMES = ("time", "timestamp", "datetime", "date", "ds", "t", "step", "time_step", "timestep", "period", "month",
               "week", "day", "hour", "year")
_CHANNEL_NAMES = ("channel", "sensor", "axis", "variable", "signal", "dimension", "dim", "lead")
_VALUE_NAMES = ("value", "values", "reading", "measurement", "amplitude")
_LABEL_NAMES = ("label", "labels", "class", "target", "category", "activity", "gesture", "outcome", "y", "diagnosis",
                "condition", "state")
_TARGET_NAMES = ("target", "y", "value", "units", "sales", "demand", "load", "calls", "volume", "count", "quantity",
                 "amount", "price")
_MIN_WIDE_STEPS = 3
_PLAIN_NUMBERS = {"kind": "number", "thousands": "", "decimal": "."}
# rows a column's kind and conversion are inferred from (`_sample`)
_INFER_ROWS = 5000

# Regular steps: a grid this much larger than the stamps it holds is not the data's grid (one stray stamp far away)
_GRID_GROWTH = 20
# Opening hours: when more than this share of a regular grid's steps have no row, the empty steps are looked at
_CLOSED_SHARE = 0.2
# ... and read as closed hours when at most this share of the remaining open steps lack a row
_OPEN_MISSING = 0.05
# a weekday or time of day is open when it holds at least this share of the busiest one's rows
_OPEN_SHARE = 0.5
# a forecast refuses a series when more than this share of its steps would be invented
_MAX_FILLED = 0.5
# long form: the series' times are one regular step apart when at least this share of their differences equal it
_REGULAR_SHARE = 0.8


def _key(name: str) -> str:
    return str(name).strip().casefold().replace(" ", "_").replace("-", "_")


def _named(names: list[str], wanted: tuple[str, ...], exclude: tuple[str | None, ...] = ()) -> str | None:
    """The first of `names` (not in `exclude`) called like one of `wanted`, in `wanted`'s order."""
    by_key = {_key(n): n for n in names if n not in exclude}
    return next((by_key[key] for key in wanted if key in by_key), None)


@dataclass
class Layout:
    """Which columns play which part. `label` is the classification label or the forecast target; `values`
    the value columns (wide: the step columns in order; long: one per channel, or the one value column beside a
    channel column; forecast: the covariates); `conversions` how each used column's text becomes a value
    (`columns` conversion dicts), kept so that new files are read the same way."""

    task: str
    form: str  # "wide", "long" or "forecast"
    label: str | None = None
    series_id: str | None = None
    time: str | None = None
    channel: str | None = None
    values: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    conversions: dict[str, dict[str, Any]] = field(default_factory=dict)

    def described(self) -> dict[str, Any]:
        """What info["columns"] says: which column is the id, the time, the channel, the values and the label."""
        return {"form": self.form, "series_id": self.series_id, "time": self.time, "channel": self.channel,
                "value": list(self.values), "label": self.label}


def _column(frame: pd.DataFrame, options: dict[str, Any], key: str) -> str | None:
    chosen = options.get(key)
    if chosen in (None, ""):
        return None
    if chosen not in frame.columns:
        raise GlassboxError(f"no column named {chosen!r} for --{key.replace('_', '-')} "
                            f"(columns: {listed(list(frame.columns))})")
    return str(chosen)


def _kind(description: dict[str, Any] | None) -> str | None:
    conversion = (description or {}).get("conversion") or {}
    kind = conversion.get("kind")
    if kind in _NUMERIC_KINDS:
        return "number"
    if kind == "datetime":
        return "datetime"
    return None


def choose_layout(frame: pd.DataFrame, options: dict[str, Any], name: str) -> Layout:
    """The layout of an upload for training, from the options (`target`, `task`, `time`, `series_id`,
    `channel`, `value`) and else from the column names and contents (see the module docstring).

    Raises GlassboxError (one line) naming the option to give when a part cannot be found, or when a named
    column is missing."""
    names = [str(c) for c in frame.columns]
    task = options.get("task")
    if task not in (None, "") and task not in TASKS:
        raise GlassboxError(f"task must be one of {', '.join(TASKS)}")
    target = _column(frame, options, "target")
    series_id = _column(frame, options, "series_id")
    time = _column(frame, options, "time")
    channel = _column(frame, options, "channel")
    value = _column(frame, options, "value")
    guess = target or _named(names, _LABEL_NAMES) or _named(names, _TARGET_NAMES) or names[-1]
    full, frame = frame, _sample(frame)
    described = {c["name"]: c for c in columns.infer_columns(frame, guess)}
    kinds = {n: _kind(described[n]) or _numbers_anyway(frame, described[n]) for n in names}
    named_id = series_id or _named(names, _ID_NAMES)
    ids = [c for c in columns.cells(full[named_id]) if c is not None] if named_id else []
    if named_id and not series_id and (len(set(ids)) == len(ids) or len(set(ids)) < 2):
        named_id = None  # an id used once per row names rows, and one id throughout names no series apart
    named_time = _named(names, _TIME_NAMES, (named_id, guess))
    named_time = named_time if named_time and kinds[named_time] else None  # a "day" of weekday names is no time
    time = time or named_time or next((n for n in names if kinds[n] == "datetime" and n not in (named_id, guess)),
                                      None)
    if not task:
        if named_id or channel or value:
            task = "classification"
        elif any(options.get(k) not in (None, "") for k in ("horizon", "context", "season")):
            task = FORECAST_TASK
        else:
            task = FORECAST_TASK if time and kinds.get(guess) == "number" and kinds.get(time) == "datetime" \
                else "classification"
    if task == FORECAST_TASK:
        if named_id is not None and len(set(ids)) > 1:
            raise GlassboxError(f"{name}: forecasting reads one series, and {named_id!r} names {len(set(ids))}: keep "
                                "the rows of one series (or leave --task forecast out for a classification)")
        return _forecast_layout(frame, described, kinds, target, time, named_id, name)
    if named_id:
        return _long_layout(frame, described, kinds, target, named_id, time, channel, value)
    return _wide_layout(frame, described, kinds, target, name)


def _sample(frame: pd.DataFrame) -> pd.DataFrame:
    """At most `_INFER_ROWS` rows spread evenly over `frame`: enough to tell what each column holds and how its
    text reads (the rows left out are still read with the same conversion, an unreadable cell is reported)."""
    if len(frame) <= _INFER_ROWS:
        return frame
    return frame.iloc[np.unique(np.linspace(0, len(frame) - 1, _INFER_ROWS).round().astype(int))]


def _numbers_anyway(frame: pd.DataFrame, description: dict[str, Any]) -> str | None:
    """"number" for a column that inference dropped although its cells are numbers (a constant step of a wide
    row, distinct whole numbers read as an id), else None."""
    if description["role"] not in ("constant", "identifier") or description["missing"] == len(frame):
        return None
    try:
        _conversion(frame, {}, description["name"], "numeric")
    except GlassboxError:
        return None
    return "number"


def _label(names: list[str], kinds: dict[str, str | None], target: str | None, taken: tuple[str | None, ...],
           ) -> str:
    label = target or _named(names, _LABEL_NAMES, taken) or next(
        (n for n in names if n not in taken and kinds[n] is None), None)
    if label is None:
        raise GlassboxError("no label column found: name the column of classes with --target")
    return label


def _forecast_layout(frame: pd.DataFrame, described: dict[str, dict[str, Any]], kinds: dict[str, str | None],
                     target: str | None, time: str | None, series_id: str | None, name: str) -> Layout:
    names = [str(c) for c in frame.columns]
    if time is None:
        raise GlassboxError(f"{name}: forecasting needs a column of dates or times: name it with --time")
    notes = []
    numeric = [n for n in names if n not in (time, series_id) and kinds[n] == "number"]
    if target is None:
        if not numeric:
            raise GlassboxError(f"{name}: no column of numbers to forecast: name it with --target")
        by_name = _named(numeric, _TARGET_NAMES) if len(numeric) > 1 else None
        target = by_name or numeric[0]
        how = "the only column of numbers" if len(numeric) == 1 else "by its name" if by_name else \
            "the first column of numbers"
        notes.append(f"target: {target!r}, {how}; choose another with --target")
    if target == time:
        raise GlassboxError(f"{name}: the time column {time!r} cannot be the target")
    conversions = {time: _conversion(frame, described, time, "datetime"),
                   target: _conversion(frame, described, target, "numeric")}
    covariates = []
    for n in names:
        if n in (time, target, series_id):
            continue
        if kinds[n] != "number":
            notes.append(f"{n!r} does not hold numbers: not used as a covariate")
        elif described[n]["role"] == "constant":
            notes.append(f"{n!r} is constant: not used as a covariate")
        else:
            covariates.append(n)
            conversions[n] = _conversion(frame, described, n, "numeric")
    return Layout(FORECAST_TASK, "forecast", label=target, time=time, series_id=series_id, values=covariates,
                  notes=notes, conversions=conversions)


def _long_layout(frame: pd.DataFrame, described: dict[str, dict[str, Any]], kinds: dict[str, str | None],
                 target: str | None, series_id: str, time: str | None, channel: str | None, value: str | None,
                 ) -> Layout:
    names = [str(c) for c in frame.columns]
    channel = channel or _named(names, _CHANNEL_NAMES, (series_id, time, target, value))
    label = _label(names, kinds, target, (series_id, time, channel, value))
    taken = (series_id, time, channel, label)
    if value is None:
        value = _named(names, _VALUE_NAMES, taken)
    if value is not None:
        values = [value]
    else:
        values = [n for n in names if n not in taken and kinds[n] == "number"]
        if channel is not None and len(values) != 1:
            raise GlassboxError("beside a channel column, name the column of values with --value")
    if not values:
        raise GlassboxError("no column of values found: name it with --value")
    conversions = {n: _conversion(frame, described, n, "numeric") for n in values}
    if time is not None:
        conversions[time] = _conversion(frame, described, time, "datetime" if kinds[time] == "datetime" else "numeric")
    notes = [f"long form: one row per reading of a series named in {series_id!r}"
             + (f", ordered by {time!r}" if time else ", in file order")]
    return Layout("classification", "long", label=label, series_id=series_id, time=time, channel=channel,
                  values=values, notes=notes, conversions=conversions)


def _wide_layout(frame: pd.DataFrame, described: dict[str, dict[str, Any]], kinds: dict[str, str | None],
                 target: str | None, name: str) -> Layout:
    names = [str(c) for c in frame.columns]
    steps = [n for n in names if n != target and (kinds[n] == "number" or described[n]["missing"] == len(frame))]
    label = _label(names, kinds, target, tuple(steps))
    steps = [n for n in steps if n != label]
    if len(steps) < _MIN_WIDE_STEPS:
        raise GlassboxError(f"{name}: neither one row per series (a label, then one column per step) nor one row per "
                            "reading: name the series id column with --series-id")
    notes = [f"wide form: one row per series, {len(steps)} steps ({steps[0]} to {steps[-1]}), labels in {label!r}"]
    ignored = [n for n in names if n not in steps and n != label]
    if ignored:
        notes.append(f"not a step (not numbers): {listed([repr(n) for n in ignored])}")
    conversions = {n: _conversion(frame, described, n, "numeric") for n in steps}
    return Layout("classification", "wide", label=label, values=steps, notes=notes, conversions=conversions)


def stored_layout(frame: pd.DataFrame, info: dict[str, Any]) -> Layout:
    """The training layout (`info["columns"]`, `info["conversions"]`) applied to a new file of series to
    predict: the label column may be absent; a wide file's steps are its columns of numbers other than the
    label and may be fewer or more than in training.

    Raises GlassboxError naming the columns the file lacks."""
    used = info["columns"]
    names = [str(c) for c in frame.columns]
    form = used["form"]
    if form == "wide":
        label = used["label"] if used["label"] in names else None
        frame = _sample(frame)
        described = {c["name"]: c for c in columns.infer_columns(frame, label or names[0])}
        steps = [n for n in names if n != label and (_kind(described[n]) == "number"
                                                     or described[n]["missing"] == len(frame))]
        if not steps:
            raise GlassboxError("the file holds no column of numbers to read as steps")
        conversions = {n: info["conversions"].get(n) or _conversion(frame, described, n, "numeric") for n in steps}
        return Layout(info["task"], form, label=label, values=steps, conversions=conversions)
    needed = [n for n in (used["series_id"], used["time"], used["channel"], *used["value"]) if n]
    absent = [n for n in needed if n not in names]
    if absent:
        raise GlassboxError(f"the file lacks the column(s) the model reads: {listed([repr(a) for a in absent])}")
    label = used["label"] if used["label"] in names else None
    return Layout(info["task"], form, label=label, series_id=used["series_id"], time=used["time"],
                  channel=used["channel"], values=list(used["value"]), conversions=dict(info["conversions"]))


def _conversion(frame: pd.DataFrame, described: dict[str, dict[str, Any]], name: str, role: str) -> dict[str, Any]:
    """How `name`'s text becomes a number or a time: the one `columns.infer_columns` found, else the one its cells
    take when the role is forced (`columns.with_roles`; a column of distinct whole numbers reads as an id there).

    Raises GlassboxError when the cells cannot take the role ("value cannot be numeric: 'abc' is not numbers")."""
    wanted = "datetime" if role == "datetime" else "number"
    if _kind(described.get(name)) == wanted:
        return described[name]["conversion"]
    forced = columns.with_roles(frame[[name]], [{"name": name, "role": "categorical", "dropped": False}], {name: role})
    return forced[0]["conversion"]


def typed_columns(frame: pd.DataFrame, layout: Layout, names: list[str]) -> tuple[pd.DataFrame, list[tuple[int, str]]]:
    """`names`' cells as values with the layout's conversions (`columns.typed`): float64, or datetime64[ns] for a
    time column; and the cells that did not read, (row position, reason)."""
    out: dict[str, Any] = {}
    problems: list[tuple[int, str]] = []
    for n in names:
        conversion = layout.conversions[n]
        role = "datetime" if conversion["kind"] == "datetime" else "numeric"
        described = [{"name": n, "role": role, "dropped": False, "conversion": conversion}]
        if conversion != _PLAIN_NUMBERS:
            typed, bad = columns.typed(frame, described)
            out[n], problems = typed[n].to_numpy(), problems + bad
            continue
        # plain numbers (most series) are read by pandas at once; only what it cannot read goes cell by cell
        texts = pd.Series(columns.cells(frame[n]), dtype=object)
        numbers = pd.to_numeric(texts, errors="coerce").to_numpy(dtype=np.float64, copy=True)
        doubtful = np.flatnonzero(texts.notna().to_numpy() & ~np.isfinite(numbers))
        if len(doubtful):
            exact, bad = columns.typed(frame.iloc[doubtful], described)
            numbers[doubtful] = exact[n].to_numpy(dtype=np.float64)
            problems += [(int(doubtful[row]), reason) for row, reason in bad]
        out[n] = numbers
    problems.sort(key=lambda p: p[0])
    return pd.DataFrame(out, index=pd.RangeIndex(len(frame))), problems


def times_ns(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(times as int64 nanoseconds since the epoch, or numbers as float64 for a numeric time column; a bool mask
    of the missing ones, whose value is 0 or NaN). Nanoseconds stay integers: as float64 they would lose the
    last digits of a millisecond stamp (2^53 ns is 104 days)."""
    missing = values.isna().to_numpy()
    if pd.api.types.is_datetime64_any_dtype(values):
        ns = values.astype("datetime64[ns]").to_numpy().view("int64").copy()
        ns[missing] = 0
        return ns, missing
    return values.to_numpy(dtype=np.float64), missing


def _relative(values: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Times as float64 counted from the earliest (exact for 104 days of nanoseconds), NaN where missing."""
    out = np.full(len(values), np.nan)
    if (~missing).any():
        known = values[~missing]
        out[~missing] = (known - known.min()).astype(np.float64)
    return out


def fill_gaps(values: np.ndarray) -> tuple[np.ndarray, int]:
    """`values` [T] or [T, C] with every NaN filled along the first axis: linear interpolation between the
    nearest values before and after, the nearest value before the first or after the last (`numpy.interp`);
    a channel without any value becomes 0. Returns (filled copy, number of cells filled)."""
    out = np.array(values, dtype=np.float64, copy=True)
    flat = out.reshape(len(out), -1)
    steps = np.arange(len(out))
    filled = 0
    for c in range(flat.shape[1]):
        missing = np.isnan(flat[:, c])
        if not missing.any():
            continue
        filled += int(missing.sum())
        known = ~missing
        flat[missing, c] = np.interp(steps[missing], steps[known], flat[known, c]) if known.any() else 0.0
    return out, filled


# ---- classification ----------------------------------------------------------------------------------------


@dataclass
class SeriesSet:
    """Series to classify: `values` float32 [N, T, C] (gaps filled, 0 after each series' end), `mask` bool [N, T]
    (True on real steps), `lengths` int64 [N], `ids` (for people: "g13" or "line 5"), `labels` (None when the
    file has no label column, or the series none), the `channels`' names, `faults` counted, and the `problems`
    (warnings) and `notes` that say how they were resolved."""

    ids: list[str]
    labels: list[str | None]
    values: np.ndarray
    mask: np.ndarray
    lengths: np.ndarray
    channels: list[str]
    faults: dict[str, int]
    problems: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


def series_set(read: Frame, layout: Layout) -> SeriesSet:
    """The series of a wide or long `layout` read from `read` (see the module docstring for the rules).
    Series without any value are left out (`dropped`, with a warning).

    Raises GlassboxError when no series has a value."""
    if layout.form == "wide":
        raw, ids, labels, faults, problems = _wide_raw(read, layout)
        channels = ["value"]
    else:
        raw, ids, labels, channels, faults, problems = _long_raw(read, layout)
    return _shaped(raw, ids, labels, channels, faults, problems, layout)


def _labels_of(frame: pd.DataFrame, layout: Layout) -> list[str | None]:
    return columns.cells(frame[layout.label]) if layout.label else [None] * len(frame)


def _wide_raw(read: Frame, layout: Layout) -> tuple[list[np.ndarray], list[str], list[str | None], dict[str, int],
                                                   list[dict[str, str]]]:
    typed, bad = typed_columns(read.frame, layout, layout.values)
    matrix = typed[layout.values].to_numpy(dtype=np.float64)
    problems = _unreadable(bad, read)
    ids = [f"line {line}" for line in read.lines]
    return [row[:, None] for row in matrix], ids, _labels_of(read.frame, layout), {}, problems


def _unreadable(bad: list[tuple[int, str]], read: Frame) -> list[dict[str, str]]:
    if not bad:
        return []
    shown = listed([f"{read.line_label} {read.lines[row]}: {reason}" for row, reason in bad])
    return [warning(f"{len(bad)} value(s) could not be read and count as missing: {shown}")]


def _long_raw(read: Frame, layout: Layout) -> tuple[list[np.ndarray], list[str], list[str | None], list[str],
                                                   dict[str, int], list[dict[str, str]]]:
    frame = read.frame
    names = layout.values + ([layout.time] if layout.time else [])
    typed, bad = typed_columns(frame, layout, names)
    problems = _unreadable(bad, read)
    ids = columns.cells(frame[layout.series_id])
    labels = _labels_of(frame, layout)
    if layout.channel:
        channel_cells = columns.cells(frame[layout.channel])
        channels = list(dict.fromkeys(c for c in channel_cells if c is not None))
        index = {c: i for i, c in enumerate(channels)}
        rows = pd.DataFrame({"series": ids, "channel": [index.get(c, -1) if c else -1 for c in channel_cells],
                             "value": typed[layout.values[0]].to_numpy(dtype=np.float64)})
    else:
        channels = list(layout.values)
        parts = [pd.DataFrame({"series": ids, "channel": c, "value": typed[n].to_numpy(dtype=np.float64)})
                 for c, n in enumerate(layout.values)]
        rows = pd.concat(parts, ignore_index=False)
    rows["row"] = rows.index
    order = rows.index.to_numpy()
    rows["time"] = _relative(*times_ns(typed[layout.time])).take(order) if layout.time else order.astype(np.float64)
    unusable = rows["series"].isna() | (rows["channel"] < 0) | rows["time"].isna()
    lost = sorted(set(rows.loc[unusable, "row"]))
    if lost:
        shown = listed([f"{read.line_label} {read.lines[r]}" for r in lost])
        problems.append(warning(f"{len(lost)} row(s) without a series id, channel or readable time left out: {shown}"))
    rows = rows[~unusable]
    faults = {"out_of_order": _out_of_order(rows), "duplicates": 0, "missing_steps": 0, "off_grid": 0}
    order = list(dict.fromkeys(rows.sort_values("row", kind="stable")["series"]))  # series in file order
    rows = rows.sort_values(["series", "time"], kind="stable")
    step = _common_step(rows) if layout.time else 1.0
    groups = dict(tuple(rows.groupby("series", sort=False)))
    raw, series_labels, conflicting = [], [], []
    for sid in order:
        group = groups[sid]
        positions, off = _positions(group["time"].to_numpy(), step)
        faults["off_grid"] += off
        merged = pd.DataFrame({"pos": positions, "channel": group["channel"].to_numpy(),
                               "value": group["value"].to_numpy()})
        faults["duplicates"] += int(merged.duplicated(["pos", "channel"]).sum())
        cells = merged.groupby(["pos", "channel"], sort=False)["value"].mean()
        length = int(positions.max()) + 1
        faults["missing_steps"] += length - len(np.unique(positions))
        array = np.full((length, len(channels)), np.nan)
        array[cells.index.get_level_values(0).to_numpy(), cells.index.get_level_values(1).to_numpy()] = cells.to_numpy()
        raw.append(array)
        found = Counter(labels[r] for r in group["row"].unique() if labels[r] is not None)
        if len(found) > 1:
            conflicting.append(f"{sid} ({', '.join(f'{k}: {n} rows' for k, n in found.most_common())})")
        series_labels.append(found.most_common(1)[0][0] if found else None)
    if conflicting:
        problems.append(warning(f"{len(conflicting)} series carry more than one label; each takes its most frequent "
                                f"one: {listed(conflicting)}"))
    ids_out = [str(s) for s in order]
    problems += _fault_warnings(faults, step, layout)
    return raw, ids_out, series_labels, channels, faults, problems


def _out_of_order(rows: pd.DataFrame) -> int:
    """Rows (in file order) whose time is earlier than the previous row's of the same series and channel."""
    by_file = rows.sort_values("row", kind="stable")
    earlier = by_file.groupby(["series", "channel"], sort=False)["time"].diff() < 0
    return int(earlier.sum())


def _common_step(rows: pd.DataFrame) -> float | None:
    """The step between consecutive distinct times shared by the series (the most common difference), or None
    when fewer than `_REGULAR_SHARE` of the differences equal it (irregular sampling: steps are then ranks)."""
    diffs = []
    for _, group in rows.groupby("series", sort=False):
        distinct = np.unique(group["time"].to_numpy())
        diffs.append(np.diff(distinct))
    every = np.round(np.concatenate(diffs), 6) if diffs else np.array([])  # 0.1 s steps read as floats agree
    if not len(every):
        return None
    values, counts = np.unique(every, return_counts=True)
    best = int(np.argmax(counts))
    if values[best] <= 0 or counts[best] < _REGULAR_SHARE * len(every):
        return None
    return float(values[best])


def _positions(times: np.ndarray, step: float | None) -> tuple[np.ndarray, int]:
    """Each reading's step (from 0) within its series and how many were off the step grid. Off-grid times go to
    the step at or before them; a series whose grid would be far longer than its readings (a stray time) is read
    by rank instead."""
    distinct, rank = np.unique(times, return_inverse=True)
    if step is None:
        return rank.astype(np.int64), 0
    offset = times - distinct[0]
    positions = np.floor(offset / step + 1e-9).astype(np.int64)
    if positions.max() + 1 > _GRID_GROWTH * len(distinct):
        return rank.astype(np.int64), 0
    off = int(np.sum(np.abs(offset - positions * step) > 1e-9 * max(step, 1.0)))
    return positions, off


def _fault_warnings(faults: dict[str, int], step: float | None, layout: Layout) -> list[dict[str, str]]:
    said = []
    if faults["out_of_order"]:
        said.append(f"{faults['out_of_order']} row(s) out of time order within their series: sorted by time")
    if faults["duplicates"]:
        said.append(f"{faults['duplicates']} reading(s) at a time their series already had: merged into the mean")
    if faults["off_grid"]:
        said.append(f"{faults['off_grid']} time(s) between two steps: moved to the step at or before them")
    if faults["missing_steps"]:
        said.append(f"{faults['missing_steps']} step(s) missing inside series: inserted and filled like gaps")
    if layout.time and step is None:
        said.append("times are not one regular step apart: each series' steps are its distinct times in order")
    return [warning(s) for s in said]


def _shaped(raw: list[np.ndarray], ids: list[str], labels: list[str | None], channels: list[str],
            faults: dict[str, int], problems: list[dict[str, str]], layout: Layout) -> SeriesSet:
    kept, lengths, dropped = [], [], []
    gaps, gapped = 0, []
    empty_channels = []
    for i, array in enumerate(raw):
        real = ~np.isnan(array).all(axis=1)
        if not real.any():
            dropped.append(ids[i])
            continue
        length = int(np.flatnonzero(real).max()) + 1
        part = array[:length]
        for c in range(part.shape[1]):
            if np.isnan(part[:, c]).all():
                empty_channels.append(f"{ids[i]} ({channels[c]})")
        filled, count = fill_gaps(part)
        if count:
            gaps += count
            gapped.append(f"{ids[i]} ({count})")
        kept.append((i, filled))
        lengths.append(length)
    if not kept:
        raise GlassboxError("no series holds a value")
    longest = max(lengths)
    values = np.zeros((len(kept), longest, len(channels)), dtype=np.float32)
    mask = np.zeros((len(kept), longest), dtype=bool)
    for row, ((_, filled), length) in enumerate(zip(kept, lengths, strict=True)):
        values[row, :length] = filled
        mask[row, :length] = True
    faults = {**faults, "gaps_filled": gaps, "series_with_gaps": len(gapped),
              "padded": sum(n < longest for n in lengths)}
    if dropped:
        problems.append(warning(f"{len(dropped)} series without any value left out: {listed(dropped)}"))
    if gapped:
        problems.append(warning(f"{gaps} missing value(s) inside {len(gapped)} series filled by linear interpolation "
                                f"between their neighbours (the nearest value at a series' start or end): "
                                f"{listed(gapped)}"))
    if empty_channels:
        problems.append(warning(f"{len(empty_channels)} series lack a channel entirely, read as 0: "
                                f"{listed(empty_channels)}"))
    notes = list(layout.notes)
    if faults["padded"]:
        notes.append(f"series have {min(lengths)} to {longest} steps: shorter ones are padded with 0 after their end "
                     "and masked, so models never read the padding")
    kept_index = [i for i, _ in kept]
    return SeriesSet(ids=[ids[i] for i in kept_index], labels=[labels[i] for i in kept_index], values=values,
                     mask=mask, lengths=np.asarray(lengths, dtype=np.int64), channels=list(channels), faults=faults,
                     problems=problems, notes=notes, dropped=dropped)


# ---- forecasting -------------------------------------------------------------------------------------------


@dataclass
class Grid:
    """The steps of a series to forecast: `stamps` int64 ns (every step, open ones only for opening hours),
    its pandas `frequency` alias, `season` in steps, and how to continue it (`spec`, JSON-able: a fixed
    `step_ns` with optional open `weekdays` (0 = Monday) and `times` (ns since midnight), or a calendar
    `offset` alias)."""

    stamps: np.ndarray
    frequency: str
    season: int
    spec: dict[str, Any]
    notes: list[str] = field(default_factory=list)


@dataclass
class ForecastSeries:
    """One series on a regular grid: `time` int64 [T] ns, `target` float64 [T] and `covariates` float64 [T, K]
    (gaps filled), `filled` bool [T] (True where the target was filled), its `grid`, the `faults` counted
    (duplicates, missing stamps, out of order, off grid, missing values) and the words for them."""

    time: np.ndarray
    target: np.ndarray
    filled: np.ndarray
    covariates: np.ndarray
    grid: Grid
    faults: dict[str, int]
    problems: list[dict[str, str]]
    notes: list[str]


def stamp_text(ns: int | float, *, always_time: bool = False) -> str:
    """A step's time for people: "2024-03-01" at midnight (unless `always_time`), "2024-03-01 13:30", seconds
    and fractions only when there are some."""
    text = pd.Timestamp(int(ns)).isoformat(sep=" ")
    if text.endswith(" 00:00:00") and not always_time:
        return text[:10]
    return text[:16] if text[16:] in ("", ":00") else text


def forecast_series(read: Frame, layout: Layout, name: str) -> ForecastSeries:
    """The series to forecast of a forecast `layout`, on its grid (see the module docstring for the rules).

    Raises GlassboxError (one line) when the time column holds no time, when fewer than 3 distinct stamps
    remain, when the stamps fit no regular grid or opening hours, or when more than half the target would be
    invented."""
    frame = read.frame
    typed, bad = typed_columns(frame, layout, [layout.time, layout.label, *layout.values])
    problems = _unreadable([b for b in bad if not b[1].startswith(f"{layout.time}:")], read)
    stamps, missing = times_ns(typed[layout.time])
    lines = np.asarray(read.lines)
    readable = ~missing
    if not readable.any():
        raise GlassboxError(f"{name}: the column {layout.time!r} holds no readable date or time")
    if not readable.all():
        shown = listed([f"{read.line_label} {line}" for line in lines[~readable]])
        problems.append(warning(f"{int((~readable).sum())} row(s) without a readable time in {layout.time!r} left "
                                f"out: {shown}"))
    t = stamps[readable].astype(np.int64)
    values = typed[[layout.label, *layout.values]].to_numpy(dtype=np.float64)[readable]
    lines = lines[readable]
    faults = {"out_of_order": int(np.sum(np.diff(t) < 0))}
    order = np.argsort(t, kind="stable")
    t, values, lines = t[order], values[order], lines[order]
    distinct = np.unique(t)
    if len(distinct) < 3:
        raise GlassboxError(f"{name}: {len(distinct)} distinct time(s): a forecast needs a longer series")
    grid, open_pos = _grid(distinct, t, name)
    on_grid = grid.stamps[np.clip(open_pos, 0, None)] == t
    closed = open_pos < 0
    faults["closed"] = int(closed.sum())
    duplicated = np.r_[False, t[1:] == t[:-1]]
    faults["duplicates"] = int(duplicated.sum())
    faults["off_grid"] = int((~on_grid & ~closed).sum())
    keep = ~closed
    frame_rows = pd.DataFrame(values[keep], columns=["target", *range(len(layout.values))])
    frame_rows["pos"] = open_pos[keep]
    merged = frame_rows.groupby("pos", sort=True).mean()
    count = len(grid.stamps)
    table = np.full((count, values.shape[1]), np.nan)
    table[merged.index.to_numpy()] = merged.to_numpy()
    absent = np.setdiff1d(np.arange(count), merged.index.to_numpy())
    faults["missing_stamps"] = len(absent)
    faults["missing_values"] = int(np.isnan(table[:, 0]).sum()) - faults["missing_stamps"]
    filled_mask = np.isnan(table[:, 0])
    share = filled_mask.mean()
    if share > _MAX_FILLED:
        raise GlassboxError(f"{name}: {int(filled_mask.sum())} of {count} steps of {layout.label!r} have no value: a "
                            "forecast would learn from made-up values; give a series with fewer gaps")
    target, _ = fill_gaps(table[:, 0])
    covariates = np.zeros((count, 0))
    if layout.values:
        covariates, _ = fill_gaps(table[:, 1:])
    problems += _forecast_warnings(faults, t, lines, duplicated, on_grid, closed, grid.stamps[absent], grid, share,
                                   read, layout)
    notes = [*layout.notes, *grid.notes, f"frequency {grid.frequency}, season {grid.season} steps"]
    return ForecastSeries(time=grid.stamps, target=target, filled=filled_mask, covariates=covariates, grid=grid,
                          faults=faults, problems=problems, notes=notes)


def _forecast_warnings(faults: dict[str, int], t: np.ndarray, lines: np.ndarray, duplicated: np.ndarray,
                       on_grid: np.ndarray, closed: np.ndarray, missing: np.ndarray, grid: Grid, share: float,
                       read: Frame, layout: Layout) -> list[dict[str, str]]:
    word = read.line_label
    said = []
    if faults["out_of_order"]:
        said.append(f"{faults['out_of_order']} row(s) out of time order: rows were sorted by time")
    if faults["duplicates"]:
        shown = listed([f"{stamp_text(s)} ({word} {line})" for s, line in zip(t[duplicated], lines[duplicated],
                                                                            strict=True)])
        said.append(f"{faults['duplicates']} duplicated time stamp(s): rows with the same time were merged into "
                    f"their mean: {shown}")
    off = ~on_grid & ~closed
    if faults["off_grid"]:
        shown = listed([f"{stamp_text(s)} ({word} {line})" for s, line in zip(t[off], lines[off], strict=True)])
        said.append(f"{faults['off_grid']} time stamp(s) off the {grid.frequency} grid moved to the step at or "
                    f"before them (merged with a value already there by the mean): {shown}")
    if faults["closed"]:
        shown = listed([f"{stamp_text(s)} ({word} {line})" for s, line in zip(t[closed], lines[closed], strict=True)])
        said.append(f"{faults['closed']} row(s) outside the opening hours left out: {shown}")
    if faults["missing_stamps"]:
        said.append(f"{faults['missing_stamps']} missing time stamp(s) inserted and filled by linear interpolation "
                    f"between their neighbours: {listed([stamp_text(s) for s in missing])}")
    if faults["missing_values"]:
        said.append(f"{faults['missing_values']} missing value(s) of {layout.label!r} (blank, #N/A, n/a) filled by "
                    "linear interpolation between their neighbours")
    if share > _CLOSED_SHARE:
        said.append(f"{share:.0%} of the steps had no value and were filled: forecasts learn from those made-up values")
    return [warning(s) for s in said]


def _mode(diffs: np.ndarray) -> int:
    values, counts = np.unique(diffs, return_counts=True)
    return int(values[int(np.argmax(counts))])


def _infer_offset(distinct: np.ndarray) -> pd.DateOffset | None:
    """`pandas.infer_freq` of the distinct sorted stamps (None when they are not regular)."""
    index = pd.DatetimeIndex(distinct.astype("datetime64[ns]"))
    try:
        with pd.option_context("future.infer_freq_returns_offset", True), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pd.infer_freq(index)
    except (TypeError, ValueError):
        return None


def _grid(distinct: np.ndarray, t: np.ndarray, name: str) -> tuple[Grid, np.ndarray]:
    """(the grid, each row's step on it: -1 for a row at a closed step of opening hours)."""
    offset = _infer_offset(distinct)
    step: int | None = None
    weekdays: list[int] | None = None
    calendar: str | None = None
    notes: list[str] = []
    if offset is not None:
        if isinstance(offset, pd.offsets.BusinessDay) and offset.n == 1:
            step, weekdays = DAY_NS, [0, 1, 2, 3, 4]
        elif isinstance(offset, pd.offsets.Week) and offset.weekday is not None:
            step = 7 * DAY_NS * offset.n
        else:
            try:
                step = int(pd.Timedelta(offset).value)
            except (TypeError, ValueError):
                calendar = offset.freqstr
    else:
        common = _mode(np.diff(distinct))
        days = common / DAY_NS
        kind = next((alias for low, high, alias in _CALENDAR_STEPS if low <= days <= high), None)
        if kind is None:
            step = common
        else:
            stamps = pd.DatetimeIndex(distinct.astype("datetime64[ns]"))
            starts = np.mean(stamps.is_month_start if kind == "M" else stamps.is_quarter_start if kind == "Q"
                             else stamps.is_year_start)
            ends = np.mean(stamps.is_month_end if kind == "M" else stamps.is_quarter_end if kind == "Q"
                           else stamps.is_year_end)
            calendar = f"{kind}E" if ends > starts and ends >= 0.5 else f"{kind}S"
            if max(starts, ends) < 0.5:
                notes.append(f"stamps fall on various days: each is read as the {_PERIOD_WORDS[kind]} it falls in")
    if calendar is not None:
        return _calendar_grid(distinct, t, calendar, notes)
    return _fixed_grid(distinct, t, step, weekdays, notes, name)  # type: ignore[arg-type]


_PERIOD_WORDS = {"M": "month", "Q": "quarter", "Y": "year"}
# steps (in days) that are a calendar period, whose length varies: month, quarter, year
_CALENDAR_STEPS = ((28, 31, "M"), (89, 92, "Q"), (365, 366, "Y"))


def _calendar_grid(distinct: np.ndarray, t: np.ndarray, alias: str, notes: list[str]) -> tuple[Grid, np.ndarray]:
    offset = to_offset(alias)
    first = pd.Timestamp(int(distinct[0]))
    start = first if offset.is_on_offset(first) else offset.rollback(first)
    stamps = pd.date_range(start, pd.Timestamp(int(distinct[-1])), freq=offset).as_unit("ns").asi8
    positions = np.searchsorted(stamps, t, side="right") - 1
    base = alias.split("-")[0].rstrip("SE")
    season = {"M": 12, "Q": 4}.get(base, 1)
    grid = Grid(stamps=stamps, frequency=offset.freqstr, season=season, spec={"offset": offset.freqstr}, notes=notes)
    return grid, positions


def _fixed_grid(distinct: np.ndarray, t: np.ndarray, step: int, weekdays: list[int] | None, notes: list[str],
                name: str) -> tuple[Grid, np.ndarray]:
    phases = (distinct - distinct[0]) % step
    phase = _mode(phases)
    anchor = int(distinct[0]) + phase - (step if phase > 0 else 0)
    end = anchor + ((int(distinct[-1]) - anchor) // step) * step
    count = (end - anchor) // step + 1
    if count > _GRID_GROWTH * len(distinct) + 1000:
        raise GlassboxError(f"{name}: the time stamps are too irregular for one step: a regular grid is needed "
                            "(readings every so many minutes, hours or days)")
    full = anchor + np.arange(count, dtype=np.int64) * step
    positions = (t - anchor) // step
    times: list[int] | None = None
    present = np.unique(positions)
    missing_share = 1 - len(present) / count
    if weekdays is None and step <= DAY_NS and missing_share > _CLOSED_SHARE:
        weekdays, times = _opening(full[present], step)
        open_mask = _is_open(full, weekdays, times)
        open_missing = 1 - np.isin(np.flatnonzero(open_mask), present).mean() if open_mask.any() else 1.0
        if open_mask.all() or open_missing > _OPEN_MISSING:
            if missing_share > _MAX_FILLED:
                raise GlassboxError(f"{name}: {count - len(present)} of {count} steps of the "
                                    f"{_fixed_alias(step, anchor)} grid have no row, and not as opening hours "
                                    "would leave them: a regular grid is needed (one row per step)")
            weekdays, times = None, None
    spec: dict[str, Any] = {"step_ns": int(step), "anchor_ns": int(anchor)}
    if weekdays is not None:
        open_mask = _is_open(full, weekdays, times)
        spec.update(weekdays=weekdays, times=times)
        notes.append(_opening_words(weekdays, times))
    else:
        open_mask = np.ones(count, dtype=bool)
    lookup = np.cumsum(open_mask) - 1
    lookup[~open_mask] = -1
    kept = lookup[positions]
    frequency = "B" if weekdays == [0, 1, 2, 3, 4] and times is None and step == DAY_NS else _fixed_alias(step, anchor)
    season = _fixed_season(step, weekdays, times)
    return Grid(stamps=full[open_mask], frequency=frequency, season=season, spec=spec, notes=notes), kept


def _weekday(ns: np.ndarray) -> np.ndarray:
    return ((ns // DAY_NS) + 3) % 7  # 1970-01-01 was a Thursday


def _opening(present: np.ndarray, step: int) -> tuple[list[int], list[int] | None]:
    """The weekdays (and, for steps under a day, the times of day in ns) holding at least `_OPEN_SHARE` of the
    busiest one's rows."""
    days = Counter(_weekday(present).tolist())
    weekdays = sorted(d for d, n in days.items() if n >= _OPEN_SHARE * max(days.values()))
    if step >= DAY_NS:
        return weekdays, None
    clock = Counter((present % DAY_NS).tolist())
    times = sorted(int(c) for c, n in clock.items() if n >= _OPEN_SHARE * max(clock.values()))
    return weekdays, times


def _is_open(stamps: np.ndarray, weekdays: list[int] | None, times: list[int] | None) -> np.ndarray:
    mask = np.ones(len(stamps), dtype=bool)
    if weekdays is not None:
        mask &= np.isin(_weekday(stamps), weekdays)
    if times is not None:
        mask &= np.isin(stamps % DAY_NS, times)
    return mask


def _clock(ns: int) -> str:
    minutes = ns // 60_000_000_000
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _opening_words(weekdays: list[int], times: list[int] | None) -> str:
    contiguous = len(weekdays) > 2 and weekdays == list(range(weekdays[0], weekdays[-1] + 1))
    days = f"{_WEEKDAYS[weekdays[0]]} to {_WEEKDAYS[weekdays[-1]]}" if contiguous else ", ".join(
        _WEEKDAYS[d] for d in weekdays)
    hours = f", {_clock(times[0])} to {_clock(times[-1])}" if times else ""
    return (f"read as opening hours ({days}{hours}): the closed steps are not part of the series, and forecasts "
            "are made for open steps only")


def _fixed_alias(step: int, anchor: int) -> str:
    if step % DAY_NS == 0:
        days = step // DAY_NS
        if days == 7:
            return f"W-{_WEEKDAYS[int(_weekday(np.array([anchor]))[0])].upper()}"
        return "D" if days == 1 else f"{days}D"
    return to_offset(pd.Timedelta(step)).freqstr


def _fixed_season(step: int, weekdays: list[int] | None, times: list[int] | None) -> int:
    """Steps per day under a day (the open ones for opening hours; 1 beyond 1440 a day), a week of days, a year of
    weeks; else 1."""
    if step < DAY_NS and DAY_NS % step == 0:
        per_day = len(times) if times else DAY_NS // step
        return per_day if per_day <= 1440 else 1
    if step == DAY_NS:
        return len(weekdays) if weekdays else 7
    if step == 7 * DAY_NS:
        return 52
    return 1


def next_times(spec: dict[str, Any], last_ns: int, count: int) -> np.ndarray:
    """The `count` steps after `last_ns` (int64 ns) on a grid `spec` (`Grid.spec`): every step, or the open ones."""
    if "offset" in spec:
        return pd.date_range(pd.Timestamp(int(last_ns)), periods=count + 1, freq=spec["offset"]).as_unit("ns").asi8[1:]
    step = int(spec["step_ns"])
    span = count
    while True:  # open steps are at least one a week, so doubling the stretch looked at ends quickly
        candidates = int(last_ns) + step * np.arange(1, span + 1, dtype=np.int64)
        found = candidates[_is_open(candidates, spec.get("weekdays"), spec.get("times"))]
        if len(found) >= count:
            return found[:count]
        span *= 2
