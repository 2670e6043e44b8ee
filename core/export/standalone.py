"""Predictions of an exported Glassbox bundle, without torch: `python predict.py INPUT...` prints a CSV.

This file is copied verbatim into every bundle as `predict.py`. It needs only onnxruntime, numpy, Pillow
and, for text models, tokenizers (the bundle's `requirements.txt`), plus the standard library, and reads
the bundle it sits in: `model.onnx` (raw outputs: logits, or standardised values), `bundle.json` (the
modality, task and ONNX input names), `target.json` (what turns outputs into answers: class names and the
calibration temperature, or the target's mean and spread) and `preprocessing.json` (written by
`core.export.preprocessing`: how a raw input becomes the ONNX inputs).

Every step reproduces what the studio does with the same files (`core.prediction` through the run), so the
predictions agree: images are decoded as `core.data.pictures.load_image` decodes them (EXIF rotation, RGB,
transparency on white, reduced decode) and transformed as timm's eval transform does (resize the short side
with the model's interpolation, centre crop, normalise); texts are tokenised with the run's fast tokenizer
(`tokenizer.json`) at the run's max length; table cells are converted as `core.data.columns.typed` converts
them (money, percentages, thousands marks, yes/no words, dates) and encoded as
`core.data.table_encoding.TableEncoder.transform` encodes them; series are standardised with the training
statistics (`core.data.series.normalise`). Where this file cannot reproduce the studio's reading (a text
file that is not UTF-8, long-form series, a forecast history off its grid) it refuses the input with the
reason rather than predict differently.

Columns of the CSV, as the studio's predictions: images `image, predicted, confidence, p(<class>)...,
error`; texts `<the file's other columns>, text, predicted, confidence, p(...)..., cut_off, error`; table
rows `row, <the file's columns>, predicted, [confidence, p(...)...,] error`; series `series, steps,
predicted, confidence, p(...)..., error`; forecasts `time, forecast[, lower, upper]`. A file or row that
cannot be used keeps its row, with the reason in `error`. Bad input as a whole (a missing file, a column
the model reads that the file lacks) exits with status 2 and a one-line reason on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import io
import itertools
import json
import math
import os
import re
import statistics
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = 1
"""The `preprocessing.json` layout this file reads; `core.export.preprocessing` writes the same number."""

_IMAGE_CHUNK = 64  # images decoded and run together, as the studio does
_TEXT_BATCH = 32  # texts per batch, sorted by length first, as the studio does
_ROW_BATCH = 4096
_MAX_BYTES = 256 * 1024**2  # the studio's largest table file

csv.field_size_limit(_MAX_BYTES)


class BundleError(Exception):
    """Input that cannot be predicted on as a whole: its one-line reason for the user."""


# ---- the bundle ---------------------------------------------------------------------------------------------


class Bundle:
    """An unpacked bundle folder: its descriptions (`about`, `target`, `prep`) and the ONNX session, opened
    on first use on the CPU."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.about = _read_json(self.folder / "bundle.json")
        self.target = _read_json(self.folder / "target.json")
        self.prep = _read_json(self.folder / "preprocessing.json")
        if self.prep.get("format") != FORMAT:
            raise BundleError(f"preprocessing.json is format {self.prep.get('format')}, this predict.py reads {FORMAT}")
        self.modality = str(self.about["modality"])
        self.task = str(self.about["task"])
        self.classes = [str(c) for c in self.target.get("classes", [])] if self.task == "classification" else []
        self._session: Any = None

    def outputs(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """The model's raw output for a batch (ONNX inputs by name; those the graph lacks are left out)."""
        if self._session is None:
            import onnxruntime

            try:
                self._session = onnxruntime.InferenceSession(str(self.folder / "model.onnx"),
                                                             providers=["CPUExecutionProvider"])
            except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf types, not one base class
                reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
                raise BundleError(f"model.onnx cannot be loaded (a damaged or incomplete bundle?): {reason}") from None
        wanted = {i.name for i in self._session.get_inputs()}
        return np.asarray(self._session.run([self.about.get("output", "logits")],
                                            {k: v for k, v in feeds.items() if k in wanted})[0])

    def answers(self, raw: np.ndarray) -> np.ndarray:
        """Raw outputs as answers: probabilities [n, C] = softmax(logits / temperature) for classification;
        values [n] (regression) or [n, H] (forecast) = output * std + mean, in the target's units."""
        out = np.asarray(raw, dtype=np.float64)
        if self.task == "classification":
            scaled = out / float(self.target.get("temperature", 1.0))
            scaled -= scaled.max(axis=-1, keepdims=True)
            exp = np.exp(scaled)
            return exp / exp.sum(axis=-1, keepdims=True)
        values = out.reshape(len(out), -1) * float(self.target["std"]) + float(self.target["mean"])
        return values[:, 0] if self.task == "regression" else values


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{path.name} is missing from the bundle") from None


Table = tuple[list[str], list[list[Any]]]
"""A prediction table: column names, and rows of cells (str, float, bool or None)."""


def predict(folder: Path, inputs: Sequence[str], text_column: str | None = None) -> Table:
    """The predictions of the bundle in `folder` on `inputs` (paths as given on the command line), as the
    studio would make them. Raises BundleError for input that cannot be used as a whole."""
    bundle = Bundle(folder)
    reader = _MODALITIES.get(bundle.modality)
    if reader is None:
        raise BundleError(f"this predict.py cannot read {bundle.modality} inputs")
    if not inputs:
        raise BundleError("give one or more inputs to predict on")
    return reader(bundle, [Path(p) for p in inputs], inputs, text_column)


def _classified(kind: str, names: list[str], probs: np.ndarray, classes: list[str], errors: list[str],
                extra: dict[str, list[Any]] | None = None) -> Table:
    """`core.prediction._table`: name, predicted, confidence, p(class)..., [extra columns], error; a row
    whose probabilities are NaN has no prediction."""
    header = [kind, "predicted", "confidence", *[f"p({c})" for c in classes], *(extra or {}), "error"]
    rows = []
    for i, name in enumerate(names):
        read = len(classes) > 0 and not np.isnan(probs[i]).any()
        best = int(probs[i].argmax()) if read else -1
        rows.append([name, classes[best] if read else None, float(probs[i, best]) if read else None,
                     *[float(p) if read else None for p in probs[i]],
                     *[column[i] for column in (extra or {}).values()], errors[i]])
    return header, rows


def _beside(inputs: dict[str, list[str]], table: Table) -> Table:
    """`core.prediction._beside`: the input file's columns first; one named as a prediction column gets
    `input_` in front as often as needed."""
    header, rows = table
    taken = set(header) | set(inputs)
    names = []
    for name in inputs:
        new = name
        while new in header or (new != name and new in taken):
            new = f"input_{new}"
        taken.add(new)
        names.append(new)
    cells = list(inputs.values())
    return names + header, [[column[i] for column in cells] + row for i, row in enumerate(rows)]


# ---- images: core.data.pictures.load_image, then timm's eval transform --------------------------------------

_MAX_PIXELS = 150_000_000
_EXCLUDED = frozenset({"EPS", "MPEG"})
_COMMON = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP", "AVIF": "AVIF", "TIFF": "TIFF", "BMP": "BMP", "GIF": "GIF"}
_REDUCIBLE = frozenset({"L", "LA", "La", "RGB", "RGBA", "RGBa", "CMYK", "YCbCr", "I", "F"})
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"})
_JUNK_NAMES = frozenset({"__macosx", "thumbs.db", "desktop.ini"})


class _Unusable(Exception):
    """Why a file is no usable image, in a few words."""


def _formats() -> tuple[str, ...]:
    from PIL import Image, ImageFile

    Image.init()
    return tuple(name for name, (factory, _) in Image.OPEN.items()
                 if name not in _EXCLUDED
                 and not (isinstance(factory, type) and issubclass(factory, ImageFile.StubImageFile)))


def load_image(path: Path, side: int) -> Any:
    """The RGB picture of `path` as `core.data.pictures.load_image` decodes it for a model whose decode side
    is `side` px. Raises _Unusable."""
    from PIL import ExifTags, Image

    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise _Unusable(f"cannot be read ({exc.strerror})") from None
    if not head:
        raise _Unusable("empty file")
    kind = _kind(head)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(path, formats=_formats())
        with opened as im:
            width, height = im.size
            if width * height > _MAX_PIXELS:
                raise _Unusable(_too_large(width * height))
            im.draft(None, (side, side))
            exif = im.getexif()
            im.load()
            factor = min(im.size) // (2 * side)
            small = im.reduce(factor) if factor >= 2 and im.mode in _REDUCIBLE else im
            if small is not im and ExifTags.Base.Orientation in exif:
                small.info["exif"] = exif.tobytes()
            rgb = _to_rgb(small)
            short = min(rgb.size)
            if short > side:
                rgb = rgb.resize(tuple(round(n * side / short) for n in rgb.size), Image.Resampling.LANCZOS)
            return rgb
    except _Unusable:
        raise
    except Image.UnidentifiedImageError:
        raise _Unusable(_unsupported(path)) from None
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise _Unusable(_too_large(int(found.group(1)) if found else None)) from None
    except Exception as exc:  # Pillow raises anything from OSError to struct.error on malformed input
        if "truncated" in str(exc).lower() or isinstance(exc, EOFError):
            raise _Unusable(f"truncated {kind}") from None
        raise _Unusable(f"damaged {kind} ({str(exc)[:80] or type(exc).__name__})") from None


def _kind(head: bytes) -> str:
    from PIL import Image

    for name in _formats():
        accept = Image.OPEN[name][1]
        with contextlib.suppress(Exception):
            if accept is not None and accept(head) is True:
                return "JPEG" if name == "MPO" else name
    return "image"


def _to_rgb(im: Any) -> Any:
    from PIL import Image, ImageOps

    out = ImageOps.exif_transpose(im)
    if out.mode.startswith("I;16"):
        out = Image.fromarray((np.asarray(out, dtype=np.uint32) >> 8).astype(np.uint8), "L")
    elif out.mode in ("I", "F"):
        arr = np.asarray(out, dtype=np.float64)
        low, high = float(arr.min()), float(arr.max())
        scaled = (arr - low) * (255.0 / (high - low)) if high > low else np.zeros_like(arr)
        out = Image.fromarray(scaled.astype(np.uint8), "L")
    if out.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in out.info:
        rgba = out.convert("RGBA")
        out = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        out.alpha_composite(rgba)
    return out.convert("RGB") if out.mode != "RGB" else out


def _too_large(pixels: int | None) -> str:
    size = f"{pixels / 1e6:.0f} MP, " if pixels else ""
    return f"too large ({size}limit {_MAX_PIXELS // 1_000_000} MP)"


def _unsupported(path: Path) -> str:
    from PIL import Image

    with open(path, "rb") as fh:
        head = fh.read(64)
    name = None
    if head[4:8] == b"ftyp":
        name = "HEIC" if head[8:12] in _HEIF_BRANDS else "AVIF" if head[8:12] in (b"avif", b"avis") else None
    elif head.startswith(b"%PDF"):
        name = "PDF"
    elif head.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL ")):
        name = "JPEG XL"
    elif b"<svg" in head:
        name = "SVG"
    if name is None:
        try:
            with Image.open(path) as im:
                name = im.format
        except Exception:  # nothing recognised it: not an image
            common = [shown for key, shown in _COMMON.items() if key in _formats()]
            return f"not an image ({', '.join(common[:-1])} or {common[-1]} expected)"
    return f"{name} is not supported; convert to JPEG"


def image_pixels(picture: Any, steps: list[dict[str, Any]]) -> np.ndarray:
    """float32 [3, H, W]: `picture` through the recorded eval transform steps (torchvision's `Resize` of the
    short side, `CenterCrop`, `ToTensor`, `Normalize`, as timm composes them)."""
    from PIL import Image

    modes = {"nearest": Image.Resampling.NEAREST, "nearest-exact": Image.Resampling.NEAREST,
             "bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
             "box": Image.Resampling.BOX, "hamming": Image.Resampling.HAMMING, "lanczos": Image.Resampling.LANCZOS}
    image = picture
    array: np.ndarray | None = None
    for step in steps:
        op = step["op"]
        if op == "resize":
            width, height = image.size
            size = step["size"]
            if len(size) == 1:
                short, long = (width, height) if width <= height else (height, width)
                new_short, new_long = size[0], int(size[0] * long / short)
                new_w, new_h = (new_short, new_long) if width <= height else (new_long, new_short)
            else:
                new_h, new_w = size
            if (new_h, new_w) != (height, width):
                image = image.resize((new_w, new_h), modes[step["interpolation"]])
        elif op == "center_crop":
            crop_h, crop_w = step["size"]
            width, height = image.size
            if crop_w > width or crop_h > height:
                raise _Unusable(f"smaller than the model's {crop_w}x{crop_h} px input after resizing")
            top, left = int(round((height - crop_h) / 2.0)), int(round((width - crop_w) / 2.0))
            image = image.crop((left, top, left + crop_w, top + crop_h))
        elif op == "to_tensor":
            array = np.asarray(image, dtype=np.uint8).transpose(2, 0, 1).astype(np.float32) / np.float32(255)
        elif op == "normalize":
            mean = np.asarray(step["mean"], dtype=np.float32)[:, None, None]
            std = np.asarray(step["std"], dtype=np.float32)[:, None, None]
            array = (array - mean) / std
        else:
            raise BundleError(f"unknown image step {op!r} in preprocessing.json")
    if array is None:
        raise BundleError("preprocessing.json has no to_tensor step")
    return array.astype(np.float32)


def _is_junk(relpath: str) -> bool:
    parts = [p for p in relpath.replace("\\", "/").split("/") if p not in ("", ".")]
    return any(p.lower() in _JUNK_NAMES or p.startswith(".") for p in parts)


def _list_files(folder: Path) -> list[str]:
    found: list[str] = []
    for here, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not _is_junk(d))
        rel = Path(here).relative_to(folder)
        found.extend((rel / n).as_posix() for n in sorted(names) if not _is_junk(n))
    return found


