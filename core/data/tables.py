"""The "tables" modality: a CSV, TSV, Excel workbook or Parquet file with one row per item, a target column
and feature columns of mixed types.

The one reader (`reading.read_frame`) gives every cell as the text the user sees; `columns` infers each
column's role (numeric, categorical, boolean, datetime, free text, identifier, constant) and how its text
becomes a value (currency, percent, yes/no spellings, date formats), and the task (classification or
regression) from the target; `table_checks` says what is wrong or suspicious before anything is stored
(missing targets, a class of one row, leaking columns, duplicates). The user may override the target, the
task and any column's role (ingest `options`).

A dataset folder keeps the rows as read (`rows.csv`, every cell as text, so conversions are applied the
same way to training rows and to new rows at prediction) and `items.csv` (each row's line and target).
What is learned from data (medians, category levels, quantiles) is fitted per run on its training split
only (`fit_inputs`, `core.data.table_encoding`), never here.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core.config import TrainConfig
from core.data import MODALITIES, columns, reading, table_checks
from core.data.base import UPLOAD, LabelledItems, Split, listed, read_items, warning, write_items
from core.data.labels import MERGE_OPTION
from core.errors import GlassboxError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from core.data.base import PhaseProgress

__all__ = ["RowsToPredict", "TablesModality", "read_rows", "typed_rows"]

_SUFFIXES = (".csv", ".tsv", ".tab", ".txt", ".xlsx", ".parquet")
_ROWS_FILE = "rows.csv"
_ITEM_COLUMN = "row"
_TARGET_NAMES = ("target", "label", "class", "y", "outcome", "churn", "churned", "default", "price", "species")
# regression targets are stratified by these many quantile bins, so that validation spans the whole range
_STRATA = 5
_ITEM_CHARS = 160
# ingest options a user may set (the Data page's choices, the CLI's flags)
OPTIONS = ("target", "task", "roles", "sheet", "drop_columns", MERGE_OPTION)


class TablesModality(LabelledItems):
    name = "tables"
    title = "Tables"
    tasks = ("classification", "regression")
    training_profile = None
    baselines = ("lightgbm",)
    noun = "rows"
    item_noun = "row"
    search_hint = "a value in the row"
    explanation_noun = "column attributions"
    shows_items_as = "rows"
    items_are_files = False
    input_size_setting = ""
    input_size_unit = ""
    input_size_label = "input size"
    settings: tuple[str, ...] = ()
    options = OPTIONS

    def accepts(self, source: Path) -> bool:
        """An Excel workbook or a Parquet file always; a CSV or TSV of at least two columns when none of them
        holds free text or is named like a text column ("review", "text": that is a text dataset)."""
        source = Path(source)
        if source.suffix.lower() in (".xlsx", ".parquet", ".xls"):
            return True
        if not reading.looks_like_text(source, _SUFFIXES[:4]):
            return False
        try:
            frame = reading.read_frame(source).frame
        except GlassboxError:
            return False
        from core.data.text import TEXT_NAMES

        return frame.shape[1] >= 2 and not any(
            name.strip().lower() in TEXT_NAMES or columns.looks_like_free_text(frame[name]) for name in frame.columns)

    def ingest(
        self, source: Path, dest: Path, *, drop_bad: bool = False, options: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """See `Modality.ingest`. `options`: `target` (the column to predict; default: one named like a target,
        else the last), `task` ("classification" or "regression"; default: inferred), `roles` ({column:
        role}), `sheet` (an Excel sheet), `drop_columns` (columns to leave out, e.g. named leaks).

        Rows whose target is missing are left out and counted (never guessed); refusals (no usable target,
        one class, a class of one row) name what to change."""
        source, dest = Path(source), Path(dest)
        options = {k: v for k, v in (options or {}).items() if v not in (None, "", [], {})}
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise GlassboxError(f"unknown table options: {', '.join(unknown)}")
        read = reading.read_frame(source, sheet=options.get("sheet"))
        frame = read.frame
        if frame.shape[1] < 2:
            raise GlassboxError(f"{source.name}: a table needs a target column and at least one feature column")
        target, target_note = _target(frame, options.get("target"))
        described = columns.infer_columns(frame, target)
        if options.get("roles"):
            described = columns.with_roles(frame, described, dict(options["roles"]))
        dropped_by_user = [name for name in options.get("drop_columns", []) if name != target]
        missing = [name for name in dropped_by_user if name not in frame.columns]
        if missing:
            raise GlassboxError(f"no column named {listed([repr(m) for m in missing])} to drop "
                                f"(columns: {listed(list(frame.columns))})")
        for column in described:
            if column["name"] in dropped_by_user:
                column.update(dropped=True, reason="dropped on request")
        target_column = next(c for c in described if c["name"] == target)
        task, task_reason = (options["task"], "chosen") if options.get("task") else columns.infer_task(
            frame[target], target_column)
        if task not in self.tasks:
            raise GlassboxError(f"task must be one of {', '.join(self.tasks)}")
        values, missing_rows = columns.target_values(frame[target], task, target_column)
        keep = np.setdiff1d(np.arange(len(frame)), np.asarray(missing_rows, dtype=int))
        if not len(keep):
            raise GlassboxError(f"{source.name}: the target column {target!r} has no usable value")
        kept_frame = frame.iloc[keep].reset_index(drop=True)
        kept_values = [values[i] for i in keep]
        lines = [read.lines[i] for i in keep]
        problems = table_checks.check(kept_frame, described, kept_values, task, lines=lines)
        errors = [p["message"] for p in problems if p["level"] == "error"]
        if errors:
            raise GlassboxError(f"{source.name}: {errors[0]}")
        problems += _long_form_series(kept_frame, described, target)
        _, cell_problems = columns.typed(kept_frame, described)
        notes = [*read.notes, target_note, f"task: {task} ({task_reason})"]
        if missing_rows:
            shown = listed([f"line {read.lines[i]}" for i in missing_rows])
            problems.insert(0, warning(f"{len(missing_rows)} row(s) without a usable target value left out: {shown}"))
        if cell_problems:
            shown = listed([f"line {lines[row]}: {reason}" for row, reason in cell_problems])
            problems.append(warning(f"{len(cell_problems)} value(s) could not be read and count as missing: {shown}"))
        info: dict[str, Any] = {"task": task, "target": target, "columns": described, "num_items": len(keep),
                                "notes": [n for n in notes if n], "sheet": read.sheet,
                                "dropped": [f"line {read.lines[i]}" for i in missing_rows]}
        labels = [str(v) for v in kept_values]
        if task == "classification":
            counts = {c: labels.count(c) for c in sorted(set(labels))}
            info.update(classes=sorted(counts), counts=counts)
        else:
            numbers = np.asarray(kept_values, dtype=float)
            info.update(classes=[], counts={}, target_summary={
                "min": float(numbers.min()), "max": float(numbers.max()), "mean": float(numbers.mean()),
                "median": float(np.median(numbers))})
        info["problems"] = problems
        dest.mkdir(parents=True, exist_ok=True)
        # the upload itself, so that other choices (target, roles, sheet) can be applied to it later
        shutil.copyfile(source, dest / f"{UPLOAD}{source.suffix.lower()}")
        kept_frame.to_csv(dest / _ROWS_FILE, index=False, na_rep="", encoding="utf-8")
        write_items(dest, _ITEM_COLUMN, zip([str(line) for line in lines], labels, strict=True))
        return info

    def labels(self, dataset_dir: Path, info: dict[str, Any]) -> list[int]:
        """Class indices; for regression the target's quantile bin (of `_STRATA`), which the split stratifies
        on so that validation covers small and large values alike."""
        if info.get("task", "classification") == "classification":
            index = {name: i for i, name in enumerate(info["classes"])}
            return [index[label] for _, label in read_items(Path(dataset_dir), _ITEM_COLUMN)]
        values = self.targets(dataset_dir, info)
        edges = np.quantile(values, np.linspace(0, 1, _STRATA + 1)[1:-1])
        return np.searchsorted(edges, values, side="right").tolist()

    def targets(self, dataset_dir: Path, info: dict[str, Any]) -> np.ndarray:
        if info.get("task", "classification") == "classification":
            return np.asarray(self.labels(dataset_dir, info), dtype=np.int64)
        return np.asarray([float(v) for _, v in read_items(Path(dataset_dir), _ITEM_COLUMN)])

    def fit_inputs(self, dataset_dir: Path, info: dict[str, Any], config: TrainConfig,
                   split: Split) -> dict[str, Any]:
        """The table encoder (`TableEncoder.to_dict`) fitted on the training rows only, with the column
        descriptions it was fitted for (`columns`) and the target's name (`target_column`), so that prediction
        converts and encodes new rows the same way."""
        from core.data.table_encoding import TableEncoder

        typed = typed_rows(Path(dataset_dir), info)
        encoder = TableEncoder.fit(typed.iloc[split.train].reset_index(drop=True), info["columns"])
        return {**encoder.to_dict(), "columns": info["columns"], "target_column": info["target"]}

    def suspicious(self, metrics: dict[str, Any], task: str) -> str | None:
        """`table_checks.suspicious_score`: a near-perfect validation score, which on real tables most often
        means a column is known only once the outcome is."""
        return table_checks.suspicious_score(metrics, task)

    def fixed_inputs(self, config: TrainConfig) -> bool:
        """Always: a row is encoded once and never augmented."""
        return True

    def items(self, dataset_dir: Path, info: dict[str, Any]) -> list[str]:
        """Each row as people read it: "line 12: age=34, plan=pro, ..." (cut at a few dozen characters)."""
        frame = read_rows(Path(dataset_dir))
        kept = [c["name"] for c in info["columns"] if not c["dropped"] and c["role"] != "target"]
        lines = [line for line, _ in read_items(Path(dataset_dir), _ITEM_COLUMN)]
        described = []
        for line, values in zip(lines, frame[kept].itertuples(index=False), strict=True):
            text = ", ".join(f"{name}={'' if v is None else v}" for name, v in zip(kept, values, strict=True))
            described.append(f"line {line}: " + (text if len(text) <= _ITEM_CHARS else text[:_ITEM_CHARS] + "…"))
        return described

    def datasets(
        self, dataset_dir: Path, info: dict[str, Any], config: TrainConfig, split: Split, model: nn.Module,
        progress: PhaseProgress | None = None,
    ) -> tuple[EncodedRows, EncodedRows]:
        """The split's rows encoded with the run's fitted encoder (`model.inputs`, from `fit_inputs`)."""
        from core.data.table_encoding import TableEncoder

        encoder = TableEncoder.from_dict(model.inputs)
        encoded = encoder.transform(typed_rows(Path(dataset_dir), info))
        targets = self.targets(dataset_dir, info)
        return (EncodedRows.of(encoded, targets, split.train), EncodedRows.of(encoded, targets, split.val))


@dataclass
class EncodedRows:
    """Encoded rows as a torch dataset: item i is ({"numeric": float32 [p], "categorical": int64 [c]},
    target), the target a class index (int64) or a value (float32)."""

    numeric: torch.Tensor
    categorical: torch.Tensor
    targets: torch.Tensor

    @classmethod
    def of(cls, encoded: dict[str, np.ndarray], targets: np.ndarray, rows: list[int]) -> EncodedRows:
        import torch

        index = np.asarray(rows, dtype=int)
        dtype = torch.int64 if targets.dtype.kind in "iu" else torch.float32
        return cls(torch.from_numpy(encoded["numeric"][index]), torch.from_numpy(encoded["categorical"][index]),
                   torch.as_tensor(targets[index], dtype=dtype))

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        return {"numeric": self.numeric[i], "categorical": self.categorical[i]}, self.targets[i]


def read_rows(dataset_dir: Path) -> pd.DataFrame:
    """A table dataset's stored rows, every cell as text (None when empty), in item order."""
    try:
        frame = pd.read_csv(dataset_dir / _ROWS_FILE, dtype=str, keep_default_na=False, encoding="utf-8")
    except (OSError, ValueError) as exc:
        raise GlassboxError(f"dataset {dataset_dir.name}: {_ROWS_FILE} is missing or damaged ({exc})") from None
    return frame.astype(object).where(frame != "", None)


