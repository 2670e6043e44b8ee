"""The embedded store: one SQLite file in WAL mode, the single source of truth for datasets, runs,
metrics, events and log lines.

Every call opens a short transaction so that the studio, the CLI and any number of workers can read
and write at once; `busy_timeout` absorbs the brief write locks instead of failing.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import GlassboxError

ACTIVE = ("starting", "running")
TERMINAL = ("completed", "failed", "cancelled")
STATUSES = ("queued", *ACTIVE, "interrupted", *TERMINAL)
_JSON_COLUMNS = ("metrics", "config", "phase")
_BASELINE_KEYS = ("baselines", "baseline_metrics")  # kept in a run's metrics by core.baselines

_SCHEMA = """
CREATE TABLE IF NOT EXISTS datasets (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    modality TEXT NOT NULL,
    created_at REAL NOT NULL,
    info TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    dataset_id TEXT NOT NULL,
    modality TEXT NOT NULL,
    backbone TEXT NOT NULL,
    status TEXT NOT NULL,
    config TEXT NOT NULL,
    backend TEXT NOT NULL DEFAULT 'local',
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    heartbeat_at REAL,
    pid INTEGER,
    host TEXT,
    device TEXT,
    epoch INTEGER NOT NULL DEFAULT 0,
    total_epochs INTEGER NOT NULL DEFAULT 0,
    step INTEGER NOT NULL DEFAULT 0,
    total_steps INTEGER NOT NULL DEFAULT 0,
    samples_per_s REAL,
    eta_s REAL,
    cancel_requested_at REAL,
    metrics TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    phase TEXT
);
CREATE INDEX IF NOT EXISTS runs_status ON runs(status, created_at);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    step INTEGER NOT NULL,
    name TEXT NOT NULL,
    value REAL NOT NULL,
    ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_run ON metrics(run_id, name, step);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    ts REAL NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_run ON events(run_id, id);
