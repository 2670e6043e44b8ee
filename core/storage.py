"""What the studio and a remote worker share through storage (`GLASSBOX_STORAGE`, a folder both reach; by
default the workspace itself): the datasets' and runs' folders. A remote worker cannot read the studio's store,
so a run's folder also holds a copy of its dataset's record, written when the job is submitted."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from core.errors import GlassboxError
from core.store import DatasetRecord

DATASET_RECORD = "dataset.json"


def write_dataset(run_dir: Path, record: DatasetRecord) -> Path:
    """Save `record` in the run's folder (replacing an older copy in one rename); returns the file's path."""
    path = Path(run_dir) / DATASET_RECORD
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(asdict(record)))
    partial.replace(path)
    return path


def read_dataset(run_dir: Path) -> DatasetRecord:
    """The dataset record `write_dataset` saved; GlassboxError when there is none (the run was not submitted
    to a remote backend, or its storage is not the folder the worker sees)."""
    path = Path(run_dir) / DATASET_RECORD
    try:
        return DatasetRecord(**json.loads(path.read_text()))
    except FileNotFoundError:
        raise GlassboxError(f"{path} is missing: is GLASSBOX_STORAGE the same folder for the studio and the "
                            "cluster?") from None
