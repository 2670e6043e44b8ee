"""Where Glassbox keeps things: one folder (GLASSBOX_HOME, default ./workspace) holding the store,
the validated datasets and every run's files. Nothing is written anywhere else.

With a cluster backend, the datasets' and runs' folders (and the cache and staging area beside them, so that
a dataset moves in with one rename) live in GLASSBOX_STORAGE instead, a folder the cluster reaches too; the
store stays in GLASSBOX_HOME."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Workspace:
    home: Path
    storage: Path | None = None

    @classmethod
    def from_env(cls) -> Workspace:
        home = Path(os.environ.get("GLASSBOX_HOME", "workspace")).expanduser().resolve()
        shared = os.environ.get("GLASSBOX_STORAGE")
        ws = cls(home, Path(shared).expanduser().resolve() if shared else None)
        ws.ensure()
        return ws

    @property
    def files_root(self) -> Path:
        """The folder holding datasets, runs, cache and staging: GLASSBOX_STORAGE, else the home."""
        return self.storage or self.home

    def ensure(self) -> None:
        for folder in (self.datasets_dir, self.runs_dir, self.cache_dir, self.staging_dir):
            folder.mkdir(parents=True, exist_ok=True)

    @property
    def db_path(self) -> Path:
        return self.home / "glassbox.db"

    @property
    def datasets_dir(self) -> Path:
        return self.files_root / "datasets"

    @property
    def runs_dir(self) -> Path:
        return self.files_root / "runs"

    @property
    def cache_dir(self) -> Path:
        """Converted weights and other derived files that can be rebuilt at any time."""
        return self.files_root / "cache"

    @property
    def staging_dir(self) -> Path:
        """Uploads are unpacked and validated here, then moved into datasets/ in one rename."""
        return self.files_root / "staging"

    def dataset_dir(self, dataset_id: str) -> Path:
        return self.datasets_dir / dataset_id

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id