@contextlib.contextmanager
def _image_files(sources: list[Path], given: Sequence[str]) -> Iterator[tuple[list[Path], list[str]]]:
    """Files and their row names as `core.prediction.image_files` gives them: a file as given, a folder's or a
    zip's every file (OS litter aside) by its path inside."""
    paths: list[Path] = []
    names: list[str] = []
    with contextlib.ExitStack() as stack:
        for source, text in zip(sources, given, strict=True):
            if source.is_dir():
                inside = _list_files(source)
                paths += [source / rel for rel in inside]
                names += inside
            elif source.is_file() and source.suffix.lower() == ".zip":
                folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="predict-")))
                for rel in _extract(source, folder):
                    paths.append(folder / rel)
                    names.append(rel)
            elif source.is_file():
                paths.append(source)
                names.append(str(text))
            else:
                raise BundleError(f"{text}: no such file or folder")
        if not paths:
            raise BundleError(f"no files to predict on in {', '.join(map(str, given))}")
        yield paths, names


def _extract(source: Path, folder: Path) -> list[str]:
    try:
        with zipfile.ZipFile(source) as archive:
            names = []
            for info in archive.infolist():
                rel = info.filename.replace("\\", "/")
                if info.is_dir() or _is_junk(rel):
                    continue
                if rel.startswith("/") or ".." in rel.split("/"):
                    raise BundleError(f"{source.name}: unsafe path {rel!r} inside the zip")
                archive.extract(info, folder)
                names.append(rel)
            return names
    except zipfile.BadZipFile:
        raise BundleError(f"{source.name}: not a readable zip") from None


