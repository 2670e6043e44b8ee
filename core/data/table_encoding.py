"""How a table's typed columns become the two tensors a tabular model reads, fitted on the training rows only.

`TableEncoder.fit(typed, columns)` learns, from the typed frame of the TRAINING rows (see `core.data.columns`:
numbers and booleans float64 with NaN, categories str/None, dates datetime64 with NaT) and the column
descriptions (each kept column's "role"), everything the encoding needs; `transform` then applies it, identically
at validation and at prediction, to any rows:

- numeric: missing cells take the training median, and a missing-indicator feature ("price.missing", 0/1) is
  added for a column that had gaps in training; values are then mapped to a standard normal through the training
  quantiles (scikit-learn's `QuantileTransformer(output_distribution="normal")`, at most 1,000 quantiles): robust
  to skew and outliers, and a value beyond the training range is clipped to about +-5.2 instead of exploding.
  One deliberate difference from scikit-learn: a value tied with many training rows takes the middle of its
  ranks, also at the training minimum or maximum, where scikit-learn sends it to the extreme (+-5.2); for a
  column that is mostly zeros that would make the common value an outlier. A constant column encodes as 0.
- boolean: 0/1 as is, with the same median imputation and indicator.
- datetime: expanded into numeric parts "date.year", "date.month", "date.day_of_week", "date.day_of_year" and,
  when some training time is not midnight, "date.hour"; each part is a numeric feature as above, with one
  "date.missing" indicator for the column.
- categorical (and any other kept role, whose values are text): index 0 is "unknown" (a level never seen in
  training: at prediction it is a value like any other, never an error), 1 is "missing", 2.. are the training
  levels, most frequent first. A level seen only once in training also goes to index 0, so that the unknown
  level's embedding is learnt from real rare levels instead of staying at its random start, and no embedding is
  fitted to a single row; at most `MAX_LEVELS` levels are kept, the rest share index 0 too.

Everything is stored as JSON (`to_dict`/`from_dict`), never pickled, and is what a run keeps to rebuild its
inputs. `baseline()` is "no evidence" for explanations: the encoded training medians, indicators 0 and each
column's most frequent level. The target is not the encoder's business: its scaling (standardised regression
targets) and reading outputs back belong to the run's task (`core.tasks`: `Task.state`, `model_targets`,
`answers`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtri
from sklearn.preprocessing import QuantileTransformer

from core.errors import GlassboxError

__all__ = ["DATETIME_PARTS", "FORMAT", "MAX_LEVELS", "MAX_QUANTILES", "MIN_LEVEL_COUNT", "CategoricalFeature",
           "NumericFeature", "SourceColumn", "TableEncoder"]

FORMAT = 1
"""Version of `to_dict`'s layout; `from_dict` refuses another."""
MAX_QUANTILES = 1000
MAX_LEVELS = 1000
MIN_LEVEL_COUNT = 2
"""A level seen fewer times than this in training shares the unknown level (index 0)."""
UNKNOWN, MISSING, FIRST_LEVEL = 0, 1, 2
DATETIME_PARTS = ("year", "month", "day_of_week", "day_of_year", "hour")
# scikit-learn's QuantileTransformer keeps ranks this far from 0 and 1, so the normal scores stay finite (+-5.2)
_BOUND = 1e-7
_SUBSAMPLE = 10_000  # rows scikit-learn estimates the quantiles from (its default), seeded
_ENCODED_ROLES = ("numeric", "boolean", "datetime", "categorical")
_NOT_FEATURES = ("target",)


@dataclass(frozen=True)
class SourceColumn:
    """A kept column of the table: its role as encoded and what a prediction form shows by default (training
    median for numbers, majority for booleans, median date as ISO text, most frequent level; None if unknown)."""

    name: str
    role: str
    default: float | bool | str | None


@dataclass(frozen=True)
class NumericFeature:
    """One column of the numeric tensor.

    `kind`: "value" (a number), "boolean" (0/1 as is), "missing" (the indicator of `source`'s gaps) or a datetime
    part (`DATETIME_PARTS`). `fill`: the value a missing cell takes before scaling (the training median; 0 for an
    indicator). `quantiles`: the training quantiles a value is ranked against (empty: no scaling); `constant`: the
    column had one value in training and encodes as 0."""

    name: str
    source: str
    kind: str
    fill: float
    quantiles: list[float] = field(default_factory=list)
    constant: bool = False


