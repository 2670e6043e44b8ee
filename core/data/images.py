"""The "images" modality: a zip or folder of pictures, labelled by folder or by a labels.csv.

Ingest decodes every image once (at a small size, but reading every byte: `core.data.pictures`), so a
dataset that was accepted never fails half-way through an epoch; what is merely suspicious (few images,
imbalance, duplicates) is reported as a warning rather than refused, because only the user knows
whether it matters.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from core.config import TrainConfig
from core.data import MODALITIES, reading
from core.data import labels as labelling
from core.data.archive import extract_zip
from core.data.base import (
    MAX_LISTED,
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
    write_split,
)
from core.data.pictures import Checked, DecodedImages, check_all, list_files
from core.errors import GlassboxError

if TYPE_CHECKING:
    from torch import nn
    from torch.utils.data import Dataset

    from core.data.base import PhaseProgress

__all__ = ["ImagesModality"]

_LABELS_CSV = "labels.csv"
_MAX_CSV_BYTES = 64 * 1024**2
_FEW_IMAGES = 10
_IMBALANCE = 5.0
_TINY_SIDE = 16
_SAMPLES = 8

class ImagesModality(LabelledItems):
    name = "images"
    title = "Images"
    training_profile = "pixels"
    channels_last = True
    options = (labelling.MERGE_OPTION,)
    baselines: tuple[str, ...] = ()  # no classical image method is both cheap and worth beating yet
    noun = "images"
    item_noun = "image"
    search_hint = "part of a file name"
    explanation_noun = "maps"
    shows_items_as = "thumbnails"
    items_are_files = True
    input_size_setting = "image_size"
    input_size_unit = "px"
    input_size_label = "input size (px)"
    settings: tuple[str, ...] = ("image_size", "augmentation", "channels_last")

    def accepts(self, source: Path) -> bool:
        source = Path(source)
        return source.is_dir() or (source.is_file() and source.suffix.lower() == ".zip")

    def ingest(
        self, source: Path, dest: Path, *, drop_bad: bool = False, options: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """See `Modality.ingest`. `options` may set `merge_similar_labels` (`labels.MERGE_OPTION`): class
        names that differ only by case, spaces or accents become one class.

        Structural refusals (one class, a class of one image) come before the bad-files question,
        so nobody is asked to drop files only to be refused afterwards.
        """
        source, dest = Path(source), Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        unpacked = dest / "_unpacked"
        archive_warnings: list[str] = []
        if source.is_dir():
            base, files = source, list_files(source)
        elif source.is_file() and source.suffix.lower() == ".zip":
            base = unpacked
            extracted = extract_zip(source, unpacked)
            files = [p.relative_to(unpacked).as_posix() for p in extracted.files]
            archive_warnings = extracted.warnings
        else:
            raise GlassboxError(f"{source.name}: upload a .zip file or a folder of images")
        if not files:
            raise GlassboxError(f"{source.name} is empty: no files to read")

        plan = _plan(base, files)
        _merge_similar(plan, bool((options or {}).get(labelling.MERGE_OPTION)))
        plan.problems[:0] = [warning(message) for message in archive_warnings]
        checked = check_all([base / c.origin for c in plan.candidates], keep_in=dest)
        good = [(c, r) for c, r in zip(plan.candidates, checked, strict=True) if r.reason is None]
        bad = plan.bad + [
            (c.origin, r.reason) for c, r in zip(plan.candidates, checked, strict=True) if r.reason
        ]
        _refuse_structure(source.name, plan, good, bad)
        if bad and not drop_bad:
            raise BadFilesError(sorted(bad))

        folders = _folder_names(sorted({c.label for c, _ in good}))
        items: list[tuple[str, str, Checked]] = []
        part_of: dict[str, str] = {}
        origin_of: dict[str, str] = {}  # stored path -> the path the user knows, for messages
        for cand, result in good:
            rel = PurePosixPath("images", folders[cand.label], *PurePosixPath(cand.stored).parts).as_posix()
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if base == unpacked:
                os.replace(base / cand.origin, target)
            else:
                shutil.copyfile(base / cand.origin, target)
            items.append((rel, cand.label, result))
            part_of[rel] = cand.part
            origin_of[rel] = cand.origin
        shutil.rmtree(unpacked, ignore_errors=True)
        items.sort(key=lambda item: item[0])
        write_items(dest, "relpath", [(rel, label) for rel, label, _ in items])
        DecodedImages.adopt(dest, [(rel, result) for rel, _, result in items])  # training decodes nothing again
        info = _info(plan, items, sorted(name for name, _ in bad), origin_of)
        if plan.split_folders:
            parts = [(rel, label, part_of[rel]) for rel, label, _ in items]
            info["split"], split_problems = _keep_split(dest, plan, parts)
            info["problems"].extend(split_problems)
        return info

    def labels(self, dataset_dir: Path, info: dict[str, Any]) -> list[int]:
        return item_labels(dataset_dir, info, "relpath")

    def fixed_inputs(self, config: TrainConfig) -> bool:
        """Only without augmentation: every preset applies random crops, flips or colour changes."""
        return config.augmentation == "none"

    def datasets(
        self, dataset_dir: Path, info: dict[str, Any], config: TrainConfig, split: Split, model: nn.Module,
        progress: PhaseProgress | None = None,
    ) -> tuple[Dataset, Dataset]:
        from core.data import image_pipeline  # torch and timm only where tensors are made

        dataset_dir = Path(dataset_dir)
        items = [rel for rel, _ in read_items(dataset_dir, "relpath")]
        return image_pipeline.datasets(dataset_dir, items, self.labels(dataset_dir, info), config, split, model,
                                       progress)

    def items(self, dataset_dir: Path, info: dict[str, Any]) -> list[str]:
        return [rel for rel, _ in read_items(Path(dataset_dir), "relpath")]


MODALITIES.register("images")(ImagesModality())


# ---- layout ---------------------------------------------------------------------------------------


# What people name the folders of a split they made themselves (Kaggle, Roboflow, ImageFolder setups),
# compared case-insensitively, and the part of a `Split` each one is.
_SPLIT_FOLDERS = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                  "dev": "val", "test": "test", "testing": "test"}
_PART_NAMES = {"train": "training", "val": "validation", "test": "test"}


@dataclass(frozen=True)
class _Candidate:
    origin: str  # path relative to the upload, as the user knows it
    label: str
    stored: str  # path under the class folder in the dataset
    part: str = ""  # "train", "val" or "test" when the upload keeps its own split, else ""


@dataclass
class _Plan:
    layout: str
    candidates: list[_Candidate]
    bad: list[tuple[str, str]]
    problems: list[dict[str, str]]
    split_folders: dict[str, str] = field(default_factory=dict)  # the user's split folder -> its part


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
    holds exactly one folder and no files. The folder is not descended into when it holds files and
    no folders: then it is the only class ("cat/a.png") and must stay one, unless one of the files is
    a labels.csv. Files beside folders in it (a README, a cover picture) do not stop the descent: the
    plan reports them."""
    root = PurePosixPath()
    depth = 0
    while True:
        if any(len(p.parts) == depth + 1 for p in paths):
            return root
        heads = {p.parts[depth] for p in paths}
        if len(heads) != 1:
            return root
        inside = [p.name.lower() for p in paths if len(p.parts) == depth + 2]
        has_folders = any(len(p.parts) > depth + 2 for p in paths)
        if inside and not has_folders and _LABELS_CSV not in inside:
            return root
        root, depth = root / heads.pop(), depth + 1