def _images(bundle: Bundle, sources: list[Path], given: Sequence[str], text_column: str | None) -> Table:
    prep = bundle.prep["images"]
    with _image_files(sources, given) as (paths, names):
        probs = np.full((len(paths), len(bundle.classes)), np.nan)
        errors = [""] * len(paths)
        for start in range(0, len(paths), _IMAGE_CHUNK):
            read, arrays = [], []
            for index in range(start, min(start + _IMAGE_CHUNK, len(paths))):
                try:
                    arrays.append(image_pixels(load_image(paths[index], int(prep["decode_side"])), prep["steps"]))
                except _Unusable as exc:
                    errors[index] = str(exc)
                    continue
                read.append(index)
            if arrays:
                probs[read] = bundle.answers(bundle.outputs({"pixels": np.stack(arrays)}))
    return _classified("image", names, probs, bundle.classes, errors)


# ---- delimited text files: core.data.reading, for UTF-8 files ---------------------------------------------------

_DELIMITERS = (",", ";", "\t", "|")
_TAB_SUFFIXES = (".tsv", ".tab")
_SNIFF_ROWS = 200
_STRICT_CONSISTENCY = 0.9
_SEP_LINE = re.compile(r"^\ufeff?sep=(.)\s*$", re.IGNORECASE)
_NUMERIC_SHARE = 0.9
_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?%?$")


class _Lines:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.pos = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.pos >= len(self.lines):
            raise StopIteration
        self.pos += 1
        return self.lines[self.pos - 1]


def _records(lines: list[str], delimiter: str, first_line: int,
             limit: int | None = None) -> tuple[list[tuple[int, list[str]]], dict[int, str]]:
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


def _delimiter(lines: list[str], suffix: str, strict: bool) -> str | None:
    preference = sorted(_DELIMITERS, key=lambda d: d != "\t") if suffix in _TAB_SUFFIXES else _DELIMITERS
    best: tuple[float, int] | None = None
    chosen = None
    for rank, delimiter in enumerate(preference):
        records, _ = _records(lines, delimiter, 1, limit=_SNIFF_ROWS)
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


