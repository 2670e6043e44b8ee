"""Adding, listing and deleting datasets. An upload is unpacked and validated in the workspace's
staging area and moved into datasets/ with one rename, so a failed upload leaves nothing behind."""

from __future__ import annotations

import copy
import csv
import hashlib
import os
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core import data
from core.errors import GlassboxError
from core.store import DatasetRecord, Store
from core.workspace import Workspace


def add(
    ws: Workspace,
    store: Store,
    source: Path,
    *,
    name: str | None = None,
    modality: str | None = None,
    drop_bad: bool = False,
    options: dict[str, Any] | None = None,
) -> DatasetRecord:
    """Validate `source` (a file or folder) as a dataset of `modality` (detected by default), store it, and
    return its record; `options` are the modality's ingest choices (columns, merging similar labels).

    The record's `info["source"]` keeps the upload's SHA-256 (`content_sha256`) and `options`, so the same
    bytes added again with the same choices are recognised before anything is read.

    Raises DuplicateDatasetError (naming the stored dataset) for such a copy, BadFilesError when some files
    or rows cannot be used and not `drop_bad`, GlassboxError for any other unusable input.
    """
    source = Path(source)
    if not source.exists():
        raise GlassboxError(f"{source}: no such file or folder")
    kind = data.modality(modality) if modality else data.detect(source, options)
    fingerprint = {"sha256": content_sha256(source), "options": dict(sorted((options or {}).items()))}
    existing = _same_upload(store, kind.name, fingerprint)
    if existing is not None:
        raise DuplicateDatasetError(source.name, existing)
    dataset_id = f"ds-{uuid.uuid4().hex[:10]}"
    staging = ws.staging_dir / dataset_id
    staging.mkdir(parents=True)
    try:
        info = kind.ingest(source, staging, drop_bad=drop_bad, options=options or {})
        info["source"] = fingerprint
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return _register(ws, store, staging, DatasetRecord(id=dataset_id, name=name or _default_name(source),
                                                       modality=kind.name, created_at=time.time(), info=info))


def _register(ws: Workspace, store: Store, staging: Path, record: DatasetRecord) -> DatasetRecord:
    """Move a complete dataset folder from staging into datasets/ with one rename, then store its record;
    whichever step fails, nothing is left behind."""
    final = ws.dataset_dir(record.id)
    try:
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    try:
        store.add_dataset(record)
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)
        raise
    return record


class DuplicateDatasetError(GlassboxError):
    """An upload whose bytes (and ingest choices) are those of a stored dataset, `existing`: adding it
    again would only make a silent copy."""

    def __init__(self, filename: str, existing: DatasetRecord) -> None:
        self.existing = existing
        added = time.strftime("%Y-%m-%d %H:%M", time.localtime(existing.created_at))
        super().__init__(f"{filename} is identical to the dataset {existing.name} ({existing.id}, added {added}): "
                         f"nothing was added; use {existing.id}")


