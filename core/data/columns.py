"""What each column of a table is, and how its text becomes values, the same way at training and at prediction.

A table arrives as text (`reading.read_frame`: every cell a stripped `str` or `None`). Here each column gets a
role (`ROLES`), a conversion (how its text becomes a number, a yes/no flag or a time) and a summary, with the
reason in words (`infer_columns`); the user may change roles (`with_roles`); the task follows from the target
(`infer_task`); and `typed` / `target_values` apply the stored conversions to any rows, new files included.

Spreadsheet habits handled, each decided once per column and stated in its reason:
- numbers with thousands separators ("1,200", "1 200", "1'200") or a decimal comma ("1.200,50", "3,5");
- money ("$1,200", "€ 3,50", "1.200 €", "(45.00)" negative) and percentages ("15%", "7.5 %": read as 15.0 and
  7.5, percent points); the symbol may be left out in new rows ("1450" in a dollar column is $1,450);
- yes/no flags spelled many ways in one column (Yes, y, TRUE, t, 1, No, N, false, 0; ja/nein, oui/non), and
  columns of only 0 and 1;
- codes with leading zeros ("02139", "007", "000101") are never numbers: the zeros are part of the value;
- dates in ISO form or as day/month/year or month/day/year, the order decided by a value above 12;
- the marks people type for "no value": empty, n/a, #N/A, NaN, null, None, "-", "?", Excel's #VALUE! etc.

A column description is a JSON-able dict:
`{"name", "role", "reason", "dropped", "missing", "distinct"}`, plus `"conversion"` for numbers, flags and times
(`{"kind": "number"|"currency"|"percent", "thousands", "decimal", ["symbol"]}`, `{"kind": "boolean", "true":
[spellings], "false": [spellings]}` (most frequent first), `{"kind": "datetime", "format": "ISO8601" or a
strftime format}`), `"min"`/`"max"` for numbers and times, `"levels"` (most frequent first, at most 50) and
`"n_levels"` for categories and flags. `distinct` counts values after conversion (so "5%" and "5 %" are one).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.data.base import listed
from core.data.labels import is_missing
from core.errors import GlassboxError

__all__ = [
    "DROP", "DROPPED_ROLES", "ROLES", "TASKS", "cells", "feature_columns", "infer_columns", "infer_task",
    "is_blank", "looks_like_free_text", "target_values", "typed", "with_roles",
]

ROLES = ("numeric", "categorical", "boolean", "datetime", "text", "identifier", "constant", "target")
DROPPED_ROLES = ("text", "identifier", "constant")
"""Roles left out of the model unless the user changes them."""
DROP = "dropped"
"""Not a role: given to `with_roles` it leaves a column out under its current role."""
TASKS = ("classification", "regression")

MAX_LEVELS = 50
"""Levels a description lists (the most frequent)."""
# share of a column's filled cells that must read as numbers (or dates) for it to be numeric (or datetime);
# the rest become per-row problems
_SHARE = 0.95
# identifiers: nearly all values distinct, on at least this many filled rows (fewer: only when named like one)
_ID_SHARE = 0.95
_ID_MIN_ROWS = 20
# integer targets with at most this many distinct values are classes when they are also at most 5% of the
# rows, or at most _FEW_CLASSES
_MAX_CLASSES = 20
_CLASS_SHARE = 0.05
_FEW_CLASSES = 5
# free text: mostly distinct values of several words or long strings
_TEXT_WORDS = 4.0
_TEXT_CHARS = 50.0
_TEXT_DISTINCT = 0.5

# What spreadsheets and people write for "no value", beyond `labels.is_missing` (compared casefolded)
# marks of "no value" in a feature cell beyond the missing labels (`labels.is_missing`): "NA" is R's, which
# write.csv leaves in every export (the Palmer penguins' own file has it)
_NO_VALUE = frozenset({"-", "--", "—", "–", "?", "??", "n.a.", "na", "#value!", "#div/0!", "#ref!", "#num!",
                       "#null!", "#name?", "#n/a n/a"})
# missing as a label but a real level in a feature: "none" in a column of counts named small, big or none
_A_LEVEL = frozenset({"none"})
_TRUE = ("yes", "y", "true", "t", "1", "1.0", "on", "ja", "j", "oui", "si", "sí", "wahr", "vrai")
_FALSE = ("no", "n", "false", "f", "0", "0.0", "off", "nein", "non", "falsch", "faux")
_TRUE_SET, _FALSE_SET = frozenset(_TRUE), frozenset(_FALSE)

_CURRENCIES = ("US$", "CA$", "A$", "R$", "$", "€", "£", "¥", "₹", "₽", "₩", "₺", "CHF", "EUR", "USD", "GBP", "JPY",
               "CAD", "AUD", "SEK", "NOK", "DKK", "PLN")
_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2009": " ", "−": "-"})
# (thousands, decimal) conventions, tried in this order: the first that reads the most cells wins, so
# "1,200" alone is twelve hundred and "1.200" alone is one point two, unless other values say otherwise
_CONVENTIONS = (("", "."), (",", "."), (".", ","), (" ", "."), (" ", ","), ("'", "."), ("", ","))
_LEADING_ZERO = re.compile(r"^[-+]?0\d")
_ID_NAME = re.compile(r"(^|[_\s.\-#])(id|uuid|guid|key|code|ref|no|nr|num|number)$|^(id|uuid|guid)([_\s.\-]|$)",
                      re.IGNORECASE)
_CAMEL_ID = re.compile(r"[a-z](Id|ID|Uuid|UUID|Code|No)$")
_PHONE_NAME = re.compile(r"phone|mobile|\btel\b|^tel|telephone|\bfax\b|\bcell\b", re.IGNORECASE)
_PHONE = re.compile(r"^\+?[\d\s().\-/]{7,}$")
_UUID = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$", re.IGNORECASE)

_ISO = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?(?:\s?(?:Z|[+-]\d{2}:?\d{2}))?$")
_NUMERIC_DATE = re.compile(r"^(\d{1,2})([/.\-])(\d{1,2})\2(\d{4}|\d{2})(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?$")
_YEAR_FIRST = re.compile(r"^\d{4}([/.])\d{1,2}\1\d{1,2}(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?$")
_MONTH_NAME = re.compile(r"[A-Za-z]{3}")
_NAMED_FORMATS = ("%d %b %Y", "%b %d, %Y", "%d %B %Y", "%B %d, %Y", "%d-%b-%Y", "%d-%b-%y", "%b %d %Y", "%B %d %Y")
_TIME_SUFFIXES = ("", " %H:%M", " %H:%M:%S", "T%H:%M", "T%H:%M:%S")
_FORMAT_WORDS = (("%Y", "YYYY"), ("%y", "YY"), ("%m", "MM"), ("%d", "DD"), ("%b", "Mon"), ("%B", "Month"))


# ---- cells -------------------------------------------------------------------------------------------------


def is_blank(cell: Any) -> bool:
    """Whether a cell means "no value": None, NaN, empty, or a mark such as n/a, #N/A, null, "-", "?", #VALUE!."""
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return True
    text = str(cell).strip()
    folded = text.casefold()
    return (is_missing(text) and folded not in _A_LEVEL) or folded in _NO_VALUE