def _has_header(records: list[tuple[int, list[str]]]) -> bool:
    (_, first), body = records[0], [cells for _, cells in records[1:_SNIFF_ROWS * 5]]
    if not body:
        return True
    numeric_columns = numbers_in_first = 0
    for index, cell in enumerate(first):
        values = [cells[index].strip() for cells in body if index < len(cells) and cells[index].strip()]
        if not values:
            continue
        counts: dict[str, int] = {}
        for value in values:
            counts[value] = counts.get(value, 0) + 1
        if counts.get(cell.strip(), 0) >= 2 and len(counts) <= max(2, len(values) // 2):
            return False
        if sum(1 for v in values if _NUMBER.match(v)) >= _NUMERIC_SHARE * len(values):
            numeric_columns += 1
            numbers_in_first += bool(_NUMBER.match(cell.strip()))
    return not (numeric_columns and numbers_in_first == numeric_columns)


def _column_names(header: list[str]) -> list[str]:
    written = {cell.strip() for cell in header if cell.strip()}
    names: list[str] = []
    for position, cell in enumerate(header, start=1):
        base = cell.strip()
        if base and base not in names:
            names.append(base)
            continue
        stem = base or f"column {position}"
        candidates = itertools.chain([] if base else [stem], (f"{stem} ({n})" for n in itertools.count(2)))
        names.append(next(c for c in candidates if c not in names and c not in written))
    return names


class _TextTable:
    """A delimited file as `core.data.reading.read_table` reads it: columns, (line, cells) rows, the lines
    read as they stand, whether it had a header and the header's cells."""

    def __init__(self, source: Path, one_column: bool = False) -> None:
        if not source.is_file():
            raise BundleError(f"{source}: no such file")
        if source.stat().st_size > _MAX_BYTES:
            raise BundleError(f"{source.name} is larger than {_MAX_BYTES // 1024**2} MiB")
        raw = source.read_bytes()
        if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise BundleError(f"{source.name} is UTF-16: predict.py reads UTF-8 files; save it as UTF-8")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise BundleError(f"{source.name} is not UTF-8 text: save it as UTF-8 (or predict in the studio, "
                              "which detects other encodings)") from None
        if not text.strip():
            raise BundleError(f"{source.name} is empty")
        lines = list(io.StringIO(text, newline=""))
        self.name = source.name
        self.irregular: dict[int, str] = {}
        self.header: list[str] = []
        if one_column and source.suffix.lower() == ".txt":
            self.columns = ["text"]
            self.rows = [(n, [line.rstrip("\r\n")]) for n, line in enumerate(lines, start=1) if line.strip()]
            self.has_header = False
            return
        first = 0
        hinted = _SEP_LINE.match(lines[0].rstrip("\r\n")) if lines else None
        if hinted:
            delimiter, first = hinted.group(1), 1
        else:
            delimiter = _delimiter(lines, source.suffix.lower(), one_column)
        records, self.irregular = _records(lines[first:], delimiter or "\x1f", first + 1)
        if not records:
            raise BundleError(f"{source.name} is empty")
        self.has_header = _has_header(records)
        if self.has_header:
            (_, self.header), self.rows = records[0], records[1:]
            if not self.rows:
                raise BundleError(f"{source.name} has a header row but no data rows")
            self.columns = _column_names(self.header)
        else:
            self.rows = records
            self.columns = [f"column {i}" for i in range(1, max(len(c) for _, c in records) + 1)]


class _Frame:
    """`core.data.reading.read_frame` of a delimited text file: `columns` -> cells (stripped text or None),
    each row's file `lines`, and per line what was doubtful in reading it."""

    def __init__(self, source: Path) -> None:
        if source.suffix.lower() not in (".csv", ".tsv", ".tab", ".txt"):
            raise BundleError(f"{source.name}: predict.py reads CSV, TSV or .txt files (Excel and Parquet: export "
                              "the sheet as CSV, or predict in the studio)")
        table = _TextTable(source)
        records = [(line, [cell.strip() or None for cell in cells]) for line, cells in table.rows]
        width = len(table.columns)
        header = table.header if table.has_header else [""] * width

        def used(cells: list[str | None]) -> int:
            return max((i + 1 for i, cell in enumerate(cells) if cell is not None), default=0)

        if len([1 for _, cells in records if used(cells) > width]) > len(records) / 2:
            grown = max(used(cells) for _, cells in records)
            header, width = header + [""] * (grown - width), grown
        names = _column_names(header) if table.has_header else [f"column {i}" for i in range(1, width + 1)]
        short: dict[int, str] = {}
        long: dict[int, str] = {}
        rows: list[list[str | None]] = []
        for line, cells in records:
            count = used(cells)
            if count > width:
                extra = [cell for cell in cells[width:] if cell is not None]
                shown = ", ".join(repr(cell) for cell in extra[:3]) + (" ..." if len(extra) > 3 else "")
                long[line] = (f"{count} values for {width} columns: the extra value{'s' if len(extra) > 1 else ''} "
                              f"{shown} left out")
            elif len(cells) < width:
                short[line] = f"{len(cells)} of {width} values: the missing ones are empty"
            rows.append((cells + [None] * width)[:width])
        keep = [i for i, cell in enumerate(header) if cell.strip() or any(row[i] is not None for row in rows)]
        self.columns = {names[i]: [row[i] for row in rows] for i in keep}
        self.lines = [line for line, _ in records]
        merged: dict[int, list[str]] = {}
        for found in (table.irregular, short, long):
            for line, reason in found.items():
                merged.setdefault(line, []).append(reason)
        self.problems = {line: "; ".join(reasons) for line, reasons in merged.items()}

    def shown(self) -> dict[str, list[str]]:
        """Every column's cells as the studio writes them beside predictions ("" for an empty cell)."""
        return {name: ["" if cell is None else cell for cell in cells] for name, cells in self.columns.items()}


# ---- texts: core.data.text.read_texts, the run's tokenizer --------------------------------------------------

_TEXT_NAMES = frozenset({
    "text", "texts", "review", "reviews", "sentence", "content", "comment", "comments", "message", "body",
    "document", "doc", "tweet", "description", "utterance", "question", "abstract", "summary", "post",
})
_SUGGEST_ROWS = 5000


def _text_column(table: _TextTable, column: str | None) -> str:
    """The named column (exactly, else case-insensitively), else as `core.data.text._suggest` picks it: one
    named like a text, else the one with the most words per row."""
    if column is not None:
        if column in table.columns:
            return column
        folded = [c for c in table.columns if c.casefold() == column.strip().casefold()]
        if len(folded) == 1:
            return folded[0]
        raise BundleError(f"{table.name} has no column {column!r} (columns: {', '.join(table.columns)})")

    def words(index: int) -> float:
        cells = [cells[index].strip() for _, cells in table.rows[:_SUGGEST_ROWS] if index < len(cells)]
        filled = [c for c in cells if c]
        return statistics.fmean(len(c.split()) for c in filled) if filled else 0.0

    stats = {name: words(i) for i, name in enumerate(table.columns)}

    def named(name: str) -> bool:
        return any(part in _TEXT_NAMES for part in re.split(r"[^a-z0-9]+", name.lower()) if part)

    return max(table.columns, key=lambda c: (named(c) and stats[c] >= 1, stats[c]))


def _texts(bundle: Bundle, sources: list[Path], given: Sequence[str], text_column: str | None) -> Table:
    if len(sources) != 1:
        raise BundleError("give one CSV or .txt file of texts to predict on")
    table = _TextTable(sources[0], one_column=True)
    chosen = _text_column(table, text_column)
    index, width = table.columns.index(chosen), len(table.columns)
    texts, problems = [], []
    others: dict[str, list[str]] = {name: [] for name in table.columns if name != chosen}
    for line, cells in table.rows:
        texts.append(cells[index].strip() if index < len(cells) else "")
        for position, name in enumerate(table.columns):
            if name != chosen:
                others[name].append(cells[position] if position < len(cells) else "")
        problem = f"line {line}: {len(cells)} fields, the header has {width}" \
            if any(cell.strip() for cell in cells[width:]) else ""
        if line in table.irregular:
            problem = f"line {line}: {table.irregular[line]}"
        problems.append(problem)
    probs, cut = _text_answers(bundle, texts)
    errors = [problem or ("empty text" if not text.strip() else "") for text, problem in zip(texts, problems,
                                                                                              strict=True)]
    return _beside(others, _classified("text", texts, probs, bundle.classes, errors, {"cut_off": cut}))


def _text_answers(bundle: Bundle, texts: list[str]) -> tuple[np.ndarray, list[bool]]:
    """Probabilities [n, C] and whether each text was cut at the max length, tokenised as the studio's
    `TextModel` does: truncated at max_length, batches of texts of similar length padded to their longest."""
    from tokenizers import Tokenizer

    prep = bundle.prep["text"]
    tokenizer = Tokenizer.from_file(str(bundle.folder / prep["tokenizer"]))
    tokenizer.enable_truncation(int(prep["max_length"]))
    tokenizer.enable_padding(direction=prep["padding_side"], pad_id=int(prep["pad_id"]), pad_token=prep["pad_token"])
    probs = np.zeros((len(texts), len(bundle.classes)))
    cut = [False] * len(texts)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), _TEXT_BATCH):
        picked = order[start:start + _TEXT_BATCH]
        encoded = tokenizer.encode_batch([texts[i] for i in picked])
        feeds = {"input_ids": np.asarray([e.ids for e in encoded], dtype=np.int64),
                 "attention_mask": np.asarray([e.attention_mask for e in encoded], dtype=np.int64)}
        probs[picked] = bundle.answers(bundle.outputs(feeds))
        for i, e in zip(picked, encoded, strict=True):
            cut[i] = bool(e.overflowing)
    return probs, cut