def content_sha256(source: Path) -> str:
    """The SHA-256 (hex) of a file's bytes; for a folder, of every file's relative path and bytes in path
    order, so the same folder copied elsewhere hashes the same."""
    if source.is_file():
        with open(source, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    digest = hashlib.sha256()
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        digest.update(path.relative_to(source).as_posix().encode() + b"\0")
        with open(path, "rb") as fh:
            digest.update(hashlib.file_digest(fh, "sha256").digest())
    return digest.hexdigest()


def _same_upload(store: Store, modality: str, fingerprint: dict[str, Any]) -> DatasetRecord | None:
    """The stored dataset added from the same bytes with the same choices, if any. A dataset derived from
    another (`info["parent"]`) holds fewer items than its upload, so it is never one."""
    for record in store.list_datasets():
        if (record.modality == modality and record.info.get("source") == fingerprint
                and "parent" not in record.info):
            return record
    return None


def resolve(store: Store, ref: str) -> DatasetRecord:
    """A dataset by id, or by name when exactly one has it."""
    matches = [d for d in store.list_datasets() if ref in (d.id, d.name)]
    if not matches:
        raise GlassboxError(f"no dataset {ref!r}")
    if len(matches) > 1:
        raise GlassboxError(f"{len(matches)} datasets are named {ref!r}: use the id")
    return matches[0]


def delete(ws: Workspace, store: Store, dataset_id: str) -> None:
    users = [r.id for r in store.list_runs() if r.dataset_id == dataset_id and not r.is_terminal]
    if users:
        raise GlassboxError(f"dataset {dataset_id} is used by unfinished runs: {', '.join(users)}")
    store.get_dataset(dataset_id)
    store.delete_dataset(dataset_id)
    shutil.rmtree(ws.dataset_dir(dataset_id), ignore_errors=True)


def derive(
    ws: Workspace, store: Store, parent_id: str, exclude: Mapping[int, str], *, name: str | None = None
) -> DatasetRecord:
    """A new dataset holding the items of dataset `parent_id` except those in `exclude` (item index, in
    items.csv's order, -> why it is left out, e.g. "mislabelled"), recorded with `info["parent"]` and
    `info["excluded"]` ([{"item", "label", "reason"}]). The parent and the runs trained on it are left
    as they are: a run keeps pointing at what it trained on.

    Item files are hard-linked (copied where the file system cannot link), items.csv and split.csv are
    rewritten without the left-out rows, and the info's classes, counts, sample lists and split counts
    are recomputed; the rest of the info (sizes, lengths, warnings) describes the parent.

    Raises GlassboxError when `exclude` is empty, names an item the parent does not have, or leaves
    fewer than two classes.
    """
    parent = store.get_dataset(parent_id)
    source = ws.dataset_dir(parent_id)
    if any(source.glob("*.npz")):  # series arrays, one row per series or the whole series to forecast
        raise GlassboxError(f"dataset {parent.name} holds series: leaving some out is not available for series yet")
    header, rows = _read_rows(source / "items.csv", parent.name)
    if not exclude:
        raise GlassboxError(f"no item is left out: the new dataset would be {parent.name} again")
    unknown = sorted(i for i in exclude if not 0 <= i < len(rows))
    if unknown:
        raise GlassboxError(f"dataset {parent.name} has no item {unknown[0]} (it has {len(rows)})")
    kept = [i for i in range(len(rows)) if i not in exclude]
    classifying = parent.info.get("task", "classification") == "classification"
    counts = Counter(rows[i][1] for i in kept)
    if classifying and len(counts) < 2:
        raise GlassboxError(f"leaving out {len(exclude)} item(s) of {parent.name} leaves fewer than 2 classes")
    if not classifying and len(kept) < 2:
        raise GlassboxError(f"leaving out {len(exclude)} item(s) of {parent.name} leaves fewer than 2 items")

    dataset_id = f"ds-{uuid.uuid4().hex[:10]}"
    staging = ws.staging_dir / dataset_id
    left_out = {rows[i][0] for i in exclude}
    try:
        # an item that is a file (an image) is named by its path under the dataset folder
        shutil.copytree(source, staging, copy_function=_link_or_copy,
                        ignore=lambda folder, names: {
                            n for n in names
                            if Path(folder, n).relative_to(source).as_posix() in left_out | set(_ITEM_LISTS)})
        _write_rows(staging / "items.csv", header, [rows[i] for i in kept])
        info = copy.deepcopy(parent.info)
        info.pop("source", None)  # the upload's fingerprint: this dataset was made from no upload of its own
        if (source / "rows.csv").exists():
            table_header, table_rows = _read_rows(source / "rows.csv", parent.name)
            if len(table_rows) != len(rows):
                raise GlassboxError(f"dataset {parent.name}: rows.csv does not match items.csv")
            _write_rows(staging / "rows.csv", table_header, [table_rows[i] for i in kept])
        classes = sorted(counts) if classifying else []
        info.update(classes=classes, counts={c: counts[c] for c in classes}, num_items=len(kept),
                    parent=parent.id,
                    excluded=[{"item": rows[i][0], "label": rows[i][1], "reason": exclude[i]} for i in sorted(exclude)])
        if "samples" in info:
            info["samples"] = _kept_samples(info["samples"], rows, set(kept), classes)
        if "split" in info:
            split_header, parts = _read_rows(source / "split.csv", parent.name)
            if len(parts) != len(rows):
                raise GlassboxError(f"dataset {parent.name}: split.csv does not match items.csv")
            _write_rows(staging / "split.csv", split_header, [parts[i] for i in kept])
            kept_parts = Counter(parts[i][1] for i in kept)
            info["split"]["counts"] = {part: kept_parts[part] for part in info["split"]["counts"]}
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return _register(ws, store, staging, DatasetRecord(
        id=dataset_id, name=name or f"{parent.name} without {len(exclude)} item(s)", modality=parent.modality,
        created_at=time.time(), info=info))


def clean_staging(ws: Workspace, older_than_s: float = 3600) -> None:
    """Leftovers of uploads interrupted by a crash; they were never registered, so they can go."""
    cutoff = time.time() - older_than_s
    for leftover in ws.staging_dir.iterdir():
        if leftover.stat().st_mtime < cutoff:
            shutil.rmtree(leftover, ignore_errors=True)


def _default_name(source: Path) -> str:
    return source.stem if source.is_file() else source.name


# rewritten by `derive`, one row per item: the item list, the user's split, and a table's rows as read
_ITEM_LISTS = ("items.csv", "split.csv", "rows.csv")


def _read_rows(path: Path, dataset_name: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of one of a dataset's item lists (`core.data.base.write_items`, `write_split`)."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            header, *rows = list(csv.reader(fh))
    except (OSError, ValueError, csv.Error) as exc:
        raise GlassboxError(f"dataset {dataset_name}: {path.name} is missing or damaged ({exc})") from None
    return header, rows


def _write_rows(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def _link_or_copy(src: str, dst: str) -> None:
    """A hard link costs no space and keeps the file's time, which the decoded-image cache is keyed on."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _kept_samples(samples: dict[str, list[str]], rows: list[list[str]], kept: set[int],
                  classes: list[str]) -> dict[str, list[str]]:
    """A modality's samples are the first items of each class in item order (each shown as the item or
    a shortened form of it): the j-th sample of a class is its j-th item, kept or not."""
    of_class: dict[str, list[int]] = {c: [] for c in samples}
    for index, (_, label) in enumerate(rows):
        if label in of_class:
            of_class[label].append(index)
    return {c: [s for s, index in zip(samples.get(c, []), of_class.get(c, []), strict=False) if index in kept]
            for c in classes}