def typed_rows(dataset_dir: Path, info: dict[str, Any]) -> pd.DataFrame:
    """The stored rows converted per the dataset's column descriptions (`columns.typed`)."""
    return columns.typed(read_rows(dataset_dir), info["columns"])[0]


@dataclass
class RowsToPredict:
    """Rows of a new file as the run's columns read them: `typed` (kept feature columns), `problems` per row
    position (why a row cannot be used, "" when it can), the file's `lines` and the raw `frame`."""

    frame: pd.DataFrame
    typed: pd.DataFrame
    problems: list[str]
    lines: list[int]


def rows_to_predict(source: Path | pd.DataFrame, described: list[dict[str, Any]], target: str,
                    sheet: str | None = None) -> RowsToPredict:
    """Read new rows (a file, or a frame of text cells such as one typed-in row) the way the run's training
    rows were read. A feature column missing from the file refuses the file, naming it; a value that cannot be
    converted (a word in a numeric column) makes its row unusable with the reason, the other rows are kept;
    the target column, when present, is ignored."""
    if isinstance(source, pd.DataFrame):
        frame, lines, short = source, list(range(1, len(source) + 1)), {}
    else:
        read = reading.read_frame(Path(source), sheet=sheet)
        frame, lines, short = read.frame, read.lines, read.problems()
    needed = [c["name"] for c in described if not c["dropped"] and c["role"] != "target"]
    absent = [name for name in needed if name not in frame.columns]
    if absent:
        raise GlassboxError(f"the file lacks the column(s) the model reads: {listed([repr(a) for a in absent])}")
    frame = frame.reset_index(drop=True)
    typed, cell_problems = columns.typed(frame, described)
    problems = [""] * len(frame)
    for row, reason in cell_problems:
        problems[row] = f"{problems[row]}; {reason}" if problems[row] else reason
    for row, line in enumerate(lines):
        if line in short:
            problems[row] = short[line]
    return RowsToPredict(frame, typed, problems, lines)


