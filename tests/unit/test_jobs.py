"""The job system end to end on a tiny model: worker processes, the queue, cancel, crash and resume,
and the CLI contract. Each test starts real worker processes, as the studio does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score

from core import datasets, runs
from core.artifacts import RunFiles
from core.config import TrainConfig
from core.store import Store
from core.workspace import Workspace
from tests.conftest import ROOT


def _config(dataset_id: str, **changes: object) -> TrainConfig:
    base = TrainConfig(dataset_id=dataset_id, backbone="test_efficientnet", weights="none", image_size=32,
                       epochs=3, batch_size=16, lr=1e-2, mode="full", augmentation="none", device="cpu",
                       warmup_fraction=0.0, label_smoothing=0.0)
    return base.updated(**changes)


def _cli(*args: str, env_home: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GLASSBOX_HOME": str(env_home), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _wait_for(predicate, timeout: float = 120, poll: float = 0.05):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError("condition not met in time")


@pytest.fixture
def dataset_id(ws: Workspace, store: Store, colour_zip: Path) -> str:
    return datasets.add(ws, store, colour_zip).id


def test_cli_trains_a_model_that_learns(ws: Workspace, colour_zip: Path) -> None:
    done = _cli("train", "--data", str(colour_zip), "--backbone", "test_efficientnet", "--weights", "none",
                "--epochs", "4", "--image-size", "32", "--lr", "0.01", "--mode", "full", "--device", "cpu", "--json",
                env_home=ws.home)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == "completed"
    assert result["device"].startswith("cpu")
    assert result["epochs_completed"] == 4
    assert result["duration_s"] > 0
    # three colour classes: chance is 1/3
    assert result["metrics"]["val_accuracy"] >= 0.8
    files = RunFiles(ws.run_dir(result["run_id"]))
    assert files.weights.exists() and files.checkpoint.exists() and files.predictions.exists()
    # the reported figures are those of the saved predictions (the best epoch's)
    saved = json.loads(files.predictions.read_text())
    predicted = np.argmax(saved["probs"], axis=1)
    assert result["metrics"]["val_accuracy"] == pytest.approx(np.mean(predicted == saved["labels"]))
    assert result["metrics"]["val_macro_f1"] == pytest.approx(f1_score(saved["labels"], predicted, average="macro"))
    # the saved config reproduces the run
    config = TrainConfig.load(files.config)
    assert (config.epochs, config.backbone, config.seed) == (4, "test_efficientnet", 0)


def test_second_run_waits_for_the_first(ws: Workspace, store: Store, dataset_id: str) -> None:
    first = runs.create(ws, store, _config(dataset_id, epochs=2))
    second = runs.create(ws, store, _config(dataset_id, epochs=1))
    assert store.get_run(second.id).status == "queued"
    _wait_for(lambda: store.get_run(first.id).status == "running")
    assert store.get_run(second.id).status == "queued"
    assert runs.wait(ws, store, first.id).status == "completed"
    # the finishing worker starts the next one: nobody else dispatches here
    assert runs.wait(ws, store, second.id).status == "completed"
    assert store.get_run(second.id).started_at >= store.get_run(first.id).finished_at - 1


def test_cancel_is_cooperative_and_frees_the_worker(ws: Workspace, store: Store, dataset_id: str) -> None:
    run = runs.create(ws, store, _config(dataset_id, epochs=200))
    _wait_for(lambda: store.get_run(run.id).step > 0)
    pid = store.get_run(run.id).pid
    started = time.monotonic()
    cancelled = runs.cancel(ws, store, run.id, wait_s=30)
    assert cancelled.status == "cancelled"
    assert time.monotonic() - started < 10
    assert any("cancelled" in e["message"] for e in store.events(run.id))
    _wait_for(lambda: not _alive(pid), timeout=20)


def test_killed_worker_is_interrupted_then_resumes_where_it_stopped(
    ws: Workspace, store: Store, dataset_id: str
) -> None:
    run = runs.create(ws, store, _config(dataset_id, epochs=6, image_size=64, batch_size=4))
    _wait_for(lambda: store.get_run(run.id).epoch >= 2)
    pid = store.get_run(run.id).pid
    os.killpg(pid, signal.SIGKILL)
    _wait_for(lambda: not _alive(pid), timeout=20)
    runs.reconcile(ws, store)
    interrupted = store.get_run(run.id)
    assert interrupted.status == "interrupted"
    assert interrupted.epoch < 6
    runs.resume(ws, store, run.id)
    finished = runs.wait(ws, store, run.id)
    assert finished.status == "completed", finished.error
    assert finished.epoch == 6
    resumed = [e["message"] for e in store.events(run.id) if "resumed from the checkpoint" in e["message"]]
    assert resumed and int(resumed[0].rsplit(" ", 1)[-1]) >= 2
    epochs = sorted(r["epoch"] for r in store.metrics(run.id, ["val_accuracy"]))
    assert epochs == [1, 2, 3, 4, 5, 6]


def test_cli_errors_are_one_line(ws: Workspace, tmp_path: Path) -> None:
    missing = _cli("train", "--data", str(tmp_path / "nope.zip"), "--backbone", "resnet18", env_home=ws.home)
    assert missing.returncode != 0
    assert missing.stderr.startswith("error:") and len(missing.stderr.strip().splitlines()) == 1
    unknown = _cli("runs", "show", "run-nope", "--json", env_home=ws.home)
    assert unknown.returncode != 0 and unknown.stderr.strip() == "error: no run 'run-nope'"
    bad_flag = _cli("train", "--epochs", "many", env_home=ws.home)
    assert bad_flag.returncode == 2 and bad_flag.stderr.startswith("error:")
    assert "Traceback" not in missing.stderr + unknown.stderr + bad_flag.stderr


def test_cli_refuses_an_escaping_zip_and_writes_nothing_outside(ws: Workspace, tmp_path: Path) -> None:
    import zipfile

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("cats/a.png", b"x")
        archive.writestr("../../escaped.txt", b"gotcha")
    done = _cli("datasets", "add", str(evil), "--json", env_home=ws.home)
    assert done.returncode != 0 and done.stderr.startswith("error:") and "escaped.txt" in done.stderr
    assert not list(tmp_path.parent.rglob("escaped.txt"))
    assert list(ws.datasets_dir.iterdir()) == [] and list(ws.staging_dir.iterdir()) == []


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_worker_that_ignores_cancel_is_killed_after_the_grace(
    ws: Workspace, store: Store, dataset_id: str
) -> None:
    run = runs.create(ws, store, _config(dataset_id, epochs=200))
    _wait_for(lambda: store.get_run(run.id).step > 0)
    pid = store.get_run(run.id).pid
    os.kill(pid, signal.SIGSTOP)  # a worker stuck inside one step: it cannot honour the request
    runs.cancel(ws, store, run.id)
    assert store.get_run(run.id).is_active
    store.update_run(run.id, cancel_requested_at=time.time() - runs.CANCEL_GRACE_S - 1)
    assert runs.reconcile(ws, store) == [run.id]
    assert store.get_run(run.id).status == "cancelled"
    assert any("killed" in e["message"] for e in store.events(run.id))
    _wait_for(lambda: not _alive(pid), timeout=20)


def test_a_reloaded_model_reproduces_its_validation_predictions(ws: Workspace, store: Store, dataset_id: str) -> None:
    """The pip-shipped Lite0 weights expect inputs in [-1, 1], not timm's ImageNet default: a model rebuilt
    from the run's files must get the same pixels, or explain and predict would see another model."""
    import numpy as np
    import torch

    from core import data
    from core.artifacts import load_model
    from core.data.image_pipeline import eval_transform
    from core.data.pictures import load_image

    config = _config(dataset_id, backbone="efficientnet_lite0", weights="auto", mode="head", epochs=2,
                     image_size=64)
    run = runs.wait(ws, store, runs.create(ws, store, config).id)
    assert run.status == "completed", run.error
    files = RunFiles(ws.run_dir(run.id))
    model, loaded_config, classes = load_model(files, ws.cache_dir)
    assert tuple(model.pretrained_cfg["mean"]) == (0.5, 0.5, 0.5)
    predictions = files.read_json(files.predictions)
    dataset = store.get_dataset(dataset_id)
    items = data.modality("images").items(ws.dataset_dir(dataset_id), dataset.info)
    transform = eval_transform(model, loaded_config)
    batch = torch.stack([transform(load_image(ws.dataset_dir(dataset_id) / items[i], loaded_config.image_size))
                         for i in predictions["items"]])
    with torch.no_grad():
        logits = model(batch)
    np.testing.assert_allclose(logits.numpy(), np.asarray(predictions["logits"]), atol=1e-4)
    # the probabilities shown are calibrated with the run's temperature, fitted on these validation logits
    temperature = files.read_json(files.target)["temperature"]
    assert temperature != 1.0
    np.testing.assert_allclose((logits / temperature).softmax(1).numpy(), np.asarray(predictions["probs"]),
                               atol=1e-4)