# ---- table cells: core.data.columns.typed ---------------------------------------------------------------------

_MISSING = frozenset({"", "nan", "null", "none", "n/a", "#n/a"})
_NO_VALUE = frozenset({"-", "--", "—", "–", "?", "??", "n.a.", "na", "#value!", "#div/0!", "#ref!", "#num!",
                       "#null!", "#name?", "#n/a n/a"})
_A_LEVEL = frozenset({"none"})
_TRUE = ("yes", "y", "true", "t", "1", "1.0", "on", "ja", "j", "oui", "si", "sí", "wahr", "vrai")
_FALSE = ("no", "n", "false", "f", "0", "0.0", "off", "nein", "non", "falsch", "faux")
_CURRENCIES = ("US$", "CA$", "A$", "R$", "$", "€", "£", "¥", "₹", "₽", "₩", "₺", "CHF", "EUR", "USD", "GBP", "JPY",
               "CAD", "AUD", "SEK", "NOK", "DKK", "PLN")
_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2009": " ", "−": "-"})
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
                  r"(?:\s?(Z|[+-]\d{2}:?\d{2}))?$")
_TIME_SUFFIXES = ("", " %H:%M", " %H:%M:%S", "T%H:%M", "T%H:%M:%S")
_FORMAT_WORDS = (("%Y", "YYYY"), ("%y", "YY"), ("%m", "MM"), ("%d", "DD"), ("%b", "Mon"), ("%B", "Month"))


def _blank(cell: str | None) -> bool:
    if cell is None:
        return True
    folded = cell.strip().casefold()
    return (folded in _MISSING and folded not in _A_LEVEL) or folded in _NO_VALUE


def _cells(column: list[str | None]) -> list[str | None]:
    return [None if _blank(c) else str(c).strip() for c in column]


def _to_number(text: str, conversion: dict[str, Any]) -> float | None:
    """`core.data.columns._to_number`: `text` read with a numeric conversion, or None."""
    s = text.translate(_SPACES).strip()
    negative = False
    if len(s) > 2 and s[0] == "(" and s[-1] == ")":
        negative, s = True, s[1:-1].strip()
    percent = s.endswith("%")
    if percent:
        s = s[:-1].rstrip()
    if s[:1] in "+-" and s:
        negative, s = negative ^ (s[0] == "-"), s[1:].lstrip()
    symbol = None
    for candidate in _CURRENCIES:
        if s.startswith(candidate):
            symbol, s = candidate, s[len(candidate):].strip()
            break
        if s.endswith(candidate):
            symbol, s = candidate, s[: -len(candidate)].strip()
            break
    if symbol and s[:1] in "+-" and s:
        negative, s = negative ^ (s[0] == "-"), s[1:].lstrip()
    if not s or not s[0].isdigit() and s[0] not in ".,":
        return None
    kind = conversion["kind"]
    if symbol is not None and (kind != "currency" or symbol != conversion.get("symbol")):
        return None
    if percent and kind != "percent":
        return None
    thousands, decimal = conversion.get("thousands", ""), conversion.get("decimal", ".")
    t, d = re.escape(thousands), re.escape(decimal)
    whole = rf"(?:\d{{1,3}}(?:{t}\d{{3}})+|\d+)" if thousands else r"\d+"
    exponent = r"(?:[eE][+-]?\d+)?" if (thousands, decimal) == ("", ".") else ""
    if not re.match(rf"^(?:{whole}(?:{d}\d*)?|{d}\d+){exponent}$", s):
        return None
    plain = s.replace(thousands, "") if thousands else s
    value = float(plain.replace(decimal, ".") if decimal != "." else plain)
    return -value if negative else value


