"""The "images" modality: a zip or folder of pictures, labelled by folder or by a labels.csv.

Ingest decodes every image once, exactly as training will, so a dataset that was accepted never
fails half-way through an epoch; what is merely suspicious (few images, imbalance, duplicates) is
reported as a warning rather than refused, because only the user knows whether it matters.
"""

from __future__ import annotations

import codecs
import csv
import functools
import hashlib
import io
import os
import re
import shutil
import statistics
import unicodedata
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageOps

from core.config import TrainConfig
from core.data import MODALITIES
from core.data.archive import extract_zip, is_junk
from core.data.base import BadFilesError, Split, balance_warnings, item_labels, read_items, warning, write_items
from core.errors import GlassboxError

if TYPE_CHECKING:
    from torch import nn
    from torch.utils.data import Dataset

__all__ = ["ImagesModality", "load_image"]

# Only decoders that are pure Pillow code: EPS, for one, would hand the upload to Ghostscript.
# (Phones' multi-picture JPEGs come through the JPEG plugin, or "MPO" on older Pillow.)
_WANTED_FORMATS = ("PNG", "JPEG", "MPO", "BMP", "GIF", "TIFF", "WEBP")
_FORMATS_TEXT = "PNG, JPEG, BMP, GIF, TIFF or WebP"
# Checked on the header, before decoding, without touching Pillow's process-wide MAX_IMAGE_PIXELS.
_MAX_PIXELS = 64_000_000
_LABELS_CSV = "labels.csv"
_MAX_CSV_BYTES = 64 * 1024**2
_FEW_IMAGES = 10
_IMBALANCE = 5.0
_TINY_SIDE = 16
_SAMPLES = 8
_MAX_LISTED = 5
# Each worker may hold a 64 MP image decoded twice (~0.5 GB): more would risk memory, not gain speed.
_WORKERS = min(4, os.cpu_count() or 1)