@pytest.mark.slow  # a worker process trains two epochs: 20-30 s on 2 busy cores
def test_a_cancelled_run_keeps_its_best_epoch_and_its_log(ws: Workspace, store: Store, dataset_id: str) -> None:
    from core.jobs.local import LocalBackend

    run = runs.create(ws, store, _config(dataset_id, epochs=200))
    _wait_for(lambda: store.get_run(run.id).epoch >= 2)
    cancelled = runs.cancel(ws, store, run.id, wait_s=30)
    assert cancelled.status == "cancelled"
    validated = {int(r["epoch"]): r["value"] for r in store.metrics(run.id, ["val_accuracy"])}
    losses = {int(r["epoch"]): r["value"] for r in store.metrics(run.id, ["val_loss"])}
    # the top accuracy; on a tie the lower validation loss, then the first such epoch
    best_epoch = max(validated, key=lambda e: (validated[e], -losses[e], -e))
    assert cancelled.metrics["best_epoch"] == best_epoch
    assert cancelled.metrics["val_accuracy"] == validated[best_epoch]
    assert cancelled.summary()["metrics"]["best_epoch"] == best_epoch
    # the worker's log of the ended run tells its story, the events it reported included
    log = LocalBackend(ws, store).logs(store.get_run(run.id))
    assert "info: epoch 1/200: val accuracy" in log and log.rstrip().endswith("info: cancelled")


