"""Runs: create one from a config, hand it to a job backend, cancel, resume, and keep statuses
honest when a worker died without saying so."""

from __future__ import annotations

import shutil
import time
import uuid

from core import datasets, jobs, models
from core.artifacts import RunFiles
from core.config import TrainConfig
from core.errors import GlassboxError
from core.store import ACTIVE, DatasetRecord, RunRecord, Store
from core.workspace import Workspace

# how long a run may sit in "starting" without its worker checking in before it counts as dead
_START_GRACE_S = 120.0
# how long a worker may take to honour a cancel (it checks between two steps) before it is killed
CANCEL_GRACE_S = 15.0
_GONE = "the worker stopped unexpectedly; resume to continue from the last checkpoint"


def create(ws: Workspace, store: Store, config: TrainConfig, backend: str | None = None) -> RunRecord:
    """Record a run as queued, with its config saved beside its files, and submit it to `backend` (default
    the configured one, `jobs.configured()`)."""
    backend = backend or jobs.configured()
    config.validate()
    dataset = datasets.resolve(store, config.dataset_id)
    if dataset.modality != config.modality:
        raise GlassboxError(f"dataset {dataset.name} holds {dataset.modality}, not {config.modality}")
    config = config.updated(dataset_id=dataset.id)
    _check_space(ws, space_needed(config, dataset))
    run_id = time.strftime("run-%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    files = RunFiles(ws.run_dir(run_id))
    files.root.mkdir(parents=True)
    files.config.write_text(config.to_json())
    record = RunRecord(
        id=run_id, dataset_id=dataset.id, modality=config.modality, backbone=config.backbone, status="queued",
        config=config.to_dict(), backend=backend, created_at=time.time(), total_epochs=config.epochs,
    )
    store.add_run(record)
    jobs.backend(backend, ws, store).submit(record)
    return store.get_run(run_id)


def reconcile(ws: Workspace, store: Store) -> list[str]:
    """Settle runs whose worker is gone or will not stop; returns the ids whose status changed.

    Called when the studio starts, whenever runs are listed and while someone waits on a run, so a
    killed worker or a rebooted machine never leaves a run showing as running forever: its run
    becomes `interrupted` (resumable). A worker that ignored a cancel for `CANCEL_GRACE_S` is killed.
    """
    changed = []
    now = time.time()
    for run in store.list_runs(ACTIVE):
        backend = jobs.backend(run.backend, ws, store)
        if run.cancel_requested_at and now - run.cancel_requested_at > CANCEL_GRACE_S:
            backend.cancel(run)
            if store.transition(run.id, ACTIVE, status="cancelled", finished_at=now, pid=None):
                store.add_event(run.id, f"worker did not stop within {CANCEL_GRACE_S:.0f} s: killed", "warning")
                changed.append(run)
            continue
        # a cluster job (job_id) may wait in the cluster's queue as long as it needs: its backend says when it is gone
        starting_too_long = (run.status == "starting" and not run.pid and not run.job_id
                             and now - (run.heartbeat_at or 0) > _START_GRACE_S)
        dead = ((run.pid or run.job_id) and backend.status(run) == "gone") or starting_too_long
        if dead and store.transition(run.id, ACTIVE, status="interrupted", finished_at=now, pid=None, error=_GONE):
            store.add_event(run.id, "worker gone: marked interrupted", "warning")
            changed.append(run)
    for name in {run.backend for run in changed}:
        jobs.backend(name, ws, store).dispatch()
    return [run.id for run in changed]


def cancel(ws: Workspace, store: Store, run_id: str, wait_s: float = 0.0) -> RunRecord:
    """Ask the worker to stop between two steps. Returns at once unless `wait_s` is given; a worker
    that has not stopped `CANCEL_GRACE_S` after the request is killed by the next `reconcile`."""
    run = store.get_run(run_id)
    if run.is_terminal:
        raise GlassboxError(f"run {run_id} has already ended ({run.status})")
    if store.transition(run_id, ["queued", "interrupted"], status="cancelled", finished_at=time.time()):
        store.add_event(run_id, "cancelled before it ran")
        return store.get_run(run_id)
    if run.cancel_requested_at is None:
        store.update_run(run_id, cancel_requested_at=time.time())
        store.add_event(run_id, "cancel requested")
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and store.get_run(run_id).is_active:
        reconcile(ws, store)
        time.sleep(0.2)
    return store.get_run(run_id)


def resume(ws: Workspace, store: Store, run_id: str) -> RunRecord:
    """Queue a stopped run again; its worker continues from the last per-epoch checkpoint."""
    run = store.get_run(run_id)
    if run.status not in ("interrupted", "failed", "cancelled"):
        raise GlassboxError(f"run {run_id} is {run.status}: only interrupted, failed or cancelled runs resume")
    _check_space(ws, space_still_needed(ws, store, run))
    store.transition(run_id, [run.status], status="queued", cancel_requested_at=None, error=None, finished_at=None,
                     pid=None)
    checkpoint = RunFiles(ws.run_dir(run_id)).checkpoint
    store.add_event(run_id, "resume requested" + ("" if checkpoint.exists() else " (no checkpoint: from the start)"))
    jobs.backend(run.backend, ws, store).submit(store.get_run(run_id))
    return store.get_run(run_id)


def space_needed(config: TrainConfig, dataset: DatasetRecord) -> int:
    """Bytes a run's files take at their peak, estimated from the backbone's parameter count (float32)
    and the dataset's size: the best weights, the last checkpoint (weights plus the optimizer's moments,
    none for a frozen backbone) written beside the previous one before it replaces it, and predictions
    (about 12 bytes per number, every item's probabilities at most). GlassboxError for an unknown backbone."""
    params_m = models.family(config.modality).describe(config.backbone).params_m or 0.0
    weights = int(params_m * 1e6 * 4)
    moments = 0 if config.mode == "head" else 2 if config.optimizer == "adamw" else 1
    checkpoint = weights * (1 + moments)
    predictions = int(dataset.info.get("num_items", 0)) * (len(dataset.info.get("classes", ())) + 2) * 12
    return weights + 2 * checkpoint + predictions


def space_still_needed(ws: Workspace, store: Store, run: RunRecord) -> int:
    """`space_needed` less what the run's files already hold (they are overwritten in place)."""
    held = sum(path.stat().st_size for path in ws.run_dir(run.id).rglob("*") if path.is_file())
    needed = space_needed(TrainConfig.from_dict(run.config), store.get_dataset(run.dataset_id))
    return max(0, needed - held)


def disk_full_reason(ws: Workspace, needed: int) -> str:
    """What a run stopped by a full disk says, with what to do."""
    free = shutil.disk_usage(ws.home).free
    return (f"the workspace's disk is full ({ws.home}: {_megabytes(free)} free, the run needs about "
            f"{_megabytes(needed)} more); free some space (delete old runs or datasets), then resume: the last "
            "good checkpoint is kept")


def _check_space(ws: Workspace, needed: int) -> None:
    free = shutil.disk_usage(ws.home).free
    if free < needed:
        raise GlassboxError(f"not enough space on the workspace's disk ({ws.home}): {_megabytes(free)} free, the "
                            f"run needs about {_megabytes(needed)} for its weights and checkpoints; free some space "
                            "(delete old runs or datasets) and try again")


def _megabytes(size: int) -> str:
    return f"{max(1, round(size / 1e6))} MB"


def wait(ws: Workspace, store: Store, run_id: str, poll_s: float = 0.2) -> RunRecord:
    """Block until the run ends (completed, failed, cancelled or interrupted)."""
    while True:
        run = store.get_run(run_id)
        if run.is_terminal or run.status == "interrupted":
            return run
        if run.is_active:
            reconcile(ws, store)
        time.sleep(poll_s)
