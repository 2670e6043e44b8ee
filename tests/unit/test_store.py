import multiprocessing
import sqlite3
import time
from pathlib import Path

import pytest

from core.errors import GlassboxError
from core.store import RunRecord, Store


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
