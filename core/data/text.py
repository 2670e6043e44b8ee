"""The "text" modality: a CSV or TSV with one text and one label per row.

Spreadsheets and scripts write such files in many dialects, so the encoding (UTF-8 with or without a
BOM, UTF-16, Windows-1252/Latin-1) and the delimiter are detected rather than asked for, and the text
and label columns are suggested from their names and contents; the user may override the columns
(ingest `options`). What would make training meaningless (one class, a class of one row, a label
column that is mostly empty) is refused; rows that cannot be used are the user's call (`drop_bad`);
what is merely suspicious (duplicates, imbalance, very long texts) is reported as a warning.

The accepted rows are written as a normalised UTF-8 `items.csv` (text,label). Tokens only exist once
a model is chosen, so token statistics, truncation and padding happen in `datasets`, with the
model's own tokenizer. This module imports torch only there.
"""

from __future__ import annotations

import math
import re
import statistics
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.config import TrainConfig
from core.data import MODALITIES, reading
from core.data import labels as labelling
from core.data.base import (
    BadFilesError,
    LabelledItems,
    Split,
    balance_warnings,
    item_labels,
    listed,
    read_items,
    warning,
    with_reasons,
    write_items,
)
from core.errors import GlassboxError
from core.models import shipped
from core.models.shipped import DEFAULT_TEXT_BACKBONE

if TYPE_CHECKING:
    import torch
    from torch import nn

    from core.data.base import PhaseProgress

__all__ = ["BadRowsError", "LengthBuckets", "TextModality", "TextsToPredict", "TokenisedTexts", "preview",
           "read_texts"]

_SUFFIXES = (".csv", ".tsv", ".tab", ".txt")
_SUGGEST_ROWS = 5000
_LONG_WORDS = 400
_FEW_ROWS = 10
_IMBALANCE = 5.0
# refuse (rather than ask to drop rows) when a chosen column is empty this often: it is the wrong column
_MOSTLY_EMPTY = 0.5
_SAMPLES = 5
_SAMPLE_CHARS = 300
# texts per tokenizer call in training: large enough for the fast tokenizer's batching, small enough that
# the count moves about every second on a CPU
_TOKENISE_CHUNK = 2000
_HISTOGRAM_BINS = 20
_PREVIEW_ROWS = 5
_OPTIONS = ("text_column", "label_column", labelling.MERGE_OPTION)
TEXT_NAMES = frozenset({
    "text", "texts", "review", "reviews", "sentence", "content", "comment", "comments", "message", "body",
    "document", "doc", "tweet", "description", "utterance", "question", "abstract", "summary", "post",
})
_LABEL_NAMES = frozenset({
    "label", "labels", "class", "category", "sentiment", "target", "rating", "y", "tag", "intent", "topic",
    "polarity", "emotion", "stance", "outcome", "gold",
})
# rows of this many padded batches are sorted by length together: larger pools pad less, smaller ones
# mix batches more between epochs
_POOL_BATCHES = 16


class BadRowsError(BadFilesError):
    """Some rows cannot be used (empty text, no label, a broken row); `bad` holds ("line N", reason)."""

    noun = "row"


