"""A shared studio's store (core.store.Store.scoped): each person sees only their own datasets and runs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from core.errors import GlassboxError
from core.store import DatasetRecord, RunRecord, Store


def _dataset(dataset_id: str) -> DatasetRecord:
    return DatasetRecord(id=dataset_id, name=dataset_id, modality="tables", created_at=time.time(), info={})


def _run(run_id: str, dataset_id: str) -> RunRecord:
    return RunRecord(id=run_id, dataset_id=dataset_id, modality="tables", backbone="mlp", status="queued",
                     config={}, backend="local", created_at=time.time())


def test_each_owner_sees_only_their_own_and_an_admin_sees_all(tmp_path: Path) -> None:
    store = Store(tmp_path / "glassbox.db")
    alice, bob = store.scoped("alice"), store.scoped("bob")
    admin = store.scoped("root", sees_all=True)
    alice.add_dataset(_dataset("ds-a"))
    alice.add_run(_run("run-a", "ds-a"))
    bob.add_dataset(_dataset("ds-b"))
    bob.add_run(_run("run-b", "ds-b"))
    assert [d.id for d in alice.list_datasets()] == ["ds-a"]
    assert [r.id for r in bob.list_runs()] == ["run-b"]
    assert [r.id for r in bob.list_runs(["queued"])] == ["run-b"]
    assert {r.id for r in admin.list_runs()} == {"run-a", "run-b"}
    assert {r.id for r in store.list_runs()} == {"run-a", "run-b"}  # workers and the CLI see everything
    assert store.get_run("run-a").owner == "alice" and store.get_dataset("ds-b").owner == "bob"
    with pytest.raises(GlassboxError, match="no run 'run-a'"):
        bob.get_run("run-a")
    with pytest.raises(GlassboxError, match="no dataset 'ds-a'"):
        bob.get_dataset("ds-a")
    assert alice.get_run("run-a").id == "run-a"


def test_the_default_store_keeps_the_local_owner(tmp_path: Path) -> None:
    store = Store(tmp_path / "glassbox.db")
    store.add_dataset(_dataset("ds-1"))
    assert store.get_dataset("ds-1").owner == "local"
    assert store.scoped("local").list_datasets()[0].id == "ds-1"
    assert store.scoped("alice").list_datasets() == []
