"""The embedded store: one SQLite file in WAL mode, the single source of truth for datasets, runs,
metrics, events and log lines.

Every call opens a short transaction so that the studio, the CLI and any number of workers can read
and write at once; `busy_timeout` absorbs the brief write locks instead of failing.
"""

from __future__ import annotations

import copy
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


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row["name"] for row in db.execute(f"PRAGMA table_info({table})")}


def _add_columns(db: sqlite3.Connection, table: str, columns: dict[str, str]) -> None:
    """ALTER TABLE ADD COLUMN for each missing column (SQLite adds it in place, existing rows take the default)."""
    present = _columns(db, table)
    for name, declaration in columns.items():
        if name not in present:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")


def _migration_1(db: sqlite3.Connection) -> None:
    """The first schema; a workspace made before runs had a phase (and before versions) gains the column."""
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)
    _add_columns(db, "runs", {"phase": "TEXT"})


def _migration_2(db: sqlite3.Connection) -> None:
    """Remote jobs and owners: the backend's job id, how far the studio has read a remote job's report
    stream (characters of its log), and who owns a run or dataset (logins come later; until then 'local')."""
    _add_columns(db, "runs", {
        "job_id": "TEXT",
        "owner": "TEXT NOT NULL DEFAULT 'local'",
        "report_offset": "INTEGER NOT NULL DEFAULT 0",
    })
    _add_columns(db, "datasets", {"owner": "TEXT NOT NULL DEFAULT 'local'"})


# applied in order on open; a new schema change is one more function at the end, never an edit of an old one
_MIGRATIONS = (_migration_1, _migration_2)
SCHEMA_VERSION = len(_MIGRATIONS)


@dataclass
class DatasetRecord:
    id: str
    name: str
    modality: str
    created_at: float
    info: dict[str, Any]
    owner: str = "local"


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
    # the job backend's id for the run's current job (Ray: its submission id); None for a local run
    job_id: str | None = None
    owner: str = "local"
    # characters of the remote job's log already read into the store (the report stream's read position)
    report_offset: int = 0

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
        # who this handle acts for (`scoped`): what it adds is theirs; unless `sees_all`, it reads only theirs
        self.owner = "local"
        self.sees_all = True
        self._migrate()

    def scoped(self, owner: str, sees_all: bool = False) -> Store:
        """This store as `owner` uses it in a shared studio: datasets and runs it adds are `owner`'s, and unless
        `sees_all` (an admin) it lists and gets only theirs; someone else's is "no such run" (or dataset), so an id
        in a deep link reaches nothing. Metrics and events are read by run id, which only a visible run gives."""
        view = copy.copy(self)
        view.owner, view.sees_all = owner, sees_all
        return view

    def _mine(self, query: str, args: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
        """`query` (a SELECT with a WHERE clause) limited to this handle's owner unless it sees all."""
        return (query, args) if self.sees_all else (query + " AND owner = ?", (*args, self.owner))

    def _migrate(self) -> None:
        """Bring the file to `SCHEMA_VERSION` by applying, in order, each migration above its
        `PRAGMA user_version`, all in one write transaction: two processes opening an old workspace at
        once apply each migration once (the second sees the version the first wrote)."""
        db = self._connect()
        try:
            if db.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
                return
            db.execute("BEGIN IMMEDIATE")
            try:
                version = db.execute("PRAGMA user_version").fetchone()[0]
                for number, migration in enumerate(_MIGRATIONS, start=1):
                    if number > version:
                        migration(db)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        finally:
            db.close()

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

    def _stamp(self, owner: str) -> str:
        """The owner a new record is stored with: a scoped handle's own, else the record's."""
        return owner if self.owner == "local" else self.owner

    # datasets -----------------------------------------------------------------------------------
    def add_dataset(self, record: DatasetRecord) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO datasets (id, name, modality, created_at, info, owner) VALUES (?, ?, ?, ?, ?, ?)",
                (record.id, record.name, record.modality, record.created_at, json.dumps(record.info),
                 self._stamp(record.owner)),
            )

    def get_dataset(self, dataset_id: str) -> DatasetRecord:
        with self.transaction() as db:
            row = db.execute(*self._mine("SELECT * FROM datasets WHERE id = ?", (dataset_id,))).fetchone()
        if row is None:
            raise GlassboxError(f"no dataset {dataset_id!r}")
        return _dataset(row)

    def list_datasets(self) -> list[DatasetRecord]:
        with self.transaction() as db:
            query, args = self._mine("SELECT * FROM datasets WHERE 1", ())
            rows = db.execute(query + " ORDER BY created_at DESC", args).fetchall()
        return [_dataset(r) for r in rows]

    def delete_dataset(self, dataset_id: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM datasets WHERE id = ?", (dataset_id,))

    # runs ---------------------------------------------------------------------------------------
    def add_run(self, record: RunRecord) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO runs (id, dataset_id, modality, backbone, status, config, backend, "
                "created_at, total_epochs, owner, job_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    self._stamp(record.owner),
                    record.job_id,
                ),
            )

    def get_run(self, run_id: str) -> RunRecord:
        with self.transaction() as db:
            row = db.execute(*self._mine("SELECT * FROM runs WHERE id = ?", (run_id,))).fetchone()
        if row is None:
            raise GlassboxError(f"no run {run_id!r}")
        return _run(row)

    def list_runs(self, statuses: Sequence[str] | None = None) -> list[RunRecord]:
        query, args = "SELECT * FROM runs WHERE 1", ()
        if statuses:
            query += f" AND status IN ({','.join('?' * len(statuses))})"
            args = tuple(statuses)
        query, args = self._mine(query, args)
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

    def advance_report_offset(self, run_id: str, old: int, new: int) -> bool:
        """Move a run's `report_offset` from `old` to `new` only if it is still `old`; True when it moved.
        Whoever moves it applies the reports in between, so each is applied once."""
        with self.transaction() as db:
            cursor = db.execute("UPDATE runs SET report_offset = ? WHERE id = ? AND report_offset = ?",
                                (new, run_id, old))
        return cursor.rowcount == 1

    def delete_run(self, run_id: str) -> None:
        with self.transaction() as db:
            for table, column in (("metrics", "run_id"), ("events", "run_id"), ("runs", "id")):
                db.execute(f"DELETE FROM {table} WHERE {column} = ?", (run_id,))

    # metrics, events ----------------------------------------------------------------------------
    def add_metrics(self, run_id: str, rows: Sequence[tuple[int, int, str, float]], ts: float | None = None) -> None:
        """Rows of (epoch, step, name, value), written in one transaction, stamped `ts` (default now)."""
        if not rows:
            return
        now = time.time() if ts is None else ts
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

    def add_event(self, run_id: str, message: str, level: str = "info", ts: float | None = None) -> None:
        """An event stamped `ts` (seconds since the epoch; default now)."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO events (run_id, ts, level, message) VALUES (?, ?, ?, ?)",
                (run_id, time.time() if ts is None else ts, level, message),
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
        owner=row["owner"],
    )


def _run(row: sqlite3.Row) -> RunRecord:
    data = dict(row)
    data["config"] = json.loads(data["config"])
    data["metrics"] = json.loads(data["metrics"])
    data["phase"] = json.loads(data["phase"]) if data["phase"] else None
    return RunRecord(**data)
