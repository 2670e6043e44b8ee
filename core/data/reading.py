"""The one reader of delimited text files (CSV, TSV, a `labels.csv`, a `.txt` of one text per line),
shared by every modality so that a file is read the same way wherever it is uploaded.

Spreadsheets and scripts write such files in many dialects, so what people do not think about is
detected, and every decision is said in `Table.notes`:

- **Encoding**: a BOM decides (UTF-8, UTF-16); without one, UTF-16 when every other byte is zero, UTF-8
  when the bytes are valid UTF-8, else the legacy code page `code_pages.guess_code_page` finds
  (Windows-1252, -1251, Shift-JIS, GBK...), falling back to Windows-1252/Latin-1; a note says when
  another page would read the file as plausibly.
- **Delimiter**: Excel's `sep=;` first line when there is one; else the candidate (`, ; tab |`) that splits
  the first records most consistently. csv.Sniffer is not used: on texts full of punctuation it picks
  letters or spaces.
- **Header**: assumed, unless the first row looks like data: one of its cells is a value that repeats in
  its column below (a label), or it has numbers where the column below is numeric.
- **Quotes**: quoted line breaks are read as part of their field. A quote that never closes properly
  would swallow the following lines into one field (and so fuse rows and relabel them), so records
  are parsed strictly; a record that fails is reported by its line in `Table.irregular` and that line
  is read as it stands, without quote processing; reading goes on at the next line.
- **Long fields**: a single field may be as long as the whole file (the csv module's default limit is
  131,072 characters, which refused whole files over one long document).

A `.txt` read with `one_column` is one text per line, with no delimiter detection: its commas are
part of the texts.

`read_frame` reads any table a user uploads (those files, Excel `.xlsx` through openpyxl, Parquet through
pyarrow) into a `Frame` of text cells exactly as the user sees them, so that every later step judges the
same values whatever the format:

- **Excel**: the sheet holding the largest table is read unless one is named (a README sheet is not a
  table); title rows above the header are skipped and the header row found; merged cells are filled with
  their value in every cell they cover; a footer (a note, a source, a total line) below the data is cut.
  Numbers are written as Excel shows them, to 15 significant digits (3.0 -> "3"), dates in ISO 8601.
- **Column names**: blanks become "column N", repeats "x (2)", never a name another column has.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import itertools
import math
import re
import statistics
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from core.data.code_pages import guess_code_page
from core.errors import GlassboxError

__all__ = ["DELIMITER_NAMES", "EXCEL_SUFFIXES", "FRAME_SUFFIXES", "MAX_BYTES", "PARQUET_SUFFIXES", "TEXT_SUFFIXES",
           "Frame", "Table", "detect_encoding", "looks_like_text", "read_frame", "read_table", "sheets"]

MAX_BYTES = 256 * 1024**2
"""Largest file read (bytes): the whole file is decoded in memory."""

DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "vertical bar", "\n": "one text per line",
                   "": "none (one column)"}

_DELIMITERS = (",", ";", "\t", "|")
_TAB_SUFFIXES = (".tsv", ".tab")
_ONE_PER_LINE = "\n"  # Table.delimiter of a .txt read as one text per line
_SNIFF_CHARS = 256 * 1024
_SNIFF_ROWS = 200
# a delimiter must split nearly every row alike where one column is also a valid answer
_STRICT_CONSISTENCY = 0.9
_SEP_LINE = re.compile(r"^\ufeff?sep=(.)\s*$", re.IGNORECASE)
# a column is numeric when this share of its cells parse as numbers
_NUMERIC_SHARE = 0.9
_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?%?$")

# A field may hold a whole file. The limit is process-wide in the csv module; raising it only lets
# longer fields through, it changes nothing else any reader does.
csv.field_size_limit(MAX_BYTES)


@dataclass(frozen=True)
class Table:
    """A delimited file as rows of cells.

    `rows` are (line, cells) for every non-blank record, `line` counting from 1 where the record starts
    in the file (a quoted text may span several). `irregular` maps the line of each record that could
    not be parsed as quoted CSV, and was read as it stands, to the reason. `notes` says in words what
    was decided beyond the plain reading (a `sep=` line, no header, an uncertain encoding), for the user."""

    name: str
    encoding: str
    delimiter: str  # one of `DELIMITER_NAMES`: "\n" for one text per line, "" for one column
    columns: list[str]
    rows: list[tuple[int, list[str]]]
    has_header: bool
    irregular: dict[int, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    header: list[str] = field(default_factory=list)  # the header row's cells as written ([] without a header)


def read_table(
    source: Path, *, one_column: bool = False, header: bool | None = None, suffixes: tuple[str, ...] = (),
    max_bytes: int = MAX_BYTES,
) -> Table:
    """Read `source` as a table.

    A file that no delimiter splits is one column (quotes still apply); the caller says what is missing.
    `one_column`: the caller expects one column may be all there is, so a delimiter must split nearly
    every row alike to be believed (commas inside texts must not make a table of them), and a `.txt`
    is one text per line with no header, in a column named "text". `header`: True or False forces
    it, None detects it (see the module docstring). `suffixes`: the accepted file endings (any if
    empty).

    Raises GlassboxError for a missing, oversized, empty, binary or undecodable file, a wrong ending,
    or a header without data rows."""
    source = Path(source)
    if not source.is_file():
        raise GlassboxError(f"{source.name}: not a file")
    suffix = source.suffix.lower()
    if suffixes and suffix not in suffixes:
        raise GlassboxError(f"{source.name}: upload a CSV or TSV file ({', '.join(suffixes)})")
    if source.stat().st_size > max_bytes:
        raise GlassboxError(f"{source.name} is larger than {max_bytes // 1024**2} MiB")
    raw = source.read_bytes()
    encoding, alternatives = _detect(raw)
    text = _decode(raw, encoding, source.name)
    if not text.strip():
        raise GlassboxError(f"{source.name} is empty")
    notes = [f"the encoding {encoding} is a guess: {', '.join(alternatives)} would read it differently; save the file "
             "as UTF-8 if its letters look wrong"] if alternatives else []
    lines = list(io.StringIO(text, newline=""))

    if one_column and suffix == ".txt":
        rows = [(n, [line.rstrip("\r\n")]) for n, line in enumerate(lines, start=1) if line.strip()]
        notes.append("one text per line (a .txt file): commas and tabs are part of the texts")
        return Table(source.name, encoding, _ONE_PER_LINE, ["text"], rows, False, {}, notes)

    first = 0
    delimiter = None
    hinted = _SEP_LINE.match(lines[0].rstrip("\r\n")) if lines else None
    if hinted:
        delimiter, first = hinted.group(1), 1
        notes.append(f"the first line {lines[0].strip()!r} sets the delimiter ({_named(delimiter)})")
    else:
        delimiter = _detect_delimiter(lines, suffix, complete=True, strict=one_column)
    records, irregular = _records(lines[first:], delimiter or "\x1f", first_line=first + 1)
    if not records:
        raise GlassboxError(f"{source.name} is empty")

    decided, why = _has_header(records) if header is None else (header, "")
    if decided:
        (_, header_cells), body = records[0], records[1:]
        if not body:
            raise GlassboxError(f"{source.name} has a header row but no data rows")
        columns = _column_names(header_cells)
    else:
        header_cells = []
        body = records
        width = max(len(cells) for _, cells in body)
        columns = [f"column {i}" for i in range(1, width + 1)]
        if why:
            notes.append(f"no header row: the first row looks like data ({why}); columns are named "
                         f"{', '.join(columns[:3])}{'...' if width > 3 else ''}")
    return Table(source.name, encoding, delimiter or "", columns, body, decided, irregular, notes, header_cells)


def looks_like_text(source: Path, suffixes: tuple[str, ...]) -> bool:
    """Whether `source` has one of `suffixes` and its first 256 KiB decode as text (no NUL bytes), so that
    detecting a modality stays cheap for large uploads. The columns are not judged here: a CSV with one
    column is still a CSV, and reading it says which column is missing."""
    source = Path(source)
    if not source.is_file() or source.suffix.lower() not in suffixes:
        return False
    try:
        with open(source, "rb") as fh:
            head = fh.read(_SNIFF_CHARS)
    except OSError:
        return False
    # the head may end inside a character: ignore that here, reading decodes the whole file strictly
    return "\x00" not in head.decode(detect_encoding(head, partial=True), errors="ignore")


# ---- encoding ------------------------------------------------------------------------------------------


def detect_encoding(raw: bytes, *, partial: bool = False) -> str:
    """The encoding of a text file's bytes (a Python codec name); see the module docstring for the order.
    `partial`: `raw` is a file's beginning, so a multi-byte character cut at the end is not a reason
    to give up on UTF-8."""
    return _detect(raw, partial=partial)[0]


def _detect(raw: bytes, *, partial: bool = False) -> tuple[str, list[str]]:
    """(codec, other code pages that would read the bytes differently but as plausibly)."""
    if raw.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", []
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", []
    utf16 = _utf16_without_bom(raw, partial=partial)
    if utf16:
        return utf16, []
    try:
        codecs.getincrementaldecoder("utf-8")().decode(raw, final=not partial)
        return "utf-8", []
    except UnicodeDecodeError:
        pass
    return _legacy(raw)


def _utf16_without_bom(raw: bytes, *, partial: bool) -> str | None:
    """UTF-16 without a BOM: every ASCII character (delimiters, digits, spaces, line breaks) has a zero
    byte, all on the same side, while UTF-8 or code-page text has no zero byte at all. So: zeros on one
    side for at least 5% of the characters (a CSV's delimiters and line breaks alone pass that, in any
    script), almost none on the other, an even length, and a strict decoding without control characters
    but tabs and line breaks; binary data fails one of these."""
    if len(raw) < 4 or (not partial and len(raw) % 2):
        return None
    head = raw[:8192]
    half = len(head) // 2
    low, high = head[1::2].count(0), head[0::2].count(0)
    for codec, zeros, other in (("utf-16-le", low, high), ("utf-16-be", high, low)):
        if zeros < 0.05 * half or other > 0.01 * half:
            continue
        try:
            text = codecs.getincrementaldecoder(codec)().decode(head, final=False)
        except UnicodeDecodeError:
            continue
        if not any(unicodedata.category(c) == "Cc" and c not in "\t\r\n" for c in text):
            return codec
    return None


def _legacy(raw: bytes) -> tuple[str, list[str]]:
    """(codec, rivals) for bytes that are not UTF-8 (`code_pages.guess_code_page`). A Western guess is
    named as Excel writes it: Windows-1252 when bytes 0x80-0x9F occur, else Latin-1 (the same text)."""
    guess = guess_code_page(raw)
    if guess is not None and guess.codec not in ("cp1252", "latin-1"):
        return guess.codec, guess.rivals
    if any(0x80 <= byte <= 0x9F for byte in raw):
        try:
            raw.decode("cp1252")
            return "cp1252", []
        except UnicodeDecodeError:
            pass
    return "latin-1", []


def _decode(raw: bytes, encoding: str, name: str) -> str:
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        # a BOM or a zero-byte pattern promised an encoding the rest of the file does not keep to
        raise GlassboxError(
            f"{name} looks like {encoding.upper()} but is not valid ({exc.reason} at byte {exc.start})"
        ) from None
    if "\x00" in text:
        raise GlassboxError(f"{name} holds binary data (NUL bytes), not text")
    return text


# ---- delimiter and records -------------------------------------------------------------------------------


def _detect_delimiter(lines: list[str], suffix: str, *, complete: bool, strict: bool) -> str | None:
    """The candidate that splits the first records into the same number (at least two) of fields most
    consistently, or None; a .tsv/.tab suffix makes tab win ties, otherwise the order is , ; tab |.
    `strict` accepts only a delimiter that splits nearly every row alike (where one column is also a
    valid answer, a comma inside some texts must not make a table of them). `complete`: `lines` is
    the whole file (else its last line may be cut in half and is left out)."""
    sample = lines if complete else lines[:-1] or lines
    preference = sorted(_DELIMITERS, key=lambda d: d != "\t") if suffix in _TAB_SUFFIXES else _DELIMITERS
    best: tuple[float, int] | None = None
    chosen = None
    for rank, delimiter in enumerate(preference):
        records, _ = _records(sample, delimiter, first_line=1, limit=_SNIFF_ROWS)
        if not records or len(records[0][1]) < 2:
            continue
        width = len(records[0][1])
        consistent = sum(1 for _, cells in records if len(cells) == width) / len(records)
        if strict and consistent < _STRICT_CONSISTENCY:
            continue
        score = (consistent, -rank)
        if best is None or score > best:
            best, chosen = score, delimiter
    return chosen


class _Lines:
    """Physical lines for csv.reader, with a position the parser can move back to after a bad record."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.pos = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self.pos >= len(self.lines):
            raise StopIteration
        self.pos += 1
        return self.lines[self.pos - 1]