"""


@dataclass
class DatasetRecord:
    id: str
    name: str
    modality: str
    created_at: float
    info: dict[str, Any]


@dataclass
class RunRecord:
    id: str
    dataset_id: str
    modality: str
    backbone: str
    status: str
    config: dict[str, Any]
    backend: str
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    heartbeat_at: float | None = None
    pid: int | None = None
    host: str | None = None
    device: str | None = None
    epoch: int = 0
    total_epochs: int = 0
    step: int = 0
    total_steps: int = 0
    samples_per_s: float | None = None
    eta_s: float | None = None
    cancel_requested_at: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    # work before or between training steps: {"what": "encoding features", "done": 310, "total": 888,
    # "eta_s": 12.5}; None once steps run
    phase: dict[str, Any] | None = None

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    def summary(self) -> dict[str, Any]:
        """The JSON shape the CLI prints for a run."""
        ended = self.finished_at or (time.time() if self.started_at else None)
        return {
            "run_id": self.id,
            "status": self.status,
            "dataset_id": self.dataset_id,
            "modality": self.modality,
            "task": self.config.get("task", "classification"),
            "backbone": self.backbone,
            "backend": self.backend,
            "device": self.device,
            "pid": self.pid if self.is_active else None,
            "epoch": self.epoch,
            "epochs_completed": self.epoch,
            "total_epochs": self.total_epochs,
            "step": self.step,
            "total_steps": self.total_steps,
            "phase": self.phase,
            "duration_s": round(ended - self.started_at, 3) if ended and self.started_at else None,
            # the baselines a run was scored against sit beside its own figures ({name: {metric: value}} and
            # the strongest one's), not among them
            "metrics": {k: v for k, v in self.metrics.items() if k not in _BASELINE_KEYS},
            **{key: self.metrics.get(key, {}) for key in _BASELINE_KEYS},
            "error": self.error,
        }


class Store:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)
            # a workspace made before runs had a phase gains the column (SQLite adds it in place)
            if "phase" not in {row["name"] for row in db.execute("PRAGMA table_info(runs)")}:
                with contextlib.suppress(sqlite3.OperationalError):  # another process added it first
                    db.execute("ALTER TABLE runs ADD COLUMN phase TEXT")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA busy_timeout=30000")
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    @contextmanager
    def transaction(self, immediate: bool = False) -> Iterator[sqlite3.Connection]:
        """One short transaction; `immediate` takes the write lock up front for read-then-write."""
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            yield db
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        finally:
            db.close()

    # datasets -----------------------------------------------------------------------------------
    def add_dataset(self, record: DatasetRecord) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO datasets (id, name, modality, created_at, info) VALUES (?, ?, ?, ?, ?)",
                (record.id, record.name, record.modality, record.created_at, json.dumps(record.info)),
            )

    def get_dataset(self, dataset_id: str) -> DatasetRecord:
        with self.transaction() as db:
            row = db.execute("SELECT * FROM datasets WHERE id = ?", (dataset_id,)).fetchone()
        if row is None:
            raise GlassboxError(f"no dataset {dataset_id!r}")
        return _dataset(row)

    def list_datasets(self) -> list[DatasetRecord]:
        with self.transaction() as db:
            rows = db.execute("SELECT * FROM datasets ORDER BY created_at DESC").fetchall()
        return [_dataset(r) for r in rows]

    def delete_dataset(self, dataset_id: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM datasets WHERE id = ?", (dataset_id,))

    # runs ---------------------------------------------------------------------------------------
    def add_run(self, record: RunRecord) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO runs (id, dataset_id, modality, backbone, status, config, backend, "
                "created_at, total_epochs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    record.dataset_id,
                    record.modality,
                    record.backbone,
                    record.status,
                    json.dumps(record.config),
                    record.backend,
                    record.created_at,
                    record.total_epochs,
                ),
            )

    def get_run(self, run_id: str) -> RunRecord:
        with self.transaction() as db:
            row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise GlassboxError(f"no run {run_id!r}")
        return _run(row)

    def list_runs(self, statuses: Sequence[str] | None = None) -> list[RunRecord]:
        query, args = "SELECT * FROM runs", ()
        if statuses:
            query += f" WHERE status IN ({','.join('?' * len(statuses))})"
            args = tuple(statuses)
        with self.transaction() as db:
            rows = db.execute(query + " ORDER BY created_at DESC", args).fetchall()
        return [_run(r) for r in rows]

    def update_run(self, run_id: str, **values: Any) -> None:
        if not values:
            return
        for key in _JSON_COLUMNS:
            if key in values:
                values[key] = json.dumps(values[key])
        assignments = ", ".join(f"{k} = ?" for k in values)
        with self.transaction() as db:
            db.execute(f"UPDATE runs SET {assignments} WHERE id = ?", (*values.values(), run_id))

    def transition(self, run_id: str, from_statuses: Sequence[str], **values: Any) -> bool:
        """Change a run only if it is still in one of `from_statuses`; True when it changed.

        This compare-and-set is what keeps two processes (a worker finishing, a user cancelling,
        the app reconciling) from overwriting each other's verdict.
        """
        for key in ("metrics", "config"):
            if key in values:
                values[key] = json.dumps(values[key])
        assignments = ", ".join(f"{k} = ?" for k in values)
        marks = ",".join("?" * len(from_statuses))
        with self.transaction() as db:
            cursor = db.execute(
                f"UPDATE runs SET {assignments} WHERE id = ? AND status IN ({marks})",
                (*values.values(), run_id, *from_statuses),
            )
        return cursor.rowcount == 1

    def delete_run(self, run_id: str) -> None:
        with self.transaction() as db:
            for table, column in (("metrics", "run_id"), ("events", "run_id"), ("runs", "id")):
                db.execute(f"DELETE FROM {table} WHERE {column} = ?", (run_id,))

    # metrics, events ----------------------------------------------------------------------------
    def add_metrics(self, run_id: str, rows: Sequence[tuple[int, int, str, float]]) -> None:
        """Rows of (epoch, step, name, value), written in one transaction."""
        if not rows:
            return
        now = time.time()
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO metrics (run_id, epoch, step, name, value, ts) VALUES (?, ?, ?, ?, ?, ?)",
                [(run_id, e, s, n, float(v), now) for e, s, n, v in rows],
            )

    def metrics(self, run_id: str, names: Sequence[str] | None = None) -> list[dict[str, Any]]:
        query, args = "SELECT epoch, step, name, value, ts FROM metrics WHERE run_id = ?", (run_id,)
        if names:
            query += f" AND name IN ({','.join('?' * len(names))})"
            args = (run_id, *names)
        with self.transaction() as db:
            rows = db.execute(query + " ORDER BY step, rowid", args).fetchall()
        return [dict(r) for r in rows]

    def add_event(self, run_id: str, message: str, level: str = "info") -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO events (run_id, ts, level, message) VALUES (?, ?, ?, ?)",
                (run_id, time.time(), level, message),
            )

    def events(self, run_id: str, after_id: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        with self.transaction() as db:
            rows = db.execute(
                "SELECT id, ts, level, message FROM events WHERE run_id = ? AND id > ? "
                "ORDER BY id DESC LIMIT ?",
                (run_id, after_id, limit),
            ).fetchall()
        return [dict(r) for r in reversed(rows)]


def _dataset(row: sqlite3.Row) -> DatasetRecord:
    return DatasetRecord(
        id=row["id"],
        name=row["name"],
        modality=row["modality"],
        created_at=row["created_at"],
        info=json.loads(row["info"]),
    )


def _run(row: sqlite3.Row) -> RunRecord:
    data = dict(row)
    data["config"] = json.loads(data["config"])
    data["metrics"] = json.loads(data["metrics"])
    data["phase"] = json.loads(data["phase"]) if data["phase"] else None
    return RunRecord(**data)