def _plan_folders(paths: list[PurePosixPath], root: PurePosixPath) -> _Plan:
    """One folder per class under `root`, or, when the folders there are the parts of a split the user
    made (`_SPLIT_FOLDERS`: "train/cat/a.png", "valid/cat/b.png"), one folder per class inside each
    part. Files outside the class folders are left out and reported, unless there is no class folder
    at all: then they are unusable, with the reason."""
    rels = [path.relative_to(root) for path in paths]
    split_folders = _split_layout(rels)
    depth = 2 if split_folders else 1  # how deep class folders sit under the root
    candidates: list[_Candidate] = []
    loose: list[str] = []
    for path, rel in zip(paths, rels, strict=True):
        if len(rel.parts) <= depth:
            loose.append(path.as_posix())
        elif split_folders:
            stored = PurePosixPath(rel.parts[0], *rel.parts[2:]).as_posix()  # names repeat across parts
            candidates.append(_Candidate(path.as_posix(), _nfc(rel.parts[1]), stored, split_folders[rel.parts[0]]))
        else:
            candidates.append(
                _Candidate(path.as_posix(), _nfc(rel.parts[0]), PurePosixPath(*rel.parts[1:]).as_posix())
            )
    if not candidates:
        return _Plan("folders", [], [(name, "not inside a class folder") for name in loose], [])
    problems = [warning(f"{len(loose)} file(s) outside the class folders were left out: {listed(loose)}")]
    return _Plan("folders", candidates, [], problems if loose else [], split_folders)