def _records(
    lines: list[str], delimiter: str, *, first_line: int, limit: int | None = None
) -> tuple[list[tuple[int, list[str]]], dict[int, str]]:
    """(line, cells) of the non-blank records, and {line: reason} of those read as they stand.

    Strict quoting is what tells a quote that never closes (or closes in the middle of a field) from a
    quoted line break: the csv module resets its state at each record, so after a failure the parser
    moves back to the line after the failed record's first one and goes on."""
    source = _Lines(lines)
    reader = csv.reader(source, delimiter=delimiter, strict=True)
    records: list[tuple[int, list[str]]] = []
    irregular: dict[int, str] = {}
    while source.pos < len(lines) and (limit is None or len(records) < limit):
        start = source.pos
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error:
            cells = next(csv.reader([lines[start]], delimiter=delimiter, quoting=csv.QUOTE_NONE), [])
            irregular[first_line + start] = ("a quote opened on this line is not closed properly; the line was read "
                                             "as it stands, so it is not fused with the lines after it")
            source.pos = start + 1
        if any(cell.strip() for cell in cells):
            records.append((first_line + start, cells))
    return records, irregular


# ---- header --------------------------------------------------------------------------------------------


def _has_header(records: list[tuple[int, list[str]]]) -> tuple[bool, str]:
    """(whether the first record is a header, why not). A header is assumed unless the first row looks
    like data: a cell equal to a value that repeats in its column below (a label such as "pos"), or
    numbers in every column that is numeric below."""
    (_, first), body = records[0], [cells for _, cells in records[1:_SNIFF_ROWS * 5]]
    if not body:
        return True, ""
    numeric_columns = 0
    numbers_in_first = 0
    for index, cell in enumerate(first):
        values = [cells[index].strip() for cells in body if index < len(cells) and cells[index].strip()]
        if not values:
            continue
        counts: dict[str, int] = {}
        for value in values:
            counts[value] = counts.get(value, 0) + 1
        if counts.get(cell.strip(), 0) >= 2 and len(counts) <= max(2, len(values) // 2):
            return False, f"its {cell.strip()!r} is also a value of that column below"
        if sum(1 for v in values if _NUMBER.match(v)) >= _NUMERIC_SHARE * len(values):
            numeric_columns += 1
            numbers_in_first += bool(_NUMBER.match(cell.strip()))
    if numeric_columns and numbers_in_first == numeric_columns:
        return False, "it has numbers where the columns below are numeric"
    return True, ""


def _column_names(header: list[str]) -> list[str]:
    """Header cells as usable, distinct names: blanks become "column N" (N: the position), repeats get
    " (2)", " (3)"... A generated name skips every name written in the header, so that `score, score,
    score (2)` gives `score, score (3), score (2)`: no column takes another's name, and the same header
    always gives the same names (a prediction file maps as the training file did)."""
    written = {cell.strip() for cell in header if cell.strip()}
    names: list[str] = []
    for position, cell in enumerate(header, start=1):
        base = cell.strip()
        if base and base not in names:
            names.append(base)
            continue
        stem = base or f"column {position}"
        candidates = itertools.chain([] if base else [stem], (f"{stem} ({n})" for n in itertools.count(2)))
        name = next(c for c in candidates if c not in names and c not in written)
        names.append(name)
    return names


def _named(delimiter: str) -> str:
    return DELIMITER_NAMES.get(delimiter, repr(delimiter))


# ---- frames: any uploaded table as text cells ---------------------------------------------------------------

TEXT_SUFFIXES = (".csv", ".tsv", ".tab", ".txt")
EXCEL_SUFFIXES = (".xlsx", ".xlsm")
PARQUET_SUFFIXES = (".parquet", ".pq")
FRAME_SUFFIXES = TEXT_SUFFIXES + EXCEL_SUFFIXES + PARQUET_SUFFIXES
"""The endings `read_frame` reads."""

_OLD_FORMATS = {".xls": "an old binary Excel workbook (.xls)", ".xlsb": "a binary Excel workbook (.xlsb)",
                ".ods": "an OpenDocument spreadsheet (.ods)", ".numbers": "a Numbers spreadsheet"}
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # the container of .xls files and of password-protected workbooks
_EXCEL_DIGITS = 15  # Excel shows and keeps 15 significant digits
_MAX_SHEET_CELLS = 50_000_000  # a sheet's used range above this is refused rather than filled in memory
# the first cell of a row below the data that says the row is a footer, not a record
_FOOTER = re.compile(r"^\s*(grand\s+total|totals?|sum|subtotal|source|sources|note|notes|n\s*=|average|mean|\*|©)"
                     r"(\b|\s|:|$)", re.IGNORECASE)
_PANDAS_INDEX = re.compile(r"^__index_level_\d+__$")


@dataclass
class Frame:
    """An uploaded table as the user sees it: every cell of `frame` (object dtype) a `str` stripped of
    surrounding spaces, or None for an empty cell; column names unique and non-empty.

    `lines[i]` is where frame row i comes from: its line in a text file, its row in the sheet, its row
    (from 1) in a Parquet file; `line_label` is the word for it in messages ("line" or "row"). `notes`
    are the reader's decisions in words (the sheet chosen, the header row found, columns renamed, a footer
    cut). `short_rows` and `long_rows` map the line of each text record with fewer cells than the header
    (padded with None) or with extra non-empty cells (left out) to a reason; `irregular` the line of each
    record whose quotes could not be parsed (read as it stands). `problems()` merges the three."""

    frame: pd.DataFrame
    lines: list[int]
    notes: list[str] = field(default_factory=list)
    sheet: str | None = None
    name: str = ""
    line_label: str = "line"
    short_rows: dict[int, str] = field(default_factory=dict)
    long_rows: dict[int, str] = field(default_factory=dict)
    irregular: dict[int, str] = field(default_factory=dict)

    def problems(self) -> dict[int, str]:
        """{line: reason} of every record read with a doubt (see the class docstring), in line order."""
        merged: dict[int, list[str]] = {}
        for source in (self.irregular, self.short_rows, self.long_rows):
            for line, reason in source.items():
                merged.setdefault(line, []).append(reason)
        return {line: "; ".join(merged[line]) for line in sorted(merged)}


def read_frame(path: Path, *, sheet: str | None = None, max_bytes: int = MAX_BYTES) -> Frame:
    """Read a CSV/TSV/.txt table (through `read_table`), an Excel workbook (.xlsx, .xlsm; openpyxl) or a
    Parquet file (pyarrow) into a `Frame` of text cells.

    `sheet` names the Excel sheet to read; None chooses the sheet with the largest table (its number of
    rows times columns; one of several columns before one of a single column, such as a README's lines;
    a visible sheet before a hidden one), saying so in the notes. For other files it is ignored, with a note.

    Raises GlassboxError (one line) for a missing, oversized, unreadable or unsupported file (.xls: save it
    as .xlsx or CSV), a sheet name the workbook lacks (the message lists its sheets), a sheet or workbook
    without a table, and everything `read_table` refuses."""
    source = Path(path)
    suffix = source.suffix.lower()
    if suffix in _OLD_FORMATS:
        raise GlassboxError(f"{source.name} is {_OLD_FORMATS[suffix]}, which cannot be read here: open it and save "
                            "it as .xlsx (Excel workbook) or CSV")
    if suffix not in FRAME_SUFFIXES:
        raise GlassboxError(f"{source.name}: upload a CSV, TSV, Excel (.xlsx) or Parquet file")
    if not source.is_file():
        raise GlassboxError(f"{source.name}: not a file")
    if source.stat().st_size > max_bytes:
        raise GlassboxError(f"{source.name} is larger than {max_bytes // 1024**2} MiB")
    if suffix in EXCEL_SUFFIXES:
        return _read_excel(source, sheet)
    notes = [f"the sheet {sheet!r} was named, but {source.name} is not an Excel workbook: "
             "its only table was read"] if sheet is not None else []
    frame = _read_parquet(source) if suffix in PARQUET_SUFFIXES else _read_text(source, max_bytes)
    frame.notes[:0] = notes
    return frame


def sheets(path: Path) -> list[str]:
    """The worksheet names of an Excel workbook, in workbook order; [] for any other file. Raises
    GlassboxError for a workbook that cannot be read."""
    source = Path(path)
    if source.suffix.lower() not in EXCEL_SUFFIXES:
        return []
    workbook = _open_workbook(source, read_only=True)
    try:
        return [sheet.title for sheet in workbook.worksheets]
    finally:
        workbook.close()


def _frame(rows: list[list[str | None]], names: list[str]) -> pd.DataFrame:
    # object dtype keeps None as None: pandas 3 would otherwise infer its string dtype and write NaN
    return pd.DataFrame(rows, columns=names, dtype=object) if rows else pd.DataFrame(columns=names, dtype=object)


def _rename_notes(header: list[str], names: list[str]) -> list[str]:
    """Notes saying which header cells were renamed (repeats) or named (blanks)."""
    repeats = [f"{cell.strip()} -> {name}" for cell, name in zip(header, names, strict=True)
               if cell.strip() and cell.strip() != name]
    blanks = [name for cell, name in zip(header, names, strict=True) if not cell.strip()]
    notes = []
    if repeats:
        notes.append(f"duplicate column names renamed: {', '.join(repeats)}")
    if blanks:
        notes.append(f"columns without a name in the header named by their position: {', '.join(blanks)}")
    return notes


def _drop_unnamed_empty(header: list[str], names: list[str], rows: list[list[str | None]],
                        ) -> tuple[list[str], list[str], list[list[str | None]], list[str]]:
    """Columns with neither a name nor a value (spacers, trailing delimiters) left out: (header, names,
    rows, notes)."""
    keep = [i for i, cell in enumerate(header) if cell.strip() or any(row[i] is not None for row in rows)]
    if len(keep) == len(header):
        return header, names, rows, []
    gone = len(header) - len(keep)
    note = (f"{gone} column{'s' if gone > 1 else ''} with neither a name nor a value "
            f"({', '.join(names[i] for i in range(len(names)) if i not in keep)}) left out")
    return ([header[i] for i in keep], [names[i] for i in keep], [[row[i] for i in keep] for row in rows],
            [note])


def _trimmed(cells: list[str]) -> list[str | None]:
    return [cell.strip() or None for cell in cells]


# ---- delimited text ------------------------------------------------------------------------------------------


def _read_text(source: Path, max_bytes: int) -> Frame:
    """A delimited file through `read_table`: cells stripped, rows padded or cut to the header's width."""
    table = read_table(source, max_bytes=max_bytes)
    records = [(line, _trimmed(cells)) for line, cells in table.rows]
    width = len(table.columns)
    header = table.header if table.has_header else [""] * width
    notes = list(table.notes)

    def used_length(cells: list[str | None]) -> int:
        return max((i + 1 for i, cell in enumerate(cells) if cell is not None), default=0)

    longer = [line for line, cells in records if used_length(cells) > width]
    if len(longer) > len(records) / 2:
        # most rows have more values than the header has names: the header lacks names, the rows are right
        grown = max(used_length(cells) for _, cells in records)
        notes.append(f"the header names {width} columns but most rows have more values: "
                     f"the {grown - width} extra column{'s are' if grown - width > 1 else ' is'} named by position")
        header = header + [""] * (grown - width)
        width = grown
    names = _column_names(header) if table.has_header else [f"column {i}" for i in range(1, width + 1)]
    if table.has_header:
        notes.extend(_rename_notes(header, names))

    short_rows: dict[int, str] = {}
    long_rows: dict[int, str] = {}
    rows: list[list[str | None]] = []
    for line, cells in records:
        used = used_length(cells)
        if used > width:
            extra = [cell for cell in cells[width:] if cell is not None]
            shown = ", ".join(repr(cell) for cell in extra[:3]) + (" ..." if len(extra) > 3 else "")
            long_rows[line] = (f"{used} values for {width} columns: the extra value{'s' if len(extra) > 1 else ''} "
                               f"{shown} left out")
        elif len(cells) < width:
            short_rows[line] = f"{len(cells)} of {width} values: the missing ones are empty"
        rows.append((cells + [None] * width)[:width])
    header, names, rows, dropped = _drop_unnamed_empty(header, names, rows)
    notes.extend(dropped)
    return Frame(_frame(rows, names), [line for line, _ in records], notes, None, source.name, "line",
                 short_rows, long_rows, dict(table.irregular))


# ---- cells as shown ----------------------------------------------------------------------------------------------


def _cell_text(value: Any) -> str | None:
    """A typed cell as the user sees it: numbers to 15 significant digits with no trailing ".0" (3.0 -> "3",
    0.30000000000000004 -> "0.3", as Excel shows them), booleans TRUE/FALSE, dates ISO 8601 ("2024-01-31",
    or "2024-01-31 13:45:00" when there is a time of day), text stripped; None for an empty cell or NaN."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        shown = float(f"{value:.{_EXCEL_DIGITS}g}")
        # repr is the shortest text that reads back as the same float
        return str(int(shown)) if shown.is_integer() and abs(shown) < 1e16 else repr(shown)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None and value.time() == dt.time():
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return _cell_text(int(value)) if value == value.to_integral_value() else format(value.normalize(), "f")
    return str(value).strip() or None


# ---- Excel -----------------------------------------------------------------------------------------------------------


@dataclass
class _Block:
    """The table found on one sheet: `rows` are (sheet row, cells) of the data, cells already as text."""

    sheet: str
    header: list[str]
    has_header: bool
    rows: list[tuple[int, list[str | None]]]
    notes: list[str]

    @property
    def size(self) -> int:
        return len(self.rows) * len(self.header)

    def shape(self) -> str:
        rows, columns = len(self.rows), len(self.header)
        return f"{rows} row{'s' * (rows != 1)} × {columns} column{'s' * (columns != 1)}"


def _open_workbook(source: Path, *, read_only: bool) -> Any:
    """openpyxl's workbook of `source`, cached values rather than formulas (data_only)."""
    import openpyxl

    with open(source, "rb") as fh:
        magic = fh.read(4)
    if magic == _OLE_MAGIC:
        raise GlassboxError(f"{source.name} is an old binary (.xls) or password-protected workbook: open it and save "
                            "it as .xlsx without a password, or as CSV")
    try:
        return openpyxl.load_workbook(source, read_only=read_only, data_only=True)
    except Exception:  # noqa: BLE001 - a damaged archive fails in zipfile, XML, openpyxl or a KeyError alike
        raise GlassboxError(f"{source.name} is not a readable Excel workbook (.xlsx)") from None


def _read_excel(source: Path, sheet: str | None) -> Frame:
    workbook = _open_workbook(source, read_only=False)
    worksheets = workbook.worksheets
    names = [ws.title for ws in worksheets]
    if sheet is not None:
        if sheet not in names:
            raise GlassboxError(f"{source.name} has no sheet {sheet!r}; its sheets: {', '.join(map(repr, names))}")
        block = _sheet_block(workbook[sheet])
        if block is None:
            raise GlassboxError(f"the sheet {sheet!r} of {source.name} holds no table")
        notes = [f"sheet {sheet!r} read, as asked"] if len(names) > 1 else []
    else:
        blocks = {ws.title: _sheet_block(ws) for ws in worksheets}
        visible = {ws.title for ws in worksheets if ws.sheet_state == "visible"}
        found = [b for b in blocks.values() if b is not None]
        if not found:
            raise GlassboxError(f"{source.name} holds no table on any sheet")
        # the largest table, a visible sheet before a hidden one, and several columns before one (a README's
        # lines are one column); max keeps the first of equals
        block = max(found, key=lambda b: (b.sheet in visible, len(b.header) > 1, b.size))
        notes = []
        if len(names) > 1:
            others = [f"{name!r} ({blocks[name].shape() if blocks[name] else 'no table'})"
                      for name in names if name != block.sheet]
            notes.append(f"sheet {block.sheet!r} read: it holds the largest table ({block.shape()}); the other "
                         f"sheets: {', '.join(others)}; name another sheet to read it instead")
    notes.extend(block.notes)
    header = block.header
    if block.has_header:
        columns = _column_names(header)
        notes.extend(_rename_notes(header, columns))
    else:
        columns = [f"column {i}" for i in range(1, len(header) + 1)]
    rows = [cells for _, cells in block.rows]
    header, columns, rows, dropped = _drop_unnamed_empty(header if block.has_header else [""] * len(columns),
                                                         columns, rows)
    notes.extend(dropped)
    return Frame(_frame(rows, columns), [line for line, _ in block.rows], notes, block.sheet, source.name, "row")


def _sheet_block(ws: Any) -> _Block | None:
    """The table on a worksheet, or None when it holds no value.

    The header is the first row that spans (nearly) the width of the rows below and fills at least half
    of its span: a title (one cell, merged or not) or a note above it fails both. Below the data, a blank
    row followed only by sparse rows (at most half the columns filled), or trailing rows starting with
    "Total", "Source", "Note", "n =" and the like, are a footer and cut. Merged cells are filled with their
    value in every cell they cover, once the table is found (a merged title would otherwise look like a
    full row)."""
    if ws.max_row * ws.max_column > _MAX_SHEET_CELLS:
        raise GlassboxError(f"the sheet {ws.title!r} is too large to read here ({ws.max_row} rows × {ws.max_column} "
                            "columns in use): save it as CSV")
    grid = [(number, [_cell_text(value) for value in values])
            for number, values in enumerate(ws.iter_rows(values_only=True), start=1)]
    grid = [(number, cells) for number, cells in grid if any(cell is not None for cell in cells)]
    if not grid:
        return None
    filled = [[i for i, cell in enumerate(cells) if cell is not None] for _, cells in grid]
    wide = [cols for cols in filled if len(cols) >= 2]
    start = 0
    if wide:
        left = statistics.median_low([cols[0] for cols in wide])
        right = statistics.median_high([cols[-1] for cols in wide])
        for index, cols in enumerate(filled):
            span = cols[-1] - cols[0] + 1
            if len(cols) >= 2 and cols[0] <= left and cols[-1] >= right - 0.2 * (right - left + 1) \
                    and len(cols) >= span / 2:
                start = index
                break
    notes = []
    header_number = grid[start][0]
    if start:
        skipped = ", ".join(repr(next(c for c in cells if c is not None)[:40]) for _, cells in grid[:min(start, 3)])
        skipped += " ..." if start > 3 else ""
        notes.append(f"the header is row {header_number} of sheet {ws.title!r}: the rows above it ({skipped}) "
                     "were skipped as a title or notes")
    end = _table_end(grid, filled, start)
    if end < len(grid):
        cut = [repr(next(c for c in cells if c is not None)[:40]) for _, cells in grid[end:]]
        where = f"row {grid[end][0]}" if end == len(grid) - 1 else f"rows {grid[end][0]}-{grid[-1][0]}"
        notes.append(f"{where} below the table left out as a footer: {', '.join(cut[:3])}"
                     f"{' ...' if len(cut) > 3 else ''}")
    kept = grid[start:end]
    first = min(cols[0] for cols in filled[start:end])
    last = max(cols[-1] for cols in filled[start:end])
    notes.extend(_fill_merged(ws, kept, header_number, grid[end - 1][0]))
    rows = [(number, (cells + [None] * (last + 1 - len(cells)))[first:last + 1]) for number, cells in kept]
    header_cells = [cell or "" for cell in rows[0][1]]
    decided, _ = _has_header([(n, [c or "" for c in cells]) for n, cells in rows]) if len(rows) > 1 else (True, "")
    if not decided:
        notes.append(f"no header row on sheet {ws.title!r}: its first row looks like data; columns are named by "
                     "position")
        return _Block(ws.title, [""] * len(header_cells), False, rows, notes)
    if len(rows) < 2:
        return None
    return _Block(ws.title, header_cells, True, rows[1:], notes)


def _table_end(grid: list[tuple[int, list[str | None]]], filled: list[list[int]], start: int) -> int:
    """The index in `grid` (its non-blank rows) where the footer starts, len(grid) when there is none;
    `start` is the header's index. See `_sheet_block` for the rules."""
    width = filled[start][-1] - filled[start][0] + 1

    def sparse(index: int) -> bool:
        return width >= 2 and len(filled[index]) <= width / 2

    for index in range(start + 2, len(grid)):  # a footer follows at least one data row
        after_blank = grid[index][0] > grid[index - 1][0] + 1
        if after_blank and all(sparse(i) for i in range(index, len(grid))):
            return index
    end = len(grid)
    while end - 1 > start + 1 and _FOOTER.match(grid[end - 1][1][filled[end - 1][0]] or ""):
        end -= 1
    return end


def _fill_merged(ws: Any, kept: list[tuple[int, list[str | None]]], top: int, bottom: int) -> list[str]:
    """Give every cell of each merged range within rows `top`..`bottom` the value of its top-left cell, in
    place; the note names the ranges filled."""
    by_row = {number: cells for number, cells in kept}
    ranges = []
    for merged in ws.merged_cells.ranges:
        if merged.min_row < top or merged.min_row > bottom:
            continue
        value = _cell_text(ws.cell(merged.min_row, merged.min_col).value)
        if value is None:
            continue
        for number in range(merged.min_row, min(merged.max_row, bottom) + 1):
            cells = by_row.get(number)
            if cells is None:
                continue
            for col in range(merged.min_col - 1, merged.max_col):
                if col >= len(cells):
                    cells.extend([None] * (col + 1 - len(cells)))
                cells[col] = value
        ranges.append(merged.coord)
    if not ranges:
        return []
    shown = ", ".join(sorted(ranges, key=lambda coord: (len(coord), coord))[:6]) + (" ..." if len(ranges) > 6 else "")
    return [f"merged cells filled with their value in every cell they cover: {shown}"]


# ---- Parquet -------------------------------------------------------------------------------------------------------


def _read_parquet(source: Path) -> Frame:
    """A Parquet file through pyarrow: each typed column written as text the way `_cell_text` shows it;
    dictionary (categorical) columns decoded; float32 values through their shortest float32 text (0.1, not
    0.10000000149011612); pandas' stored index columns (`__index_level_0__`) left out."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(source)
    except Exception:  # noqa: BLE001 - pyarrow raises ArrowInvalid, OSError or others on a damaged file
        raise GlassboxError(f"{source.name} is not a readable Parquet file") from None
    notes = []
    index_columns = [name for name in table.column_names if _PANDAS_INDEX.match(name)]
    if index_columns:
        notes.append(f"pandas' stored row index ({', '.join(index_columns)}) left out")
    if table.num_rows == 0:
        raise GlassboxError(f"{source.name} has no rows")
    header, columns = [], []
    for name, column in zip(table.column_names, table.columns, strict=True):
        if name in index_columns:
            continue
        if pa.types.is_dictionary(column.type):
            column = pc.cast(column, column.type.value_type)
        if pa.types.is_float16(column.type) or pa.types.is_float32(column.type):
            values = [None if text is None else float(text) for text in pc.cast(column, pa.string()).to_pylist()]
        else:
            values = column.to_pylist()
        header.append(str(name))
        columns.append([_cell_text(value) for value in values])
    names = _column_names(header)
    notes.extend(_rename_notes(header, names))
    rows = [list(row) for row in zip(*columns, strict=True)]
    header, names, rows, dropped = _drop_unnamed_empty(header, names, rows)
    notes.extend(dropped)
    return Frame(_frame(rows, names), list(range(1, len(rows) + 1)), notes, None, source.name, "row")
