"""Adding, listing and deleting datasets. An upload is unpacked and validated in the workspace's
staging area and moved into datasets/ with one rename, so a failed upload leaves nothing behind."""

from __future__ import annotations

import shutil
import time
import uuid
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
    source = Path(source)
    if not source.exists():
        raise GlassboxError(f"{source}: no such file or folder")
    kind = data.modality(modality) if modality else data.detect(source)
    dataset_id = f"ds-{uuid.uuid4().hex[:10]}"
    staging = ws.staging_dir / dataset_id
    staging.mkdir(parents=True)
    try:
        info = kind.ingest(source, staging, drop_bad=drop_bad, options=options or {})
        final = ws.dataset_dir(dataset_id)
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    record = DatasetRecord(
        id=dataset_id,
        name=name or _default_name(source),
        modality=kind.name,
        created_at=time.time(),
        info=info,
    )
    try:
        store.add_dataset(record)
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)
        raise
    return record


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


def clean_staging(ws: Workspace, older_than_s: float = 3600) -> None:
    """Leftovers of uploads interrupted by a crash; they were never registered, so they can go."""
    cutoff = time.time() - older_than_s
    for leftover in ws.staging_dir.iterdir():
        if leftover.stat().st_mtime < cutoff:
            shutil.rmtree(leftover, ignore_errors=True)


def _default_name(source: Path) -> str:
    return source.stem if source.is_file() else source.name