def _flag_lookup(conversion: dict[str, Any]) -> dict[str, float]:
    known = {*_TRUE, *_FALSE}
    lookup = {t.casefold(): 1.0 for t in conversion["true"]} | {f.casefold(): 0.0 for f in conversion["false"]}
    if all(k in known for k in lookup):
        lookup = {t: 1.0 for t in _TRUE} | {f: 0.0 for f in _FALSE} | lookup
    return lookup


def _format_words(fmt: str) -> str:
    if fmt == "ISO8601":
        return "ISO 8601 (YYYY-MM-DD, optionally with a time)"
    for code, words in _FORMAT_WORDS:
        fmt = fmt.replace(code, words)
    return fmt


def parse_time(text: str, fmt: str) -> dt.datetime | None:
    """A cell's time as `core.data.columns._parse_times` reads it (naive; an ISO offset converted to UTC), or
    None when it does not read."""
    if fmt == "ISO8601":
        found = _ISO.match(text)
        if found is None:
            return None
        year, month, day, hour, minute, second, fraction, zone = found.groups()
        try:
            value = dt.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
                                int((fraction or "0")[:6].ljust(6, "0")))
        except ValueError:
            return None
        if zone and zone != "Z":
            sign = 1 if zone[0] == "+" else -1
            digits = zone[1:].replace(":", "")
            value -= sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        return value
    for suffix in _TIME_SUFFIXES:
        try:
            return dt.datetime.strptime(text, fmt + suffix)
        except ValueError:
            continue
    return None


def typed_column(column: list[str | None], description: dict[str, Any]) -> tuple[list[Any], list[tuple[int, str]]]:
    """One feature column's values as `core.data.columns.typed` makes them: text (None missing) for a
    categorical column, float (NaN missing) for numbers and flags, datetime (None missing) for dates; and
    the cells that did not convert, (row, reason)."""
    name, role = description["name"], description["role"]
    cells = _cells(column)
    if role == "categorical":
        return cells, []
    conversion = description.get("conversion")
    if not conversion:
        raise BundleError(f"the column {name!r} has no stored conversion: predict in the studio")
    kind = conversion["kind"]
    bad: list[tuple[int, str]] = []
    values: list[Any] = []
    if kind == "datetime":
        why = f"is not a date in the form {_format_words(conversion['format'])}"
        for i, cell in enumerate(cells):
            value = None if cell is None else parse_time(cell, conversion["format"])
            if cell is not None and value is None:
                bad.append((i, f"{name}: {cell!r} {why}"))
            values.append(value)
        return values, bad
    if kind == "boolean":
        lookup = _flag_lookup(conversion)
        seen = [*conversion["true"], *conversion["false"]]
        shown = ", ".join(seen[:-1]) + f" and {seen[-1]}" if len(seen) > 1 else ", ".join(seen)
        read: Callable[[str], float | None] = lambda cell: lookup.get(cell.casefold())  # noqa: E731
        why = f"is not a yes/no value like those seen ({shown})"
    else:
        read = lambda cell: _to_number(cell, conversion)  # noqa: E731
        why = f"is not a number in {conversion['symbol']}" if kind == "currency" else "is not a number"
    for i, cell in enumerate(cells):
        value = None if cell is None else read(cell)
        if cell is not None and value is None:
            bad.append((i, f"{name}: {cell!r} {why}"))
        values.append(math.nan if value is None else value)
    return values, bad


# ---- table encoding: core.data.table_encoding.TableEncoder.transform -------------------------------------------

_BOUND = 1e-7
_UNKNOWN, _MISSING_LEVEL, _FIRST_LEVEL = 0, 1, 2


def _date_part(value: dt.datetime | None, part: str) -> float:
    if value is None:
        return math.nan
    return float({"year": value.year, "month": value.month, "day_of_week": value.weekday(),
                  "day_of_year": value.timetuple().tm_yday, "hour": value.hour}[part])