def test_a_full_disk_interrupts_the_run_with_its_reason_and_it_resumes(
    ws: Workspace, store: Store, dataset_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second checkpoint write meets a full disk the way torch reports one (an opaque RuntimeError raised
    while handling ENOSPC); the worker runs in this process so the write can be made to fail."""
    import errno

    from core import worker
    from core.jobs.local import LocalBackend
    from core.training import checkpointing

    monkeypatch.setattr(LocalBackend, "dispatch", lambda self: None)  # the worker below is this process
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # keep pytest's own SIGTERM handling
    real_save = checkpointing._torch_save
    saves: list[Path] = []

    def full_disk(payload: dict, path: Path) -> None:
        saves.append(path)
        if len(saves) == 2:
            path.write_bytes(b"the start of a checkpoint")
            try:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            except OSError:
                raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598") from None
        real_save(payload, path)

    monkeypatch.setattr(checkpointing, "_torch_save", full_disk)
    run = runs.create(ws, store, _config(dataset_id, epochs=3))
    worker.main(run.id)
    stopped = store.get_run(run.id)
    assert stopped.status == "interrupted"
    assert stopped.error.startswith(f"the workspace's disk is full ({ws.home}: ")
    assert stopped.error.endswith("free some space (delete old runs or datasets), then resume: the last good "
                                  "checkpoint is kept")
    assert stopped.error in [e["message"] for e in store.events(run.id)]
    files = RunFiles(ws.run_dir(run.id))
    assert checkpointing.load(files.checkpoint)["progress"]["epoch"] == 1
    assert sorted(p.name for p in files.checkpoint.parent.iterdir()) == ["last.pt"]  # no half-written file left
    assert stopped.metrics["best_epoch"] == 1

    monkeypatch.setattr(checkpointing, "_torch_save", real_save)  # space freed
    assert runs.resume(ws, store, run.id).status == "queued"
    worker.main(run.id)
    finished = store.get_run(run.id)
    assert finished.status == "completed", finished.error
    assert (finished.epoch, finished.error) == (3, None)
    assert "resumed from the checkpoint of epoch 1" in [e["message"] for e in store.events(run.id)]