class ImagesModality:
    name = "images"
    title = "Images"

    def accepts(self, source: Path) -> bool:
        source = Path(source)
        return source.is_dir() or (source.is_file() and source.suffix.lower() == ".zip")

    def ingest(
        self, source: Path, dest: Path, *, drop_bad: bool = False, options: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """See `Modality.ingest`. `options` is accepted for the protocol; images take none yet.

        Structural refusals (one class, a class of one image) come before the bad-files question,
        so nobody is asked to drop files only to be refused afterwards.
        """
        source, dest = Path(source), Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        unpacked = dest / "_unpacked"
        if source.is_dir():
            base, files = source, _walk(source)
        elif source.is_file() and source.suffix.lower() == ".zip":
            base = unpacked
            files = [p.relative_to(unpacked).as_posix() for p in extract_zip(source, unpacked)]
        else:
            raise GlassboxError(f"{source.name}: upload a .zip file or a folder of images")
        if not files:
            raise GlassboxError(f"{source.name} is empty: no files to read")

        plan = _plan(base, files)
        checked = _check_all([base / c.origin for c in plan.candidates])
        good = [(c, r) for c, r in zip(plan.candidates, checked, strict=True) if r.reason is None]
        bad = plan.bad + [
            (c.origin, r.reason) for c, r in zip(plan.candidates, checked, strict=True) if r.reason
        ]
        _refuse_structure(source.name, plan, good, bad)
        if bad and not drop_bad:
            raise BadFilesError(sorted(bad))

        folders = _folder_names(sorted({c.label for c, _ in good}))
        items: list[tuple[str, str, _Checked]] = []
        for cand, result in good:
            rel = PurePosixPath("images", folders[cand.label], *PurePosixPath(cand.stored).parts).as_posix()
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if base == unpacked:
                os.replace(base / cand.origin, target)
            else:
                shutil.copyfile(base / cand.origin, target)
            items.append((rel, cand.label, result))
        shutil.rmtree(unpacked, ignore_errors=True)
        items.sort(key=lambda item: item[0])
        write_items(dest, "relpath", [(rel, label) for rel, label, _ in items])
        return _info(plan, items, sorted(name for name, _ in bad))

    def labels(self, dataset_dir: Path, info: dict[str, Any]) -> list[int]:
        return item_labels(dataset_dir, info, "relpath")

    def fixed_inputs(self, config: TrainConfig) -> bool:
        """Only without augmentation: every preset applies random crops, flips or colour changes."""
        return config.augmentation == "none"

    def datasets(
        self, dataset_dir: Path, info: dict[str, Any], config: TrainConfig, split: Split, model: nn.Module
    ) -> tuple[Dataset, Dataset]:
        from core.data import image_pipeline  # torch and timm only where tensors are made

        dataset_dir = Path(dataset_dir)
        paths = [dataset_dir / rel for rel, _ in read_items(dataset_dir, "relpath")]
        return image_pipeline.datasets(paths, self.labels(dataset_dir, info), info, config, split, model)

    def items(self, dataset_dir: Path, info: dict[str, Any]) -> list[str]:
        return [rel for rel, _ in read_items(Path(dataset_dir), "relpath")]


MODALITIES.register("images")(ImagesModality())


def load_image(path: Path) -> Image.Image:
    """An image as the model sees it: EXIF-rotated, RGB, transparency flattened on white; with the
    same guards as ingest, since prediction also reads files nobody has vetted."""
    try:
        rgb, _ = _decode(Path(path))
    except _Unusable as exc:
        raise GlassboxError(f"{Path(path).name}: {exc}") from None
    return rgb


# ---- decoding -------------------------------------------------------------------------------------


class _Unusable(Exception):
    """Why a file cannot be used, phrased for the user."""


def _decode(path: Path) -> tuple[Image.Image, str]:
    """(RGB image, original mode). Any exception from a decoder means a bad file, not a bug: Pillow
    raises anything from OSError to struct.error on malformed input."""
    try:
        with Image.open(path, formats=_formats()) as im:
            width, height = im.size
            if width * height > _MAX_PIXELS:
                raise _Unusable(f"too large ({width}x{height} pixels, limit {_MAX_PIXELS // 1_000_000} MP)")
            im.load()
            return _to_rgb(im), im.mode
    except _Unusable:
        raise
    except Image.UnidentifiedImageError:
        raise _Unusable(f"not an image ({_FORMATS_TEXT} expected)") from None
    except Image.DecompressionBombError:
        raise _Unusable(f"too large (limit {_MAX_PIXELS // 1_000_000} MP)") from None
    except Exception as exc:  # any decoder failure, see the docstring
        raise _Unusable(f"damaged image ({type(exc).__name__}: {exc})") from None


@functools.cache
def _formats() -> tuple[str, ...]:
    """Asking Pillow for a format it does not register is a KeyError, not a refusal."""
    Image.init()
    return tuple(f for f in _WANTED_FORMATS if f in Image.OPEN)


def _to_rgb(im: Image.Image) -> Image.Image:
    """Always a new image (the source is closed by the caller)."""
    out = ImageOps.exif_transpose(im)
    if out.mode.startswith("I;16"):
        # 16-bit greyscale: keep the scale fixed (not stretched per image) so intensities stay comparable.
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


@dataclass(frozen=True)
class _Checked:
    reason: str | None = None
    width: int = 0
    height: int = 0
    mode: str = ""
    digest: str = ""


def _check(path: Path) -> _Checked:
    try:
        rgb, mode = _decode(path)
    except _Unusable as exc:
        return _Checked(reason=str(exc))
    with open(path, "rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    return _Checked(width=rgb.width, height=rgb.height, mode=mode, digest=digest)


def _check_all(paths: list[Path]) -> list[_Checked]:
    """Threads are enough: Pillow's decoders and hashlib release the GIL."""
    with ThreadPoolExecutor(_WORKERS) as pool:
        return list(pool.map(_check, paths))


# ---- layout ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    origin: str  # path relative to the upload, as the user knows it
    label: str
    stored: str  # path under the class folder in the dataset


@dataclass
class _Plan:
    layout: str
    candidates: list[_Candidate]
    bad: list[tuple[str, str]]
    problems: list[dict[str, str]]


def _walk(folder: Path) -> list[str]:
    """A folder upload's data files, relative and '/'-separated like zip names; symlinked folders
    are not followed, so a folder cannot pull in half the disk."""
    found: list[str] = []
    for here, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not is_junk(d))
        rel_here = Path(here).relative_to(folder)
        found.extend((rel_here / n).as_posix() for n in sorted(names) if not is_junk(n))
    return found


def _plan(base: Path, files: list[str]) -> _Plan:
    """Which file is which class. A labels.csv at the data root wins over folder names."""
    paths = [PurePosixPath(f) for f in files]
    root = _data_root(paths)
    labels_csv = [p for p in paths if p.parent == root and p.name.lower() == _LABELS_CSV]
    if labels_csv:
        return _plan_labels_csv(paths, root, labels_csv[0], _read_labels_csv(base / labels_csv[0]))
    return _plan_folders(paths, root)


def _data_root(paths: list[PurePosixPath]) -> PurePosixPath:
    """Zipping a folder wraps everything in it ("digits/0/a.png"): descend while the current level
    holds exactly one folder and no files, unless that folder holds images itself (then it is the
    only class, "cat/a.png", and must stay a class) without a labels.csv."""
    root = PurePosixPath()
    depth = 0
    while True:
        if any(len(p.parts) == depth + 1 for p in paths):
            return root
        heads = {p.parts[depth] for p in paths}
        if len(heads) != 1:
            return root
        inside = [p.name.lower() for p in paths if len(p.parts) == depth + 2]
        if inside and _LABELS_CSV not in inside:
            return root
        root, depth = root / heads.pop(), depth + 1


def _plan_folders(paths: list[PurePosixPath], root: PurePosixPath) -> _Plan:
    candidates: list[_Candidate] = []
    bad: list[tuple[str, str]] = []
    for path in paths:
        rel = path.relative_to(root)
        if len(rel.parts) == 1:
            bad.append((path.as_posix(), "not inside a class folder"))
        else:
            candidates.append(
                _Candidate(path.as_posix(), _nfc(rel.parts[0]), PurePosixPath(*rel.parts[1:]).as_posix())
            )
    return _Plan("folders", candidates, bad, [])


def _plan_labels_csv(
    paths: list[PurePosixPath], root: PurePosixPath, csv_path: PurePosixPath, rows: list[tuple[int, str, str]]
) -> _Plan:
    by_name = {_nfc(p.relative_to(root).as_posix()): p for p in paths if p != csv_path}
    by_folded: dict[str, list[PurePosixPath]] = defaultdict(list)
    for name, path in by_name.items():
        by_folded[name.casefold()].append(path)

    unsafe: list[int] = []
    missing: list[str] = []
    chosen: dict[PurePosixPath, tuple[int, str]] = {}
    conflicts: list[str] = []
    repeats = 0
    for line, filename, label in rows:
        name = _clean_relpath(filename)
        if name is None:
            unsafe.append(line)
            continue
        path = by_name.get(name)
        if path is None and len(by_folded.get(name.casefold(), [])) == 1:
            path = by_folded[name.casefold()][0]  # "IMG_1.JPG" listed for "img_1.jpg": Windows users
        if path is None:
            missing.append(f"{filename} (line {line})")
        elif path in chosen:
            if chosen[path][1] != label:
                conflicts.append(f"{filename} (lines {chosen[path][0]} and {line})")
            repeats += 1
        else:
            chosen[path] = (line, label)
    if unsafe:
        raise GlassboxError(
            f"{_LABELS_CSV}: file names must stay inside the upload (lines {_listed(unsafe)})"
        )
    if conflicts:
        raise GlassboxError(f"{_LABELS_CSV}: files listed twice with different labels: {_listed(conflicts)}")
    if missing:
        raise GlassboxError(
            f"{_LABELS_CSV} lists {len(missing)} file(s) not in the upload: {_listed(missing)}"
        )

    candidates = [
        _Candidate(path.as_posix(), label, path.relative_to(root).as_posix())
        for path, (_, label) in chosen.items()
    ]
    problems: list[dict[str, str]] = []
    if repeats:
        problems.append(
            warning(f"{repeats} row(s) of {_LABELS_CSV} repeat a file already listed; counted once")
        )
    ignored = len(by_name) - len(chosen)
    if ignored:
        problems.append(warning(f"{ignored} file(s) not listed in {_LABELS_CSV} were ignored"))
    return _Plan("labels.csv", candidates, [], problems)


def _read_labels_csv(path: Path) -> list[tuple[int, str, str]]:
    """(line, filename, label) rows. Accepts what spreadsheets export: a BOM, UTF-16, Windows-1252,
    and ';' or tab separators."""
    if path.stat().st_size > _MAX_CSV_BYTES:
        raise GlassboxError(f"{_LABELS_CSV} is larger than {_MAX_CSV_BYTES // 1024**2} MiB")
    return _parse_labels(_decode_text(path.read_bytes()))


def _decode_text(raw: bytes) -> str:
    """utf-8 (with or without BOM) first, UTF-16 when a BOM says so, then Windows-1252 (what Excel
    writes in Western Europe, a superset of latin-1's printable characters), then latin-1, which
    cannot fail."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            raise GlassboxError(f"{_LABELS_CSV} starts like UTF-16 but is not valid UTF-16") from None
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


def _parse_labels(text: str) -> list[tuple[int, str, str]]:
    header_line = next((line for line in text.splitlines() if line.strip()), "")
    for delimiter in (",", ";", "\t"):
        header = [h.strip().lower() for h in next(csv.reader([header_line], delimiter=delimiter), [])]
        if "filename" in header and "label" in header:
            break
    else:
        found = ", ".join(h.strip() for h in header_line.split(",")) or "nothing"
        raise GlassboxError(f"{_LABELS_CSV} needs a header row with columns filename,label (found: {found})")
    file_col, label_col = header.index("filename"), header.index("label")
    rows: list[tuple[int, str, str]] = []
    empty: list[int] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        next(reader)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            if not any(cell.strip() for cell in row):
                continue
            filename = row[file_col].strip() if len(row) > file_col else ""
            label = _nfc(row[label_col].strip()) if len(row) > label_col else ""
            if not filename or not label:
                empty.append(reader.line_num)
            else:
                rows.append((reader.line_num, filename, label))
    except csv.Error as exc:
        raise GlassboxError(f"{_LABELS_CSV} is not a readable CSV (line {reader.line_num}: {exc})") from None
    if empty:
        raise GlassboxError(f"{_LABELS_CSV}: empty filename or label on line(s) {_listed(empty)}")
    if not rows:
        raise GlassboxError(f"{_LABELS_CSV} has a header but no rows")
    return rows


def _clean_relpath(name: str) -> str | None:
    """A labels.csv file name as a safe relative path, or None when it tries to leave the upload."""
    normal = _nfc(name.replace("\\", "/"))
    if normal.startswith("/") or re.match(r"^[A-Za-z]:", normal):
        return None
    parts = [p for p in normal.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


def _refuse_structure(
    upload: str, plan: _Plan, good: list[tuple[_Candidate, _Checked]], bad: list[tuple[str, str]]
) -> None:
    if not good:
        if bad:
            name, reason = bad[0]
            raise GlassboxError(
                f"{upload}: no usable images ({len(bad)} file(s) unusable, e.g. {name}: {reason})"
            )
        raise GlassboxError(f"{upload}: no images found")
    counts = Counter(c.label for c, _ in good)
    if len(counts) < 2:
        hint = " (put each class's images in its own folder)" if plan.layout == "folders" else ""
        raise GlassboxError(f"only one class {next(iter(counts))!r} found: need at least two{hint}")
    lonely = sorted(label for label, n in counts.items() if n < 2)
    if lonely:
        names = ", ".join(repr(label) for label in lonely[:_MAX_LISTED])
        raise GlassboxError(f"class(es) {names} have only 1 image: need at least 2 images per class")


def _folder_names(classes: list[str]) -> dict[str, str]:
    """Class names come from users (a label can be "a/b" or ".."), folder names must be safe and
    distinct even on case-insensitive disks."""
    names: dict[str, str] = {}
    used: set[str] = set()
    for label in classes:
        base = re.sub(r"[^\w.\- ]", "_", label).strip(" .")[:80] or "class"
        name, n = base, 1
        while name.casefold() in used:
            n += 1
            name = f"{base}_{n}"
        used.add(name.casefold())
        names[label] = name
    return names


# ---- info and items -------------------------------------------------------------------------------


def _info(plan: _Plan, items: list[tuple[str, str, _Checked]], dropped: list[str]) -> dict[str, Any]:
    counts = Counter(label for _, label, _ in items)
    classes = sorted(counts)
    widths = [r.width for _, _, r in items]
    heights = [r.height for _, _, r in items]
    modes = Counter(r.mode for _, _, r in items)
    samples: dict[str, list[str]] = {c: [] for c in classes}
    for rel, label, _ in items:
        if len(samples[label]) < _SAMPLES:
            samples[label].append(rel)
    problems = list(plan.problems)
    if dropped:
        problems.append(warning(f"{len(dropped)} unusable file(s) left out: {_listed(dropped)}"))
    problems.extend(_warnings(counts, items, modes))
    return {
        "layout": plan.layout,
        "classes": classes,
        "counts": {c: counts[c] for c in classes},
        "num_items": len(items),
        "problems": problems,
        "dropped": dropped,
        "size": {
            "width": _stats(widths),
            "height": _stats(heights),
            "total_pixels": sum(w * h for w, h in zip(widths, heights, strict=True)),
        },
        "modes": dict(sorted(modes.items())),
        "samples": samples,
    }


def _warnings(
    counts: Counter[str], items: list[tuple[str, str, _Checked]], modes: Counter[str]
) -> list[dict[str, str]]:
    problems = balance_warnings(counts, "images", _FEW_IMAGES, _IMBALANCE)
    by_digest: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for rel, label, result in items:
        by_digest[result.digest].append((rel, label))
    groups = [g for g in by_digest.values() if len(g) > 1]
    contradicting = [g for g in groups if len({label for _, label in g}) > 1]
    if contradicting:
        example = contradicting[0]
        problems.append(
            warning(
                f"{len(contradicting)} group(s) of identical images carry different labels "
                f"(e.g. {example[0][0]} is {example[0][1]!r} but {example[1][0]} is {example[1][1]!r}): "
                "the model cannot get both right; fix or remove them"
            )
        )
    if groups:
        extra = sum(len(g) - 1 for g in groups)
        first, second = groups[0][0][0], groups[0][1][0]
        problems.append(
            warning(
                f"{extra} image(s) are exact duplicates of another (e.g. {first} = {second}); "
                "copies can land in both training and validation and inflate validation scores"
            )
        )
    tiny = sum(1 for _, _, r in items if min(r.width, r.height) < _TINY_SIDE)
    if tiny:
        problems.append(warning(f"{tiny} image(s) are smaller than {_TINY_SIDE} px on a side"))
    if len(modes) > 1:
        listed = ", ".join(f"{mode}: {n}" for mode, n in sorted(modes.items()))
        problems.append(warning(f"images have mixed colour modes ({listed}); all are converted to RGB"))
    return problems


# ---- small helpers --------------------------------------------------------------------------------


def _nfc(text: str) -> str:
    """macOS writes names decomposed (e + combining accent); a label typed in a CSV is composed."""
    return unicodedata.normalize("NFC", text)


def _stats(values: list[int]) -> dict[str, int]:
    return {"min": min(values), "median": int(statistics.median(values)), "max": max(values)}



def _listed(values: list[Any]) -> str:
    shown = ", ".join(str(v) for v in values[:_MAX_LISTED])
    return shown + (f" and {len(values) - _MAX_LISTED} more" if len(values) > _MAX_LISTED else "")