class TextModality(LabelledItems):
    name = "text"
    title = "Text"
    training_profile = "scripts"
    baselines = ("tfidf_logreg",)
    options = _OPTIONS
    noun = "texts"
    item_noun = "text"
    search_hint = "a word"
    explanation_noun = "word scores"
    shows_items_as = "snippets"
    items_are_files = False
    input_size_setting = "max_length"
    input_size_unit = "tokens"
    input_size_label = "max tokens"
    settings: tuple[str, ...] = ("max_length",)

    def accepts(self, source: Path) -> bool:
        """A CSV, TSV or text file (see `reading.looks_like_text`); ingest says what is missing from it."""
        return reading.looks_like_text(Path(source), _SUFFIXES)

    def ingest(
        self, source: Path, dest: Path, *, drop_bad: bool = False, options: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """See `Modality.ingest`. `options` may name `text_column` and `label_column`; otherwise the
        suggested ones are used (see `preview`).

        Refusals about the columns and classes come before the bad-rows question, so nobody is asked
        to drop rows only to be refused afterwards."""
        source, dest = Path(source), Path(dest)
        options = options or {}
        table = reading.read_table(source, suffixes=_SUFFIXES)
        text_col, label_col = _chosen_columns(table, options)
        rows, bad = _extract(table, text_col, label_col)
        rows, similar = _merge_similar(rows, bool(options.get(labelling.MERGE_OPTION)))
        _refuse_structure(source.name, table, text_col, label_col, rows, bad)
        if bad and not drop_bad:
            raise BadRowsError(bad)
        kept, duplicates = _deduplicate(rows)
        dest.mkdir(parents=True, exist_ok=True)
        write_items(dest, "text", [(text, label) for _, text, label in kept])
        return _info(table, text_col, label_col, kept, duplicates, [name for name, _ in bad], similar)

    def labels(self, dataset_dir: Path, info: dict[str, Any]) -> list[int]:
        return item_labels(dataset_dir, info, "text")

    def fixed_inputs(self, config: TrainConfig) -> bool:
        """Always: a text is tokenised once and never augmented (the `augmentation` setting is for images),
        and padding to the batch's longest text leaves its features unchanged (mean over real tokens)."""
        return True

    def items(self, dataset_dir: Path, info: dict[str, Any]) -> list[str]:
        return [text for text, _ in read_items(Path(dataset_dir), "text")]

    def datasets(
        self, dataset_dir: Path, info: dict[str, Any], config: TrainConfig, split: Split, model: nn.Module,
        progress: PhaseProgress | None = None,
    ) -> tuple[TokenisedTexts, TokenisedTexts]:
        """Each text of the split is tokenised once, with the model's tokenizer (`model.tokenizer`),
        truncated to the run's max_length or the model's own limit (`model.max_length`), whichever is
        smaller, in chunks whose count goes to `progress` ("tokenising texts"); padding happens per
        batch (see `TokenisedTexts`)."""
        texts = self.items(dataset_dir, info)
        labels = self.labels(dataset_dir, info)
        tokenizer = model.tokenizer
        limit = min(config.max_length, int(model.max_length))
        wanted = sorted({*split.train, *split.val})
        ids: dict[int, list[int]] = {}
        for start in range(0, len(wanted), _TOKENISE_CHUNK):
            if progress is not None:
                progress("tokenising texts", start, len(wanted))
            chunk = wanted[start:start + _TOKENISE_CHUNK]
            ids.update(zip(chunk, tokenizer([texts[i] for i in chunk], truncation=True, max_length=limit)["input_ids"],
                           strict=True))
        if progress is not None:
            progress("tokenising texts", len(wanted), len(wanted))
        pad_left = tokenizer.padding_side == "left"

        def subset(indices: list[int]) -> TokenisedTexts:
            return TokenisedTexts([ids[i] for i in indices], [labels[i] for i in indices],
                                  tokenizer.pad_token_id, pad_left)

        return subset(split.train), subset(split.val)


MODALITIES.register("text")(TextModality())


def preview(source: Path, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the Data page shows before anything is stored: the detected encoding and delimiter, the
    columns, the suggested (or, with `options`, chosen) text and label columns, and the first rows.
    Raises GlassboxError for a file that cannot be read as a table at all."""
    table = reading.read_table(Path(source), suffixes=_SUFFIXES)
    columns = {k: v for k, v in (options or {}).items() if k in ("text_column", "label_column")}
    text_col, label_col = _suggest(table, **columns)
    return {
        "encoding": table.encoding,
        "delimiter": table.delimiter,
        "has_header": table.has_header,
        "notes": table.notes,
        "columns": table.columns,
        "text_column": text_col,
        "label_column": label_col,
        "num_rows": len(table.rows),
        "head": [dict(zip(table.columns, cells, strict=False)) for _, cells in table.rows[:_PREVIEW_ROWS]],
    }


@dataclass(frozen=True)
class TextsToPredict:
    """A file's texts to predict on: the column read, the texts in row order, per row what went wrong
    reading it ("" when nothing did), so a prediction table can say which rows to distrust, and the file's
    other columns (ids, dates...) by name in file order, their cells in row order ("" where a row is
    short), so predictions can be written beside them."""

    column: str
    texts: list[str]
    problems: list[str]
    others: dict[str, list[str]]


def read_texts(source: Path, column: str | None = None) -> TextsToPredict:
    """The texts of one column of a CSV or TSV to predict on (the named one, else the suggested text
    column), read with the same encoding and delimiter detection and limits as a dataset and stripped
    as training texts were; rows keep their order and any label column is ignored. Unlike a dataset it
    may hold one column: a CSV (with or without a header row), or a .txt file of one text per line,
    whose commas are part of the texts. A row with more fields than the header (a stray delimiter
    inside a text) is read by the header's columns, and a line read as it stands (a quote that never
    closes); their problems say so."""
    table = reading.read_table(Path(source), one_column=True, suffixes=_SUFFIXES)
    text_col, _ = _suggest(table, column)
    index, width = table.columns.index(text_col), len(table.columns)
    texts, problems = [], []
    others: dict[str, list[str]] = {name: [] for name in table.columns if name != text_col}
    for line, cells in table.rows:
        texts.append(cells[index].strip() if index < len(cells) else "")
        for position, name in enumerate(table.columns):
            if name != text_col:
                others[name].append(cells[position] if position < len(cells) else "")
        extra = any(cell.strip() for cell in cells[width:])
        problem = f"line {line}: {len(cells)} fields, the header has {width}" if extra else ""
        if line in table.irregular:
            problem = f"line {line}: {table.irregular[line]}"
        problems.append(problem)
    return TextsToPredict(text_col, texts, problems, others)


# ---- tensors for a model -------------------------------------------------------------------------------


class TokenisedTexts:
    """Token ids per text and their labels, for the training loop.

    It brings its own `collate` (pads a batch to its longest text, not to max_length) and
    `batch_sampler`: shuffled, texts of similar length batched together, so that on a CPU short
    texts are not padded to the longest one in a random batch. Not a torch Dataset subclass so that
    this module imports torch only when tensors are made; DataLoader needs only `__getitem__` and
    `__len__`."""

    def __init__(self, ids: list[list[int]], labels: list[int], pad_id: int, pad_left: bool) -> None:
        self.ids = ids
        self.labels = labels
        self.pad_id = pad_id
        self.pad_left = pad_left

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[list[int], int]:
        return self.ids[index], self.labels[index]

    def collate(self, batch: Sequence[tuple[list[int], int]]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        import torch

        width = max(len(ids) for ids, _ in batch)
        input_ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, (ids, _) in enumerate(batch):
            cols = slice(width - len(ids), width) if self.pad_left else slice(0, len(ids))
            input_ids[row, cols] = torch.tensor(ids, dtype=torch.long)
            attention_mask[row, cols] = 1
        labels = torch.tensor([label for _, label in batch], dtype=torch.long)
        return {"input_ids": input_ids, "attention_mask": attention_mask}, labels

    def batch_sampler(self, batch_size: int, generator: torch.Generator | None) -> LengthBuckets:
        return LengthBuckets([len(ids) for ids in self.ids], batch_size, generator)


class LengthBuckets:
    """Batches of indices. With a generator: a fresh shuffle each epoch, then within pools of
    `_POOL_BATCHES` batches the indices are sorted by length and cut into batches, and the batch
    order is shuffled (the "megabatch" scheme of fairseq and Hugging Face's group_by_length). Without
    one: consecutive batches in dataset order, which validation needs (its predictions are matched
    to items by position). The number of batches is ceil(n / batch_size) either way."""

    def __init__(self, lengths: list[int], batch_size: int, generator: torch.Generator | None) -> None:
        self.lengths = lengths
        self.batch_size = batch_size
        self.generator = generator

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        n, size = len(self.lengths), self.batch_size
        if self.generator is None:
            yield from (list(range(start, min(start + size, n))) for start in range(0, n, size))
            return
        import torch

        order = torch.randperm(n, generator=self.generator).tolist()
        pool = size * _POOL_BATCHES
        batches: list[list[int]] = []
        for start in range(0, n, pool):
            chunk = sorted(order[start : start + pool], key=self.lengths.__getitem__)
            batches.extend(chunk[i : i + size] for i in range(0, len(chunk), size))
        for index in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[index]


# ---- choosing the columns ------------------------------------------------------------------------------


def _suggest(
    table: reading.Table, text_column: str | None = None, label_column: str | None = None
) -> tuple[str, str | None]:
    """The text column: one named like a text (text, review, ...) or else the one with the most words
    per row. The label column: among the others with between 2 and n/2 distinct short values, one
    named like a label (label, class, sentiment, ...), else the one with the fewest distinct values;
    failing that, one named like a label. A given column is kept as is (and checked to exist); the
    label may stay None when no column fits."""
    text_col = _existing(table, text_column) if text_column else None
    label_col = _existing(table, label_column) if label_column else None
    stats = {col: _column_stats(table, i) for i, col in enumerate(table.columns)}
    if text_col is None:
        candidates = [c for c in table.columns if c != label_col]
        text_col = max(candidates, key=lambda c: (_named(c, TEXT_NAMES) and stats[c].words >= 1, stats[c].words))
    if label_col is None:
        # a column named like a label is offered even when its values do not fit: ingest then says why
        candidates = [c for c in table.columns
                      if c != text_col and (stats[c].could_be_label or _named(c, _LABEL_NAMES))]
        if candidates:
            label_col = min(candidates, key=lambda c: (not stats[c].could_be_label, not _named(c, _LABEL_NAMES),
                                                       stats[c].distinct))
    return text_col, label_col


@dataclass(frozen=True)
class _ColumnStats:
    words: float  # mean words per non-empty cell
    distinct: int
    could_be_label: bool


def _column_stats(table: reading.Table, index: int) -> _ColumnStats:
    cells = [cells[index].strip() for _, cells in table.rows[:_SUGGEST_ROWS] if index < len(cells)]
    filled = [c for c in cells if c]
    if not filled:
        return _ColumnStats(0.0, 0, False)
    distinct = len(set(filled))
    short = statistics.fmean(len(c) for c in filled) <= 40
    return _ColumnStats(
        words=statistics.fmean(len(c.split()) for c in filled),
        distinct=distinct,
        could_be_label=short and 2 <= distinct <= max(2, len(filled) // 2),
    )


def _named(column: str, names: frozenset[str]) -> bool:
    return any(part in names for part in re.split(r"[^a-z0-9]+", column.lower()) if part)


def _existing(table: reading.Table, column: str) -> str:
    """A column by exact name, or by case-insensitive name when that is unambiguous."""
    if column in table.columns:
        return column
    folded = [c for c in table.columns if c.casefold() == str(column).strip().casefold()]
    if len(folded) == 1:
        return folded[0]
    raise GlassboxError(f"{table.name} has no column {column!r} (columns: {', '.join(table.columns)})")


def _chosen_columns(table: reading.Table, options: dict[str, Any]) -> tuple[str, str]:
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise GlassboxError(f"unknown text option(s): {', '.join(unknown)} (known: {', '.join(_OPTIONS)})")
    if len(table.columns) < 2:
        raise GlassboxError(
            f"{table.name} has one column ({table.columns[0]!r}): a label column is missing; add a column with "
            "each text's class, separated by a comma, semicolon, tab or |"
        )
    text_col, label_col = _suggest(table, options.get("text_column"), options.get("label_column"))
    if label_col is None:
        raise GlassboxError(
            f"{table.name}: no column looks like labels (a few distinct short values): choose the label "
            f"column (columns: {', '.join(table.columns)})"
        )
    if text_col == label_col:
        raise GlassboxError(f"the text and the label column are both {text_col!r}: choose two different columns")
    return text_col, label_col


# ---- validation ----------------------------------------------------------------------------------------


def _extract(
    table: reading.Table, text_col: str, label_col: str
) -> tuple[list[tuple[int, str, str]], list[tuple[str, str]]]:
    """(line, text, label) for usable rows, and ("line N", reason) for the others."""
    width = len(table.columns)
    t, lab = table.columns.index(text_col), table.columns.index(label_col)
    rows: list[tuple[int, str, str]] = []
    bad: list[tuple[str, str]] = []
    for line, cells in table.rows:
        text = cells[t].strip() if t < len(cells) else ""
        label = cells[lab] if lab < len(cells) else ""
        if any(cell.strip() for cell in cells[width:]):
            bad.append((f"line {line}", f"{len(cells)} fields, the header has {width}"))
        elif not text:
            bad.append((f"line {line}", "empty text"))
        elif labelling.is_missing(label):
            bad.append((f"line {line}", f"no label ({label.strip()!r})" if label.strip() else "no label"))
        else:
            rows.append((line, text, label))
    return rows, bad


def _refuse_structure(
    upload: str, table: reading.Table, text_col: str, label_col: str, rows: list[tuple[int, str, str]],
    bad: list[tuple[str, str]],
) -> None:
    total = len(table.rows)
    for column, reason in ((text_col, "empty text"), (label_col, "no label")):
        empty = sum(1 for _, why in bad if why.startswith(reason))
        if empty > _MOSTLY_EMPTY * total:
            raise GlassboxError(
                f"{upload}: column {column!r} is empty in {empty} of {total} rows: is it the right column? "
                f"(columns: {', '.join(table.columns)})"
            )
    if not rows:
        raise GlassboxError(f"{upload}: no usable rows; {len(bad)} unusable row(s): {with_reasons(bad)}")
    counts = Counter(label for _, _, label in rows)
    if len(counts) < 2:
        raise GlassboxError(
            f"only one class {next(iter(counts))!r} in column {label_col!r}: need at least two"
        )
    lonely = sorted(label for label, n in counts.items() if n < 2)
    if lonely:
        hint = (
            f" (column {label_col!r} has {len(counts)} distinct values in {len(rows)} rows: is it the label column?)"
            if len(lonely) > len(counts) / 2 else labelling.similar_hint(lonely, counts)
        )
        raise GlassboxError(
            f"class(es) {listed([repr(c) for c in lonely])} have only 1 row: need at least 2 rows per class{hint}"
        )


def _merge_similar(rows: list[tuple[int, str, str]], merge: bool) -> tuple[list[tuple[int, str, str]], str | None]:
    """Rows with similar labels merged when asked, and the warning naming them (`labels.similar`)."""
    into, message = labelling.similar([label for _, _, label in rows], merge)
    return [(line, text, into[label]) for line, text, label in rows], message


def _deduplicate(rows: list[tuple[int, str, str]]) -> tuple[list[tuple[int, str, str]], int]:
    """Rows whose text (whitespace aside) and label repeat an earlier row are left out: copies could land
    in both training and validation and inflate the scores. Returns (kept, how many left out)."""
    seen: set[tuple[str, str]] = set()
    kept: list[tuple[int, str, str]] = []
    for line, text, label in rows:
        key = (_squeezed(text), label)
        if key not in seen:
            seen.add(key)
            kept.append((line, text, label))
    return kept, len(rows) - len(kept)


# ---- info and items ------------------------------------------------------------------------------------


def _info(
    table: reading.Table, text_col: str, label_col: str, rows: list[tuple[int, str, str]], duplicates: int,
    dropped: list[str], similar: str | None,
) -> dict[str, Any]:
    counts = Counter(label for _, _, label in rows)
    classes = sorted(counts)
    words = [len(text.split()) for _, text, _ in rows]
    tokens = _token_counts([text for _, text, _ in rows])
    lengths, unit = (tokens, "tokens") if tokens is not None else (words, "words")
    samples: dict[str, list[str]] = {c: [] for c in classes}
    for _, text, label in rows:
        if len(samples[label]) < _SAMPLES:
            samples[label].append(text if len(text) <= _SAMPLE_CHARS else text[: _SAMPLE_CHARS - 1] + "…")
    bins = min(_HISTOGRAM_BINS, max(1, max(lengths) - min(lengths) + 1))
    hist_counts, edges = np.histogram(lengths, bins=bins)
    problems: list[dict[str, str]] = []
    if table.irregular:
        lines = [f"line {n}" for n in table.irregular]
        problems.append(warning(f"{len(lines)} line(s) open a quote that is not closed properly and were read as "
                                f"they stand, each as one row: {listed(lines)}; check their texts and labels"))
    if similar:
        problems.append(warning(similar))
    if dropped:
        problems.append(warning(f"{len(dropped)} unusable row(s) left out: {listed(dropped)}"))
    if duplicates:
        problems.append(
            warning(f"{duplicates} row(s) repeat an earlier row's text and label and were left out")
        )
    problems.extend(_warnings(rows, counts, words, tokens))
    return {
        "classes": classes,
        "counts": {c: counts[c] for c in classes},
        "num_items": len(rows),
        "problems": problems,
        "dropped": dropped,
        "columns": table.columns,
        "text_column": text_col,
        "label_column": label_col,
        "encoding": table.encoding,
        "delimiter": table.delimiter,
        "has_header": table.has_header,
        "reading": table.notes,
        "num_rows": len(table.rows),
        "length": {
            "unit": unit,
            "tokenizer": DEFAULT_TEXT_BACKBONE if tokens is not None else None,
            "min": min(lengths),
            "median": float(statistics.median(lengths)),
            "mean": round(statistics.fmean(lengths), 1),
            "p95": float(np.percentile(lengths, 95)),
            "max": max(lengths),
            "over_default_max": sum(1 for n in lengths if n > TrainConfig.max_length) if tokens is not None else None,
            "words_median": float(statistics.median(words)),
        },
        "length_histogram": {"unit": unit, "edges": [round(float(e), 1) for e in edges],
                             "counts": [int(c) for c in hist_counts]},
        "samples": samples,
    }


def _warnings(rows: list[tuple[int, str, str]], counts: Counter[str], words: list[int],
              tokens: list[int] | None) -> list[dict[str, str]]:
    problems = balance_warnings(counts, "rows", _FEW_ROWS, _IMBALANCE)
    by_text: dict[str, set[str]] = defaultdict(set)
    first_line: dict[str, int] = {}
    for line, text, label in rows:
        key = _squeezed(text)
        by_text[key].add(label)
        first_line.setdefault(key, line)
    contradicting = [key for key, labels in by_text.items() if len(labels) > 1]
    if contradicting:
        example = contradicting[0]
        problems.append(
            warning(
                f"{len(contradicting)} text(s) appear with different labels (e.g. line {first_line[example]}: "
                f"{', '.join(repr(x) for x in sorted(by_text[example]))}): the model cannot get both right"
            )
        )
    limit = TrainConfig.max_length
    long = sum(1 for n in tokens if n > limit) if tokens is not None else sum(1 for n in words if n > _LONG_WORDS)
    if long and tokens is not None:
        problems.append(
            warning(
                f"{long} of {len(rows)} text(s) are longer than {limit} tokens, the default max length: a model "
                "reads only their first tokens, so raise Max tokens on the Train page (CLI: --max-length) if their "
                "ends matter"
            )
        )
    elif long:
        problems.append(
            warning(
                f"{long} text(s) are longer than {_LONG_WORDS} words; a model reads at most its max length "
                f"in tokens ({limit} by default, roughly {limit * 3 // 4} words) and the rest is cut off"
            )
        )
    return problems


def _token_counts(texts: list[str]) -> list[int] | None:
    """Tokens per text (special tokens included, no truncation) by the default text backbone's
    tokenizer: what a max length is measured in. Read with the `tokenizers` library from the pip-shipped
    copy, so validating stays fast and needs no torch; None if that copy is missing (then lengths are
    in words)."""
    folder = shipped.text_folder(DEFAULT_TEXT_BACKBONE)
    if folder is None or not (folder / "tokenizer.json").is_file():
        return None
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return [len(encoding.ids) for encoding in tokenizer.encode_batch(texts)]





# ---- small helpers -------------------------------------------------------------------------------------


def _squeezed(text: str) -> str:
    """A text as compared for duplicates: whitespace folded and Unicode composed (NFC), since the same text
    typed on two systems may differ in both."""
    return " ".join(unicodedata.normalize("NFC", text).split())



