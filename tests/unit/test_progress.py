"""Progress a person can see: the counted phases before the first step (decoding images, encoding a frozen
backbone's features), why a run stopped early, the best epoch's metrics kept for every ending, and the
free space a run needs checked before it starts."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from core import datasets, runs
from core.artifacts import RunFiles
from core.config import TrainConfig
from core.errors import GlassboxError
from core.store import RunRecord, Store
from core.training.loop import TrainJob, train
from core.training.reporting import StoreReporter
from core.workspace import Workspace


class _Recorder:
    """A reporter that keeps what the loop tells it."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.phases: list[tuple[str, int, int]] = []
        self.best: list[dict[str, float]] = []

    def log(self, message: str, level: str = "info") -> None:
        self.lines.append(message)

    def phase(self, what: str, done: int, total: int) -> None:
        self.phases.append((what, done, total))

    def started(self, **_: Any) -> None: ...

    def step(self, **_: Any) -> None: ...

    def epoch_end(self, *, best: dict[str, float], **_: Any) -> None:
        self.best.append(best)

    def should_stop(self) -> bool:
        return False


def _run_record(store: Store, dataset_id: str) -> RunRecord:
    record = RunRecord(id="run-progress", dataset_id=dataset_id, modality="images", backbone="test_efficientnet",
                       status="running", config={}, backend="local", created_at=0.0)
    store.add_run(record)
    return record


def test_a_frozen_backbone_counts_its_features_and_an_early_stop_says_why(
    ws: Workspace, store: Store, colour_zip: Path, tmp_path: Path
) -> None:
    record = datasets.add(ws, store, colour_zip)
    # a learning rate too small to change a prediction: epoch 1 stays the best, so patience 2 stops after epoch 3
    config = TrainConfig(dataset_id=record.id, backbone="test_efficientnet", weights="none", image_size=32,
                         epochs=6, batch_size=16, lr=1e-12, mode="head", augmentation="none", device="cpu",
                         warmup_fraction=0.0, label_smoothing=0.0, early_stopping_patience=2)
    files = RunFiles(tmp_path / "run")
    files.root.mkdir()
    reporter = _Recorder()
    metrics = train(TrainJob(config, files, ws.dataset_dir(record.id), record.info, ws.cache_dir), reporter)

    decoding = [p for p in reporter.phases if p[0] == "decoding images"]
    assert decoding == [("decoding images", n, 72) for n in range(1, 73)]
    encoding = [p for p in reporter.phases if p[0] == "encoding features"]
    # 57 training and 15 validation images, in batches of 32, counted as one phase
    assert encoding == [("encoding features", n, 72) for n in (0, 32, 57, 72)]
    assert "stopped early after epoch 3 of 6: no improvement for 2 epochs; best epoch 1 kept" in reporter.lines
    assert metrics["best_epoch"] == 1 and metrics["epochs_completed"] == 3
    # after every epoch the loop hands over the best epoch so far, the figures a cancelled run keeps
    assert [b["best_epoch"] for b in reporter.best] == [1, 1, 1]
    assert {"val_accuracy", "val_macro_f1", "val_loss", "best_epoch"} <= set(reporter.best[-1])
    assert reporter.best[-1] == {k: metrics[k] for k in reporter.best[-1]}


def test_the_store_reporter_keeps_the_phase_with_its_count_until_steps_start(store: Store, dataset_id: str) -> None:
    run = _run_record(store, dataset_id)
    reporter = StoreReporter(store, run.id, threading.Event(), flush_every_s=0.0)
    reporter.phase("encoding features", 0, 888)
    assert store.get_run(run.id).phase == {"what": "encoding features", "done": 0, "total": 888, "eta_s": None}
    reporter.phase("encoding features", 310, 888)
    phase = store.get_run(run.id).phase
    assert (phase["what"], phase["done"], phase["total"]) == ("encoding features", 310, 888)
    assert phase["eta_s"] is not None
    reporter.started(total_epochs=3, steps_per_epoch=10, start_epoch=0, device="cpu")
    assert store.get_run(run.id).phase is None
    assert store.get_run(run.id).summary()["phase"] is None


def test_the_best_epoch_is_stored_after_every_epoch(store: Store, dataset_id: str) -> None:
    run = _run_record(store, dataset_id)
    reporter = StoreReporter(store, run.id, threading.Event())
    best = {"val_accuracy": 0.75, "val_macro_f1": 0.7, "val_loss": 0.6, "best_epoch": 2}
    reporter.epoch_end(epoch=3, step=30, metrics={"val_accuracy": 0.5}, best=best)
    assert store.get_run(run.id).metrics == best


def test_a_run_that_cannot_fit_on_the_disk_is_refused_before_it_starts(
    ws: Workspace, store: Store, dataset_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = TrainConfig(dataset_id=dataset_id, backbone="efficientnet_lite0", mode="full", optimizer="adamw")
    needed = runs.space_needed(config, store.get_dataset(dataset_id))
    # Lite0's 4.7 M float32 parameters (as timm lists it): 18.8 MB of weights, twice a 56.4 MB checkpoint with
    # AdamW's two moments, and 72 items' predictions (3 classes)
    assert needed == 18_800_000 + 2 * 56_400_000 + 72 * 5 * 12
    monkeypatch.setattr(runs.shutil, "disk_usage", lambda path: _Usage(free=30_000_000))
    with pytest.raises(GlassboxError) as refused:
        runs.create(ws, store, config)
    assert str(refused.value) == (
        f"not enough space on the workspace's disk ({ws.home}): 30 MB free, the run needs about 132 MB for its "
        "weights and checkpoints; free some space (delete old runs or datasets) and try again"
    )
    assert store.list_runs() == [] and list(ws.runs_dir.iterdir()) == []


class _Usage:
    def __init__(self, free: int) -> None:
        self.free = free


@pytest.fixture
def dataset_id(ws: Workspace, store: Store, colour_zip: Path) -> str:
    return datasets.add(ws, store, colour_zip).id