def cells(series: pd.Series | Iterable[Any]) -> list[str | None]:
    """A column's cells as stripped text, None for every "no value" (`is_blank`), in row order."""
    values = series.tolist() if isinstance(series, pd.Series) else list(series)
    seen: dict[Any, str | None] = {}  # columns repeat their values: judge each once
    out = []
    for v in values:
        try:
            out.append(seen[v])
        except KeyError:
            seen[v] = None if is_blank(v) else str(v).strip()
            out.append(seen[v])
        except TypeError:  # an unhashable cell (a list from a Parquet file)
            out.append(None if is_blank(v) else str(v).strip())
    return out


def feature_columns(columns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The descriptions the model reads: neither dropped nor the target, in table order."""
    return [c for c in columns if not c["dropped"] and c["role"] != "target"]


# ---- numbers -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Shape:
    """A cell's text taken apart: the digits and separators left (`core`), its sign, currency and percent sign."""

    core: str
    negative: bool
    symbol: str | None
    percent: bool


def _shape(text: str) -> _Shape | None:
    s = text.translate(_SPACES).strip()
    negative = False
    if len(s) > 2 and s[0] == "(" and s[-1] == ")":  # accounting negatives: (1,200.00)
        negative, s = True, s[1:-1].strip()
    percent = s.endswith("%")
    if percent:
        s = s[:-1].rstrip()
    # startswith, not `s[:1] in "+-"`: an empty string is "in" every string, and "%" or "$" alone leave one
    if s.startswith(("+", "-")):
        negative, s = negative ^ (s[0] == "-"), s[1:].lstrip()
    symbol = None
    for candidate in _CURRENCIES:
        if s.startswith(candidate):
            symbol, s = candidate, s[len(candidate):].strip()
            break
        if s.endswith(candidate):
            symbol, s = candidate, s[: -len(candidate)].strip()
            break
    if symbol and s.startswith(("+", "-")):  # "$-5"
        negative, s = negative ^ (s[0] == "-"), s[1:].lstrip()
    if not s or not s[0].isdigit() and s[0] not in ".,":
        return None
    return _Shape(s, negative, symbol, percent)


def _pattern(thousands: str, decimal: str) -> re.Pattern[str]:
    t, d = re.escape(thousands), re.escape(decimal)
    whole = rf"(?:\d{{1,3}}(?:{t}\d{{3}})+|\d+)" if thousands else r"\d+"
    exponent = r"(?:[eE][+-]?\d+)?" if (thousands, decimal) == ("", ".") else ""
    return re.compile(rf"^(?:{whole}(?:{d}\d*)?|{d}\d+){exponent}$")


_PATTERNS = {convention: _pattern(*convention) for convention in _CONVENTIONS}


def _read_core(core: str, thousands: str, decimal: str) -> float | None:
    if not _PATTERNS.get((thousands, decimal), _pattern(thousands, decimal)).match(core):
        return None
    plain = core.replace(thousands, "") if thousands else core
    return float(plain.replace(decimal, ".") if decimal != "." else plain)


def _to_number(text: str, conversion: dict[str, Any]) -> float | None:
    """`text` read with a numeric conversion, or None when it does not read. The symbol and the percent sign
    may be left out (new rows typed without them); another currency or a percent in a money column may not."""
    shape = _shape(text)
    if shape is None:
        return None
    kind = conversion["kind"]
    if shape.symbol is not None and (kind != "currency" or shape.symbol != conversion.get("symbol")):
        return None
    if shape.percent and kind != "percent":
        return None
    value = _read_core(shape.core, conversion.get("thousands", ""), conversion.get("decimal", "."))
    if value is None:
        return None
    return -value if shape.negative else value


def _numbers(
    counts: Counter[str], *, codes_are_numbers: bool = False
) -> tuple[dict[str, Any] | None, dict[str, float]]:
    """The numeric conversion that reads the most of `counts` (cell text -> count) and the values it reads,
    or (None, {}) when under `_SHARE` of the cells read as numbers, when money and percentages mix, or when a
    value has leading zeros (a code) and not `codes_are_numbers`."""
    shapes = {text: _shape(text) for text in counts}
    total = sum(counts.values())
    readable = {text: s for text, s in shapes.items() if s is not None}
    if sum(counts[t] for t in readable) < _SHARE * total:
        return None, {}
    if not codes_are_numbers and any(_LEADING_ZERO.match(s.core) for s in readable.values()):
        return None, {}
    symbols = Counter(s.symbol for s in readable.values() if s.symbol)
    percents = any(s.percent for s in readable.values())
    if len(symbols) > 1 or (symbols and percents):
        return None, {}
    best: tuple[int, tuple[str, str], dict[str, float]] = (0, ("", "."), {})
    for convention in _CONVENTIONS:
        values = {}
        for text, s in readable.items():
            value = _read_core(s.core, *convention)
            if value is not None:
                values[text] = -value if s.negative else value
        read = sum(counts[t] for t in values)
        if read > best[0]:
            best = (read, convention, values)
        if read == total:
            break
    read, (thousands, decimal), values = best
    if read < _SHARE * total:
        return None, {}
    if symbols:
        conversion = {"kind": "currency", "symbol": next(iter(symbols)), "thousands": thousands, "decimal": decimal}
    elif percents:
        conversion = {"kind": "percent", "unit": "percent points", "thousands": thousands, "decimal": decimal}
    else:
        conversion = {"kind": "number", "thousands": thousands, "decimal": decimal}
    return conversion, values


def _reads_as_number(text: str) -> bool:
    shape = _shape(text)
    return shape is not None and any(_read_core(shape.core, *c) is not None for c in _CONVENTIONS)


def _separator_words(mark: str) -> str:
    return {" ": "a space", "'": "an apostrophe"}.get(mark, repr(mark))


def _number_words(conversion: dict[str, Any], values: dict[str, float]) -> str:
    """E.g. "money in $ ('$2,450.50' is 2450.5; ',' separates thousands)"."""
    kind = conversion["kind"]
    whole = all(float(v).is_integer() for v in values.values())
    what = {"currency": f"money in {conversion.get('symbol')}", "percent": "percentages, in percent points",
            "number": "whole numbers" if whole else "numbers"}[kind]
    marks = []
    if conversion.get("thousands"):
        marks.append(f"{_separator_words(conversion['thousands'])} separates thousands")
    if conversion.get("decimal") == ",":
        marks.append("',' is the decimal mark")
    example = max(values, key=len) if values else None
    if example is not None and (kind != "number" or marks):
        marks.insert(0, f"{example!r} is {values[example]:g}")
    return what + (f" ({'; '.join(marks)})" if marks else "")


# ---- flags -------------------------------------------------------------------------------------------------


def _flags(counts: Counter[str]) -> dict[str, Any] | None:
    """The boolean conversion when every value is a known yes/no spelling (case aside), else None. The
    spellings are listed as seen, most frequent first, so the first of each side names it."""
    true, false = Counter(), Counter()
    for text, n in counts.items():
        key = text.casefold()
        if key in _TRUE_SET:
            true[text] += n
        elif key in _FALSE_SET:
            false[text] += n
        else:
            return None
    return {"kind": "boolean", "true": [t for t, _ in true.most_common()], "false": [f for f, _ in false.most_common()]}


def _flag_lookup(conversion: dict[str, Any]) -> dict[str, float]:
    """Casefolded spelling -> 1.0/0.0. A column whose spellings are all known yes/no words also reads the other
    known words ("TRUE" and "yes" in a true/false column); a column the user made boolean from two other values
    ("M"/"F") reads only those."""
    lookup = {t.casefold(): 1.0 for t in conversion["true"]} | {f.casefold(): 0.0 for f in conversion["false"]}
    if all(k in _TRUE_SET or k in _FALSE_SET for k in lookup):
        lookup = {t: 1.0 for t in _TRUE} | {f: 0.0 for f in _FALSE} | lookup
    return lookup


def _flag_words(conversion: dict[str, Any]) -> str:
    return (f"yes/no: {', '.join(repr(t) for t in conversion['true'])} read as 1, "
            f"{', '.join(repr(f) for f in conversion['false'])} as 0")


# ---- times -------------------------------------------------------------------------------------------------


def _parse_times(texts: list[str], fmt: str) -> pd.Series:
    """datetime64[ns] per text (NaT where it does not read). "ISO8601" reads every ISO form (with or without a
    time, "T" or space, an offset: converted to UTC); a strftime date format also reads the date with a time."""
    series = pd.Series(texts, dtype=object)
    if fmt == "ISO8601":
        parsed = pd.to_datetime(series, format="ISO8601", errors="coerce", utc=True).dt.tz_convert(None)
        return parsed.astype("datetime64[ns]")
    parsed = pd.Series(pd.NaT, index=series.index, dtype="datetime64[ns]")
    for suffix in _TIME_SUFFIXES:
        todo = parsed.isna()
        if not todo.any():
            break
        parsed[todo] = pd.to_datetime(series[todo], format=fmt + suffix, errors="coerce").astype("datetime64[ns]")
    return parsed


def _format_words(fmt: str) -> str:
    if fmt == "ISO8601":
        return "ISO 8601 (YYYY-MM-DD, optionally with a time)"
    for code, words in _FORMAT_WORDS:
        fmt = fmt.replace(code, words)
    return fmt


def _times(counts: Counter[str]) -> tuple[dict[str, Any] | None, str]:
    """The datetime conversion that reads at least `_SHARE` of the cells, and a note on how the format was
    decided (day or month first), or (None, "")."""
    total = sum(counts.values())
    texts = list(counts)
    candidates: list[tuple[str, str]] = []
    if sum(counts[t] for t in texts if _ISO.match(t)) >= _SHARE * total:
        candidates.append(("ISO8601", ""))
    elif sum(counts[t] for t in texts if _YEAR_FIRST.match(t)) >= _SHARE * total:
        sep = _YEAR_FIRST.match(next(t for t in texts if _YEAR_FIRST.match(t))).group(1)  # type: ignore[union-attr]
        candidates.append((f"%Y{sep}%m{sep}%d", ""))
    else:
        matched = [(m, counts[t]) for t in texts if (m := _NUMERIC_DATE.match(t))]
        if sum(n for _, n in matched) >= _SHARE * total:
            sep = Counter(m.group(2) for m, _ in matched).most_common(1)[0][0]
            year = "%Y" if all(len(m.group(4)) == 4 for m, _ in matched) else "%y"
            if sep == "." and year == "%y":  # "1.2.10" is a version more often than a date
                return None, ""
            first_over = any(int(m.group(1)) > 12 for m, _ in matched)
            second_over = any(int(m.group(3)) > 12 for m, _ in matched)
            if first_over and second_over:
                return None, ""
            if second_over:
                candidates.append((f"%m{sep}%d{sep}{year}", "month first: a second number above 12"))
            elif first_over:
                candidates.append((f"%d{sep}%m{sep}{year}", "day first: a first number above 12"))
            elif sep == ".":
                candidates.append((f"%d{sep}%m{sep}{year}", "day first, as dotted dates are written"))
            else:
                candidates.append((f"%d{sep}%m{sep}{year}",
                                   "day first assumed: no value above 12 tells day from month; change the role "
                                   "if these are month first"))
        elif sum(counts[t] for t in texts if _MONTH_NAME.search(t) and any(c.isdigit() for c in t)) >= _SHARE * total:
            candidates += [(fmt, "") for fmt in _NAMED_FORMATS]
    for fmt, note in candidates:
        parsed = _parse_times(texts, fmt)
        if sum(counts[t] for t, ok in zip(texts, parsed.notna(), strict=True) if ok) >= _SHARE * total:
            return {"kind": "datetime", "format": fmt}, note
    return None, ""


def _iso(value: pd.Timestamp) -> str:
    text = value.isoformat(sep=" ")
    return text[:10] if text.endswith(" 00:00:00") else text


# ---- roles -------------------------------------------------------------------------------------------------


@dataclass
class _Reading:
    """What one column is: its role, why, how its text converts, and its converted values per distinct text."""

    role: str
    reason: str
    conversion: dict[str, Any] | None = None
    values: dict[str, Any] = field(default_factory=dict)


def _named_like_id(name: str) -> bool:
    return bool(_ID_NAME.search(name.strip()) or _CAMEL_ID.search(name.strip()))


def _is_text(counts: Counter[str], filled: int) -> bool:
    if not counts or len(counts) < _TEXT_DISTINCT * filled:
        return False
    words = sum(len(t.split()) * n for t, n in counts.items()) / filled
    chars = sum(len(t) * n for t, n in counts.items()) / filled
    return words >= _TEXT_WORDS or chars >= _TEXT_CHARS


def looks_like_free_text(series: pd.Series) -> bool:
    """Whether a column holds free text (mostly distinct values of several words, or long strings): what makes
    a CSV a text dataset rather than a table."""
    values = [c for c in cells(series) if c is not None]
    return _is_text(Counter(values), len(values))


def _constant(counts: Counter[str], missing: int) -> _Reading | None:
    if not counts:
        return _Reading("constant", "always empty: dropped")
    if len(counts) > 1:
        return None
    value = next(iter(counts))
    if not missing:
        return _Reading("constant", f"always {value!r}: dropped")
    return _Reading("constant", f"{value!r} or empty: dropped; whether it is filled might carry signal "
                                "(make it categorical to use that)")


def _infer(name: str, counts: Counter[str], missing: int) -> _Reading:
    """The role a column's values suggest (see the module docstring), in this order: constant, yes/no, date,
    number, then the text roles (phone numbers and ids, free text, categories)."""
    filled = sum(counts.values())
    constant = _constant(counts, missing)
    if constant:
        return constant
    flags = _flags(counts)
    if flags is not None:
        if not flags["true"] or not flags["false"]:
            side = flags["true"] or flags["false"]
            return _Reading("constant", f"always {side[0]!r} (spelled {', '.join(map(repr, side))}): dropped")
        return _Reading("boolean", _flag_words(flags), flags)
    times, note = _times(counts)
    if times is not None:
        return _Reading("datetime", f"dates, {_format_words(times['format'])}" + (f"; {note}" if note else ""), times)
    conversion, values = _numbers(counts)
    all_distinct = len(counts) == filled
    if conversion is not None:
        whole = all(float(v).is_integer() for v in values.values())
        if whole and all_distinct and conversion["kind"] == "number":
            if _named_like_id(name) or _PHONE_NAME.search(name):
                return _Reading("identifier", f"all {filled} values distinct and named like an id: dropped")
            ordered = sorted(values.values())
            if filled >= _ID_MIN_ROWS and ordered[-1] - ordered[0] == len(ordered) - 1 == filled - 1:
                return _Reading("identifier", f"a row number ({ordered[0]:g} to {ordered[-1]:g}, each once): dropped")
        return _Reading("numeric", _number_words(conversion, values), conversion, values)
    code = next((t for t in counts if _LEADING_ZERO.match(t)), None)
    codes = code is not None
    code_note = f"codes with leading zeros (e.g. {code!r}), kept as written, not numbers"
    distinct_share = len(counts) / filled
    phone_shaped = all(_PHONE.match(t) and 7 <= sum(c.isdigit() for c in t) <= 15 for t in counts)
    if distinct_share >= 0.5 and phone_shaped and (
            _PHONE_NAME.search(name) or codes or any(not t.isdigit() for t in counts)):
        return _Reading("identifier", "phone numbers: dropped")
    if all(_UUID.match(t) for t in counts):
        return _Reading("identifier", "UUIDs: dropped")
    if _is_text(counts, filled):
        return _Reading("text", f"free text ({len(counts)} distinct values of several words): dropped")
    if (all_distinct and (_named_like_id(name) or filled >= _ID_MIN_ROWS)) or (
            filled >= _ID_MIN_ROWS and distinct_share >= _ID_SHARE):
        how = f"all {filled} values distinct" if all_distinct else f"{len(counts)} distinct values in {filled} rows"
        return _Reading("identifier", f"{how}" + (f"; {code_note}" if codes else "") + ": an identifier, dropped")
    if codes:
        return _Reading("categorical", f"{len(counts)} categories: {code_note}")
    return _Reading("categorical", f"{len(counts)} categories")


def _forced(name: str, counts: Counter[str], missing: int, role: str) -> _Reading:
    """The reading for a role the user chose, or GlassboxError when the values cannot take it."""
    if role == "numeric":
        conversion, values = _numbers(counts, codes_are_numbers=True)
        if conversion is None:
            bad = [t for t in counts if not _reads_as_number(t)]
            if not bad:
                raise GlassboxError(f"{name} cannot be numeric: it mixes currencies or money and percentages")
            raise GlassboxError(f"{name} cannot be numeric: {listed([repr(t) for t in bad[:3]])} "
                                f"{'is' if len(bad) == 1 else 'are'} not numbers")
        return _Reading("numeric", "numeric, set by you: " + _number_words(conversion, values), conversion, values)
    if role == "boolean":
        flags = _flags(counts)
        if flags is None and len(counts) == 2:
            rare, common = (t for t, _ in sorted(counts.items(), key=lambda kv: (kv[1], kv[0])))
            flags = {"kind": "boolean", "true": [rare], "false": [common]}
        if flags is None or not flags["true"] or not flags["false"]:
            raise GlassboxError(f"{name} cannot be yes/no: it has {len(counts)} distinct value(s) "
                                f"({listed([repr(t) for t, _ in counts.most_common(3)])}), a flag needs two")
        return _Reading("boolean", "boolean, set by you: " + _flag_words(flags), flags)
    if role == "datetime":
        times, _ = _times(counts)
        if times is None:
            bad = [t for t in counts if not (_ISO.match(t) or _NUMERIC_DATE.match(t) or _YEAR_FIRST.match(t))]
            shown = listed([repr(t) for t in (bad or list(counts))[:3]])
            raise GlassboxError(f"{name} cannot be datetime: {shown} are not dates in one format")
        return _Reading("datetime", f"datetime, set by you: {_format_words(times['format'])}", times)
    if role in DROPPED_ROLES:
        return _Reading(role, f"{role}, set by you: dropped")
    return _Reading("categorical", f"categorical, set by you: {len(counts)} categories")


def _describe(name: str, column: list[str | None], reading: _Reading) -> dict[str, Any]:
    counts = Counter(c for c in column if c is not None)
    missing = len(column) - sum(counts.values())
    description: dict[str, Any] = {"name": name, "role": reading.role, "reason": reading.reason,
                                   "dropped": reading.role in DROPPED_ROLES, "missing": missing,
                                   "distinct": len(counts)}
    conversion = reading.conversion
    if conversion is None:
        if reading.role in ("categorical", "target"):
            _levels(description, counts)
        return description
    description["conversion"] = conversion
    kind = conversion["kind"]
    if kind == "boolean":
        lookup = _flag_lookup(conversion)
        sides = Counter()
        for text, n in counts.items():
            sides[conversion["true"][0] if lookup[text.casefold()] else conversion["false"][0]] += n
        description["distinct"] = len(sides)
        _levels(description, sides)
    elif kind == "datetime":
        parsed = _parse_times(list(counts), conversion["format"]).dropna()
        description["distinct"] = int(parsed.nunique())
        if len(parsed):
            description.update(min=_iso(parsed.min()), max=_iso(parsed.max()))
    else:
        numbers = [v for v in reading.values.values() if v is not None]
        description["distinct"] = len(set(numbers))
        if numbers:
            description.update(min=float(min(numbers)), max=float(max(numbers)))
    return description


def _levels(description: dict[str, Any], counts: Counter[str]) -> None:
    description["levels"] = [level for level, _ in counts.most_common(MAX_LEVELS)]
    description["n_levels"] = len(counts)


def infer_columns(frame: pd.DataFrame, target: str) -> list[dict[str, Any]]:
    """One description per column of `frame` (text cells, see `reading.read_frame`), in frame order; the
    target gets role "target" and, like the rest, its conversion and summary (a money target keeps its
    currency conversion). See the module docstring for the shape and the rules.

    Raises GlassboxError when `target` is not a column."""
    if target not in frame.columns:
        raise GlassboxError(f"no column named {target!r} (columns: {listed([str(c) for c in frame.columns])})")
    described = []
    for name in frame.columns:
        column = cells(frame[name])
        counts = Counter(c for c in column if c is not None)
        reading = _infer(str(name), counts, len(column) - sum(counts.values()))
        if name == target:
            reading = _as_target(reading, counts)
        described.append(_describe(str(name), column, reading))
    return described


def _as_target(reading: _Reading, counts: Counter[str]) -> _Reading:
    """The target's reading: its own conversion and summary, numbers included when a feature of the same values
    would be an identifier (a target of distinct whole numbers is a quantity, not an id)."""
    if reading.role in ("identifier", "text"):
        conversion, values = _numbers(counts)
        if conversion is not None:
            reading = _Reading("numeric", _number_words(conversion, values), conversion, values)
    kept = reading.conversion is not None and reading.role in ("numeric", "boolean")
    what = reading.reason.split(": dropped")[0] if reading.role != "categorical" else reading.reason
    return _Reading("target", f"the column to predict: {what}", reading.conversion if kept else None,
                    reading.values if kept else {})


def with_roles(frame: pd.DataFrame, columns: list[dict[str, Any]], changes: dict[str, str]) -> list[dict[str, Any]]:
    """`columns` with the roles the user chose: `changes` maps a column name to a role in `ROLES` (other than
    "target": choose the target instead) or to `DROP`, which leaves the column out under its role. A changed
    column's conversion and summary are recomputed from `frame`; the others are kept as they are.

    Raises GlassboxError (one line) for an unknown column or role, a change to the target, or a role the
    values cannot take (numeric on values that are not numbers names up to three of them)."""
    by_name = {c["name"]: c for c in columns}
    unknown = [name for name in changes if name not in by_name or name not in frame.columns]
    if unknown:
        raise GlassboxError(f"no column named {listed([repr(u) for u in unknown])} (columns: {listed(list(by_name))})")
    changed = {}
    for name, role in changes.items():
        if role not in ROLES and role != DROP:
            raise GlassboxError(f"{name}: unknown role {role!r} (roles: {', '.join(ROLES[:-1])})")
        if role == "target" or by_name[name]["role"] == "target":
            raise GlassboxError(f"{name}: choose the target column instead of changing roles to or from target")
        if role == DROP:
            changed[name] = {**by_name[name], "dropped": True, "reason": f"dropped by you ({by_name[name]['reason']})"}
            continue
        column = cells(frame[name])
        counts = Counter(c for c in column if c is not None)
        changed[name] = _describe(name, column, _forced(name, counts, len(column) - sum(counts.values()), role))
    return [changed.get(c["name"], c) for c in columns]


# ---- tasks and targets -------------------------------------------------------------------------------------


def infer_task(series: pd.Series, column: dict[str, Any]) -> tuple[str, str]:
    """("classification" or "regression", the reason in words) for the target `series` described by `column`.

    Money, percentages, fractional numbers and many distinct whole numbers are regression; words, yes/no
    flags and whole numbers with few distinct values (at most 20, and at most 5% of the rows or at most 5)
    are classes. Missing marks (n/a, -, ?, blanks) are not values. Raises GlassboxError for a target that is
    empty or holds dates."""
    name = column["name"]
    values = [c for c in cells(series) if c is not None]
    if not values:
        raise GlassboxError(f"the target {name} is empty in every row")
    counts = Counter(values)
    conversion = column.get("conversion") or _numbers(counts)[0] or _times(counts)[0]
    kind = conversion["kind"] if conversion else None
    if kind == "datetime":
        raise GlassboxError(f"the target {name} holds dates: choose a column of classes or numbers")
    if kind == "boolean":
        return "classification", f"{name} is yes/no"
    if kind in ("currency", "percent"):
        unit = "money" if kind == "currency" else "a percentage"
        return "regression", f"{name} is {unit}, a quantity, not classes"
    if kind == "number":
        numbers = {v for v in (_to_number(t, conversion) for t in counts) if v is not None}
        distinct = len(numbers)
        if not all(v.is_integer() for v in numbers):
            return "regression", f"{name} holds numbers with decimals ({distinct} distinct values)"
        if distinct <= _MAX_CLASSES and (distinct <= _CLASS_SHARE * len(values) or distinct <= _FEW_CLASSES):
            return "classification", (f"{name} holds {distinct} distinct whole numbers: classes "
                                      "(choose regression to predict them as numbers)")
        return "regression", f"{name} holds {distinct} distinct whole numbers: a quantity"
    return "classification", f"{name} holds {len(counts)} distinct labels"


def target_values(series: pd.Series, task: str, column: dict[str, Any]) -> tuple[list[Any], list[int]]:
    """(one target per row of `series`, the positions of rows without a usable target).

    Classification: the label as written (str); a yes/no target spelled many ways uses the most frequent
    spelling of each side ("Yes" and "y" are both "yes"), whole numbers lose a written ".0". Regression: the
    number read with the column's conversion (float). A row without a value (n/a, -, #N/A, ?, NaN, null,
    blank) or, for regression, with text that is not a number is None and listed among the positions.

    Raises GlassboxError for an unknown task, or a regression target that holds no number."""
    if task not in TASKS:
        raise GlassboxError(f"unknown task {task!r} (tasks: {', '.join(TASKS)})")
    column_cells = cells(series)
    conversion = column.get("conversion")
    values: list[Any] = [None] * len(column_cells)
    if task == "classification":
        lookup = _flag_lookup(conversion) if conversion and conversion["kind"] == "boolean" else None
        whole = conversion is not None and conversion["kind"] == "number"
        for i, text in enumerate(column_cells):
            if text is None:
                continue
            label = text
            if lookup is not None and text.casefold() in lookup:
                label = conversion["true"][0] if lookup[text.casefold()] else conversion["false"][0]  # type: ignore[index]
            elif whole and (number := _to_number(text, conversion)) is not None and number.is_integer():  # type: ignore[arg-type]
                label = str(int(number))
            values[i] = label
    else:
        if not conversion or conversion["kind"] not in ("number", "currency", "percent"):
            conversion = _numbers(Counter(c for c in column_cells if c is not None), codes_are_numbers=True)[0]
            if conversion is None:
                raise GlassboxError(f"the target {column['name']} holds no numbers: it cannot be a regression target")
        for i, text in enumerate(column_cells):
            if text is not None:
                values[i] = _to_number(text, conversion)
    return values, [i for i, v in enumerate(values) if v is None]


# ---- typed frame -------------------------------------------------------------------------------------------


def typed(frame: pd.DataFrame, columns: list[dict[str, Any]]) -> tuple[pd.DataFrame, list[tuple[int, str]]]:
    """The model's columns of `frame` as values, and the cells that could not be converted.

    One column per kept feature (`feature_columns`), same names, rows by position: numeric and boolean as
    float64 (flags 1.0/0.0, NaN missing), categorical as object (the text as shown, leading zeros kept, None
    missing), datetime as datetime64[ns] (NaT missing). Problems are (row position, "price: 'abc' is not a
    number"), sorted by row; those cells become missing and the caller decides whether to refuse the row.
    Applies the stored conversions, so new files read as the training rows did ("1450" in a dollar column).

    Raises GlassboxError naming the feature columns `frame` lacks."""
    features = feature_columns(columns)
    absent = [c["name"] for c in features if c["name"] not in frame.columns]
    if absent:
        raise GlassboxError(f"the table lacks the column(s) {listed([repr(a) for a in absent])}")
    out: dict[str, Any] = {}
    problems: list[tuple[int, str]] = []
    for column in features:
        name = column["name"]
        values, bad = _convert(cells(frame[name]), column)
        out[name] = values
        problems += [(row, f"{name}: {text!r} {why}") for row, text, why in bad]
    problems.sort(key=lambda p: p[0])
    return pd.DataFrame(out, index=pd.RangeIndex(len(frame))), problems


def _convert(column: list[str | None], description: dict[str, Any]) -> tuple[Any, list[tuple[int, str, str]]]:
    """A column's values (numpy array or list) and its unreadable cells (row, text, why)."""
    role = description["role"]
    if role == "categorical":
        return pd.Series(column, dtype=object), []
    conversion = description.get("conversion")
    if conversion is None:  # a description made by hand: decide the conversion from these cells
        counts = Counter(c for c in column if c is not None)
        reading = _forced(description["name"], counts, 0, role)
        conversion = reading.conversion or {}
    kind = conversion.get("kind")
    distinct = {c for c in column if c is not None}
    bad: list[tuple[int, str, str]] = []
    if kind == "datetime":
        texts = sorted(distinct)
        parsed = dict(zip(texts, _parse_times(texts, conversion["format"]), strict=True))
        why = f"is not a date in the form {_format_words(conversion['format'])}"
        result = pd.Series([parsed[c] if c is not None else pd.NaT for c in column], dtype="datetime64[ns]")
        bad = [(i, c, why) for i, c in enumerate(column) if c is not None and pd.isna(parsed[c])]
        return result, bad
    if kind == "boolean":
        lookup = _flag_lookup(conversion)
        mapping = {c: lookup.get(c.casefold()) for c in distinct}
        seen = listed([*conversion["true"], *conversion["false"]])
        why = f"is not a yes/no value like those seen ({seen})"
    else:
        mapping = {c: _to_number(c, conversion) for c in distinct}
        why = f"is not a number in {conversion['symbol']}" if kind == "currency" else "is not a number"
    result = np.full(len(column), np.nan)
    for i, c in enumerate(column):
        if c is None:
            continue
        value = mapping[c]
        if value is None:
            bad.append((i, c, why))
        else:
            result[i] = value
    return result, bad
