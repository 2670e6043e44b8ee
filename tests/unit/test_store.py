import multiprocessing
import sqlite3
import time
from pathlib import Path

import pytest

from core.errors import GlassboxError
from core.store import SCHEMA_VERSION, RunRecord, Store


def _run(run_id: str) -> RunRecord:
    return RunRecord(id=run_id, dataset_id="ds", modality="images", backbone="b", status="queued", config={},
                     backend="local", created_at=time.time())


def _writer(path: str, run_id: str, n: int) -> None:
    store = Store(Path(path))
    for i in range(n):
        store.add_metrics(run_id, [(1, i, "train_loss", float(i))])
        store.add_event(run_id, f"event {i}")
        store.update_run(run_id, step=i, heartbeat_at=time.time())


def test_store_is_wal(store: Store) -> None:
    mode = sqlite3.connect(store.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_two_writer_processes_lose_nothing(store: Store) -> None:
    store.add_run(_run("a"))
    store.add_run(_run("b"))
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(store.path), rid, 150)) for rid in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    for rid in ("a", "b"):
        assert len(store.metrics(rid)) == 150
        assert len(store.events(rid, limit=10_000)) == 150
        assert store.get_run(rid).step == 149


def test_transition_is_compare_and_set(store: Store) -> None:
    store.add_run(_run("r"))
    assert store.transition("r", ["queued"], status="running")
    assert not store.transition("r", ["queued"], status="cancelled")
    assert store.get_run("r").status == "running"


def test_unknown_run_is_a_user_error(store: Store) -> None:
    with pytest.raises(GlassboxError, match="no run"):
        store.get_run("nope")


def test_events_after_id_and_limit(store: Store) -> None:
    for i in range(5):
        store.add_event("r", f"m{i}")
    events = store.events("r")
    assert [e["message"] for e in events] == [f"m{i}" for i in range(5)]
    assert [e["message"] for e in store.events("r", after_id=events[2]["id"])] == ["m3", "m4"]
    assert [e["message"] for e in store.events("r", limit=2)] == ["m3", "m4"]


# the schema as the code before versioned migrations created it (issue 13), copied verbatim
_OLD_SCHEMA = """
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


@pytest.mark.parametrize("with_phase", [True, False], ids=["previous", "before-phase"])
def test_a_store_made_by_the_old_schema_opens_keeps_its_rows_and_gains_the_columns(tmp_path: Path,
                                                                                  with_phase: bool) -> None:
    path = tmp_path / "glassbox.db"
    old = sqlite3.connect(path)
    old.executescript(_OLD_SCHEMA if with_phase else _OLD_SCHEMA.replace(",\n    phase TEXT", ""))
    old.execute("INSERT INTO datasets VALUES ('ds-1', 'penguins', 'tables', 1.0, '{\"num_items\": 344}')")
    old.execute("INSERT INTO runs (id, dataset_id, modality, backbone, status, config, created_at, epoch, metrics) "
                "VALUES ('run-1', 'ds-1', 'tables', 'mlp', 'completed', '{\"epochs\": 2}', 2.0, 2, "
                "'{\"val_accuracy\": 0.97}')")
    old.execute("INSERT INTO metrics VALUES ('run-1', 1, 5, 'train_loss', 0.5, 3.0)")
    old.execute("INSERT INTO events (run_id, ts, level, message) VALUES ('run-1', 3.0, 'info', 'completed')")
    old.commit()
    old.close()

    store = Store(path)
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    run = store.get_run("run-1")
    assert (run.status, run.epoch, run.config, run.metrics) == ("completed", 2, {"epochs": 2}, {"val_accuracy": 0.97})
    assert (run.job_id, run.owner, run.report_offset, run.phase) == (None, "local", 0, None)
    dataset = store.get_dataset("ds-1")
    assert (dataset.name, dataset.info, dataset.owner) == ("penguins", {"num_items": 344}, "local")
    assert [(m["step"], m["value"]) for m in store.metrics("run-1")] == [(5, 0.5)]
    assert [e["message"] for e in store.events("run-1")] == ["completed"]
    # the new columns are written and read like the old ones; opening again migrates nothing twice
    store.update_run("run-1", job_id="run-1", report_offset=120)
    assert store.advance_report_offset("run-1", 120, 300) and not store.advance_report_offset("run-1", 120, 400)
    again = Store(path).get_run("run-1")
    assert (again.job_id, again.report_offset) == ("run-1", 300)


def test_a_new_store_is_at_the_latest_version(store: Store) -> None:
    assert sqlite3.connect(store.path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    store.add_run(_run("n"))
    assert (store.get_run("n").owner, store.get_run("n").report_offset) == ("local", 0)