def _split_layout(rels: list[PurePosixPath]) -> dict[str, str]:
    """{folder: part} when every folder at the root names a part of a split and a training folder
    holds class folders (a Kaggle "test" folder of unlabelled images is still a part, whose files are
    then reported as outside the class folders); {} otherwise, so classes named like "test" stay classes."""
    folders = {rel.parts[0] for rel in rels if len(rel.parts) > 1}
    parts = {folder: _SPLIT_FOLDERS.get(folder.casefold()) for folder in folders}
    if not folders or None in parts.values():
        return {}
    trains_with_classes = {rel.parts[0] for rel in rels if len(rel.parts) > 2 and parts[rel.parts[0]] == "train"}
    return {folder: part for folder, part in parts.items() if part} if trains_with_classes else {}


def _keep_split(
    dest: Path, plan: _Plan, rows: list[tuple[str, str, str]]
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Store the user's split (`write_split`) for the (relpath, label, part) rows of items.csv; return
    the dataset info's "split" entry and warnings for classes a part lacks. Refused when no training
    image is left (all of them unusable)."""
    counts = Counter(part for _, _, part in rows)
    if not counts["train"]:
        folders = ", ".join(f for f, part in sorted(plan.split_folders.items()) if part == "train")
        raise GlassboxError(f"the training folder ({folders}) holds no usable image in a class folder")
    write_split(dest, "relpath", [(rel, part) for rel, _, part in rows])
    problems = []
    classes = sorted({label for _, label, _ in rows})
    for part in ("train", "val", "test"):
        present = {label for _, label, p in rows if p == part}
        missing = [c for c in classes if c not in present]
        if present and missing:
            problems.append(warning(f"class(es) {', '.join(map(repr, missing[:MAX_LISTED]))} have no image in "
                                    f"the {_PART_NAMES[part]} folder"))
    if not counts["val"]:
        problems.append(warning(f"no validation folder: {_PART_NAMES['val']} images are set aside from the "
                                "training folder at random, class by class, when a run starts"))
    split = {
        "source": "folders",
        "folders": {folder: part for folder, part in sorted(plan.split_folders.items())},
        "counts": {part: counts[part] for part in ("train", "val", "test")},
    }
    return split, problems


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
            f"{_LABELS_CSV}: file names must stay inside the upload (lines {listed(unsafe)})"
        )
    if conflicts:
        raise GlassboxError(f"{_LABELS_CSV}: files listed twice with different labels: {listed(conflicts)}")
    if missing:
        raise GlassboxError(
            f"{_LABELS_CSV} lists {len(missing)} file(s) not in the upload: {listed(missing)}"
        )

    candidates = [
        _Candidate(path.as_posix(), label, path.relative_to(root).as_posix())
        for path, (_, label) in chosen.items() if label
    ]
    unlabelled = [(path.as_posix(), f"no label on line {line} of {_LABELS_CSV}")
                  for path, (line, label) in chosen.items() if not label]
    problems: list[dict[str, str]] = []
    if repeats:
        problems.append(
            warning(f"{repeats} row(s) of {_LABELS_CSV} repeat a file already listed; counted once")
        )
    ignored = len(by_name) - len(chosen)
    if ignored:
        problems.append(warning(f"{ignored} file(s) not listed in {_LABELS_CSV} were ignored"))
    return _Plan("labels.csv", candidates, unlabelled, problems)


def _read_labels_csv(path: Path) -> list[tuple[int, str, str]]:
    """(line, filename, label) rows of a labels.csv, read by the shared reader (`core.data.reading`: any
    encoding and delimiter spreadsheets write, a header row required). A missing label (empty, `nan`,
    `N/A`... see `labels.is_missing`) comes back as "", so its file is reported rather than made a class."""
    table = reading.read_table(path, header=True, max_bytes=_MAX_CSV_BYTES)
    folded = [column.casefold() for column in table.columns]
    if "filename" not in folded or "label" not in folded:
        raise GlassboxError(
            f"{_LABELS_CSV} needs a header row with columns filename,label (found: {', '.join(table.columns)})"
        )
    file_col, label_col = folded.index("filename"), folded.index("label")
    rows: list[tuple[int, str, str]] = []
    nameless: list[int] = []
    for line, cells in table.rows:
        filename = cells[file_col].strip() if len(cells) > file_col else ""
        label = cells[label_col] if len(cells) > label_col else ""
        if not filename:
            nameless.append(line)
        else:
            rows.append((line, filename, "" if labelling.is_missing(label) else label))
    if nameless:
        raise GlassboxError(f"{_LABELS_CSV}: no filename on line(s) {listed(nameless)}")
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


def _merge_similar(plan: _Plan, merge: bool) -> None:
    """Name the classes that differ only by case, spaces or accents in the plan's problems and, when
    asked, merge them (`labels.similar`); a merged file keeps its old class folder inside the new class,
    so "Cat/1.jpg" and "cat/1.jpg" do not collide."""
    into, message = labelling.similar([c.label for c in plan.candidates], merge)
    if message is not None:
        plan.problems.append(warning(message))
    plan.candidates = [
        c if into[c.label] == c.label else replace(c, label=into[c.label], stored=f"{c.label}/{c.stored}")
        for c in plan.candidates
    ]


def _refuse_structure(
    upload: str, plan: _Plan, good: list[tuple[_Candidate, Checked]], bad: list[tuple[str, str]]
) -> None:
    if not good:
        if bad:
            raise GlassboxError(f"{upload}: no usable images; {len(bad)} unusable file(s): {with_reasons(bad)}")
        raise GlassboxError(f"{upload}: no images found")
    counts = Counter(c.label for c, _ in good)
    if len(counts) < 2:
        hint = " (put each class's images in its own folder)" if plan.layout == "folders" else ""
        raise GlassboxError(f"only one class {next(iter(counts))!r} found: need at least two{hint}")
    lonely = sorted(label for label, n in counts.items() if n < 2)
    if lonely:
        names = ", ".join(repr(label) for label in lonely[:MAX_LISTED])
        raise GlassboxError(f"class(es) {names} have only 1 image: need at least 2 images per class"
                            f"{labelling.similar_hint(lonely, counts)}")


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


def _info(
    plan: _Plan, items: list[tuple[str, str, Checked]], dropped: list[str], origin_of: dict[str, str]
) -> dict[str, Any]:
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
        problems.append(warning(f"{len(dropped)} unusable file(s) left out: {listed(dropped)}"))
    problems.extend(_warnings(counts, items, modes, origin_of))
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
    counts: Counter[str], items: list[tuple[str, str, Checked]], modes: Counter[str], origin_of: dict[str, str]
) -> list[dict[str, str]]:
    """Warnings about the kept images, naming files by their path in the upload (`origin_of`)."""
    problems = balance_warnings(counts, "images", _FEW_IMAGES, _IMBALANCE)
    by_digest: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for rel, label, result in items:
        by_digest[result.digest].append((origin_of[rel], label))
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