_SERIES_ID = re.compile(r"(series|sequence|recording|subject|signal|trace|sensor|device|unit)[ _.-]*(id|no|nr|key)?$",
                        re.IGNORECASE)
_STEP = re.compile(r"^(time|timestamp|step|t|tick|frame|sample|date|datetime)$", re.IGNORECASE)


def _long_form_series(frame: pd.DataFrame, described: list[dict[str, Any]], target: str) -> list[dict[str, Any]]:
    """A warning when the table looks like series in long form (a series-id column, a time or step column,
    each id on many rows, and the target constant within an id): read as a table, every reading becomes a
    row, readings of one series land in training and validation alike, and the id gives the answer away."""
    ids = [c for c in frame.columns if c != target and _SERIES_ID.search(str(c).strip())]
    steps = [c for c in frame.columns if c != target and _STEP.match(str(c).strip())]
    for name in ids:
        groups = frame.groupby(frame[name].astype(str), sort=False)[target]
        if steps and len(groups) * 3 <= len(frame) and (groups.nunique(dropna=False) <= 1).all():
            return [{**warning(f"{name!r} and {steps[0]!r} look like series in long form ({len(groups)} series, "
                               f"{len(frame) // len(groups)} rows each on average, one {target!r} per series): "
                               "read as a table, each reading is a row and the series id gives the answer away; "
                               "add them as series (--modality series, or Time series on the Data page)"),
                     "kind": "series", "columns": [name, steps[0]]}]
    return []


def _target(frame: pd.DataFrame, chosen: str | None) -> tuple[str, str]:
    """The target column and a note on how it was chosen."""
    names = list(frame.columns)
    if chosen is not None:
        if chosen not in names:
            close = [n for n in names if n.strip().casefold() == chosen.strip().casefold()]
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise GlassboxError(f"no column named {chosen!r}{hint} (columns: {', '.join(names)})"
                                if len(names) <= 30 else f"no column named {chosen!r}{hint} (columns: {listed(names)})")
        return chosen, ""
    by_name = {name.strip().lower(): name for name in names}
    for candidate in _TARGET_NAMES:
        if candidate in by_name:
            return by_name[candidate], f"target: {by_name[candidate]!r}, by its name; choose another with --target"
    return names[-1], f"target: {names[-1]!r}, the last column; choose another with --target"


MODALITIES.register("tables")(TablesModality())
