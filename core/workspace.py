"""Where Glassbox keeps things: one folder (GLASSBOX_HOME, default ./workspace) holding the store,
the validated datasets and every run's files. Nothing is written anywhere else."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Workspace:
    home: Path

    @classmethod
    def from_env(cls) -> Workspace:
        home = Path(os.environ.get("GLASSBOX_HOME", "workspace")).expanduser().resolve()
        ws = cls(home)
        ws.ensure()
        return ws

    def ensure(self) -> None:
        for folder in (self.datasets_dir, self.runs_dir, self.cache_dir, self.staging_dir):
            folder.mkdir(parents=True, exist_ok=True)

    @property
    def db_path(self) -> Path:
        return self.home / "glassbox.db"

    @property
    def datasets_dir(self) -> Path:
        return self.home / "datasets"

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def cache_dir(self) -> Path:
        """Converted weights and other derived files that can be rebuilt at any time."""
        return self.home / "cache"

    @property
    def staging_dir(self) -> Path:
        """Uploads are unpacked and validated here, then moved into datasets/ in one rename."""
        return self.home / "staging"

    def dataset_dir(self, dataset_id: str) -> Path:
        return self.datasets_dir / dataset_id

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id
