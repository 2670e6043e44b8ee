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
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from core.data.code_pages import guess_code_page
from core.errors import GlassboxError

__all__ = ["DELIMITER_NAMES", "MAX_BYTES", "Table", "detect_encoding", "looks_like_text", "read_table"]

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
        body = records
        width = max(len(cells) for _, cells in body)
        columns = [f"column {i}" for i in range(1, width + 1)]
        if why:
            notes.append(f"no header row: the first row looks like data ({why}); columns are named "
                         f"{', '.join(columns[:3])}{'...' if width > 3 else ''}")
    return Table(source.name, encoding, delimiter or "", columns, body, decided, irregular, notes)


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
    """Header cells as usable, distinct names: blanks become "column N", repeats get " (2)"."""
    names: list[str] = []
    for position, cell in enumerate(header, start=1):
        base = cell.strip() or f"column {position}"
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base} ({n})"
        names.append(name)
    return names


def _named(delimiter: str) -> str:
    return DELIMITER_NAMES.get(delimiter, repr(delimiter))