def _normal_scores(values: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """`table_encoding._normal_scores`: ranks among the training quantiles (ties at their middle), then the
    standard normal quantile of the rank (`statistics.NormalDist.inv_cdf`, Wichura's AS241, in place of
    scipy's ndtri: both exact to double precision)."""
    references = np.linspace(0.0, 1.0, len(quantiles))
    ranks = 0.5 * (np.interp(values, quantiles, references) - np.interp(-values, -quantiles[::-1], -references[::-1]))
    normal = statistics.NormalDist()
    return np.array([normal.inv_cdf(float(r)) for r in np.clip(ranks, _BOUND, 1.0 - _BOUND)])


def encode_rows(typed: dict[str, list[Any]], encoder: dict[str, Any]) -> dict[str, np.ndarray]:
    """{"numeric": float32 [n, n_numeric], "categorical": int64 [n, n_categorical]} of typed columns."""
    rows = len(next(iter(typed.values()))) if typed else 0
    roles = {s["name"]: s["role"] for s in encoder["sources"]}
    numeric = np.zeros((rows, len(encoder["numeric"])), dtype=np.float32)
    for j, feature in enumerate(encoder["numeric"]):
        source = feature["source"]
        column = typed[source]
        if roles[source] == "datetime":
            parts = {part: np.array([_date_part(v, part) for v in column])
                     for part in ("year", "month", "day_of_week", "day_of_year", "hour")}
            if not any(f["source"] == source and f["kind"] == "hour" for f in encoder["numeric"]):
                del parts["hour"]
        else:
            values = np.asarray(column, dtype=np.float64)
            parts = {"boolean" if roles[source] == "boolean" else "value": np.where(np.isfinite(values), values,
                                                                                   np.nan)}
        if feature["kind"] == "missing":
            gaps = np.zeros(rows, dtype=bool)
            for values in parts.values():
                gaps |= ~np.isfinite(values)
            numeric[:, j] = gaps
            continue
        raw = parts[feature["kind"]]
        values = np.where(np.isfinite(raw), raw, feature["fill"])
        if feature.get("constant"):
            numeric[:, j] = 0.0
        elif feature["quantiles"]:
            numeric[:, j] = _normal_scores(values.astype(np.float64), np.asarray(feature["quantiles"], dtype=float))
        else:
            numeric[:, j] = values
    categorical = np.zeros((rows, len(encoder["categorical"])), dtype=np.int64)
    for j, feature in enumerate(encoder["categorical"]):
        lookup = {level: _FIRST_LEVEL + i for i, level in enumerate(feature["levels"])}
        categorical[:, j] = [_MISSING_LEVEL if v is None else lookup.get(str(v), _UNKNOWN)
                             for v in typed[feature["source"]]]
    return {"numeric": numeric, "categorical": categorical}


def _rows(bundle: Bundle, sources: list[Path], given: Sequence[str], text_column: str | None) -> Table:
    if len(sources) != 1:
        raise BundleError("give one CSV or TSV file of rows to predict on")
    prep = bundle.prep["tables"]
    frame = _Frame(sources[0])
    features = [c for c in prep["columns"] if not c["dropped"] and c["role"] != "target"]
    absent = [repr(c["name"]) for c in features if c["name"] not in frame.columns]
    if absent:
        raise BundleError(f"the file lacks the column(s) the model reads: {', '.join(absent)}")
    count = len(frame.lines)
    problems = [""] * count
    typed: dict[str, list[Any]] = {}
    found: list[tuple[int, str]] = []
    for description in features:
        typed[description["name"]], bad = typed_column(frame.columns[description["name"]], description)
        found += bad
    for row, reason in sorted(found, key=lambda p: p[0]):
        problems[row] = f"{problems[row]}; {reason}" if problems[row] else reason
    for row, line in enumerate(frame.lines):
        if line in frame.problems:
            problems[row] = frame.problems[line]
    usable = [i for i in range(count) if not problems[i]]
    width = len(bundle.classes)
    answers = np.full((count, width) if width else count, np.nan)
    for start in range(0, len(usable), _ROW_BATCH):
        chunk = usable[start:start + _ROW_BATCH]
        encoded = encode_rows({k: [v[i] for i in chunk] for k, v in typed.items()}, prep["encoder"])
        answers[chunk] = bundle.answers(bundle.outputs(encoded))
    lines = [str(line) for line in frame.lines]
    if width:
        header, rows = _classified("row", lines, answers, bundle.classes, problems)
    else:
        header = ["row", "predicted", "error"]
        rows = [[line, None if math.isnan(v) else float(v), p] for line, v, p in zip(lines, answers, problems,
                                                                                      strict=True)]
    inputs_header, body = _beside(frame.shown(), (header[1:], [row[1:] for row in rows]))
    return ["row", *inputs_header], [[row[0], *rest] for row, rest in zip(rows, body, strict=True)]


# ---- series: core.data.series ---------------------------------------------------------------------------------


def _fill_gaps(values: np.ndarray) -> np.ndarray:
    out = np.array(values, dtype=np.float64, copy=True)
    flat = out.reshape(len(out), -1)
    steps = np.arange(len(out))
    for c in range(flat.shape[1]):
        missing = np.isnan(flat[:, c])
        if missing.any():
            known = ~missing
            flat[missing, c] = np.interp(steps[missing], steps[known], flat[known, c]) if known.any() else 0.0
    return out


def _series(bundle: Bundle, sources: list[Path], given: Sequence[str], text_column: str | None) -> Table:
    if len(sources) != 1:
        raise BundleError("give one file of series (or, to forecast, of history) to predict on")
    prep = bundle.prep["series"]
    return (_forecast if bundle.task == "forecast" else _classify_series)(bundle, prep, _Frame(sources[0]))


def _numbers(frame: _Frame, name: str, conversion: dict[str, Any] | None) -> tuple[np.ndarray, list[str]]:
    conversion = conversion or {"kind": "number", "thousands": "", "decimal": "."}
    values, bad = typed_column(frame.columns[name], {"name": name, "role": "numeric", "conversion": conversion})
    return np.asarray(values, dtype=np.float64), [reason for _, reason in bad]


def _classify_series(bundle: Bundle, prep: dict[str, Any], frame: _Frame) -> Table:
    """Wide-form series (one per row, its steps the other columns), as `read_series` reads them."""
    if prep["form"] != "wide":
        raise BundleError(f"the model was trained on {prep['form']}-form series: predict.py reads wide-form files "
                          "(one series per row); predict on this file in the studio")
    label = prep.get("label")
    steps = [name for name in frame.columns if name != label]
    matrix = []
    for name in steps:
        values, bad = _numbers(frame, name, prep["conversions"].get(name))
        if bad:
            raise BundleError(f"the column {name!r} is not all numbers ({bad[0]}): predict.py reads files whose "
                              "columns other than the label are all steps; predict in the studio")
        matrix.append(values)
    if not steps:
        raise BundleError("the file holds no column of numbers to read as steps")
    fitted = prep["fitted"]
    raw = np.column_stack(matrix)
    kept, ids, lengths = [], [], []
    for row, line in enumerate(frame.lines):
        real = ~np.isnan(raw[row])
        if real.any():
            length = int(np.flatnonzero(real).max()) + 1
            kept.append(_fill_gaps(raw[row, :length])[:, None])
            ids.append(f"line {line}")
            lengths.append(length)
    if not kept:
        raise BundleError("no series holds a value")
    longest = max(lengths)
    values = np.zeros((len(kept), longest, 1), dtype=np.float64)
    mask = np.zeros((len(kept), longest), dtype=bool)
    for i, (series, length) in enumerate(zip(kept, lengths, strict=True)):
        values[i, :length] = series
        mask[i, :length] = True
    mean = np.asarray(fitted["mean"], dtype=np.float64)[None, None, :]
    spread = np.asarray(fitted["std"], dtype=np.float64)[None, None, :]
    scaled = (((values - mean) / spread) * mask[..., None]).astype(np.float32)
    probs = bundle.answers(bundle.outputs({"values": scaled, "mask": mask}))
    header, rows = _classified("series", ids, probs, bundle.classes, [""] * len(ids))
    return header[:1] + ["steps"] + header[1:], [row[:1] + [lengths[i]] + row[1:] for i, row in enumerate(rows)]


def _ns(value: dt.datetime) -> int:
    return (value - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1) * 1000


def _stamp(ns: int) -> str:
    """`series_frames.stamp_text(ns, always_time=True)`: "2024-03-01 00:00", seconds only when there are some."""
    text = (dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=ns // 1000)).isoformat(sep=" ")
    return text[:16] if text[16:] in ("", ":00") else text


def _forecast(bundle: Bundle, prep: dict[str, Any], frame: _Frame) -> Table:
    """The next H values after a history (time, target and covariate columns) on the training grid's step."""
    time, target, covariates = prep["time"], prep["target"], list(prep["covariates"])
    absent = [repr(n) for n in (time, target, *covariates) if n not in frame.columns]
    if absent:
        raise BundleError(f"the history lacks the column(s) {', '.join(absent)}")
    grid = prep["grid"]
    if "step_ns" not in grid or grid.get("weekdays") is not None:
        raise BundleError("the model's series is on a calendar or opening-hours grid: predict.py forecasts series "
                          "with a fixed step; forecast in the studio")
    conversion = prep["conversions"][time]
    if conversion["kind"] != "datetime":
        raise BundleError("the model's time column is not dates: forecast in the studio")
    stamps = [None if cell is None else parse_time(cell, conversion["format"]) for cell in _cells(frame.columns[time])]
    if any(s is None for s in stamps):
        raise BundleError(f"a row's {time!r} is not a date in the form {_format_words(conversion['format'])}")
    ns = np.array([_ns(s) for s in stamps], dtype=np.int64)  # type: ignore[arg-type]
    order = np.argsort(ns, kind="stable")
    step = int(grid["step_ns"])
    if len(ns) < 3 or np.any(np.diff(ns[order]) != step):
        raise BundleError(f"the history's times are not one every {step // 10**9} s without gaps or repeats: "
                          "forecast in the studio, which regularises them")
    columns = []
    for name in (target, *covariates):
        values, bad = _numbers(frame, name, prep["conversions"].get(name))
        if bad or np.isnan(values).any():
            raise BundleError(f"the history's {name!r} has missing or unreadable values: forecast in the studio, "
                              "which fills them")
        columns.append(values[order])
    context, horizon, fitted = int(prep["context"]), int(prep["horizon"]), prep["fitted"]
    if len(ns) < context:
        raise BundleError(f"the history has {len(ns)} steps: the model reads the last {context}")
    history = np.column_stack(columns)[-context:]
    cov_mean = np.asarray(fitted["covariates"]["mean"], dtype=np.float64)
    cov_std = np.asarray(fitted["covariates"]["std"], dtype=np.float64)
    future = ((history[:, 1:] - cov_mean) / cov_std).reshape(context, -1)
    values = np.concatenate([((history[:, 0] - fitted["mean"]) / fitted["std"])[:, None], future], axis=1)
    ahead = ((np.repeat(history[-1:, 1:], horizon, axis=0) - cov_mean) / cov_std).reshape(horizon, -1)
    feeds = {"values": values.astype(np.float32)[None], "mask": np.ones((1, context), dtype=bool),
             "future": ahead.astype(np.float32)[None]}
    forecast = bundle.answers(bundle.outputs(feeds))[0]
    times = [_stamp(int(ns[order][-1]) + step * k) for k in range(1, horizon + 1)]
    halfwidth = bundle.target.get("interval_halfwidth")
    header = ["time", "forecast"] + (["lower", "upper"] if halfwidth is not None else [])
    rows = []
    for k, when in enumerate(times):
        row = [when, float(forecast[k])]
        if halfwidth is not None:
            row += [float(forecast[k] - halfwidth[k]), float(forecast[k] + halfwidth[k])]
        rows.append(row)
    return header, rows


_MODALITIES: dict[str, Callable[[Bundle, list[Path], Sequence[str], str | None], Table]] = {
    "images": _images, "text": _texts, "tables": _rows, "series": _series,
}


# ---- command line -----------------------------------------------------------------------------------------------


def write_csv(table: Table, out: Any) -> None:
    """The table as CSV: floats in full (repr) precision, None and NaN as empty cells."""
    header, rows = table
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None or (isinstance(v, float) and math.isnan(v)) else repr(v)
                         if isinstance(v, float) else v for v in row])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Predict with this Glassbox bundle: a CSV on stdout, one row per "
                                                 "input (image files, folders or zips; a CSV or .txt of texts; a "
                                                 "CSV of table rows; a CSV of series or of a forecast's history).")
    parser.add_argument("inputs", nargs="+", help="files to predict on")
    parser.add_argument("--text-column", help="texts: the CSV column holding the texts")
    parser.add_argument("--bundle", default=str(Path(__file__).resolve().parent),
                        help="the unpacked bundle folder (default: this file's folder)")
    args = parser.parse_args(argv)
    try:
        table = predict(Path(args.bundle), args.inputs, args.text_column)
    except BundleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        write_csv(table, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:  # `predict.py ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    header, rows = table
    answer = next((i for i, name in enumerate(header) if name in ("predicted", "forecast")), None)
    if rows and answer is not None and all(row[answer] is None or row[answer] != row[answer] for row in rows):
        print(f"error: none of the {len(rows)} input(s) could be predicted: see the error column", file=sys.stderr)
        return 1  # a script must be able to tell that nothing was predicted
    return 0


if __name__ == "__main__":
    sys.exit(main())