@dataclass(frozen=True)
class CategoricalFeature:
    """One column of the categorical tensor: `levels[i]` is index i + 2; `baseline` the most frequent index in
    training; `rare` how many training levels share the unknown index (seen once, or beyond `MAX_LEVELS`)."""

    source: str
    levels: list[str]
    baseline: int
    rare: int = 0

    @property
    def cardinality(self) -> int:
        return FIRST_LEVEL + len(self.levels)


@dataclass
class TableEncoder:
    """The fitted encoding of a table's kept columns (see the module docstring); build it with `fit`."""

    sources: list[SourceColumn]
    numeric: list[NumericFeature]
    categorical: list[CategoricalFeature]

    # ---- fitting ----------------------------------------------------------------------------------------------

    @classmethod
    def fit(cls, typed: pd.DataFrame, columns: Sequence[Mapping[str, Any]]) -> TableEncoder:
        """Learn the encoding from `typed`, the typed frame of the training rows, for the columns `columns`
        describes that are kept (not "dropped", not the target), in their order.

        Raises GlassboxError when a kept column is absent from `typed`, or when no column is kept."""
        kept = [(str(c["name"]), str(c.get("role", "categorical"))) for c in columns
                if not c.get("dropped", False) and c.get("role") not in _NOT_FEATURES]
        if not kept:
            raise GlassboxError("no column is left to learn from: keep at least one column besides the target")
        _check_present(typed, [name for name, _ in kept])
        sources: list[SourceColumn] = []
        numeric: list[NumericFeature] = []
        categorical: list[CategoricalFeature] = []
        raw_values: list[np.ndarray] = []  # of the numeric features to rank, fitted together below
        ranked: list[int] = []
        for name, role in kept:
            encoded_role = role if role in _ENCODED_ROLES else "categorical"
            column = typed[name]
            if encoded_role == "categorical":
                feature = _fit_categorical(name, column)
                categorical.append(feature)
                sources.append(SourceColumn(name, encoded_role, feature.levels[0] if feature.levels else None))
                continue
            parts = _numeric_parts(column, encoded_role, hours=None)
            if encoded_role == "datetime" and not _has_time(column):
                parts.pop("hour", None)
            sources.append(SourceColumn(name, encoded_role, _default(column, encoded_role)))
            missing = np.zeros(len(column), dtype=bool)
            for part, values in parts.items():
                observed = values[np.isfinite(values)]
                missing |= ~np.isfinite(values)
                fill = float(np.median(observed)) if observed.size else 0.0
                feature_name = name if part in ("value", "boolean") else f"{name}.{part}"
                constant = observed.size == 0 or bool(np.all(observed == observed[0]))
                if part != "boolean" and not constant:
                    ranked.append(len(numeric))
                    raw_values.append(values)
                numeric.append(NumericFeature(feature_name, name, part, fill, constant=constant and part != "boolean"))
            if missing.any():
                numeric.append(NumericFeature(f"{name}.missing", name, "missing", 0.0))
        for position, quantiles in zip(ranked, _fit_quantiles(raw_values), strict=True):
            feature = numeric[position]
            numeric[position] = NumericFeature(feature.name, feature.source, feature.kind, feature.fill, quantiles)
        return cls(sources, numeric, categorical)

    # ---- applying ---------------------------------------------------------------------------------------------

    def transform(self, typed: pd.DataFrame | Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Encode rows: `typed` a typed frame (any number of rows; extra columns ignored) or one row as a mapping.

        Returns {"numeric": float32 [n, n_numeric], "categorical": int64 [n, n_categorical]}. A missing cell,
        an unseen level, a value beyond the training range are all encoded, never refused. Raises
        GlassboxError naming the kept columns `typed` lacks."""
        frame = pd.DataFrame([dict(typed)]) if isinstance(typed, Mapping) else typed
        _check_present(frame, [s.name for s in self.sources])
        rows = len(frame)
        numeric = np.zeros((rows, len(self.numeric)), dtype=np.float32)
        parts_by_source: dict[str, dict[str, np.ndarray]] = {}
        roles = {s.name: s.role for s in self.sources}
        for j, feature in enumerate(self.numeric):
            if feature.source not in parts_by_source:
                hours = any(f.source == feature.source and f.kind == "hour" for f in self.numeric)
                parts_by_source[feature.source] = _numeric_parts(frame[feature.source], roles[feature.source], hours)
            parts = parts_by_source[feature.source]
            if feature.kind == "missing":
                gaps = np.zeros(rows, dtype=bool)
                for values in parts.values():
                    gaps |= ~np.isfinite(values)
                numeric[:, j] = gaps
                continue
            values = np.where(np.isfinite(parts[feature.kind]), parts[feature.kind], feature.fill)
            numeric[:, j] = self._scale(feature, values)
        categorical = np.zeros((rows, len(self.categorical)), dtype=np.int64)
        for j, feature in enumerate(self.categorical):
            categorical[:, j] = _codes(frame[feature.source], feature.levels)
        return {"numeric": numeric, "categorical": categorical}

    def baseline(self) -> dict[str, np.ndarray]:
        """"No evidence", one row in `transform`'s layout: every value at its training median (encoded),
        indicators 0, every category at its most frequent training index."""
        numeric = np.array([0.0 if f.kind == "missing" else self._scale(f, np.array([f.fill]))[0]
                            for f in self.numeric], dtype=np.float32)
        categorical = np.array([f.baseline for f in self.categorical], dtype=np.int64)
        return {"numeric": numeric.reshape(1, -1), "categorical": categorical.reshape(1, -1)}

    @staticmethod
    def _scale(feature: NumericFeature, values: np.ndarray) -> np.ndarray:
        if feature.constant:
            return np.zeros(len(values))
        if not feature.quantiles:
            return values.astype(np.float64)
        return _normal_scores(values.astype(np.float64), np.asarray(feature.quantiles))

    # ---- what the encoding holds ------------------------------------------------------------------------------

    @property
    def feature_columns(self) -> list[str]:
        """The source column of each numeric feature, in the numeric tensor's order."""
        return [f.source for f in self.numeric]

    @property
    def feature_names(self) -> list[str]:
        """Each numeric feature's own name: "price", "price.missing", "signup_date.month"..."""
        return [f.name for f in self.numeric]

    @property
    def category_columns(self) -> list[str]:
        """The source column of each categorical feature, in the categorical tensor's order."""
        return [f.source for f in self.categorical]

    @property
    def cardinalities(self) -> list[int]:
        """Indices each categorical feature can take (unknown, missing, then its levels)."""
        return [f.cardinality for f in self.categorical]

    @property
    def columns(self) -> list[str]:
        """The kept source columns, in the table's order: what explanations are given per."""
        return [s.name for s in self.sources]

    def levels(self, column: str) -> list[str]:
        """The training levels of a categorical column, most frequent first (rare ones excluded)."""
        for feature in self.categorical:
            if feature.source == column:
                return list(feature.levels)
        raise GlassboxError(f"{column!r} is not a categorical column of this table")

    def defaults(self) -> dict[str, float | bool | str | None]:
        """Each kept column's typical value, for a prediction form."""
        return {s.name: s.default for s in self.sources}

    # ---- JSON -------------------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (no NaN), read back by `from_dict`."""
        return {
            "format": FORMAT,
            "sources": [asdict(s) for s in self.sources],
            "numeric": [asdict(f) for f in self.numeric],
            "categorical": [asdict(f) for f in self.categorical],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TableEncoder:
        """The encoder `to_dict` wrote. Keys it does not use are ignored: a model's "outputs", the column
        descriptions beside it, and the "target" that earlier runs kept here (the task state, `target.json`,
        holds it). Raises GlassboxError when `data` is not such a dict."""
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise GlassboxError("the table encoding saved with this run is missing or from another version")
        try:
            return cls(
                sources=[SourceColumn(**s) for s in data["sources"]],
                numeric=[NumericFeature(**{**f, "quantiles": [float(q) for q in f["quantiles"]]})
                         for f in data["numeric"]],
                categorical=[CategoricalFeature(**{**f, "levels": [str(v) for v in f["levels"]]})
                             for f in data["categorical"]],
            )
        except (KeyError, TypeError, ValueError):
            raise GlassboxError("the table encoding saved with this run is damaged") from None


# ---- numbers --------------------------------------------------------------------------------------------------


def _numeric_parts(column: pd.Series, role: str, hours: bool | None) -> dict[str, np.ndarray]:
    """The raw float64 values (NaN where missing) a column contributes, by part: "value", "boolean", or the
    datetime parts (with "hour" when `hours` is not False)."""
    if role == "datetime":
        dates = _dates(column)
        parts = {
            "year": dates.dt.year, "month": dates.dt.month, "day_of_week": dates.dt.day_of_week,
            "day_of_year": dates.dt.day_of_year, "hour": dates.dt.hour,
        }
        if hours is False:
            del parts["hour"]
        return {k: v.to_numpy(dtype=np.float64, na_value=np.nan) for k, v in parts.items()}
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    values = np.where(np.isfinite(values), values, np.nan)  # an infinity is no more usable than a gap
    return {"boolean" if role == "boolean" else "value": values}


def _dates(column: pd.Series) -> pd.Series:
    """datetime64 as is; text (a row typed into a form) read as ISO 8601, as the typed frame writes dates."""
    if pd.api.types.is_datetime64_any_dtype(column):
        return column
    return pd.to_datetime(column, errors="coerce", format="ISO8601")


def _has_time(column: pd.Series) -> bool:
    dates = _dates(column).dropna()
    return bool((dates != dates.dt.normalize()).any())


def _default(column: pd.Series, role: str) -> float | bool | str | None:
    if role == "datetime":
        dates = _dates(column).dropna()
        return None if dates.empty else pd.Timestamp(dates.median()).isoformat()
    values = pd.to_numeric(column, errors="coerce").dropna()
    if values.empty:
        return None
    median = float(values.median())
    return bool(median >= 0.5) if role == "boolean" else median


def _fit_quantiles(columns: list[np.ndarray]) -> list[list[float]]:
    """Each column's training quantiles as scikit-learn's QuantileTransformer estimates them (NaN ignored, at
    most `MAX_QUANTILES`, from at most `_SUBSAMPLE` rows), fitted on all columns at once."""
    if not columns:
        return []
    matrix = np.column_stack(columns)
    transformer = QuantileTransformer(n_quantiles=min(MAX_QUANTILES, len(matrix)), output_distribution="normal",
                                      subsample=_SUBSAMPLE, random_state=0)
    transformer.fit(matrix)
    return [transformer.quantiles_[:, j].tolist() for j in range(matrix.shape[1])]


def _normal_scores(values: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """Rank `values` among the training quantiles (evenly spaced ranks, interpolated; a tie takes the middle of
    its ranks, computed as scikit-learn does, from both ends) and map the rank to a standard normal score."""
    references = np.linspace(0.0, 1.0, len(quantiles))
    ranks = 0.5 * (np.interp(values, quantiles, references)
                   - np.interp(-values, -quantiles[::-1], -references[::-1]))
    return ndtri(np.clip(ranks, _BOUND, 1.0 - _BOUND))


# ---- categories -----------------------------------------------------------------------------------------------


def _as_text(column: pd.Series) -> list[str | None]:
    """Each cell as text, None where missing (pandas' own string dtype, object and numbers alike)."""
    return [None if pd.isna(v) else str(v) for v in column.astype(object)]


def _fit_categorical(name: str, column: pd.Series) -> CategoricalFeature:
    counts = Counter(v for v in _as_text(column) if v is not None)
    # most frequent first, ties in text order, so that refitting the same rows gives the same indices
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    kept = [level for level, count in ordered if count >= MIN_LEVEL_COUNT][:MAX_LEVELS]
    counts_by_code = np.bincount(_codes(column, kept), minlength=FIRST_LEVEL + len(kept))
    # on a tie a real level is the better picture of "a typical row" than unknown or missing
    baseline = max([*range(FIRST_LEVEL, len(counts_by_code)), UNKNOWN, MISSING], key=lambda c: counts_by_code[c])
    return CategoricalFeature(name, kept, baseline, rare=len(ordered) - len(kept))


def _codes(column: pd.Series, levels: list[str]) -> np.ndarray:
    lookup = {level: FIRST_LEVEL + i for i, level in enumerate(levels)}
    return np.array([MISSING if v is None else lookup.get(v, UNKNOWN) for v in _as_text(column)], dtype=np.int64)


def _check_present(frame: pd.DataFrame, names: list[str]) -> None:
    absent = [name for name in names if name not in frame.columns]
    if absent:
        shown = ", ".join(repr(a) for a in absent[:5]) + (f" and {len(absent) - 5} more" if len(absent) > 5 else "")
        raise GlassboxError(f"the table has no column {shown}, which the model reads")
